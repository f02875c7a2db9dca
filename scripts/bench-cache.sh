#!/usr/bin/env bash
# The cache tier on this machine, in one run, release builds: a playground region of three nodes with a
# cache node, and Redis (Debian's redis-server, installed if missing) as the floor of an in-memory cache
# over the network. Measures, with the same value size and concurrency:
#   - the bare gRPC round trip to the cache (`tern bench --ping`), the transport's floor;
#   - GetItem hits in the cache (the keys are preloaded through it, so every read is a hit);
#   - the uncached eventually consistent and strongly consistent GetItem on the nodes;
#   - Redis GET (`redis-benchmark`, same value size and concurrency);
#   - Query of one partition through the query cache, and uncached on the nodes;
#   - the delay from a write acknowledged by the nodes until the cache serves it.
# Prints a table with the ratios; the raw JSON lines go to $BENCH_OUT (default /tmp/bench-cache.jsonl).
# Usage: scripts/bench-cache.sh [DURATION_SECS] [CONCURRENCY] [VALUE_BYTES]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
. scripts/env.sh

duration="${1:-10}"
concurrency="${2:-16}"
size="${3:-100}"
out="${BENCH_OUT:-/tmp/bench-cache.jsonl}"

. scripts/apt-lib.sh
command -v redis-server >/dev/null 2>&1 || apt_install "the Redis the cache is compared with" redis-server
command -v redis-benchmark >/dev/null 2>&1 || apt_install "redis-benchmark" redis-tools
cargo build --release -p tern-node --bin tern
tern="$CARGO_TARGET_DIR/release/tern"

data_dir="$(mktemp -d /tmp/tern-cache-bench-XXXXXX)"
redis_pid=""
. scripts/playground-lib.sh
cleanup() {
  kill -TERM $playground $redis_pid 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$data_dir"
}
trap cleanup EXIT

# Tern: nodes on 7681-7683, the cache on 7881. Redis: 26379, no persistence.
mkdir -p "$data_dir/tern"
start_playground "$tern" "$data_dir/tern" 7681
nodes=127.0.0.1:7681,127.0.0.1:7682,127.0.0.1:7683
cache=127.0.0.1:7881
redis-server --port 26379 --save '' --appendonly no --dir "$data_dir" >"$data_dir/redis.log" 2>&1 &
redis_pid=$!
for _ in $(seq 1 50); do redis-cli -p 26379 ping >/dev/null 2>&1 && break; sleep 0.1; done

: >"$out"
run() {
  local label="$1"
  shift
  echo "--- $label" >&2
  printf '{"label":"%s","result":' "$label" >>"$out"
  "$tern" bench --json --duration "$duration" --concurrency "$concurrency" --item-size "$size" --keys 10000 "$@" \
    | tr -d '\n ' >>"$out"
  echo '}' >>"$out"
}
run ping-cache --endpoint "$cache" --ping
run get-cache-hit --endpoint "$cache" --read-ratio 1.0 --table-name bench
run get-nodes-eventual --endpoint "$nodes" --read-ratio 1.0 --table-name bench
run get-nodes-consistent --endpoint "$nodes" --read-ratio 1.0 --table-name bench --consistent-read
run query-cache-hit --endpoint "$cache" --workload query --table-name bench
"$tern" --endpoint "$cache" cache status | tr -d '\n ' | sed 's/^/{"label":"cache-status","status":/; s/$/}/' >>"$out"
echo >>"$out"
run query-nodes-eventual --endpoint "$nodes" --workload query --table-name bench
run cache-delay --endpoint "$nodes" --workload cache-delay --cache "$cache" --table-name bench-delay
echo "--- redis GET" >&2
redis-cli -p 26379 set key:000000000001 "$(head -c "$size" /dev/zero | tr '\0' x)" >/dev/null
requests=$((duration * 20000))
redis=$(redis-benchmark -p 26379 -t get -d "$size" -c "$concurrency" -n "$requests" -r 1 --csv | tail -n 1)
printf '{"label":"redis-get","csv":"%s"}\n' "$(echo "$redis" | tr -d '"')" >>"$out"

python3 - "$out" "$concurrency" "$size" <<'PY'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
by = {r["label"]: r for r in rows}
def get(label, side="get"):
    r = by[label]["result"]
    part = r.get(side) or r.get("requests") or r.get("ping")
    return part["ops_per_sec"], part["p50_ms"], part["p99_ms"]
def requests(label):
    p = by[label]["result"]["requests"]
    return p["ops_per_sec"], p["p50_ms"], p["p99_ms"]
fields = by["redis-get"]["csv"].split(",")
# test,rps,avg,min,p50,p95,p99,max
redis = (float(fields[1]), float(fields[4]), float(fields[6]))
ping = get("ping-cache")
table = [
    ("cache hit GetItem", get("get-cache-hit")),
    ("nodes GetItem (eventual)", get("get-nodes-eventual")),
    ("nodes GetItem (consistent)", get("get-nodes-consistent")),
    ("redis GET", redis),
    ("cache ping (bare gRPC)", ping),
    ("cache hit Query", requests("query-cache-hit")),
    ("nodes Query (eventual)", requests("query-nodes-eventual")),
]
print(f"concurrency {sys.argv[2]}, {sys.argv[3]}-byte values")
print(f"{'':30} {'ops/s':>9} {'p50 ms':>8} {'p99 ms':>8}")
for name, (ops, p50, p99) in table:
    print(f"{name:30} {ops:>9.0f} {p50:>8.3f} {p99:>8.3f}")
hit, eventual, consistent = get("get-cache-hit"), get("get-nodes-eventual"), get("get-nodes-consistent")
print(f"cache hit p50 / redis GET p50:            {hit[1] / redis[1]:.2f}  (goal <= 1.5)")
print(f"cache hit p50 / consistent GetItem p50:   {hit[1] / consistent[1]:.2f}  (goal <= 0.3)")
print(f"cache hit p50 / eventual GetItem p50:     {hit[1] / eventual[1]:.2f}")
print(f"cache hit p50 / bare gRPC p50:            {hit[1] / ping[1]:.2f}")
q_hit, q_nodes = requests("query-cache-hit"), requests("query-nodes-eventual")
print(f"query cache hit p50 / uncached Query p50: {q_hit[1] / q_nodes[1]:.2f}")
st = by["cache-status"]["status"]
for cache in ("item_cache", "query_cache"):
    c = st[cache]
    print(f"{cache}: {c['hits']} hits, {c['misses']} misses, {c['entries']} entries, {c['bytes']} bytes")
d = by["cache-delay"]["result"]
print(f"write on the nodes to served by the cache: p50 {d['delay_p50_ms']} ms, p99 {d['delay_p99_ms']} ms")
PY
