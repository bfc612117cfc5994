#!/usr/bin/env bash
# Builds one minimal image per binary (containerfiles/<binary>.Containerfile), tagged
# modelcar/<binary>:<version>, with podman, docker or buildah, whichever is there, then runs
# each binary's --version from inside its image and prints the image sizes.
#
# The binaries are built here, statically (glibc with crt-static; TLS is rustls, so nothing
# else is linked), and each image holds only its binary and the CA bundle: FROM scratch needs
# no base image pulled. PUSH=registry/org pushes each image there as well.
set -euo pipefail
cd "$(dirname "$0")/.."
bins=(fetch-model fix-perms build-push mirror register deploy)
target=x86_64-unknown-linux-gnu
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)

packages=()
for b in "${bins[@]}"; do packages+=(-p "$b"); done
RUSTFLAGS="-C target-feature=+crt-static" cargo build --release --locked --target "$target" "${packages[@]}" >&2

if command -v podman >/dev/null; then tool=(podman)
elif command -v docker >/dev/null && docker info >/dev/null 2>&1; then tool=(docker)
elif command -v buildah >/dev/null; then tool=(buildah --storage-driver vfs)
else echo "build-images.sh: needs podman, docker or buildah" >&2; exit 1
fi
ca=/etc/ssl/certs/ca-certificates.crt
[ -f "$ca" ] || { echo "build-images.sh: no CA bundle at $ca" >&2; exit 1; }

printf "%-32s %10s  %s\n" image "size MB" "--version from inside"
for b in "${bins[@]}"; do
  ctx=target/image-context/$b
  rm -rf "$ctx" && mkdir -p "$ctx"
  cp "target/$target/release/$b" "$ctx/$b"
  cp "$ca" "$ctx/ca-certificates.crt"
  image=modelcar/$b:$version
  if [ "${tool[0]}" = buildah ]; then
    "${tool[@]}" bud -q -f "containerfiles/$b.Containerfile" -t "$image" "$ctx" >/dev/null
    ctr=$("${tool[@]}" from "$image")
    # chroot isolation: no cgroups needed, so it also works inside an unprivileged CI container.
    said=$("${tool[@]}" run --isolation chroot "$ctr" -- "/usr/local/bin/$b" --version)
    "${tool[@]}" rm "$ctr" >/dev/null
    bytes=$("${tool[@]}" inspect --type image --format '{{.Docker.Size}}' "$image" 2>/dev/null || true)
  else
    "${tool[@]}" build -q -f "containerfiles/$b.Containerfile" -t "$image" "$ctx" >/dev/null
    said=$("${tool[@]}" run --rm "$image" --version)
    bytes=$("${tool[@]}" image inspect --format '{{.Size}}' "$image")
  fi
  # Without a size from the tool, the image is the context's files (one uncompressed layer).
  [ -n "$bytes" ] && [ "$bytes" != 0 ] || bytes=$(du -cb "$ctx" | tail -1 | cut -f1)
  printf "%-32s %10.1f  %s\n" "$image" "$(echo "$bytes / 1048576" | bc -l)" "$said"
  if [ -n "${PUSH:-}" ]; then
    "${tool[@]}" push "$image" "docker://$PUSH/$b:$version" >&2
  fi
done
