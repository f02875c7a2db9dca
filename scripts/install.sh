#!/usr/bin/env bash
# Installs the `tern` binary into ~/.cargo/bin (cargo's bin directory), so `tern` is on PATH.
# Builds a release binary in the shared target directory (scripts/env.sh), so RocksDB's C++ is compiled
# once per machine and profile. Arguments go to `cargo install` (e.g. --debug for a faster, unoptimised build).
set -euo pipefail
cd "$(dirname "$0")/.."
path_before="$PATH"
scripts/setup.sh
. scripts/env.sh

say() { printf '[install] %s\n' "$*" >&2; }

cargo install --path node --locked "$@"

bin_dir="${CARGO_INSTALL_ROOT:-${CARGO_HOME:-$HOME/.cargo}}/bin"
say "installed $bin_dir/tern"
case ":$path_before:" in
  *":$bin_dir:"*) say "tern is on PATH: try \`tern --help\`" ;;
  *) say "add $bin_dir to PATH (e.g. \`export PATH=\"$bin_dir:\$PATH\"\` in your shell profile), then run \`tern --help\`" ;;
esac
