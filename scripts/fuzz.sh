#!/usr/bin/env bash
# Fuzzes the expression parser and the DynamoDB JSON decoder with cargo-fuzz (libFuzzer), installing
# cargo-fuzz when it is missing. Runs on the stable toolchain (no sanitizer; RUSTC_BOOTSTRAP lets
# cargo-fuzz pass its flags). Usage: scripts/fuzz.sh [SECONDS_PER_TARGET]
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
seconds="${1:-120}"
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked
export CARGO_TARGET_DIR="${TERN_FUZZ_TARGET_DIR:-$HOME/.cache/tern/fuzz-target}"
export RUSTC_BOOTSTRAP=1
cd node/expression
for target in expression_parser dynamodb_json; do
  echo "--- fuzzing $target for ${seconds}s"
  cargo fuzz run --sanitizer none -O "$target" -- -max_total_time="$seconds" -max_len=300
done
