#!/usr/bin/env bash
# The main job on a built-in default. Until build-push lands this is fix-perms, the first step
# of every pipeline run: it makes a small synthetic model tree, written by two task UIDs that
# cannot touch each other's files, usable by both, then shows that a third UID can write it.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p fix-perms
ws=${1:-target/demo-workspace}
rm -rf "$ws" && mkdir -p "$ws/models/demo"
head -c 1048576 /dev/urandom > "$ws/models/demo/model-00001-of-00001.safetensors"
echo '{"architectures":["MistralForCausalLM"]}' > "$ws/models/demo/config.json"
chmod 700 "$ws/models/demo" && chmod 600 "$ws/models/demo"/*
if [ "$(id -u)" = 0 ]; then
  chown -R 1001:1001 "$ws/models" && chgrp 1500 "$ws"
fi
target/release/fix-perms --workspace "$ws"
ls -ln "$ws/models/demo"
if [ "$(id -u)" = 0 ]; then
  setpriv --reuid=1003 --regid=1003 --groups=1500 -- sh -c \
    "umask 002; echo '{\"touched_by\":1003}' > '$ws/models/demo/config.json'" &&
    echo "uid 1003 (group 1500) wrote $ws/models/demo/config.json"
fi
