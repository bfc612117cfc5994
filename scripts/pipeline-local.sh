#!/usr/bin/env bash
# The modelcar pipeline on one machine, without Kubernetes: fetch-model (from HF_ENDPOINT, or
# from a synthetic model served by the testkit's Hub server), fix-perms, build-push into a
# local registry, mirror into a second one, register (when MODEL_REGISTRY_URL is set) and
# deploy --dry-run. Prints each step's result and the metadata file every step wrote to.
#
#   scripts/pipeline-local.sh [ORG/NAME]     default: a synthetic 2 x 64 MiB model, org/tiny
#   KEEP=1 keeps the workspace and stops nothing (the registries' ports are printed).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=${1:-org/tiny}
name=${repo#*/}

dpkg -s docker-registry skopeo >/dev/null 2>&1 || {
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-registry skopeo >/dev/null
}
cargo build --release --locked -p fetch-model -p fix-perms -p build-push -p mirror -p register -p deploy >&2
bin=target/release
work=$(mktemp -d /var/tmp/modelcar-pipeline.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [ "${KEEP:-0}" = 1 ] || rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# registry NAME: starts a distribution registry with its storage in the work dir; echoes host:port.
registry() {
  local port dir=$work/$1
  port=$(free_port)
  mkdir -p "$dir"
  printf 'version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: 127.0.0.1:%s\n' \
    "$dir/storage" "$port" >"$dir/config.yml"
  docker-registry serve "$dir/config.yml" >"$dir/log" 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/v2/" >/dev/null && break; sleep 0.1; done
  echo "127.0.0.1:$port"
}

if [ -z "${HF_ENDPOINT:-}" ]; then
  cargo build --release --locked -p modelcar-testkit --bin hub-serve >&2
  scripts/make-model.sh "$work/source-model" 64 2 >&2
  target/release/hub-serve "$work/source-model" "$repo" >"$work/hub.url" 2>"$work/hub.log" &
  pids+=($!)
  for _ in $(seq 100); do [ -s "$work/hub.url" ] && break; sleep 0.1; done
  export HF_ENDPOINT
  HF_ENDPOINT=$(cat "$work/hub.url")
fi
ws=$work/ws
mkdir -p "$ws"
first=$(registry first)
second=$(registry second)
step() { echo "== $*" >&2; "$@"; }

step "$bin/fetch-model" "$repo" --workspace "$ws"
step "$bin/fix-perms" --workspace "$ws"
step "$bin/build-push" "$ws/models/$name" "$first/models/$name:v1" --workspace "$ws" --base scratch
step "$bin/mirror" --workspace "$ws" --from-metadata "$second/models/$name:v1"
if [ -n "${MODEL_REGISTRY_URL:-}" ]; then
  step "$bin/register" --workspace "$ws" --url "$MODEL_REGISTRY_URL"
else
  echo "== register: skipped (set MODEL_REGISTRY_URL to record the model in a Model Registry)" >&2
fi
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
