# Sourced by the benchmark scripts: starts `tern playground` in the background and waits until it is up.
# start_playground BIN DATA_DIR BASE_PORT [PLAYGROUND ARGS...] sets $playground to its pid; the caller
# stops it (kill -TERM "$playground") when done. The nodes' benchmarks start no cache node (it would
# follow a node's change feed and take CPU from the region): $(no_caches BIN) gives the flag that says
# so, to builds that know it.
playground=""
start_playground() {
  local bin="$1" data_dir="$2" port="$3"
  shift 3
  "$bin" playground --data-dir "$data_dir" --base-port "$port" "$@" >"$data_dir/playground.out" 2>&1 &
  playground=$!
  for _ in $(seq 1 300); do
    grep -q "Press Ctrl-C" "$data_dir/playground.out" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "the playground did not start: see $data_dir/playground.out" >&2
  return 1
}

no_caches() {
  if "$1" playground --help 2>/dev/null | grep -q -- --caches-per-region; then
    echo "--caches-per-region 0"
  fi
}
