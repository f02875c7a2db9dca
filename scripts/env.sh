# Sourced by the scripts: one target directory outside the clone, so RocksDB's C++ is built once per machine.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/tern/target}"
export PATH="$HOME/.cargo/bin:$PATH"
TERN_BIN="$CARGO_TARGET_DIR/debug/tern"
export TERN_BIN
