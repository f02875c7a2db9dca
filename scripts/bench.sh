#!/usr/bin/env bash
# Measures a three-node playground region on this machine: put-only, get-only and a 50/50 mix, each
# against the same fresh region in one run, with two baselines, and prints the figures as JSON lines.
# Usage: scripts/bench.sh [DURATION_SECS] [CONCURRENCY]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
. scripts/env.sh
cargo build -p tern-node --bin tern

duration="${1:-20}"
concurrency="${2:-16}"
data_dir="$(mktemp -d /tmp/tern-bench-XXXXXX)"
. scripts/playground-lib.sh
trap 'kill -TERM $playground 2>/dev/null; wait $playground 2>/dev/null; rm -rf "$data_dir"' EXIT
# shellcheck disable=SC2046
start_playground "$TERN_BIN" "$data_dir" 7401 $(no_caches "$TERN_BIN")
export TERN_ENDPOINT=127.0.0.1:7401,127.0.0.1:7402,127.0.0.1:7403

# Baselines measured in the same run: the disk's synced 4 KiB writes per second (a put waits for at
# least one synced log append), and a gRPC round trip through the same client doing no storage work.
dsync=$(dd if=/dev/zero of="$data_dir/dsync-probe" bs=4k count=2000 oflag=dsync 2>&1 | tail -n 1)
echo "{\"baseline\":\"dd bs=4k count=2000 oflag=dsync\",\"result\":\"$dsync\"}"
rm -f "$data_dir/dsync-probe"
echo "--- baseline: node-status round trips, concurrency $concurrency, ${duration}s" >&2
"$TERN_BIN" bench --json --ping --concurrency "$concurrency" --duration "$duration" | tr -d '\n '; echo
echo "--- puts with the table's stream on, concurrency $concurrency, ${duration}s" >&2
"$TERN_BIN" bench --json --stream --read-ratio 0.0 --table-name bench-stream --concurrency "$concurrency" --duration "$duration" --keys 10000 --item-size 100 \
  | tr -d '\n ' ; echo
echo "--- stream delay, concurrency $concurrency, ${duration}s" >&2
"$TERN_BIN" bench --json --workload stream-delay --table-name bench-delay --concurrency "$concurrency" --duration "$duration" --item-size 100 \
  | tr -d '\n ' ; echo
echo "--- TTL: 10,000 items expiring each second for 10 s" >&2
"$TERN_BIN" bench --json --workload ttl --table-name bench-ttl --concurrency "$concurrency" --duration 10 --expiring-per-second 10000 \
  | tr -d '\n ' ; echo
for workload in conditional-update transaction; do
  echo "--- $workload, concurrency $concurrency, ${duration}s" >&2
  "$TERN_BIN" bench --json --workload "$workload" --table-name "bench-$workload" --concurrency "$concurrency" --duration "$duration" --keys 10000 --item-size 100 \
    | tr -d '\n ' ; echo
done
for mix in 0.0 1.0 0.5; do
  echo "--- read ratio $mix, concurrency $concurrency, ${duration}s, 100-byte items" >&2
  "$TERN_BIN" bench --json --read-ratio "$mix" --concurrency "$concurrency" --duration "$duration" --keys 10000 --item-size 100 \
    | tr -d '\n ' ; echo
done
