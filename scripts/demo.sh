#!/usr/bin/env bash
# The main job on a built-in default: build-push streams a small synthetic HF-style model
# (two 64 MiB safetensors shards, config and tokenizer files) into a ModelCar image, as an
# OCI image layout under target/demo (no registry or network needed), then shows its layers.
# Push to a registry instead by giving a destination: scripts/demo.sh 127.0.0.1:5000/demo/model:1
set -euo pipefail
cd "$(dirname "$0")/.."
dest=${1:-oci:target/demo/image:latest}
cargo build --release --locked -p build-push
model=target/demo/model
if [ ! -d "$model" ]; then
  mkdir -p "$model"
  for i in 1 2; do head -c $((64 << 20)) /dev/urandom >"$model/model-0000$i-of-00002.safetensors"; done
  echo '{"architectures":["MistralForCausalLM"],"hidden_size":5120}' >"$model/config.json"
  head -c 2000000 /dev/urandom | base64 >"$model/tokenizer.json"
fi
target/release/build-push "$model" "$dest" --base scratch --no-cache
if [[ $dest == oci:* ]] && command -v skopeo >/dev/null; then
  skopeo inspect "$dest" | grep -A5 '"Layers"'
fi
