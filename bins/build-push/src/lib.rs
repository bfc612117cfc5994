//! build-push: streams a model directory into a ModelCar OCI image (`docs/design.md`, "The ModelCar image" and "Moving bytes"),
//! in a registry or an OCI layout, with no copy of the model staged anywhere.

pub mod args;
pub mod base;
pub mod cache;
mod error;
mod file_reader;
pub mod hub_source;
pub mod image;
mod labels;
mod layers;
pub mod limits;
mod modelpack;
mod options;
pub mod plan;
mod publish;
mod record;
pub mod report;
mod run;
mod send;
mod tar_producer;
pub mod tar_stream;

pub use error::BuildError;
pub use options::{HubInput, ModelPackTag, ModelSource, Options};
pub use run::run;
