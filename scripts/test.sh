#!/usr/bin/env bash
# The whole test suite: formatting, import cycles, lints, unit and property tests, openraft's storage suite, and the
# end-to-end tests that start real `tern node` processes. Installs what the build needs first.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
. scripts/env.sh

log="$(mktemp)"
trap 'rm -f "$log"' EXIT
tests() { "$@" 2>&1 | tee -a "$log"; }

cargo fmt --all -- --check
# No two source files of the node import each other (docs/architecture.md).
scripts/import-cycles.py node/src
cargo build --workspace --all-targets
cargo clippy --workspace --all-targets -- -D warnings
tests cargo test --workspace --exclude tern-tests
# End-to-end tests one at a time: each runs a region of three processes on a small machine.
tests cargo test -p tern-tests -- --test-threads=1

passed=$(grep -Eo 'test result: [a-zA-Z]+\. [0-9]+ passed' "$log" | awk '{s += $4} END {print s + 0}')
failed=$(grep -Eo '[0-9]+ failed;' "$log" | awk '{s += $1} END {print s + 0}')
echo "summary: $passed passed, $failed failed"
