//! Image references as users write them: `HOST[:PORT]/REPO[:TAG][@DIGEST]`, with an optional
//! `docker://` prefix, following the grammar of distribution's `reference` package.

use std::fmt;

/// Docker Hub, as named in references, and the host that actually serves its API.
const DOCKER_HUB: &str = "docker.io";
const DOCKER_HUB_API: &str = "registry-1.docker.io";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid image reference {input:?}: {reason}")]
pub struct ReferenceError {
    pub input: String,
    pub reason: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    /// As written by the user (`docker.io` for Docker Hub); see [`Reference::api_host`].
    pub registry: String,
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

impl Reference {
    pub fn parse(input: &str) -> Result<Self, ReferenceError> {
        let err = |reason| ReferenceError {
            input: input.to_string(),
            reason,
        };
        let s = input.strip_prefix("docker://").unwrap_or(input);
        let (name, digest) = match s.split_once('@') {
            Some((name, digest)) => (name, Some(parse_digest(digest).ok_or(err(DIGEST_RULE))?)),
            None => (s, None),
        };
        // A ':' after the last '/' starts the tag; one before it is a registry port.
        let (name, tag) = match name.rfind(':') {
            Some(i) if !name[i..].contains('/') => (&name[..i], Some(&name[i + 1..])),
            _ => (name, None),
        };
        if let Some(tag) = tag {
            if !valid_tag(tag) {
                return Err(err(
                    "a tag is 1-128 of [A-Za-z0-9_.-], not starting with '.' or '-'",
                ));
            }
        }
        let (registry, repository) = split_registry(name);
        if registry.is_empty() || repository.is_empty() {
            return Err(err("expected HOST[:PORT]/REPOSITORY[:TAG][@DIGEST]"));
        }
        if !repository.split('/').all(valid_path_component) {
            return Err(err(
                "repository path components are lowercase letters and digits, separated by '.', '_', '__' or '-'",
            ));
        }
        let repository = match (registry == DOCKER_HUB, repository.contains('/')) {
            (true, false) => format!("library/{repository}"),
            _ => repository.to_string(),
        };
        Ok(Self {
            registry: registry.to_string(),
            repository,
            tag: tag.map(str::to_string),
            digest,
        })
    }

    /// The host (and port) that serves the registry API.
    pub fn api_host(&self) -> &str {
        if self.registry == DOCKER_HUB {
            DOCKER_HUB_API
        } else {
            &self.registry
        }
    }

    /// Whether the registry is on this machine, where docker and podman speak plain HTTP.
    pub fn is_localhost(&self) -> bool {
        let host = match self.registry.rsplit_once(':') {
            Some((host, port)) if port.chars().all(|c| c.is_ascii_digit()) => host,
            _ => &self.registry,
        };
        is_loopback_host(host)
    }

    /// The tag, or the digest, or `latest`: what `GET /v2/<repo>/manifests/<ref>` asks for.
    pub fn manifest_ref(&self) -> &str {
        self.digest
            .as_deref()
            .or(self.tag.as_deref())
            .unwrap_or("latest")
    }

    /// The same repository at another tag or digest.
    pub fn with_digest(&self, digest: &str) -> Self {
        Self {
            digest: Some(digest.to_string()),
            ..self.clone()
        }
    }

    /// `registry/repository`, without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for Reference {
    type Err = ReferenceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

const DIGEST_RULE: &str = "a digest is sha256: followed by 64 lowercase hex digits";

fn parse_digest(s: &str) -> Option<String> {
    let hex = s.strip_prefix("sha256:")?;
    (hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
        .then(|| s.to_string())
}

/// The first component names a registry when it looks like a host: it has a '.' or a ':'
/// or is `localhost`. Otherwise the whole name is a Docker Hub repository.
fn split_registry(name: &str) -> (&str, &str) {
    match name.split_once('/') {
        Some((first, rest)) if first.contains(['.', ':']) || first == "localhost" => (first, rest),
        _ => (DOCKER_HUB, name),
    }
}

fn valid_tag(tag: &str) -> bool {
    let mut chars = tag.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric() || c == '_')
        && tag.len() <= 128
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`
fn valid_path_component(c: &str) -> bool {
    let alnum = |ch: char| ch.is_ascii_lowercase() || ch.is_ascii_digit();
    let starts_and_ends = c.starts_with(alnum) && c.ends_with(alnum);
    let separators_ok = c
        .split(alnum)
        .filter(|sep| !sep.is_empty())
        .all(|sep| sep == "." || sep == "_" || sep == "__" || sep.chars().all(|ch| ch == '-'));
    starts_and_ends
        && c.chars()
            .all(|ch| alnum(ch) || matches!(ch, '.' | '_' | '-'))
        && separators_ok
}

/// `localhost`, or a loopback address (`127.0.0.0/8`, `::1`, bracketed or not): never a name
/// that merely starts like one (`127.evil.example`).
pub fn is_loopback_host(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || bare
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Reference {
        Reference::parse(s).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn registry_port_repo_tag_and_digest() {
        let d = format!("sha256:{}", "a".repeat(64));
        let r = parse(&format!("docker://127.0.0.1:5000/org/model:v1@{d}"));
        assert_eq!(r.registry, "127.0.0.1:5000");
        assert_eq!(r.repository, "org/model");
        assert_eq!(r.tag.as_deref(), Some("v1"));
        assert_eq!(r.digest.as_deref(), Some(d.as_str()));
        assert_eq!(r.manifest_ref(), d);
        assert!(r.is_localhost());
    }

    #[test]
    fn port_is_not_mistaken_for_a_tag() {
        let r = parse("localhost:5000/model");
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str(), r.tag.as_deref()),
            ("localhost:5000", "model", None)
        );
        assert_eq!(r.manifest_ref(), "latest");
        assert_eq!(r.to_string(), "localhost:5000/model");
    }

    #[test]
    fn docker_hub_short_names() {
        let r = parse("busybox:1.37");
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str()),
            ("docker.io", "library/busybox")
        );
        assert_eq!(r.api_host(), "registry-1.docker.io");
        assert!(!r.is_localhost());
        assert_eq!(parse("quay.io/org/m").api_host(), "quay.io");
    }

    #[test]
    fn only_loopback_hosts_count_as_localhost() {
        for host in [
            "localhost:5000",
            "127.0.0.1:5000",
            "127.0.0.2",
            "[::1]:5000",
        ] {
            assert!(parse(&format!("{host}/m")).is_localhost(), "{host}");
        }
        for host in [
            "127.evil.example",
            "127.0.0.1.nip.io:5000",
            "localhost.evil.example",
        ] {
            assert!(!parse(&format!("{host}/m")).is_localhost(), "{host}");
        }
    }

    #[test]
    fn bad_references_say_why() {
        for bad in [
            "quay.io/Org/model",
            "quay.io/org/model:",
            "quay.io/org/model:-x",
            "quay.io/org/model@sha256:abc",
            "quay.io/",
            "quay.io/org//m",
            "quay.io/org/m-",
            "",
        ] {
            assert!(Reference::parse(bad).is_err(), "{bad:?} accepted");
        }
        let e = Reference::parse("quay.io/Org/m").unwrap_err().to_string();
        assert!(
            e.contains("quay.io/Org/m") && e.contains("lowercase"),
            "{e}"
        );
    }

    #[test]
    fn separators_follow_the_grammar() {
        assert!(valid_path_component("a.b_c__d---e"));
        assert!(!valid_path_component("a..b"));
        assert!(!valid_path_component("a___b"));
        assert!(!valid_path_component("_a"));
    }
}
