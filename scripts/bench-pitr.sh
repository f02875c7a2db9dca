#!/usr/bin/env bash
# Measures point-in-time recovery on a three-node playground region, in one run: put throughput with
# PITR off and on (alternating rounds, the same region), the backup store's bytes per million writes in
# the window, and the time to restore a table of RESTORE_ITEMS 100-byte items (from the PITR log, from
# a base, and from an on-demand backup). Prints JSON lines, then a summary.
# Usage: scripts/bench-pitr.sh [DURATION_SECS] [CONCURRENCY] [RESTORE_ITEMS]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
. scripts/env.sh
cargo build -p tern-node --bin tern

duration="${1:-20}"
concurrency="${2:-16}"
items="${3:-1000000}"
data_dir="$(mktemp -d /tmp/tern-bench-pitr-XXXXXX)"
results="$data_dir/results.jsonl"
. scripts/playground-lib.sh
trap 'kill -TERM $playground 2>/dev/null; wait $playground 2>/dev/null; rm -rf "$data_dir"' EXIT
# shellcheck disable=SC2046
start_playground "$TERN_BIN" "$data_dir" 7501 $(no_caches "$TERN_BIN")
export TERN_ENDPOINT=127.0.0.1:7501,127.0.0.1:7502,127.0.0.1:7503
store="$data_dir/backups"

create() {
  "$TERN_BIN" create-table --table-name "$1" --attribute-definitions AttributeName=pk,AttributeType=S \
    --key-schema AttributeName=pk,KeyType=HASH >/dev/null
}
pitr_on() {
  "$TERN_BIN" update-continuous-backups --table-name "$1" \
    --point-in-time-recovery-specification PointInTimeRecoveryEnabled=true >/dev/null
  for _ in $(seq 1 600); do
    case "$("$TERN_BIN" describe-continuous-backups --table-name "$1")" in *EarliestRestorableDateTime*) return 0 ;; esac
    sleep 0.2
  done
  echo "no restore point for $1 after 120 s" >&2
  return 1
}
record() { tr -d '\n ' | tee -a "$results"; echo | tee -a "$results" >/dev/null; echo; }
timed() { # timed NAME ITEMS COMMAND...: runs it and records its wall time
  local name="$1" n="$2" started ended
  shift 2
  started=$(date +%s.%N)
  "$@" >/dev/null
  ended=$(date +%s.%N)
  printf '{"measure":"%s","items":%s,"secs":%s}\n' "$name" "$n" "$(python3 -c "print(round($ended - $started, 3))")" | tee -a "$results"
}

# 1. Puts with PITR off and on, in the order off, on, on, off twice (so that a drift of the machine over
# the run weighs on both alike), on two tables of 10,000 keys.
create pitr-off
create pitr-on
pitr_on pitr-on
for round in 1 2; do
  for table in pitr-off pitr-on pitr-on pitr-off; do
    echo "--- puts, $table, round $round, concurrency $concurrency, ${duration}s" >&2
    "$TERN_BIN" bench --json --read-ratio 0.0 --table-name "$table" --concurrency "$concurrency" \
      --duration "$duration" --keys 10000 --item-size 100 | sed "s/\"workload\"/\"table\":\"$table\",\"workload\"/" | record
  done
done

# 2. What the window costs in the store: wait until the log is archived (every 60 s by default).
echo "--- waiting for the PITR log of pitr-on to be archived" >&2
sleep 70
log_bytes=$(find "$store/pitr" -path '*/pitr-on/*/log/*' -name '*.log' -printf '%s\n' | awk '{s+=$1} END {print s+0}')
base_bytes=$(find "$store/pitr" -path '*/pitr-on/*/base/*' -type f -printf '%s\n' | awk '{s+=$1} END {print s+0}')
printf '{"measure":"store bytes of pitr-on","log_bytes":%s,"base_bytes":%s}\n' "$log_bytes" "$base_bytes" | tee -a "$results"

# 3. Restores of a table of $items 100-byte items.
create big-log
pitr_on big-log
echo "--- loading $items items into big-log (PITR on: they are in the log)" >&2
"$TERN_BIN" bench --json --workload load --table-name big-log --keys "$items" --concurrency "$concurrency" --item-size 100 | record
timed "restore from the log" "$items" "$TERN_BIN" restore-table-to-point-in-time --source-table-name big-log \
  --target-table-name big-log-restored --use-latest-restorable-time --wait
create big-base
echo "--- loading $items items into big-base (PITR on after: they are in its base)" >&2
"$TERN_BIN" bench --json --workload load --table-name big-base --keys "$items" --concurrency "$concurrency" --item-size 100 | record
pitr_on big-base
timed "restore from a base" "$items" "$TERN_BIN" restore-table-to-point-in-time --source-table-name big-base \
  --target-table-name big-base-restored --use-latest-restorable-time --wait
arn=$("$TERN_BIN" create-backup --table-name big-base --backup-name bench --wait | python3 -c 'import json,sys; print(json.load(sys.stdin)["BackupDetails"]["BackupArn"])')
timed "restore from an on-demand backup" "$items" "$TERN_BIN" restore-table-from-backup --backup-arn "$arn" \
  --target-table-name big-backup-restored --wait
for table in big-log-restored big-base-restored big-backup-restored; do
  count=$("$TERN_BIN" describe-table --table-name "$table" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Table"]["ItemCount"])')
  [ "$count" = "$items" ] || { echo "$table has $count items, not $items" >&2; exit 1; }
done

python3 - "$results" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
puts = {}
for r in rows:
    if "table" in r:
        puts.setdefault(r["table"], []).append(r)
rate = {t: sum(r["put"]["ops"] for r in rs) / sum(r["duration_secs"] for r in rs) for t, rs in puts.items()}
print(f"puts/s, PITR off: {rate['pitr-off']:.0f}; on: {rate['pitr-on']:.0f}; ratio on/off: {rate['pitr-on'] / rate['pitr-off']:.3f}")
store = next(r for r in rows if r.get("measure") == "store bytes of pitr-on")
writes_on = sum(r["put"]["ops"] for r in puts["pitr-on"]) + len(puts["pitr-on"]) * 10000
print(f"store: {store['log_bytes'] / writes_on * 1e6 / 2**20:.1f} MiB of log per million 100-byte writes ({writes_on} writes), bases {store['base_bytes'] / 2**20:.1f} MiB")
for r in rows:
    if "secs" in r and "measure" in r:
        print(f"{r['measure']}: {r['items']} items in {r['secs']:.1f} s ({r['items'] / r['secs']:.0f} items/s)")
PY
