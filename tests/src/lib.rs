//! Test harness shared by the integration tests of every binary: real servers on localhost
//! (`docs/design.md`, "Tests"). Test code: failures here panic with a message that says what to fix.

pub mod base_image;
pub mod capture;
pub mod crd_schema;
pub mod http;
pub mod http_server;
pub mod hub_server;
pub mod kube_server;
pub mod model;
pub mod model_registry;
pub mod oci_tools;
pub mod proxy;
pub mod registry;
pub mod rewriting_proxy;
pub mod runtime;
pub mod spec_registry;
pub mod tekton;
pub mod tls;
pub mod tls_front;
pub mod token_server;
mod tools;
pub mod wan_proxy;

pub use capture::CaptureListener;
pub use hub_server::{HubRepo, HubServer};
pub use kube_server::KubeServer;
pub use model_registry::ModelRegistryServer;
pub use proxy::CountingProxy;
pub use registry::{Registry, RegistryAuth};
pub use rewriting_proxy::RewritingProxy;
pub use spec_registry::SpecRegistry;
pub use token_server::TokenServer;
pub use tools::{free_port, hex, require_tool, run_tool};

/// A registry a test can stop (as if killed) and start again on the same port and storage.
pub trait Restartable {
    fn host(&self) -> String;
    fn stop(&mut self);
    fn start_again(&mut self);
}

impl Restartable for Registry {
    fn host(&self) -> String {
        Registry::host(self)
    }
    fn stop(&mut self) {
        Registry::stop(self)
    }
    fn start_again(&mut self) {
        Registry::start_again(self)
    }
}

impl Restartable for SpecRegistry {
    fn host(&self) -> String {
        SpecRegistry::host(self)
    }
    fn stop(&mut self) {
        SpecRegistry::stop(self)
    }
    fn start_again(&mut self) {
        SpecRegistry::start_again(self)
    }
}
