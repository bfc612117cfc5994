//! build-push: streams a model directory into a ModelCar OCI image (`docs/design.md`, "The ModelCar image" and "Moving bytes"),
//! in a registry or an OCI layout, with no copy of the model staged anywhere.

pub mod args;
pub mod base;
pub mod cache;
mod chunks_of_tar;
pub mod hub_source;
pub mod image;
pub mod limits;
mod modelpack;
pub mod plan;
pub mod push;
pub mod report;
mod run;
mod send;
pub mod tar_layout;

pub use run::{run, BuildError, HubInput, ModelSource, Options};
