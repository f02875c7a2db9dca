#!/usr/bin/env bash
# Measures exports and imports on a three-node playground region, in one run: the time to export a
# table of ITEMS 100-byte items (full, DynamoDB JSON) to the local buckets and to import it back into a
# new table (items/s), each against a baseline of the same run (the export against a client's scan of
# the whole table, the import against a PITR restore of it, which writes the same way); and the put
# latency of a steady load on another table while exports run against the same load without them
# (rounds without, with, with, without). Prints JSON lines, then a summary.
# Usage: scripts/bench-transfers.sh [ITEMS] [LOAD_SECS] [CONCURRENCY]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
. scripts/env.sh
cargo build -p tern-node --bin tern

items="${1:-1000000}"
duration="${2:-20}"
concurrency="${3:-8}"
data_dir="$(mktemp -d /tmp/tern-bench-transfers-XXXXXX)"
results="$data_dir/results.jsonl"
. scripts/playground-lib.sh
trap 'kill -TERM $playground 2>/dev/null; wait $playground 2>/dev/null; rm -rf "$data_dir"' EXIT
# shellcheck disable=SC2046
start_playground "$TERN_BIN" "$data_dir" 7601 $(no_caches "$TERN_BIN")
export TERN_ENDPOINT=127.0.0.1:7601,127.0.0.1:7602,127.0.0.1:7603
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
record() { tr -d '\n ' | tee -a "$results"; echo | tee -a "$results" >/dev/null; echo; }
timed() { # timed NAME ITEMS COMMAND...: runs it and records its wall time
  local name="$1" n="$2" started ended
  shift 2
  started=$(date +%s.%N)
  "$@" >/dev/null
  ended=$(date +%s.%N)
  printf '{"measure":"%s","items":%s,"secs":%s}\n' "$name" "$n" "$(python3 -c "print(round($ended - $started, 3))")" | tee -a "$results"
}
parameters='{"TableName":"big-imported","AttributeDefinitions":[{"AttributeName":"pk","AttributeType":"S"}],"KeySchema":[{"AttributeName":"pk","KeyType":"HASH"}]}'

for table in big steady; do
  "$TERN_BIN" create-table --table-name "$table" --partition-key pk:S >/dev/null
done
echo "--- loading $items items into big" >&2
"$TERN_BIN" bench --json --workload load --table-name big --keys "$items" --concurrency 16 --item-size 100 | record
"$TERN_BIN" update-continuous-backups --table-name big \
  --point-in-time-recovery-specification PointInTimeRecoveryEnabled=true >/dev/null
for _ in $(seq 1 600); do
  case "$("$TERN_BIN" describe-continuous-backups --table-name big)" in *EarliestRestorableDateTime*) break ;; esac
  sleep 0.2
done
arn=$("$TERN_BIN" describe-table --table-name big | json 'd["Table"]["TableArn"]')

# 1. Export and import of the whole table, and their baselines.
timed "scan (export's baseline)" "$items" "$TERN_BIN" scan --table-name big
timed "export" "$items" "$TERN_BIN" export-table-to-point-in-time --table-arn "$arn" --s3-bucket bench \
  --s3-prefix full --wait
manifest=$("$TERN_BIN" list-exports --table-arn "$arn" | json 'd["ExportSummaries"][-1]["ExportArn"]')
data=$("$TERN_BIN" describe-export --export-arn "$manifest" | json 'd["ExportDescription"]["ExportManifest"].replace("manifest-summary.json", "data/")')
timed "import" "$items" "$TERN_BIN" import-table --input-format DYNAMODB_JSON --input-compression-type GZIP \
  --s3-bucket-source "S3Bucket=bench,S3KeyPrefix=$data" --table-creation-parameters "$parameters" --wait
timed "restore (import's baseline)" "$items" "$TERN_BIN" restore-table-to-point-in-time --source-table-name big \
  --target-table-name big-restored --use-latest-restorable-time --wait
for table in big-imported big-restored; do
  count=$("$TERN_BIN" describe-table --table-name "$table" | json 'd["Table"]["ItemCount"]')
  [ "$count" = "$items" ] || { echo "$table has $count items, not $items" >&2; exit 1; }
done

# 2. A steady load's puts without and during exports of big.
exports_forever() {
  while true; do
    "$TERN_BIN" export-table-to-point-in-time --table-arn "$arn" --s3-bucket bench --s3-prefix during --wait >/dev/null || true
  done
}
for round in without with with without; do
  echo "--- steady puts, $round exports, ${duration}s" >&2
  exporter=""
  if [ "$round" = with ]; then exports_forever & exporter=$!; sleep 1; fi
  "$TERN_BIN" bench --json --read-ratio 0.0 --table-name steady --concurrency "$concurrency" --duration "$duration" \
    --keys 10000 --item-size 100 | sed "s/\"workload\"/\"exports\":\"$round\",\"workload\"/" | record
  if [ -n "$exporter" ]; then kill "$exporter" 2>/dev/null; wait "$exporter" 2>/dev/null || true; fi
done

python3 - "$results" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
timed = {r["measure"]: r for r in rows if "measure" in r and "secs" in r}
for name, r in timed.items():
    print(f"{name}: {r['items']} items in {r['secs']:.1f} s ({r['items'] / r['secs']:.0f} items/s)")
print(f"export / scan of the same table: {timed['scan (export' + chr(39) + 's baseline)']['secs'] / timed['export']['secs']:.2f}x as fast")
print(f"import / restore of the same table: {timed['restore (import' + chr(39) + 's baseline)']['secs'] / timed['import']['secs']:.2f}x as fast")
steady = {}
for r in rows:
    if "exports" in r:
        steady.setdefault(r["exports"], []).append(r["put"])
for k, puts in steady.items():
    print(f"puts {k} exports: " + ", ".join(f"{p['ops'] / 1:.0f} ops p99 {p['p99_ms']:.2f} ms" for p in puts))
p99 = {k: sum(p["p99_ms"] for p in v) / len(v) for k, v in steady.items()}
print(f"put p99 during exports / without: {p99['with'] / p99['without']:.2f} ({p99['with']:.2f} vs {p99['without']:.2f} ms)")
PY
