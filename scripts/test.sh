#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs the system packages the tests run against
# (the CNCF distribution registry, skopeo, umoci, htpasswd, buildah), then format check, clippy
# with warnings as errors, every test of the workspace, scripts/pipeline-local.sh and
# scripts/test-bundle.sh. Needs root (or sudo): the tests chown files to other UIDs and run
# steps as unprivileged users, as Tekton does.
set -euo pipefail
cd "$(dirname "$0")/.."

. scripts/lib.sh
sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo"

# The servers and independent readers the tests run against. busybox-static gives the test
# base image a shell that runs under chroot; util-linux gives setpriv (steps as other UIDs);
# buildah builds the step images for test-bundle.sh; podman and runc start the images as a
# node does (the testkit's runtime harness writes its own containers.conf for them), and a
# pod's infra container is catatonit, which podman only recommends.
install_missing_packages docker-registry skopeo umoci apache2-utils busybox-static util-linux buildah runc podman catatonit

# Independent Python readers: the official Model Registry client (reads back what register
# writes), the reference JSON Schema validator (checks the ModelPack config against the
# model-spec schema), and olot (what build-push --modelpack is compared with).
if ! target/python/bin/python -c 'import model_registry, jsonschema, rfc3339_validator, olot' >/dev/null 2>&1; then
  echo "test.sh: installing model-registry, jsonschema and olot (PyPI) into target/python" >&2
  python3 -m venv target/python
  target/python/bin/pip install -q model-registry==0.3.18 jsonschema==4.26.0 \
    rfc3339-validator==0.1.4 olot==1.2.1
fi

cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# No two files of a crate import each other, directly or round a loop.
scripts/module-cycles.py
# No error message prints its own cause: the chain is printed once, by whoever prints it.
scripts/error-sources.py
if [ "$(id -u)" = 0 ]; then
  cargo test --workspace --locked
else
  # The permission tests need root; keep the user's toolchain through sudo.
  cargo test --workspace --locked --no-run
  $sudo env "PATH=$PATH" cargo test --workspace --locked
fi

# The user's paths from a clone, end to end: the pipeline on this machine, the six images
# pushed with the Tekton bundle rendered to run them, and the pipeline again with each step
# in its image, started as OpenShift's restricted SCC starts a pod.
scripts/pipeline-local.sh
scripts/test-bundle.sh
scripts/pipeline-local.sh --containers
