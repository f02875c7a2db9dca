#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit and property tests, openraft's storage suite, and the
# end-to-end tests that start real `tern node` processes. Installs what the build needs first.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
. scripts/env.sh

cargo fmt --all -- --check
cargo build --workspace --all-targets
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace --exclude tern-tests
# End-to-end tests one at a time: each runs a region of three processes on a small machine.
cargo test -p tern-tests -- --test-threads=1
