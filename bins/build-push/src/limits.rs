//! How many layers an image may have and how large a layer may be, where the registry or the
//! runtime that pulls the image decides it, so that a run stops before its first byte rather
//! than after hours of upload or at the pod's start.

use modelcar_shared::transfer::DestSpec;

use crate::plan::SizeLimit;

/// The default `--max-layers`, base layers included. CRI-O (OpenShift's runtime) cannot start
/// a container from an image of more than 128 layers ("max depth exceeded": containers/storage's
/// overlay driver caps the lower layers at `maxDepth`, 128 in the releases CRI-O and podman 4
/// ship, 500 at its HEAD; cri-o/cri-o#6261, containers/storage#489). Measured on a real
/// runtime by build-push's tests/on_a_node.rs: 128 layers start, 129 do not. 100 leaves 28 for
/// the base and for layers added later.
pub const DEFAULT_MAX_LAYERS: usize = 100;

/// The limit a run's layers must keep: `--max-layer-size` when given, else the smallest
/// documented limit among the destinations' registries, else none.
pub fn layer_size_limit(flag: Option<u64>, dests: &[DestSpec]) -> Option<SizeLimit> {
    if let Some(bytes) = flag {
        return Some(SizeLimit {
            bytes,
            origin: "--max-layer-size".into(),
        });
    }
    dests
        .iter()
        .filter_map(|dest| match dest {
            DestSpec::Registry(reference) => known_limit(&reference.registry),
            DestSpec::Layout { .. } => None,
        })
        .min_by_key(|limit| limit.bytes)
}

/// The layer size limit a registry documents, by its host. Self-hosted Quay and Harbor have
/// hosts of their own: their limits are given with `--max-layer-size`.
fn known_limit(registry: &str) -> Option<SizeLimit> {
    let host = registry.split(':').next().unwrap_or(registry);
    let is_ecr = host.contains(".dkr.ecr.")
        && (host.ends_with(".amazonaws.com") || host.ends_with(".amazonaws.com.cn"));
    let (bytes, origin) = match host {
        // quay/quay config.py: MAXIMUM_LAYER_SIZE = "20G", also nginx's client_max_body_size.
        "quay.io" => (20 << 30, "Quay's MAXIMUM_LAYER_SIZE default, 20 GiB"),
        // GitHub docs, "Working with the Container registry": layers of at most 10 GB.
        "ghcr.io" => (10_000_000_000, "GitHub's documented limit, 10 GB"),
        // AWS docs, "Amazon ECR service quotas": layer size 52,000 MiB.
        _ if is_ecr => (52_000 << 20, "Amazon ECR's service quota, 52,000 MiB"),
        _ => return None,
    };
    Some(SizeLimit {
        bytes,
        origin: format!("{origin}, for {host}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dests(refs: &[&str]) -> Vec<DestSpec> {
        refs.iter().map(|r| DestSpec::parse(r).unwrap()).collect()
    }

    #[test]
    fn the_flag_wins_over_every_registry() {
        let limit = layer_size_limit(Some(1 << 20), &dests(&["quay.io/org/m:1"])).unwrap();
        assert_eq!(limit.bytes, 1 << 20);
        assert_eq!(limit.origin, "--max-layer-size");
    }

    #[test]
    fn the_smallest_documented_limit_of_the_destinations_applies() {
        let limit = layer_size_limit(None, &dests(&["quay.io/org/m:1", "ghcr.io/org/m:1"]));
        assert_eq!(limit.unwrap().bytes, 10_000_000_000);
        let ecr = layer_size_limit(
            None,
            &dests(&["123456789012.dkr.ecr.us-east-1.amazonaws.com/m:1"]),
        );
        assert_eq!(ecr.unwrap().bytes, 52_000 << 20);
        assert!(layer_size_limit(None, &dests(&["quay.io:443/org/m:1"])).is_some());
    }

    #[test]
    fn unknown_registries_and_layouts_have_no_limit() {
        let none = dests(&[
            "registry.example.com/org/m:1",
            "oci:/tmp/layout:1",
            "s3.amazonaws.com/m:1",
            "quay.io.evil.example/m:1",
        ]);
        assert_eq!(layer_size_limit(None, &none), None);
    }
}
