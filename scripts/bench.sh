#!/usr/bin/env bash
# Speed and memory of modelcar against what users run today, measured in the same run on the
# same data. Prints, for each tool: wall seconds, CPU seconds, peak RSS, bytes written to local
# disk, and the ratio against modelcar.
#
#   scripts/bench.sh build-push [MIB_PER_SHARD] [SHARDS]   default 768 MiB x 4: build-push vs
#                    buildah bud + push (vfs) vs olot + skopeo copy, RUNS (default 3) times each,
#                    interleaved, compared by median; then build-push alone on shards 4x bigger,
#                    for its peak RSS
#   scripts/bench.sh mirror [MIB_PER_SHARD] [SHARDS]       default 768 MiB x 4: mirror vs skopeo
#                    copy (as users run it, and with --preserve-digests), registry to registry;
#                    mirror both as it runs by default (the destination checks each digest) and
#                    with --verify-locally (hashing every blob here as well, as skopeo does)
#   scripts/bench.sh chunks [MIB_PER_SHARD] [SHARDS]       default 768 MiB x 4: build-push with
#                    --chunk-size 16MiB, 64MiB, 256MiB and 0 (one request per blob)
#   scripts/bench.sh fetch [MIB_PER_SHARD] [SHARDS]        default 256 MiB x 4: fetch-model vs
#                    hf download (huggingface_hub), same repo from a local Hub server
#   scripts/bench.sh hf [MIB_PER_SHARD] [SHARDS]           default 768 MiB x 4: build-push hf://
#                    in one pass vs fetch-model + build-push vs hf download + olot + skopeo copy
#   scripts/bench.sh fix-perms [FILES]                      default 100000 entries
#   scripts/bench.sh wan [MIB_PER_SHARD] [SHARDS]           default 128 MiB x 4: build-push to a
#                    registry across a simulated wide-area link (WAN_RTT_MS=40, WAN_MBIT_PER_CONN=200,
#                    WAN_MBIT_TOTAL=1000: the testkit's wan-proxy), upload methods and --jobs values,
#                    against skopeo copy of the same image from an OCI layout over the same link
#   scripts/bench.sh pull [MIB_PER_SHARD] [SHARDS]          default 768 MiB x 4: a node's cold
#                    start, podman pull of build-push's image vs olot + skopeo's into an empty
#                    store (scripts/bench-pull.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-build-push}
files=${2:-100000}

need=()
for pkg in time bc docker-registry skopeo umoci buildah busybox-static podman; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
command -v olot >/dev/null 2>&1 || pip install -q olot >&2
cargo build --release --locked -p fix-perms -p build-push -p mirror -p fetch-model >&2
case "$what" in fetch | hf) cargo build --release --locked -p modelcar-testkit --bin hub-serve >&2 ;; esac
[ "$what" = wan ] && cargo build --release --locked -p modelcar-testkit --bin wan-proxy >&2
work=$(mktemp -d /var/tmp/modelcar-bench.XXXXXX)
trap 'for p in "${registry_pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work" /dev/shm/modelcar-bench-*; true' EXIT

# Sectors written to the disk that holds the work dir, from /proc/diskstats (after a sync).
disk=$(basename "$(df --output=source "$work" | tail -1)")
sectors_written() {
  sync
  awk -v d="$disk" '$3 == d { print $10 }' /proc/diskstats
}

# Every tool reads the model cold, as from a PVC, not from a cache the previous tool warmed.
drop_page_cache() {
  [ "${COLD_CACHE:-1}" = 1 ] && [ -w /proc/sys/vm/drop_caches ] && echo 3 >/proc/sys/vm/drop_caches || true
}

# run LABEL CMD...: runs CMD under GNU time, prints a row, and sets $wall, $rss_mb, $disk_mb.
run() {
  local label=$1 before after
  shift
  before=$(sectors_written)
  drop_page_cache
  /usr/bin/time -f "%e %U %S %M" -o "$work/time" "$@" >/dev/null 2>"$work/stderr" || {
    cat "$work/stderr" >&2
    return 1
  }
  after=$(sectors_written)
  read -r wall user sys rss_kb <"$work/time"
  rss_mb=$(echo "scale=1; $rss_kb / 1024" | bc)
  disk_mb=$(echo "scale=1; ($after - $before) * 512 / 1048576" | bc)
  printf "%-44s %8.2f s wall %8.2f s cpu %8.1f MB peak RSS %9.1f MB written to disk\n" "$label" "$wall" \
    "$(echo "$user + $sys" | bc)" "$rss_mb" "$disk_mb"
}

# A PVC tree as a task running as UID 1001 leaves it: private dirs and files, its own group.
make_tree() {
  local root=$1 dirs=$((files / 1000))
  mkdir -p "$root"
  for d in $(seq 1 "$dirs"); do
    mkdir -p "$root/shard-$d/sub"
    (cd "$root/shard-$d" && touch f{1..500} && cd sub && touch g{1..498})
  done
  chmod -R u=rwX,go= "$root"
  chown -R 1001:1001 "$root"
}

bench_fix_perms() {
  echo "== fix-perms: $files entries (files + dirs), group 1500, page cache warm"
  make_tree "$work/a"
  cp -a "$work/a" "$work/b"
  local entries
  entries=$(find "$work/a" | wc -l)
  echo "tree: $entries entries"
  run "shell: chgrp -R; find -type d chmod 2775; chmod -R g+rw" sh -c \
    "chgrp -R 1500 '$work/a' && find '$work/a' -type d -exec chmod 2775 {} + && chmod -R g+rw '$work/a'"
  local shell_wall=$wall
  run "fix-perms --gid 1500" target/release/fix-perms --gid 1500 "$work/b"
  local ours=$wall
  run "fix-perms --gid 1500 (second run: nothing to do)" target/release/fix-perms --gid 1500 "$work/b"
  echo "ratio: fix-perms is $(echo "scale=1; $shell_wall / $ours" | bc)x faster than the shell pipeline"
  # Both must have produced the same tree.
  diff <(cd "$work/a" && find . -printf '%m %g %p\n' | sort) \
    <(cd "$work/b" && find . -printf '%m %g %p\n' | sort) >/dev/null &&
    echo "check: both trees end with identical modes and groups"
}

# The synthetic HF-style model every benchmark uses.
make_model() {
  scripts/make-model.sh "$@" >&2
}

# median X...: the middle value (the mean of the two middle ones for an even count).
median() {
  printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# A registry for one tool, its storage on tmpfs so that only the tool's own writes hit the
# disk. Sets $registry (host:port) and $registry_pid; stop_registry stops the newest one.
registry_pids=()
start_registry() {
  local name=$1 port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  mkdir -p "/dev/shm/modelcar-bench-$name"
  cat >"$work/registry-$name.yml" <<YAML
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: /dev/shm/modelcar-bench-$name
http:
  addr: 127.0.0.1:$port
YAML
  docker-registry serve "$work/registry-$name.yml" >"$work/registry-$name.log" 2>&1 &
  registry_pid=$!
  registry_pids+=("$registry_pid")
  registry="127.0.0.1:$port"
  for _ in $(seq 100); do curl -sf "http://$registry/v2/" >/dev/null && return; sleep 0.1; done
  echo "registry $name did not start" >&2
  exit 1
}
# stop_registry [PID NAME]: the newest registry by default.
stop_registry() {
  local pid=${1:-$registry_pid} name=${2:-}
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  if [ -n "$name" ]; then rm -rf "/dev/shm/modelcar-bench-$name"; else rm -rf /dev/shm/modelcar-bench-*; fi
}

# The busybox base every tool builds on, in the registry at $registry.
push_base() {
  local layout=$work/base-layout bundle=$work/base-bundle
  if [ ! -d "$layout" ]; then
    umoci init --layout "$layout" && umoci new --image "$layout:base"
    umoci unpack --image "$layout:base" "$bundle" >/dev/null
    mkdir -p "$bundle/rootfs/bin" && cp /bin/busybox "$bundle/rootfs/bin/"
    for a in sh ln sleep; do ln -sf busybox "$bundle/rootfs/bin/$a"; done
    umoci repack --image "$layout:base" "$bundle"
  fi
  skopeo copy -q --dest-tls-verify=false "oci:$layout:base" "docker://$registry/base/busybox:1"
}

bench_build_push() {
  local mb=${1:-768} shards=${2:-4} model=$work/model
  echo "== build-push: $shards x $mb MiB shards (scripts/make-model.sh), busybox base, registry on tmpfs,"
  echo "   page cache dropped before each run (COLD_CACHE=0 to keep it)"
  make_model "$model" "$mb" "$shards"

  local runs=${RUNS:-3} i ours=() buildah=() olot=() ours_rss=0 ours_disk=0
  for i in $(seq "$runs"); do
    start_registry "buildpush$i"
    push_base
    run "build-push (run $i)" target/release/build-push "$model" "$registry/bench/model:1" \
      --base "$registry/base/busybox:1" --no-cache
    ours+=("$wall")
    ours_rss=$(echo "if ($rss_mb > $ours_rss) $rss_mb else $ours_rss" | bc)
    ours_disk=$(echo "if ($disk_mb > $ours_disk) $disk_mb else $ours_disk" | bc)
    stop_registry

    start_registry "buildah$i"
    push_base
    printf 'FROM %s/base/busybox:1\nCOPY model/ /models/\n' "$registry" >"$work/Containerfile"
    run "buildah bud + buildah push (vfs) (run $i)" sh -c "
      buildah --storage-driver vfs bud -q --tls-verify=false -f '$work/Containerfile' -t bench-model:1 '$work' &&
      buildah --storage-driver vfs push -q --tls-verify=false bench-model:1 docker://$registry/bench/model:1"
    buildah+=("$wall")
    buildah --storage-driver vfs rmi -a -f >/dev/null 2>&1 || true
    stop_registry

    start_registry "olot$i"
    push_base
    run "olot + skopeo copy (run $i)" sh -c "
      rm -rf '$work/olot-layout' &&
      skopeo copy -q --src-tls-verify=false docker://$registry/base/busybox:1 oci:'$work/olot-layout':latest &&
      olot '$work/olot-layout' --root-dir '$model' \$(find '$model' -type f | sort) &&
      skopeo copy -q --dest-tls-verify=false oci:'$work/olot-layout':latest docker://$registry/bench/model:1"
    olot+=("$wall")
    rm -rf "$work/olot-layout"
    stop_registry
  done

  local model_mb m_ours m_buildah m_olot
  model_mb=$(du -sm "$model" | cut -f1)
  m_ours=$(median "${ours[@]}") m_buildah=$(median "${buildah[@]}") m_olot=$(median "${olot[@]}")
  echo "medians of $runs runs: build-push $m_ours s, buildah $m_buildah s, olot + skopeo $m_olot s"
  echo "ratio: build-push is $(echo "scale=1; $m_buildah / $m_ours" | bc)x faster than buildah, $(echo "scale=1; $m_olot / $m_ours" | bc)x faster than olot + skopeo"
  echo "build-push: at most $ours_disk MB written to local disk for a $model_mb MB model ($(echo "scale=3; 100 * $ours_disk / $model_mb" | bc)%), peak RSS at most $ours_rss MB"

  rm -rf "$model"
  local big=$((mb * 4))
  make_model "$model" "$big" "$shards"
  start_registry big
  push_base
  run "build-push, $shards x $big MiB shards" target/release/build-push "$model" "$registry/bench/model:1" \
    --base "$registry/base/busybox:1" --no-cache
  echo "build-push with 4x bigger shards: peak RSS $rss_mb MB (was at most $ours_rss MB), $disk_mb MB written to disk"
  stop_registry
}

bench_mirror() {
  local mb=${1:-768} shards=${2:-4} model=$work/model runs=${RUNS:-3} i
  echo "== mirror: a build-push ModelCar of $shards x $mb MiB shards, registry to registry (both on tmpfs),"
  echo "   page cache dropped before each run, $runs interleaved runs per tool"
  make_model "$model" "$mb" "$shards"
  start_registry mirrorsrc
  local src=$registry src_pid=$registry_pid
  target/release/build-push "$model" "$src/bench/model:1" --base scratch --no-cache >/dev/null 2>&1
  rm -rf "$model"
  local ours=() ours_verify=() skopeo_default=() skopeo_preserve=() ours_rss=0
  for i in $(seq "$runs"); do
    start_registry "mirror$i"
    run "mirror (run $i)" target/release/mirror "$src/bench/model:1" "$registry/bench/model:1"
    ours+=("$wall")
    ours_rss=$(echo "if ($rss_mb > $ours_rss) $rss_mb else $ours_rss" | bc)
    stop_registry "$registry_pid" "mirror$i"

    start_registry "verify$i"
    run "mirror --verify-locally (run $i)" target/release/mirror --verify-locally "$src/bench/model:1" \
      "$registry/bench/model:1"
    ours_verify+=("$wall")
    ours_rss=$(echo "if ($rss_mb > $ours_rss) $rss_mb else $ours_rss" | bc)
    stop_registry "$registry_pid" "verify$i"

    start_registry "skopeo$i"
    run "skopeo copy (run $i)" skopeo copy -q --src-tls-verify=false --dest-tls-verify=false \
      "docker://$src/bench/model:1" "docker://$registry/bench/model:1"
    skopeo_default+=("$wall")
    stop_registry "$registry_pid" "skopeo$i"

    start_registry "preserve$i"
    run "skopeo copy --preserve-digests (run $i)" skopeo copy -q --preserve-digests --src-tls-verify=false \
      --dest-tls-verify=false "docker://$src/bench/model:1" "docker://$registry/bench/model:1"
    skopeo_preserve+=("$wall")
    stop_registry "$registry_pid" "preserve$i"
  done
  stop_registry "$src_pid" mirrorsrc
  local m_ours m_verify m_default m_preserve
  m_ours=$(median "${ours[@]}") m_verify=$(median "${ours_verify[@]}")
  m_default=$(median "${skopeo_default[@]}") m_preserve=$(median "${skopeo_preserve[@]}")
  echo "medians of $runs runs: mirror $m_ours s, mirror --verify-locally $m_verify s, skopeo copy $m_default s, skopeo copy --preserve-digests $m_preserve s"
  echo "ratio: mirror is $(echo "scale=2; $m_default / $m_ours" | bc)x faster than skopeo copy (which also changes the digests by gzipping), $(echo "scale=2; $m_preserve / $m_ours" | bc)x faster than skopeo copy --preserve-digests; mirror peak RSS at most $ours_rss MB"
  echo "ratio: mirror --verify-locally (hashing every blob here too, as skopeo does) is $(echo "scale=2; $m_default / $m_verify" | bc)x faster than skopeo copy, $(echo "scale=2; $m_preserve / $m_verify" | bc)x faster than skopeo copy --preserve-digests"
}

# The upload chunk size against push speed: each size is a resume point per chunk (and a
# request, a Location and an uploads-log write), 0 is one streamed request per blob.
bench_chunks() {
  local mb=${1:-768} shards=${2:-4} model=$work/model runs=${RUNS:-3} i size
  local sizes=(16MiB 64MiB 256MiB 0)
  echo "== build-push --chunk-size: $shards x $mb MiB shards, no base, registry on tmpfs, page cache"
  echo "   dropped before each run, $runs interleaved runs per size (0: one request per blob)"
  make_model "$model" "$mb" "$shards"
  declare -A walls=()
  for i in $(seq "$runs"); do
    for size in "${sizes[@]}"; do
      start_registry "chunks-$size-$i"
      run "build-push --chunk-size $size (run $i)" target/release/build-push "$model" \
        "$registry/bench/model:1" --base scratch --no-cache --chunk-size "$size"
      walls[$size]="${walls[$size]:-} $wall"
      stop_registry
    done
  done
  local model_mb
  model_mb=$(du -sm "$model" | cut -f1)
  printf "%-14s %10s %12s\n" "chunk size" "median s" "MB/s"
  for size in "${sizes[@]}"; do
    # shellcheck disable=SC2086
    local m
    m=$(median ${walls[$size]})
    printf "%-14s %10.2f %12.0f\n" "$size" "$m" "$(echo "$model_mb / $m" | bc -l)"
  done
}

# fetch-model against `hf download` (Python huggingface_hub, the CLI the old pipeline used),
# both downloading the same synthetic repo from the testkit's Hub server on localhost.
bench_fetch() {
  local mb=${1:-256} shards=${2:-4} model=$work/model runs=${RUNS:-3} i endpoint hub_pid
  local py=target/bench-python
  [ -x "$py/bin/hf" ] || { python3 -m venv "$py" && "$py/bin/pip" install -q huggingface_hub >&2; }
  echo "== fetch-model vs hf download (huggingface_hub $("$py/bin/python" -c 'import huggingface_hub as h; print(h.__version__)')):"
  echo "   $shards x $mb MiB shards from the testkit's Hub server on localhost, into /var/tmp,"
  echo "   page cache dropped before each run, $runs interleaved runs per tool"
  make_model "$model" "$mb" "$shards"
  target/release/hub-serve "$model" org/bench >"$work/hub.url" 2>"$work/hub.log" &
  hub_pid=$!
  registry_pids+=("$hub_pid")
  for _ in $(seq 100); do [ -s "$work/hub.url" ] && break; sleep 0.1; done
  endpoint=$(cat "$work/hub.url")
  local hf=() ours=()
  for i in $(seq "$runs"); do
    rm -rf "$work/hf-out" "$work/hf-home"
    run "hf download (run $i)" env HF_ENDPOINT="$endpoint" HF_HOME="$work/hf-home" \
      HF_HUB_DISABLE_TELEMETRY=1 "$py/bin/hf" download org/bench --local-dir "$work/hf-out"
    hf+=("$wall")
    rm -rf "$work/fm-out" "$work/.fm-out.fetch-model"
    run "fetch-model (run $i)" target/release/fetch-model org/bench --endpoint "$endpoint" \
      --dest "$work/fm-out"
    ours+=("$wall")
  done
  diff -r -x .cache "$work/hf-out" "$work/fm-out" >/dev/null || { echo "bench.sh: the two downloads differ" >&2; exit 1; }
  kill "$hub_pid" 2>/dev/null || true
  local m_hf m_ours
  m_hf=$(median "${hf[@]}") m_ours=$(median "${ours[@]}")
  echo "medians of $runs runs: fetch-model $m_ours s, hf download $m_hf s (same files, checked with diff -r)"
  echo "ratio: fetch-model takes $(echo "scale=2; $m_ours / $m_hf" | bc)x the time of hf download"
}

# One pass from the Hub (build-push hf://) against fetch-model + build-push and against what
# users run today (hf download + olot + skopeo copy), the same repo from the testkit's Hub
# server, pushed to a registry on tmpfs with the same busybox base.
bench_hf() {
  local mb=${1:-768} shards=${2:-4} model=$work/model runs=${RUNS:-3} i endpoint hub_pid
  local py=target/bench-python
  [ -x "$py/bin/hf" ] || { python3 -m venv "$py" && "$py/bin/pip" install -q huggingface_hub >&2; }
  echo "== build-push hf:// (one pass) vs fetch-model + build-push vs hf download + olot + skopeo copy:"
  echo "   $shards x $mb MiB shards from the testkit's Hub server, registry on tmpfs, busybox base,"
  echo "   page cache dropped before each run, $runs interleaved runs per way"
  make_model "$model" "$mb" "$shards"
  target/release/hub-serve "$model" org/bench >"$work/hub.url" 2>"$work/hub.log" &
  hub_pid=$!
  registry_pids+=("$hub_pid")
  for _ in $(seq 600); do [ -s "$work/hub.url" ] && break; sleep 0.1; done
  endpoint=$(cat "$work/hub.url")
  local one=() two=() three=() one_rss=0 one_disk=0 d
  for i in $(seq "$runs"); do
    start_registry "hf-one$i"
    push_base
    run "build-push hf:// (run $i)" target/release/build-push hf://org/bench \
      "$registry/bench/model:1" --hf-endpoint "$endpoint" --base "$registry/base/busybox:1" --no-cache
    one+=("$wall")
    one_rss=$(echo "if ($rss_mb > $one_rss) $rss_mb else $one_rss" | bc)
    one_disk=$(echo "if ($disk_mb > $one_disk) $disk_mb else $one_disk" | bc)
    stop_registry

    start_registry "hf-two$i"
    push_base
    d=$work/fetched
    run "fetch-model + build-push (run $i)" sh -c "
      rm -rf '$d' '$work/.fetched.fetch-model' &&
      target/release/fetch-model org/bench --endpoint '$endpoint' --dest '$d' >/dev/null &&
      target/release/build-push '$d' '$registry/bench/model:1' --base '$registry/base/busybox:1' --no-cache"
    two+=("$wall")
    rm -rf "$d" "$work/.fetched.fetch-model"
    stop_registry

    start_registry "hf-three$i"
    push_base
    d=$work/hf-out
    run "hf download + olot + skopeo copy (run $i)" sh -c "
      rm -rf '$d' '$work/hf-home' '$work/olot-layout' &&
      HF_ENDPOINT='$endpoint' HF_HOME='$work/hf-home' HF_HUB_DISABLE_TELEMETRY=1 \
        '$py/bin/hf' download org/bench --local-dir '$d' >/dev/null 2>&1 &&
      rm -rf '$d/.cache' &&
      skopeo copy -q --src-tls-verify=false docker://$registry/base/busybox:1 oci:'$work/olot-layout':latest &&
      olot '$work/olot-layout' --root-dir '$d' \$(find '$d' -type f | sort) &&
      skopeo copy -q --dest-tls-verify=false oci:'$work/olot-layout':latest docker://$registry/bench/model:1"
    three+=("$wall")
    rm -rf "$d" "$work/hf-home" "$work/olot-layout"
    stop_registry
  done
  kill "$hub_pid" 2>/dev/null || true
  local model_mb m_one m_two m_three
  model_mb=$(du -sm "$model" | cut -f1)
  m_one=$(median "${one[@]}") m_two=$(median "${two[@]}") m_three=$(median "${three[@]}")
  echo "medians of $runs runs: hf:// one pass $m_one s, fetch-model + build-push $m_two s, hf download + olot + skopeo $m_three s"
  echo "ratio: one pass is $(echo "scale=2; $m_two / $m_one" | bc)x faster than fetch-model + build-push, $(echo "scale=2; $m_three / $m_one" | bc)x faster than hf download + olot + skopeo"
  echo "one pass: at most $one_disk MB written to local disk for a $model_mb MB model ($(echo "scale=3; 100 * $one_disk / $model_mb" | bc)%), peak RSS at most $one_rss MB"
}

# Upload methods and --jobs across a WAN: each run gets a fresh registry (storage on tmpfs)
# behind a fresh wan-proxy, and the same model; skopeo pushes the same image from an OCI layout.
bench_wan() {
  local mb=${1:-128} shards=${2:-4} model=$work/model layout=$work/wan-layout
  local rtt=${WAN_RTT_MS:-40} per=${WAN_MBIT_PER_CONN:-200} total=${WAN_MBIT_TOTAL:-1000}
  echo "== wan: $shards x $mb MiB shards, no base, to a registry across a link of $rtt ms RTT,"
  echo "   $per Mbit/s per connection and $total Mbit/s in all (user-space delay: see tests/src/wan_proxy.rs)"
  mkdir -p "$model"
  for s in $(seq "$shards"); do head -c $((mb << 20)) /dev/urandom >"$model/model-$s.safetensors"; done
  echo '{"architectures":["X"]}' >"$model/config.json"
  target/release/build-push "$model" "oci:$layout:v1" --base scratch --no-cache >/dev/null 2>&1
  local configs=("default (one streamed request per blob, --jobs 2)|"
    "--chunk-size 64MiB|--chunk-size 64MiB" "--chunk-size 16MiB|--chunk-size 16MiB"
    "--jobs 1|--jobs 1" "--jobs 4|--jobs 4" "--chunk-size 64MiB --jobs 4|--chunk-size 64MiB --jobs 4")
  local runs=${RUNS:-3} i c label flags wan wan_pid
  declare -A walls=()
  for i in $(seq "$runs"); do
    for c in "${configs[@]}" "skopeo copy oci: -> docker://|skopeo"; do
      label=${c%%|*} flags=${c#*|}
      start_registry "wan$i"
      target/release/wan-proxy "$registry" "$rtt" "$per" "$total" >"$work/wan.addr" &
      wan_pid=$!
      for _ in $(seq 50); do [ -s "$work/wan.addr" ] && break; sleep 0.1; done
      wan=$(cat "$work/wan.addr")
      if [ "$flags" = skopeo ]; then
        run "$label (run $i)" skopeo copy -q --dest-tls-verify=false "oci:$layout:v1" "docker://$wan/bench/model:1"
      else
        # shellcheck disable=SC2086
        run "build-push $label (run $i)" target/release/build-push "$model" "$wan/bench/model:1" \
          --base scratch --no-cache $flags
      fi
      walls[$label]="${walls[$label]:-} $wall"
      kill "$wan_pid" 2>/dev/null || true
      wait "$wan_pid" 2>/dev/null || true
      rm -f "$work/wan.addr"
      stop_registry
    done
  done
  local skopeo_median
  # shellcheck disable=SC2086
  skopeo_median=$(median ${walls["skopeo copy oci: -> docker://"]})
  echo "medians of $runs runs (ratio: skopeo's time over this one's; above 1 is faster than skopeo):"
  for c in "${configs[@]}" "skopeo copy oci: -> docker://|skopeo"; do
    label=${c%%|*}
    local m
    # shellcheck disable=SC2086
    m=$(median ${walls[$label]})
    printf "  %-52s %7.2f s  %5.2fx\n" "$label" "$m" "$(echo "scale=3; $skopeo_median / $m" | bc)"
  done
}

case "$what" in
  build-push) bench_build_push "${2:-768}" "${3:-4}" ;;
  mirror) bench_mirror "${2:-768}" "${3:-4}" ;;
  chunks) bench_chunks "${2:-768}" "${3:-4}" ;;
  fetch) bench_fetch "${2:-256}" "${3:-4}" ;;
  hf) bench_hf "${2:-768}" "${3:-4}" ;;
  fix-perms) bench_fix_perms ;;
  wan) bench_wan "${2:-128}" "${3:-4}" ;;
  pull) . scripts/bench-pull.sh && bench_pull "${2:-768}" "${3:-4}" ;;
  *) echo "bench.sh: unknown benchmark '$what' (known: build-push, mirror, chunks, fetch, hf, fix-perms, wan, pull)" >&2; exit 2 ;;
esac
