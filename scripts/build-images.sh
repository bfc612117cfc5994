#!/usr/bin/env bash
# Builds one minimal image per binary (containerfiles/<binary>.Containerfile), tagged
# modelcar/<binary>:<version>, with podman, docker or buildah, whichever is there, and runs
# each binary's --version from inside its image.
#
#   scripts/build-images.sh                          build and check the six images
#   scripts/build-images.sh --push REGISTRY/ORG      ... push them as REGISTRY/ORG/<binary>:<version>
#       [--out DIR]                                  and write the Tekton bundle there
#       [--tls-verify=false]                         (default target/tekton-bundle): then
#                                                    kubectl apply -k DIR
#
# The rendered bundle is tekton/ with each Task's `image` param defaulting to the image just
# pushed, by its digest, and a kustomization.yaml over the Tasks and Pipelines. stdout gets
# one line per pushed image, "<binary> <reference>"; the table of sizes goes to stderr.
# Log in first (podman/buildah login, docker login) when the registry needs credentials.
#
# The binaries are built here, statically, and each image holds only its binary and the CA
# bundle: FROM scratch needs no base image pulled.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

usage() { sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
push="" out=target/tekton-bundle tls_verify=true
while [ $# -gt 0 ]; do
  case "$1" in
    --push) [ $# -ge 2 ] || usage; push=${2%/}; shift 2 ;;
    --push=*) push=${1#--push=}; push=${push%/}; shift ;;
    --out) [ $# -ge 2 ] || usage; out=$2; shift 2 ;;
    --out=*) out=${1#--out=}; shift ;;
    --tls-verify=false) tls_verify=false; shift ;;
    -h | --help) usage ;;
    *) echo "build-images.sh: unknown argument '$1'" >&2; usage ;;
  esac
done
if [ -n "$push" ] && [[ $push != */* ]]; then
  echo "build-images.sh: --push wants REGISTRY/ORG (e.g. quay.io/myorg), got '$push'" >&2
  exit 2
fi
version=$(modelcar_version)
build_static_bins

if command -v podman >/dev/null; then tool=(podman)
elif command -v docker >/dev/null && docker info >/dev/null 2>&1; then tool=(docker)
elif command -v buildah >/dev/null; then tool=(buildah --storage-driver vfs)
else echo "build-images.sh: needs podman, docker or buildah" >&2; exit 1
fi
ca=/etc/ssl/certs/ca-certificates.crt
[ -f "$ca" ] || { echo "build-images.sh: no CA bundle at $ca" >&2; exit 1; }

# build_image BINARY: builds modelcar/BINARY:VERSION and echoes what its --version says.
build_image() {
  local b=$1 ctx=target/image-context/$1 image=modelcar/$1:$version ctr
  rm -rf "$ctx" && mkdir -p "$ctx"
  cp "$static_bin_dir/$b" "$ctx/$b"
  cp "$ca" "$ctx/ca-certificates.crt"
  if [ "${tool[0]}" = buildah ]; then
    "${tool[@]}" bud -q -f "containerfiles/$b.Containerfile" -t "$image" "$ctx" >/dev/null
    ctr=$("${tool[@]}" from "$image")
    # chroot isolation: no cgroups needed, so it also works inside an unprivileged CI container.
    "${tool[@]}" run --isolation chroot "$ctr" -- "/usr/local/bin/$b" --version
    "${tool[@]}" rm "$ctr" >/dev/null
  else
    "${tool[@]}" build -q -f "containerfiles/$b.Containerfile" -t "$image" "$ctx" >/dev/null
    local flags=()
    [ "${tool[0]}" = podman ] && read -ra flags <<<"$(podman_run_flags | tr '\n' ' ')"
    "${tool[@]}" run --rm "${flags[@]}" "$image" --version
  fi
}

# push_image BINARY: pushes it to $push as BINARY:VERSION, echoes REGISTRY/ORG/BINARY@DIGEST.
push_image() {
  local b=$1 image=modelcar/$1:$version dest=$push/$1:$version digest
  if [ "${tool[0]}" = docker ]; then
    docker tag "$image" "$dest"
    docker push -q "$dest" >&2
    digest=$(docker image inspect --format '{{range .RepoDigests}}{{println .}}{{end}}' "$dest" |
      sed -n "s|^${push}/$b@||p" | head -1)
  else
    local file=target/image-context/$b.digest
    "${tool[@]}" push -q --tls-verify="$tls_verify" --digestfile "$file" "$image" "docker://$dest" >&2
    digest=$(cat "$file")
  fi
  [[ $digest == sha256:* ]] || { echo "build-images.sh: no digest for $dest after the push" >&2; exit 1; }
  # By digest alone: containers/image (CRI-O, podman, skopeo) refuses a tag and a digest both.
  echo "$push/$b@$digest"
}

# render_bundle DIR: tekton/ with each Task's image default set to the pushed reference.
render_bundle() {
  local dir=$1 b task line
  rm -rf "$dir" && mkdir -p "$dir/tasks"
  cp -r tekton/pipelines tekton/examples "$dir/"
  for task in tekton/tasks/*.yaml; do
    # The one line to change names the binary the Task runs (prewarm runs deploy); anything
    # else means the Task changed shape: refuse to guess.
    b=$(sed -n "s|^      default: quay.io/modelcar/\([a-z-]*\):$version\$|\1|p" "$task")
    if [ -z "$b" ] || [ "$(grep -c . <<<"$b")" != 1 ] || [ -z "${refs[$b]:-}" ]; then
      echo "build-images.sh: $task has no single line 'default: quay.io/modelcar/BINARY:$version'" \
        "to set the image in" >&2
      exit 1
    fi
    line="      default: quay.io/modelcar/$b:$version"
    awk -v from="$line" -v to="      default: ${refs[$b]}" '$0 == from { $0 = to } { print }' \
      "$task" >"$dir/tasks/$(basename "$task")"
  done
  {
    echo "# Rendered by scripts/build-images.sh --push $push: kubectl apply -k $dir"
    echo "apiVersion: kustomize.config.k8s.io/v1beta1"
    echo "kind: Kustomization"
    echo "resources:"
    for task in "$dir"/tasks/*.yaml; do echo "  - tasks/$(basename "$task")"; done
    for p in "$dir"/pipelines/*.yaml; do echo "  - pipelines/$(basename "$p")"; done
  } >"$dir/kustomization.yaml"
}

declare -A refs
printf "%-32s %10s  %s\n" image "size MB" "--version from inside" >&2
for b in "${modelcar_bins[@]}"; do
  said=$(build_image "$b")
  # The image is its context's files, one uncompressed layer: what the registry stores.
  bytes=$(du -cb "target/image-context/$b" | tail -1 | cut -f1)
  printf "%-32s %10s  %s\n" "modelcar/$b:$version" "$(awk "BEGIN { printf \"%.1f\", $bytes / 1048576 }")" "$said" >&2
  if [ -n "$push" ]; then
    refs[$b]=$(push_image "$b")
    echo "$b ${refs[$b]}"
  fi
done
if [ -n "$push" ]; then
  render_bundle "$out"
  echo "build-images.sh: the Tekton bundle naming these images is in $out: kubectl apply -k $out" >&2
fi
