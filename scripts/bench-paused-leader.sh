#!/usr/bin/env bash
# What clients see while the region's leader is paused (SIGSTOP, as a VM or GC pause would) for 20 s:
# a fresh three-node playground, `tern bench` puts at concurrency 4 for 40 s, the leader paused 5 s in.
# Prints the bench's JSON: the longest gap between acknowledged writes, and the writes' p99 and max
# while the leader was paused (`paused_leader`). A build whose bench cannot pause the leader itself
# (before issue 11) is measured with the pause made here, from its reported max latency and errors.
# Usage: scripts/bench-paused-leader.sh [TERN] [PAUSE_SECS]
set -euo pipefail
bin="${1:-${CARGO_TARGET_DIR:-$HOME/.cache/tern/target}/debug/tern}" pause="${2:-20}"
data_dir="$(mktemp -d /tmp/tern-paused-XXXXXX)"
. "$(dirname "$0")/playground-lib.sh"
trap 'kill -CONT $(pgrep -f "$data_dir") 2>/dev/null || true; kill -TERM $playground 2>/dev/null || true; wait $playground 2>/dev/null || true; rm -rf "$data_dir"' EXIT
# shellcheck disable=SC2046
start_playground "$bin" "$data_dir" 7701 $(no_caches "$bin")
export TERN_ENDPOINT=127.0.0.1:7701,127.0.0.1:7702,127.0.0.1:7703
info="$(find "$data_dir" -name playground.json | head -1)"
args=(bench --json --read-ratio 0 --concurrency 4 --duration 40 --keys 10000 --item-size 100)
if "$bin" bench --help | grep -q -- --pause-leader-secs; then
  "$bin" "${args[@]}" --pause-leader-secs "$pause" --pause-after-secs 5 --playground "$info"
else
  "$bin" "${args[@]}" 2>"$data_dir/bench.err" &
  bench=$!
  # The preload of 10,000 keys comes first: pause 5 s after the run starts, as the bench does.
  until grep -q "^running" "$data_dir/bench.err"; do sleep 0.1; done
  sleep 5
  leader="$("$bin" cluster status | python3 -c 'import json,sys; print(json.load(sys.stdin)["LeaderId"])')"
  pid="$(python3 -c 'import json,sys; p=[p for p in json.load(open(sys.argv[1]))["processes"] if p["role"]=="node" and p["id"]==int(sys.argv[2])]; print(p[0]["pid"])' "$info" "$leader")"
  echo "pausing the leader, node $leader (pid $pid), for ${pause}s" >&2
  kill -STOP "$pid"
  sleep "$pause"
  kill -CONT "$pid"
  wait "$bench"
fi
