#!/usr/bin/env bash
# Compares two builds of `tern` on this machine in one run: each gets a fresh three-node playground
# and the same puts, gets and 50/50 mix, alternating A, B, A, B, so that the machine's drift hits both.
# Prints one JSON line per measurement; compare the ratios, not single figures.
# Usage: scripts/bench-compare.sh TERN_A TERN_B [DURATION_SECS] [CONCURRENCIES]
# e.g. build a baseline from another commit into /tmp/tern-base, then
#      scripts/bench-compare.sh /tmp/tern-base "$CARGO_TARGET_DIR/release/tern" 8 "1 16 64 256"
set -euo pipefail
. "$(dirname "$0")/playground-lib.sh"
a="$1" b="$2" duration="${3:-10}" concurrencies="${4:-16}"

measure() {
  local label="$1" bin="$2" data_dir
  data_dir="$(mktemp -d /tmp/tern-compare-XXXXXX)"
  # shellcheck disable=SC2046
  start_playground "$bin" "$data_dir" 7601 $(no_caches "$bin")
  for concurrency in $concurrencies; do
    for mix in 0.0 1.0 0.5; do
      printf '{"build":"%s","concurrency":%s,"read_ratio":%s,"result":' "$label" "$concurrency" "$mix"
      TERN_ENDPOINT=127.0.0.1:7601,127.0.0.1:7602,127.0.0.1:7603 "$bin" bench --json --read-ratio "$mix" \
        --concurrency "$concurrency" --duration "$duration" --keys 10000 --item-size 100 | tr -d '\n '
      echo "}"
    done
  done
  kill -TERM "$playground" 2>/dev/null || true
  wait "$playground" 2>/dev/null || true
  rm -rf "$data_dir"
}

for round in 1 2; do
  measure "A$round" "$a"
  measure "B$round" "$b"
done
