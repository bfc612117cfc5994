//! Flag values: sizes (`16MiB`, parsed in shared), the host platform.

pub use modelcar_shared::cli::parse_size;

/// The platform this binary runs on, in OCI terms.
pub fn host_platform() -> String {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "powerpc64" => "ppc64le",
        other => other,
    };
    format!("linux/{arch}")
}
