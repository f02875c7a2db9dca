#!/usr/bin/env bash
# Measures global-table replication on this machine: a two-region playground (three nodes and a
# replicator per region), both regions writing at a steady rate, then a backlog built by pausing one
# replicator. Prints the figures as one JSON line.
# Usage: scripts/bench-global.sh [DURATION_SECS] [PUTS_PER_SEC_PER_REGION] [PAUSE_SECS]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
. scripts/env.sh
cargo build -p tern-node --bin tern

duration="${1:-30}"
rate="${2:-500}"
pause="${3:-60}"
data_dir="$(mktemp -d /tmp/tern-bench-global-XXXXXX)"
. scripts/playground-lib.sh
trap 'kill -TERM $playground 2>/dev/null; wait $playground 2>/dev/null; [ -n "${KEEP:-}" ] || rm -rf "$data_dir"' EXIT
# shellcheck disable=SC2046
start_playground "$TERN_BIN" "$data_dir" 7501 --regions us-east,eu-west $(no_caches "$TERN_BIN")
echo "--- replication: $rate puts/s in each region for ${duration}s, then a ${pause}s backlog" >&2
"$TERN_BIN" bench --json --workload replication --playground "$data_dir/playground.json" --table-name bench-global \
  --concurrency 8 --rate "$rate" --duration "$duration" --pause-secs "$pause" | tr -d '\n '; echo
