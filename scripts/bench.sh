#!/usr/bin/env bash
# Speed and memory of modelcar against what users run today, measured in the same run on the
# same data. Usage: scripts/bench.sh [fix-perms] [FILES]   (default: fix-perms on 100000 files)
# Prints, for each tool: wall seconds, CPU seconds, peak RSS, and the ratio against modelcar.
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-fix-perms}
files=${2:-100000}

command -v /usr/bin/time >/dev/null 2>&1 || {
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null
}
cargo build --release --locked -p fix-perms >&2
work=$(mktemp -d /var/tmp/modelcar-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT

# run LABEL CMD...: runs CMD under GNU time, prints a row, and sets $wall to its wall seconds.
run() {
  local label=$1
  shift
  /usr/bin/time -f "%e %U %S %M" -o "$work/time" "$@" >/dev/null 2>"$work/stderr" || {
    cat "$work/stderr" >&2
    return 1
  }
  read -r wall user sys rss_kb <"$work/time"
  printf "%-44s %8.2f s wall %8.2f s cpu %8.1f MB peak RSS\n" "$label" "$wall" \
    "$(echo "$user + $sys" | bc)" "$(echo "scale=1; $rss_kb / 1024" | bc)"
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

case "$what" in
  fix-perms) bench_fix_perms ;;
  *) echo "bench.sh: unknown benchmark '$what' (known: fix-perms)" >&2; exit 2 ;;
esac
