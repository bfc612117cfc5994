//! Content digests in the `sha256:<hex>` form used by OCI: [`Digest`], checked when it is
//! made, and the helpers that compute one.

use std::fmt;
use std::ops::Deref;

use serde::{Deserialize, Deserializer, Serialize};
use sha2::{Digest as _, Sha256};

/// A content digest, `sha256:<64 lower-case hex>` (or `sha512:<128 hex>`), as the OCI image
/// spec defines it. A digest read from a server is checked here once: what goes into a URL
/// path or a file name in an OCI layout is never `sha256:../..` or anything but the hex.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Digest(String);

#[derive(Debug, thiserror::Error)]
#[error("{0:?} is not a digest (sha256:<64 lower-case hex digits>)")]
pub struct DigestError(String);

impl Digest {
    pub fn parse(text: &str) -> Result<Self, DigestError> {
        let valid = match text.split_once(':') {
            Some(("sha256", hex)) => is_lower_hex(hex, 64),
            Some(("sha512", hex)) => is_lower_hex(hex, 128),
            _ => false,
        };
        match valid {
            true => Ok(Self(text.to_string())),
            false => Err(DigestError(text.to_string())),
        }
    }

    /// The hex part, as blob file names in an OCI layout use it.
    pub fn hex(&self) -> &str {
        self.0.split_once(':').map_or("", |(_, hex)| hex)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn is_lower_hex(text: &str, len: usize) -> bool {
    text.len() == len && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

impl Deref for Digest {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl PartialEq<str> for Digest {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for Digest {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl PartialEq<String> for Digest {
    fn eq(&self, other: &String) -> bool {
        &self.0 == other
    }
}

impl PartialEq<Digest> for String {
    fn eq(&self, other: &Digest) -> bool {
        *self == other.0
    }
}

impl From<Digest> for String {
    fn from(digest: Digest) -> Self {
        digest.0
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Digest::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// `sha256:<64 hex digits>` of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> Digest {
    format_digest(&Sha256::digest(bytes))
}

/// `sha256:<hex>` from a finished sha256 hash.
pub fn format_digest(hash: &[u8]) -> Digest {
    Digest(format!("sha256:{}", hex(hash)))
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
    use super::Digest;

    #[test]
    fn only_well_formed_digests_parse() {
        let good = format!("sha256:{}", "ab".repeat(32));
        assert_eq!(Digest::parse(&good).unwrap().hex(), "ab".repeat(32));
        for bad in [
            "sha256:../../etc/passwd".to_string(),
            format!("sha256:{}", "AB".repeat(32)),
            format!("sha256:{}", "ab".repeat(31)),
            format!("md5:{}", "ab".repeat(16)),
            "ab".repeat(32),
        ] {
            assert!(Digest::parse(&bad).is_err(), "{bad}");
        }
        let refused: Result<Digest, _> = serde_json::from_str("\"sha256:../x\"");
        assert!(refused.is_err());
    }

    #[test]
    fn empty_input_has_the_well_known_digest() {
        assert_eq!(
            super::sha256_digest(b""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
