# Sourced by scripts/bench.sh (its helpers: run, median, start_registry, push_base, make_model).
#
# bench_pull MIB SHARDS: the cold start users wait for on every new node, the node's pull of
# the ModelCar (podman pull: containers/image into containers/storage's overlay driver, as
# CRI-O pulls) into an empty store on disk, of the image build-push writes against the same
# model as olot + skopeo copy push it, the same base under both, RUNS (default 3) times each,
# interleaved, compared by median.
bench_pull() {
  local mb=${1:-768} shards=${2:-4} model=$work/model
  echo "== pull: $shards x $mb MiB shards, busybox base; podman pull into an empty store on disk,"
  echo "   from a registry on tmpfs, page cache dropped before each pull"
  make_model "$model" "$mb" "$shards"
  start_registry pull
  push_base
  local ours=$registry/bench/ours:1 olot_image=$registry/bench/olot:1
  target/release/build-push "$model" "$ours" --base "$registry/base/busybox:1" --no-cache >/dev/null
  rm -rf "$work/olot-layout"
  skopeo copy -q --src-tls-verify=false "docker://$registry/base/busybox:1" "oci:$work/olot-layout:latest"
  # shellcheck disable=SC2046
  olot "$work/olot-layout" --root-dir "$model" $(find "$model" -type f | sort) >/dev/null
  skopeo copy -q --dest-tls-verify=false "oci:$work/olot-layout:latest" "docker://$olot_image"
  rm -rf "$work/olot-layout"
  for image in "$ours" "$olot_image"; do
    echo "   $image: $(skopeo inspect --raw --tls-verify=false "docker://$image" |
      python3 -c 'import json,sys; l=json.load(sys.stdin)["layers"]; print(len(l), "layers,", sum(x["size"] for x in l) >> 20, "MiB,", sorted({x["mediaType"].rsplit(".",1)[-1] for x in l}))')"
  done

  local runs=${RUNS:-3} i ours_walls=() olot_walls=() store=$work/store
  for i in $(seq "$runs"); do
    for which in ours olot; do
      local ref=$ours
      [ "$which" = olot ] && ref=$olot_image
      rm -rf "$store"
      run "podman pull, $which image (run $i)" podman --root "$store/root" --runroot "$store/run" \
        pull -q --tls-verify=false "$ref"
      if [ "$which" = ours ]; then ours_walls+=("$wall"); else olot_walls+=("$wall"); fi
    done
  done
  rm -rf "$store"
  local m_ours m_olot
  m_ours=$(median "${ours_walls[@]}") m_olot=$(median "${olot_walls[@]}")
  echo "medians of $runs pulls into an empty store: build-push's image $m_ours s, olot + skopeo's $m_olot s"
  echo "ratio: a node pulls build-push's image $(echo "scale=2; $m_olot / $m_ours" | bc)x as fast as olot's"
  stop_registry
}
