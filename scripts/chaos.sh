#!/usr/bin/env bash
# Chaos-tests the compose deployment: brings it up if needed (scripts/cluster.sh, with libfaketime
# preloaded into the nodes so their clocks can be skewed), then runs `tern chaos` against it: a workload
# in every region, a fault and a heal per cycle, and the checker after the final heal.
#   scripts/chaos.sh [--regions 2|3] [--debug | --binary PATH] [tern chaos flags: --cycles N --seed S --faults a,b --out DIR ...]
# Exit status 0 when the run went to the end, every fault was injected and healed, every heal converged
# and the checker found no anomaly; the report is in --out (default chaos-report/).
set -euo pipefail
cd "$(dirname "$0")/.."

cluster_args=()
chaos_args=()
tern_profile=release
tern_bin=""
while [ $# -gt 0 ]; do
  case "$1" in
    --regions) cluster_args+=("$1" "$2"); shift 2 ;;
    --debug) cluster_args+=("$1"); tern_profile=debug; shift ;;
    --binary) cluster_args+=("$1" "$2"); tern_bin="$2"; shift 2 ;;
    *) chaos_args+=("$1"); shift ;;
  esac
done

scripts/setup.sh
export TERN_PRELOAD="/usr/lib/faketime/libfaketime.so.1"
scripts/cluster.sh up "${cluster_args[@]}"
. scripts/env.sh
state="${TERN_CLUSTER_STATE:-$HOME/.cache/tern/cluster}"
variant="$(cat "$state/variant")"
exec "${tern_bin:-$CARGO_TARGET_DIR/$tern_profile/tern}" chaos \
  --topology "deploy/compose/$variant/topology.host.toml" \
  --clocks "$state/clocks" \
  "${chaos_args[@]}"
