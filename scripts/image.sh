#!/usr/bin/env bash
# Builds the container image tern:VERSION (and tern:latest) from Tern's own release binary, pulling
# nothing: a FROM scratch image (deploy/image/Dockerfile) holding the binary, exactly the shared
# libraries it loads, libfaketime, and a non-root user (tern, uid 10001) with its data directory.
#   scripts/image.sh                  release binary (what a deployment runs)
#   scripts/image.sh --debug          the debug binary (a quicker image when the test suite built it)
#   scripts/image.sh --binary PATH    that binary, built already (the test suite's)
# Prints the image's name on the last line.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
. scripts/env.sh

profile=release
binary=""
case "${1:-}" in
  --debug) profile=debug ;;
  --binary) profile=given; binary="$2" ;;
esac
if ! command -v docker >/dev/null 2>&1; then
  echo "[image] docker is missing: install Docker Engine (Debian's docker.io) and run this again" >&2
  exit 1
fi
case "$profile" in
  release) cargo build --release -p tern-node --bin tern ;;
  debug) cargo build -p tern-node --bin tern ;;
esac
binary="${binary:-$CARGO_TARGET_DIR/$profile/tern}"
version="$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)"
tag="tern:$version"
[ "$profile" = release ] || tag="tern:$version-$profile"

stage="$CARGO_TARGET_DIR/image-$profile"
rm -rf "$stage"
# data/backups: where compose mounts the backup store every node shares (owned by the user, so that a
# new volume mounted there is too).
mkdir -p "$stage/rootfs/usr/local/bin" "$stage/rootfs/etc" "$stage/rootfs/tmp" "$stage/data/backups"
chmod 1777 "$stage/rootfs/tmp"
# Without its debug info (the release build keeps line tables: 500 MB of them); symbols stay, so
# backtraces still name functions.
if command -v strip >/dev/null 2>&1; then
  strip --strip-debug -o "$stage/rootfs/usr/local/bin/tern" "$binary"
else
  cp "$binary" "$stage/rootfs/usr/local/bin/tern"
fi
# The dynamic loader and every library ldd resolves, at the same paths.
copy_with_parents() { mkdir -p "$stage/rootfs$(dirname "$1")" && cp -L "$1" "$stage/rootfs$1"; }
ldd "$binary" | grep -o '/[^ ]*' | sort -u | while read -r lib; do copy_with_parents "$lib"; done
# libfaketime, and what it loads itself.
faketime="$( (compgen -G "/usr/lib/*/faketime/libfaketime.so.1" || compgen -G "/usr/lib/faketime/libfaketime.so.1") | head -1)"
mkdir -p "$stage/rootfs/usr/lib/faketime"
cp -L "$faketime" "$stage/rootfs/usr/lib/faketime/libfaketime.so.1"
ldd "$faketime" | grep -o '/[^ ]*' | sort -u | while read -r lib; do
  [ -e "$stage/rootfs$lib" ] || copy_with_parents "$lib"
done
# Name resolution for the libc (docker supplies /etc/hosts and /etc/resolv.conf at run time).
printf 'hosts: files dns\n' >"$stage/rootfs/etc/nsswitch.conf"
printf 'root:x:0:0:root:/:/sbin/nologin\ntern:x:10001:10001:tern:/var/lib/tern:/sbin/nologin\n' >"$stage/rootfs/etc/passwd"
printf 'root:x:0:\ntern:x:10001:\n' >"$stage/rootfs/etc/group"
cp deploy/image/Dockerfile "$stage/Dockerfile"

docker build -q -t "$tag" "$stage" >/dev/null
if [ "$profile" = release ]; then
  docker tag "$tag" tern:latest
fi
size="$(docker image inspect "$tag" --format '{{.Size}}')"
echo "[image] $tag: $((size / 1024 / 1024)) MiB ($(find "$stage/rootfs" -type f | wc -l) files)" >&2
echo "$tag"
