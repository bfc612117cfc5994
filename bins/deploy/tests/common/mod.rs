//! What the cluster tests share: a TLS API server with a kubeconfig of its own, deploy run
//! against it, and the reading of its output.
#![allow(dead_code)]

use std::process::{Command, Output};
use std::sync::Arc;

use modelcar_testkit::tls::TestCa;
use modelcar_testkit::KubeServer;
use serde_json::Value;

pub struct Cluster {
    pub server: Arc<KubeServer>,
    pub dir: tempfile::TempDir,
}

impl Cluster {
    /// An API server serving TLS with a CA of its own that only the kubeconfig names, as a
    /// cluster's does, with namespace `ns`.
    pub fn start(ns: &str) -> Self {
        let server = Arc::new(KubeServer::start_tls(&TestCa::new("cluster CA")));
        server.add_namespace(ns);
        Self {
            server,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn kubeconfig(&self) -> String {
        let path = self.server.write_kubeconfig(self.dir.path());
        path.display().to_string()
    }

    /// deploy with `args`, then the kubeconfig and `--output json`; nothing from the
    /// environment of the test.
    pub fn run(&self, args: &[&str]) -> Output {
        let kubeconfig = self.kubeconfig();
        Command::new(env!("CARGO_BIN_EXE_deploy"))
            .args(args)
            .args(["--kubeconfig", &kubeconfig, "--output", "json"])
            .env_remove("KUBECONFIG")
            .env_remove("MODELCAR_WORKSPACE")
            .env("HOME", self.dir.path())
            .output()
            .expect("run deploy")
    }
}

pub fn json_out(out: &Output) -> Value {
    assert!(out.status.success(), "deploy failed: {}", stderr(out));
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}
