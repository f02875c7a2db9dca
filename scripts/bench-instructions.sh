#!/usr/bin/env bash
# A figure the machine's noise does not move: the instructions the leader executes per put, counted by
# valgrind (callgrind) on a fixed workload, release build. Three nodes on loopback, the leader (node 1,
# which initialises the region) under callgrind; `tern bench --read-ratio 0 --keys 1 --requests N` puts
# a 100-byte item (always the same key, so every put but the first replaces an item); the leader's instruction count over the run, less what it executes idle over as long, divided
# by the puts. Prints one JSON line. A change that makes the write path slower shows up here.
# One writer by default: each put is its own Raft entry, so the count does not depend on how the
# machine's timing batches entries (about 0.6 % apart between runs here). Set CALLGRIND_OUT=FILE to keep
# the run's profile (callgrind_annotate FILE).
# Usage: scripts/bench-instructions.sh [PUTS] [CONCURRENCY]
set -euo pipefail
[ -z "${CALLGRIND_OUT:-}" ] || CALLGRIND_OUT="$(realpath -m "$CALLGRIND_OUT")"
cd "$(dirname "$0")/.."
scripts/setup.sh
. scripts/env.sh

puts="${1:-1000}"
concurrency="${2:-1}"
. scripts/apt-lib.sh
command -v valgrind >/dev/null 2>&1 || apt_install "callgrind counts the instructions" valgrind
cargo build --release -p tern-node --bin tern
tern="${TERN:-$CARGO_TARGET_DIR/release/tern}"

dir="$(mktemp -d /tmp/tern-instructions-XXXXXX)"
pids=()
trap 'kill -TERM "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$dir"' EXIT
peers="1=127.0.0.1:7801,2=127.0.0.1:7802,3=127.0.0.1:7803"
# Timeouts far above valgrind's slowdown, so that the leader stays leader.
common=(--region local --peers "$peers" --election-timeout-ms 10000 --heartbeat-ms 1000)
valgrind --tool=callgrind --callgrind-out-file="$dir/callgrind.out.%p" \
  "$tern" node --id 1 --listen 127.0.0.1:7801 --data-dir "$dir/n1" "${common[@]}" >"$dir/n1.log" 2>&1 &
leader=$!
pids+=($leader)
for id in 2 3; do
  "$tern" node --id "$id" --listen "127.0.0.1:780$id" --data-dir "$dir/n$id" "${common[@]}" >"$dir/n$id.log" 2>&1 &
  pids+=($!)
done
export TERN_ENDPOINT=127.0.0.1:7801,127.0.0.1:7802,127.0.0.1:7803
leads() { "$tern" cluster status 2>/dev/null | grep -q '"LeaderId": 1'; }
for _ in $(seq 1 600); do
  leads && break
  sleep 0.5
done
leads || { echo "node 1 did not become the leader: see $dir/n1.log" >&2; exit 1; }

bench=(bench --json --read-ratio 0 --concurrency "$concurrency" --item-size 100)
# Warm up (the table, connections, caches); then count.
"$tern" "${bench[@]}" --keys 500 --requests 500 >/dev/null
instructions() { # dumps the leader's counters since the last zeroing; prints their total
  rm -f "$dir"/callgrind.out.*.[0-9]*
  callgrind_control -d "$leader" >/dev/null
  local file
  for _ in $(seq 1 100); do
    file=$(ls "$dir"/callgrind.out.*.[0-9]* 2>/dev/null | head -1 || true)
    [ -n "$file" ] && grep -q '^totals:' "$file" && break
    sleep 0.2
  done
  awk '/^totals:/ {print $2}' "$file"
}
callgrind_control -z "$leader" >/dev/null
start=$(date +%s.%N)
# --keys 1: the preload is a single put, counted with the rest.
"$tern" "${bench[@]}" --keys 1 --requests "$puts" >"$dir/bench.json"
end=$(date +%s.%N)
busy=$(instructions)
[ -z "${CALLGRIND_OUT:-}" ] || cp "$(ls "$dir"/callgrind.out.*.[0-9]* | head -1)" "$CALLGRIND_OUT"
leads || { echo "node 1 lost the leadership during the run: the count is not of a leader" >&2; exit 1; }
callgrind_control -z "$leader" >/dev/null
idle_start=$(date +%s.%N)
sleep 10
idle=$(instructions)
idle_end=$(date +%s.%N)
python3 - "$busy" "$idle" "$start" "$end" "$puts" "$dir/bench.json" "$idle_start" "$idle_end" <<'EOF'
import json, sys
busy, idle, puts = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[5])
secs = float(sys.argv[4]) - float(sys.argv[3])
bench = json.load(open(sys.argv[6]))
if bench.get("errors"):
    sys.exit(f"{bench['errors']} puts failed: the count is not of {puts} puts")
idle_per_sec = idle / (float(sys.argv[8]) - float(sys.argv[7]))
per_put = (busy - idle_per_sec * secs) / (puts + 1)
print(json.dumps({
    "measure": "leader instructions per put (callgrind, release build)",
    "puts": puts + 1,
    "instructions_per_put": round(per_put),
    "leader_instructions_total": busy,
    "idle_instructions_per_sec": round(idle_per_sec),
    "run_secs": round(secs, 1),
    "errors": bench.get("errors"),
}))
EOF
