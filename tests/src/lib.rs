//! Test harness shared by the integration tests of every binary: real servers on localhost
//! (`docs/design.md`, "Tests"). Test code: failures here panic with a message that says what to fix.

pub mod base_image;
pub mod capture;
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
pub mod spec_registry;
pub mod tekton;
pub mod token_server;
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

use std::net::TcpListener;

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

/// Lower-case hex of a hash, as registries and the Hub write it.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("cannot bind a localhost port")
}

/// Runs a system tool, panicking with its stderr if it fails; returns its stdout.
pub fn run_tool(program: &str, args: &[&str]) -> String {
    let out = std::process::Command::new(require_tool(program))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Panics with an install hint when a system tool the tests need is missing.
pub fn require_tool(name: &str) -> std::path::PathBuf {
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("`{name}` is not installed: run scripts/test.sh, which installs it")
        })
}
