#!/usr/bin/env bash
# Builds Tern if needed and starts a playground region: three nodes on 127.0.0.1:7001-7003 and a cache
# node on 127.0.0.1:7201.
# Arguments go to `tern playground` (e.g. --data-dir DIR --nodes-per-region 5 --base-port 8001).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
. scripts/env.sh
cargo build -p tern-node --bin tern
exec "$TERN_BIN" playground "$@"
