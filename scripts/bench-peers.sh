#!/usr/bin/env bash
# Tern against etcd on this machine, side by side in one run: a three-member etcd (Debian's
# etcd-server, installed if missing) and a three-node Tern region (`tern playground`), both on
# loopback, release builds. The same closed-loop load against each (100-byte values, 10,000 preloaded
# keys): puts only (to the leader: Tern's client sends writes there, the etcd driver finds etcd's),
# then gets only (etcd serializable, Tern eventually consistent: each served from a
# member's local state), at each concurrency, with Tern's bare gRPC round trip (`tern bench --ping`) as
# the baseline of the same run. Prints a table with the ratios; the raw JSON lines go to
# $BENCH_OUT (default /tmp/bench-peers.jsonl).
# Usage: scripts/bench-peers.sh [DURATION_SECS] [CONCURRENCIES]   e.g. scripts/bench-peers.sh 20 "1 4 16 64 256"
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
. scripts/env.sh

duration="${1:-20}"
concurrencies="${2:-1 4 16 64 256}"
out="${BENCH_OUT:-/tmp/bench-peers.jsonl}"

# Debian's package may also start a system etcd on 2379/2380; this one uses other ports.
. scripts/apt-lib.sh
command -v etcd >/dev/null 2>&1 || apt_install "the etcd the benchmark compares with" etcd-server
cargo build --release -p tern-node --bin tern -p tern-etcd-bench --bin etcd-bench
tern="$CARGO_TARGET_DIR/release/tern"
etcd_bench="$CARGO_TARGET_DIR/release/etcd-bench"

data_dir="$(mktemp -d /tmp/tern-peers-XXXXXX)"
etcd_pids=()
. scripts/playground-lib.sh
cleanup() {
  kill -TERM "${etcd_pids[@]}" $playground 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$data_dir"
}
trap cleanup EXIT

# etcd: three members, clients on 23791-23793, peers on 23801-23803.
cluster="m1=http://127.0.0.1:23801,m2=http://127.0.0.1:23802,m3=http://127.0.0.1:23803"
for i in 1 2 3; do
  etcd --name "m$i" --data-dir "$data_dir/etcd-m$i" \
    --listen-client-urls "http://127.0.0.1:2379$i" --advertise-client-urls "http://127.0.0.1:2379$i" \
    --listen-peer-urls "http://127.0.0.1:2380$i" --initial-advertise-peer-urls "http://127.0.0.1:2380$i" \
    --initial-cluster "$cluster" --initial-cluster-state new --initial-cluster-token tern-bench \
    >"$data_dir/etcd-m$i.log" 2>&1 &
  etcd_pids+=($!)
done
etcd_endpoints="http://127.0.0.1:23791,http://127.0.0.1:23792,http://127.0.0.1:23793"
healthy() { python3 -c 'import json,sys,urllib.request; sys.exit(json.load(urllib.request.urlopen(sys.argv[1], timeout=1))["health"] != "true")' http://127.0.0.1:23791/health 2>/dev/null; }
for _ in $(seq 1 100); do
  healthy && break
  sleep 0.2
done
healthy || { echo "etcd did not become healthy: see $data_dir/etcd-m*.log" >&2; exit 1; }

# Tern: a playground region on 7661-7663.
mkdir -p "$data_dir/tern"
# shellcheck disable=SC2046
start_playground "$tern" "$data_dir/tern" 7661 $(no_caches "$tern")
export TERN_ENDPOINT=127.0.0.1:7661,127.0.0.1:7662,127.0.0.1:7663

: >"$out"
run() { # system workload concurrency command...
  local system="$1" workload="$2" c="$3"
  shift 3
  echo "--- $system $workload, concurrency $c, ${duration}s" >&2
  "$@" | python3 -c 'import json,sys; r=json.load(sys.stdin); r.update(system=sys.argv[1], workload=sys.argv[2], concurrency=int(sys.argv[3])); print(json.dumps(r))' "$system" "$workload" "$c" >>"$out"
}
for c in $concurrencies; do
  run tern ping "$c" "$tern" bench --json --ping --concurrency "$c" --duration "$duration"
  run etcd put "$c" "$etcd_bench" --endpoints "$etcd_endpoints" --read-ratio 0 --concurrency "$c" --duration "$duration"
  run tern put "$c" "$tern" bench --json --read-ratio 0 --concurrency "$c" --duration "$duration" --keys 10000 --item-size 100
  run etcd get "$c" "$etcd_bench" --endpoints "$etcd_endpoints" --read-ratio 1 --concurrency "$c" --duration "$duration"
  run tern get "$c" "$tern" bench --json --read-ratio 1 --concurrency "$c" --duration "$duration" --keys 10000 --item-size 100
done

python3 - "$out" <<'EOF'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
def figures(system, workload, c):
    for r in rows:
        if (r["system"], r["workload"], r["concurrency"]) == (system, workload, c):
            return r["ping"] if workload == "ping" else r["get" if workload == "get" else "put"]
print("| concurrency | op | etcd ops/s | Tern ops/s | Tern/etcd | etcd p50 / p99 / p99.9 ms | Tern p50 / p99 / p99.9 ms |")
print("| ---: | --- | ---: | ---: | ---: | ---: | ---: |")
for c in sorted({r["concurrency"] for r in rows}):
    for op in ("put", "get"):
        e, t = figures("etcd", op, c), figures("tern", op, c)
        if not e or not t:
            continue
        ratio = t["ops_per_sec"] / e["ops_per_sec"] if e["ops_per_sec"] else float("nan")
        lat = lambda f: f'{f["p50_ms"]:.2f} / {f["p99_ms"]:.2f} / {f["p999_ms"]:.2f}'
        print(f'| {c} | {op} | {e["ops_per_sec"]:,.0f} | {t["ops_per_sec"]:,.0f} | {ratio:.2f}x | {lat(e)} | {lat(t)} |')
    p, g = figures("tern", "ping", c), figures("tern", "get", c)
    if p and g:
        print(f'| {c} | Tern bare RPC (ping) | | {p["ops_per_sec"]:,.0f} | get p50 / ping p50 = {g["p50_ms"] / p["p50_ms"]:.2f} | | {p["p50_ms"]:.2f} / {p["p99_ms"]:.2f} / {p["p999_ms"]:.2f} |')
EOF
