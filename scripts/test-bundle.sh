#!/usr/bin/env bash
# The path from a clone to the Tekton bundle, checked against a local registry: builds the six
# images with scripts/build-images.sh --push into a CNCF distribution registry on loopback,
# then runs the Tekton tests (tests/tests/tekton_bundle.rs and each binary's tekton_task.rs)
# on the rendered bundle instead of tekton/, and checks that its Tasks run the pushed images.
# Run by scripts/test.sh; needs root or sudo to install buildah and the registry.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
command -v podman >/dev/null || install_missing_packages buildah
install_missing_packages docker-registry skopeo

work=target/test-bundle
rm -rf "$work" && mkdir -p "$work"
registry=$(start_local_registry "$work/registry")
trap 'kill "$(cat "$work/registry/pid")" 2>/dev/null || true' EXIT

prefix=$registry/modelcar
scripts/build-images.sh --push "$prefix" --out "$work/bundle" --tls-verify=false >"$work/pushed"
cat "$work/pushed" >&2
[ "$(wc -l <"$work/pushed")" = ${#modelcar_bins[@]} ] || {
  echo "test-bundle.sh: build-images.sh reported $(wc -l <"$work/pushed") pushed images, not ${#modelcar_bins[@]}" >&2
  exit 1
}

# --workspace, as scripts/test.sh builds it: another set of packages would unify features
# differently and rebuild the shared crates.
MODELCAR_TEKTON_DIR=$PWD/$work/bundle MODELCAR_BUNDLE_IMAGES=$prefix \
  cargo test --workspace --locked --test tekton_bundle --test tekton_task -- --include-ignored
