#!/usr/bin/env bash
# make-model.sh DIR [MIB_PER_SHARD] [SHARDS]: a synthetic Hugging Face style model in DIR, for
# the benchmarks and scripts/pipeline-local.sh: SHARDS safetensors-named files of random
# (incompressible) bytes, MIB_PER_SHARD MiB each (default 512 x 4), and the small JSON files a
# model repo has. Existing shards are kept, so a second call costs nothing.
set -euo pipefail
dir=${1:?usage: make-model.sh DIR [MIB_PER_SHARD] [SHARDS]}
mib=${2:-512}
shards=${3:-4}
mkdir -p "$dir"
for i in $(seq 1 "$shards"); do
  shard=$(printf '%s/model-%05d-of-%05d.safetensors' "$dir" "$i" "$shards")
  [ -f "$shard" ] || head -c $((mib << 20)) /dev/urandom >"$shard"
done
echo '{"architectures":["MistralForCausalLM"],"hidden_size":5120}' >"$dir/config.json"
echo '{"bos_token_id":1}' >"$dir/generation_config.json"
head -c 2000000 /dev/urandom | base64 >"$dir/tokenizer.json"
echo '{"weight_map":{}}' >"$dir/model.safetensors.index.json"
du -sh "$dir"
