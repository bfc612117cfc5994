//! What every modelcar binary shares (`docs/design.md`): the PVC layout, the
//! group-shared permission scheme, the publish metadata file and the command-line conventions.
//! Nothing specific to one binary lives here.

pub mod atomic_file;
pub mod causes;
pub mod cli;
pub mod digest;
pub mod http;
pub mod hub;
pub mod metadata;
pub mod oci;
pub mod perms;
pub mod progress;
pub mod registry;
pub mod selection;
pub mod state_file;
pub mod tls;
pub mod transfer;
pub mod trust;
pub mod workspace;

pub use metadata::{Metadata, MetadataFile};
pub use workspace::Workspace;
