//! sha256 digests in the `sha256:<hex>` form used by OCI.

use sha2::{Digest, Sha256};

/// `sha256:<64 hex digits>` of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format_digest(&Sha256::digest(bytes))
}

/// `sha256:<hex>` from a finished hash.
pub fn format_digest(hash: &[u8]) -> String {
    format!("sha256:{}", hex(hash))
}

/// Lower-case hex, as the Hub and git write hashes.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn empty_input_has_the_well_known_digest() {
        assert_eq!(
            super::sha256_digest(b""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
