//! The images we push, started as a node starts them: podman + runc over containers/storage
//! ([`podman`]), pods with the kubelet's semantics ([`pod`]) under OpenShift's restricted
//! security context ([`security`]), KServe's modelcar predictor pod ([`kserve`]), and a
//! small reader image that stands for a model server ([`reader`]).

mod expansion;
pub mod kserve;
pub mod pod;
pub mod podman;
pub mod reader;
pub mod security;

pub use expansion::expand;
pub use pod::{Container, InitFailed, Mount, Pod, RunningPod};
pub use podman::{podman, Podman};
pub use security::{PodSecurity, ARBITRARY_UID};
