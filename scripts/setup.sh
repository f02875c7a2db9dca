#!/usr/bin/env bash
# Installs what building Tern needs and is missing: a Rust toolchain check, and libclang (RocksDB's
# bindings are generated with it). Safe to run again; it only installs what is absent.
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

if ! have_libclang; then
  if command -v apt-get >/dev/null 2>&1; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    say "installing libclang-dev (needed to build RocksDB's bindings)"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq libclang-dev >/dev/null
  else
    say "libclang is missing and apt-get is not available: install libclang (clang's headers included) and run this again"
    exit 1
  fi
fi
