#!/usr/bin/env bash
# The modelcar pipeline on one machine, without Kubernetes: fetch-model (from HF_ENDPOINT, or
# from a synthetic model served by the testkit's Hub server), fix-perms, build-push into a
# local registry, mirror into a second one, register (into MODEL_REGISTRY_URL with the token in
# MODEL_REGISTRY_TOKEN or MODELCAR_TOKEN_FILE, or by default the testkit's Model Registry
# server) and deploy --dry-run. Prints each step's result and the metadata file every step wrote to.
#
#   scripts/pipeline-local.sh [ORG/NAME]     default: a synthetic 2 x 64 MiB model, org/tiny
#   KEEP=1 keeps the workspace and stops nothing (the registries' ports are printed).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=${1:-org/tiny}
name=${repo#*/}

. scripts/lib.sh
install_missing_packages docker-registry skopeo
build_static_bins
bin=$static_bin_dir
work=$(mktemp -d /var/tmp/modelcar-pipeline.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [ "${KEEP:-0}" = 1 ] || rm -rf "$work"
}
trap cleanup EXIT

if [ -z "${HF_ENDPOINT:-}" ]; then
  scripts/make-model.sh "$work/source-model" 64 2 >&2
  "$bin/hub-serve" "$work/source-model" "$repo" >"$work/hub.url" 2>"$work/hub.log" &
  pids+=($!)
  for _ in $(seq 100); do [ -s "$work/hub.url" ] && break; sleep 0.1; done
  export HF_ENDPOINT
  HF_ENDPOINT=$(cat "$work/hub.url")
fi
ws=$work/ws
mkdir -p "$ws"
first=$(start_local_registry "$work/first")
pids+=("$(cat "$work/first/pid")")
second=$(start_local_registry "$work/second")
pids+=("$(cat "$work/second/pid")")
step() { echo "== $*" >&2; "$@"; }

step "$bin/fetch-model" "$repo" --workspace "$ws"
step "$bin/fix-perms" --workspace "$ws"
step "$bin/build-push" "$ws/models/$name" "$first/models/$name:v1" --workspace "$ws" --base scratch
step "$bin/mirror" --workspace "$ws" --from-metadata "$second/models/$name:v1"
if [ -z "${MODEL_REGISTRY_URL:-}" ]; then
  # The testkit's Model Registry (its REST API, Bearer auth), with a token of this run's own.
  python3 -c 'import secrets; print(secrets.token_hex(16))' >"$work/registry-token"
  "$bin/model-registry-serve" "$(cat "$work/registry-token")" >"$work/model-registry.url" 2>"$work/model-registry.log" &
  pids+=($!)
  for _ in $(seq 100); do [ -s "$work/model-registry.url" ] && break; sleep 0.1; done
  export MODEL_REGISTRY_URL MODELCAR_TOKEN_FILE=$work/registry-token
  MODEL_REGISTRY_URL=$(cat "$work/model-registry.url")
fi
step "$bin/register" --workspace "$ws" --url "$MODEL_REGISTRY_URL" --variant local --model-format-name vLLM
step "$bin/deploy" "$name" --workspace "$ws" --dry-run >"$work/inferenceservice.yaml"
echo "== deploy --dry-run wrote $work/inferenceservice.yaml" >&2

a=$(skopeo inspect --tls-verify=false "docker://$first/models/$name:v1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Digest"])')
b=$(skopeo inspect --tls-verify=false "docker://$second/models/$name:v1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Digest"])')
echo "first registry:  $first/models/$name:v1@$a"
echo "second registry: $second/models/$name:v1@$b"
[ "$a" = "$b" ] || { echo "pipeline-local.sh: the two registries disagree" >&2; exit 1; }
echo "metadata file ($ws/.modelcar/metadata.json), files summed up:"
python3 - "$ws/.modelcar/metadata.json" <<'PY'
import json, sys
meta = json.load(open(sys.argv[1]))
files = meta.pop("files", [])
meta["files"] = f"{len(files)} files, {sum(f['size'] for f in files)} bytes, each with its sha256"
print(json.dumps(meta, indent=2))
PY
