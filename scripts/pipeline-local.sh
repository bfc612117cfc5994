#!/usr/bin/env bash
# The modelcar pipeline on one machine, without Kubernetes: tekton/pipelines/modelcar.yaml run
# by the testkit's tekton-local as a PipelineRun would run it (its params, the Tasks' env and
# commands, the binaries standing for the images): fetch-model (from HF_ENDPOINT, or from a
# synthetic model served by the testkit's Hub server), fix-perms, build-push into a local
# registry, mirror into a second one, register (into MODEL_REGISTRY_URL with the token in
# MODEL_REGISTRY_TOKEN or MODELCAR_TOKEN_FILE, or by default the testkit's Model Registry
# server); then deploy --dry-run. Prints each step's result and the metadata file every step wrote to.
#
#   scripts/pipeline-local.sh [--containers] [ORG/NAME]   default: a synthetic 2 x 64 MiB model, org/tiny
#   KEEP=1 keeps the workspace and stops nothing (the registries' ports are printed).
#
# --containers runs each step as a node runs its pod: the six images built and pushed by
# scripts/build-images.sh into the first registry, the Tasks of the bundle it renders (each
# image by digest), every step started by podman + runc as OpenShift's restricted SCC starts
# it (UID 1000650000, group 0, fsGroup 1000650000, no capabilities, no privilege escalation,
# a read-only root), and deploy --dry-run in its image the same way. Prints the wall time.
set -euo pipefail
cd "$(dirname "$0")/.."
containers=0
if [ "${1:-}" = --containers ]; then containers=1; shift; fi
repo=${1:-org/tiny}
name=${repo#*/}

. scripts/lib.sh
install_missing_packages docker-registry skopeo
[ $containers = 0 ] || install_missing_packages podman runc catatonit
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
first=$(start_local_registry "$work/first")
pids+=("$(cat "$work/first/pid")")
second=$(start_local_registry "$work/second")
pids+=("$(cat "$work/second/pid")")
if [ -z "${MODEL_REGISTRY_URL:-}" ]; then
  # The testkit's Model Registry (its REST API, Bearer auth), with a token of this run's own.
  python3 -c 'import secrets; print(secrets.token_hex(16))' >"$work/registry-token"
  "$bin/model-registry-serve" "$(cat "$work/registry-token")" >"$work/model-registry.url" 2>"$work/model-registry.log" &
  pids+=($!)
  for _ in $(seq 100); do [ -s "$work/model-registry.url" ] && break; sleep 0.1; done
  export MODEL_REGISTRY_URL MODELCAR_TOKEN_FILE=$work/registry-token
  MODEL_REGISTRY_URL=$(cat "$work/model-registry.url")
fi
# What a pod of the PipelineRun has: the service-account mount (register's token-file default
# reads the Model Registry token there), a docker config in the dockerconfig workspace.
mkdir -p "$work/serviceaccount" "$work/dockerconfig"
token_file=${MODELCAR_TOKEN_FILE:-}
if [ -n "$token_file" ]; then cp "$token_file" "$work/serviceaccount/token"
elif [ -n "${MODEL_REGISTRY_TOKEN:-}" ]; then printf %s "$MODEL_REGISTRY_TOKEN" >"$work/serviceaccount/token"
fi
echo '{"auths":{}}' >"$work/dockerconfig/config.json"
ws=$work/ws
mkdir -p "$ws"
tasks=tekton/tasks
run_in=(--bin-dir "$bin")
if [ $containers = 1 ]; then
  scripts/build-images.sh --push "$first/modelcar" --out "$work/bundle" --tls-verify=false >"$work/images"
  tasks=$work/bundle/tasks
  run_in=(--run-in containers)
fi

# The Pipeline itself, its params passed as a PipelineRun passes them (tekton/examples), up to
# register: deploy needs a cluster, so it runs below with --dry-run.
echo "== tekton/pipelines/modelcar.yaml, up to register" >&2
pipeline_started=$EPOCHREALTIME
"$bin/tekton-local" --pipeline tekton/pipelines/modelcar.yaml --tasks "$tasks" \
  "${run_in[@]}" --work "$work/tekton" --stop-after register \
  --param "repo=$repo" --param "hf-endpoint=$HF_ENDPOINT" --param variant=local \
  --param "dest=$first/models/$name:v1" --param base=scratch \
  --param "mirror-dest=$second/models/$name:v1" \
  --param "registry-url=$MODEL_REGISTRY_URL" --param "isvc-name=$name" \
  --workspace "source=$ws" --workspace "dockerconfig=$work/dockerconfig" \
  --mount "/var/run/secrets/kubernetes.io/serviceaccount=$work/serviceaccount" \
  --secret-env hf-token/token=HF_TOKEN | tee "$work/results" >&2
grep -q '^register.MODEL_VERSION_ID=.' "$work/results" ||
  { echo "pipeline-local.sh: register reported no MODEL_VERSION_ID" >&2; exit 1; }
if [ $containers = 1 ]; then
  # The steps wrote as the restricted SCC's UID, into the fsGroup's workspace.
  owner=$(stat -c %u:%g "$ws/models/$name/config.json")
  [ "$owner" = 1000650000:1000650000 ] ||
    { echo "pipeline-local.sh: the model is owned by $owner, not by the pod's UID and fsGroup" >&2; exit 1; }
fi
pipeline_secs=$(awk "BEGIN { printf \"%.1f\", $EPOCHREALTIME - $pipeline_started }")
echo "== deploy --dry-run" >&2
if [ $containers = 1 ]; then
  # As the deploy Task's pod would run it, minus the cluster.
  read -ra flags <<<"$(podman_run_flags | tr '\n' ' ')"
  podman run --rm "${flags[@]}" --tls-verify=false --network=host \
    --user 1000650000:0 --group-add 1000650000 --cap-drop=all \
    --security-opt=no-new-privileges --read-only --read-only-tmpfs=false \
    --volume "$ws:/workspace/source:ro" "$(sed -n 's/^deploy //p' "$work/images")" \
    "$name" --workspace /workspace/source --dry-run >"$work/inferenceservice.yaml"
else
  "$bin/deploy" "$name" --workspace "$ws" --dry-run >"$work/inferenceservice.yaml"
fi
grep -q '^kind: InferenceService' "$work/inferenceservice.yaml" ||
  { echo "pipeline-local.sh: deploy --dry-run printed no InferenceService" >&2; exit 1; }
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
mode=$([ $containers = 1 ] && echo "in containers (podman + runc, restricted)" || echo "with the binaries here")
echo "pipeline $mode: fetch-model .. register in ${pipeline_secs} s, ${SECONDS} s in all"
