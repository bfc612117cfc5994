# Sourced by the scripts beside it (not run): what more than one of them needs.

# The six step binaries, in pipeline order.
modelcar_bins=(fetch-model fix-perms build-push mirror register deploy)

# The binaries as the images hold them: statically linked (glibc with crt-static; TLS is
# rustls, so nothing else is linked). build-images.sh and pipeline-local.sh build the same
# packages with the same flags, so whichever runs second builds nothing: cargo unifies
# features over the packages it is given, and another set would rebuild the shared crates.
static_target=x86_64-unknown-linux-gnu
static_bin_dir=target/$static_target/release
build_static_bins() {
  local packages=()
  for b in "${modelcar_bins[@]}"; do packages+=(-p "$b"); done
  RUSTFLAGS="-C target-feature=+crt-static" cargo build --release --locked \
    --target "$static_target" "${packages[@]}" -p modelcar-testkit --bins >&2
}

# podman_run_flags: the `podman run` flags that start a container on any machine we run on.
# Some sandboxes (CI's among them) refuse to raise a hard rlimit even to root, while podman
# asks for 1048576 open files: so ask for this shell's own hard limits, and no more processes
# than pid_max, which podman caps its own limit at. crun 1.8 refuses hybrid cgroup mounts,
# which runc takes: so runc where it is installed (scripts/test.sh installs it).
podman_run_flags() {
  local nproc pid_max
  nproc=$(ulimit -Hu) pid_max=$(cat /proc/sys/kernel/pid_max)
  if [ "$nproc" = unlimited ] || [ "$nproc" -gt "$pid_max" ]; then nproc=$pid_max; fi
  command -v runc >/dev/null && echo --runtime runc
  echo --ulimit "nofile=$(ulimit -Hn):$(ulimit -Hn)" --ulimit "nproc=$nproc:$nproc"
}

# The workspace's version, which the images are tagged with.
modelcar_version() {
  sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# start_local_registry DIR: a CNCF distribution registry (Debian's docker-registry) on a free
# loopback port, its storage and log in DIR. Echoes host:port; the caller stops it with
# `kill "$(cat DIR/pid)"`.
start_local_registry() {
  local dir=$1 port
  port=$(free_port)
  mkdir -p "$dir"
  printf 'version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: 127.0.0.1:%s\n' \
    "$dir/storage" "$port" >"$dir/config.yml"
  docker-registry serve "$dir/config.yml" >"$dir/log" 2>&1 &
  echo $! >"$dir/pid"
  for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$port/v2/" >/dev/null && { echo "127.0.0.1:$port"; return; }
    sleep 0.1
  done
  echo "the registry in $dir did not start: $(cat "$dir/log")" >&2
  return 1
}

# install_missing_packages PKG...: the Debian packages not yet installed (needs root or sudo).
install_missing_packages() {
  local missing=() sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  [ ${#missing[@]} -gt 0 ] || return 0
  echo "installing ${missing[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}
