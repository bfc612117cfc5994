//! Small helpers every test server and reader uses: ports, system tools, hex.

use std::net::TcpListener;

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
