//! The DEST argument: a registry repository (`HOST[:PORT]/REPO[:TAG]`, `docker://` accepted),
//! or an OCI image layout on disk (`oci:DIR[:TAG]`).

use std::path::PathBuf;

use crate::registry::Reference;

/// The DEST argument, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DestSpec {
    Registry(Reference),
    Layout { dir: PathBuf, tag: String },
}

impl DestSpec {
    pub fn parse(s: &str) -> Result<Self, crate::registry::ReferenceError> {
        match s.strip_prefix("oci:") {
            Some(rest) => {
                // The tag follows the last ':' unless that ':' is part of the directory path.
                let (dir, tag) = match rest.rsplit_once(':') {
                    Some((dir, tag)) if !tag.contains('/') && !tag.is_empty() => (dir, tag),
                    _ => (rest, "latest"),
                };
                Ok(Self::Layout {
                    dir: dir.into(),
                    tag: tag.into(),
                })
            }
            None => Reference::parse(s).map(Self::Registry),
        }
    }

    /// How results name the image: `registry/repo:tag`, or `oci:DIR:TAG`.
    pub fn display(&self) -> String {
        match self {
            Self::Registry(r) => r.to_string(),
            Self::Layout { dir, tag } => format!("oci:{}:{tag}", dir.display()),
        }
    }

    /// The same place under another tag (where a ModelPack goes beside the image).
    pub fn with_tag(&self, tag: &str) -> Self {
        match self {
            Self::Registry(r) => Self::Registry(Reference {
                tag: Some(tag.to_string()),
                digest: None,
                ..r.clone()
            }),
            Self::Layout { dir, .. } => Self::Layout {
                dir: dir.clone(),
                tag: tag.to_string(),
            },
        }
    }

    pub fn tag(&self) -> String {
        match self {
            Self::Registry(r) => r.tag.clone().unwrap_or_else(|| "latest".into()),
            Self::Layout { tag, .. } => tag.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dest_forms() {
        assert_eq!(
            DestSpec::parse("oci:./out:v1").unwrap(),
            DestSpec::Layout {
                dir: "./out".into(),
                tag: "v1".into()
            }
        );
        assert_eq!(
            DestSpec::parse("oci:/tmp/a:b/c").unwrap(),
            DestSpec::Layout {
                dir: "/tmp/a:b/c".into(),
                tag: "latest".into()
            }
        );
        let DestSpec::Registry(r) = DestSpec::parse("docker://127.0.0.1:5000/m:t").unwrap() else {
            panic!()
        };
        assert_eq!(r.tag.as_deref(), Some("t"));
        assert!(DestSpec::parse("127.0.0.1:5000/Bad").is_err());
    }
}
