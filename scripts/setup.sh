#!/usr/bin/env bash
# Installs what building and testing Tern needs and is missing: a Rust toolchain check, libclang
# (RocksDB's bindings are generated with it), protoc (the etcd benchmark driver's etcd-client compiles
# etcd's protos with it; Tern's own build uses a vendored one), python3 (the test suite's import check)
# and faketime (the clock-skew test). Safe to run
# again; it only installs what is absent.
set -euo pipefail

say() { printf '[setup] %s\n' "$*" >&2; }

if ! command -v cargo >/dev/null 2>&1; then
  if [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
  else
    say "cargo is missing: install a Rust toolchain (https://rustup.rs) and run this again"
    exit 1
  fi
fi

have_libclang() {
  compgen -G "/usr/lib/llvm-*/lib/libclang*.so*" >/dev/null &&
    compgen -G "/usr/lib/llvm-*/lib/clang/*/include/stdbool.h" >/dev/null
}

missing=()
have_libclang || missing+=(libclang-dev)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
command -v protoc >/dev/null 2>&1 || missing+=(protobuf-compiler)
# The clock-skew test shifts one node's wall clock with libfaketime.
compgen -G "/usr/lib/*/faketime/libfaketime.so.1" >/dev/null || compgen -G "/usr/lib/faketime/libfaketime.so.1" >/dev/null ||
  missing+=(faketime)
if [ ${#missing[@]} -gt 0 ]; then
  . "$(dirname "$0")/apt-lib.sh"
  apt_install "libclang (with clang's headers) builds RocksDB's bindings; protoc, etcd's protos for the etcd benchmark driver; python3 runs the import check; faketime skews a test node's clock" "${missing[@]}"
fi
