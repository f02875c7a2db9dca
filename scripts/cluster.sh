#!/usr/bin/env bash
# Tern as a multi-region cluster of containers (deploy/compose): per region three nodes with volumes, a
# cache node and a replicator, on the region's own network, the regions joined by a WAN network.
#   scripts/cluster.sh up [--regions 2|3] [--debug | --binary PATH]
#                                                     build the image, start, wait until healthy, print how to connect
#   scripts/cluster.sh status                         each container's state and health, and each region's leader
#   scripts/cluster.sh down [--volumes]               stop and remove the containers (and the nodes' data)
# --debug builds the image from the debug binary, --binary from a binary built already (the test suite's).
# TERN_PRELOAD=/usr/lib/faketime/libfaketime.so.1 in the environment lets `tern chaos` skew node clocks.
set -euo pipefail
cd "$(dirname "$0")/.."

state="${TERN_CLUSTER_STATE:-$HOME/.cache/tern/cluster}"
mkdir -p "$state"
say() { printf '[cluster] %s\n' "$*" >&2; }

regions=2
image_args=()
volumes=""
command="${1:-}"
[ $# -gt 0 ] && shift
while [ $# -gt 0 ]; do
  case "$1" in
    --regions) regions="$2"; shift 2 ;;
    --debug) image_args=(--debug); shift ;;
    --binary) image_args=(--binary "$2"); shift 2 ;;
    --volumes) volumes="--volumes"; shift ;;
    *) say "unknown argument $1"; exit 2 ;;
  esac
done
case "$regions" in
  2) variant=two-regions ;;
  3) variant=three-regions ;;
  *) say "--regions is 2 or 3"; exit 2 ;;
esac
# down and status act on the deployment `up` started (down, with none known, on every container the
# three-region file names, which include the two-region ones).
if [ "$command" != up ]; then
  if [ -f "$state/variant" ]; then
    variant="$(cat "$state/variant")"
  else
    variant=three-regions
  fi
fi
dir="deploy/compose/$variant"
export TERN_CLOCKS="$state/clocks"
compose() { docker-compose -p tern -f "$dir/docker-compose.yml" "$@"; }
containers() { compose ps -q; }

host_topology() {
  # region name, then its nodes' and caches' addresses as the host reaches them
  python3 - "$dir/topology.host.toml" <<'PY'
import sys, tomllib
topology = tomllib.load(open(sys.argv[1], "rb"))
for name, region in topology["regions"].items():
    print(name, ",".join(region["nodes"].values()), ",".join(region.get("caches", [])))
PY
}

wait_healthy() {
  local deadline=$((SECONDS + ${TERN_CLUSTER_TIMEOUT:-180})) unhealthy="no containers"
  while [ $SECONDS -lt $deadline ]; do
    if [ -z "$(containers)" ]; then
      sleep 2
      continue
    fi
    unhealthy="$(docker inspect --format '{{.Name}} {{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}' $(containers) |
      grep -v ' healthy$' || true)"
    [ -z "$unhealthy" ] && return 0
    sleep 2
  done
  say "not healthy after ${TERN_CLUSTER_TIMEOUT:-180} s:"
  printf '%s\n' "$unhealthy" >&2
  return 1
}

wait_leaders() {
  local tern="$1" deadline=$((SECONDS + ${TERN_CLUSTER_TIMEOUT:-180}))
  while read -r region nodes _; do
    until "$tern" --endpoint "$nodes" --deadline-secs 5 cluster status 2>/dev/null | grep '"LeaderId": [1-9]' >/dev/null; do
      if [ $SECONDS -ge $deadline ]; then
        say "$region has no leader"
        return 1
      fi
      sleep 1
    done
  done < <(host_topology)
}

docker_ready() {
  docker info >/dev/null 2>&1 && return 0
  if [ -x /etc/init.d/docker ] && [ "$(id -u)" -eq 0 ]; then
    say "starting the Docker daemon"
    /etc/init.d/docker start >/dev/null
    for _ in $(seq 1 30); do
      docker info >/dev/null 2>&1 && return 0
      sleep 1
    done
  fi
  say "the Docker daemon is not running (and docker-compose 1.29 is needed): install Debian's docker.io and docker-compose"
  return 1
}

case "$command" in
  up)
    docker_ready
    image="$(scripts/image.sh "${image_args[@]}" | tail -1)"
    export TERN_IMAGE="$image"
    . scripts/env.sh
    case "${image_args[0]:-}" in
      --debug) tern="$CARGO_TARGET_DIR/debug/tern" ;;
      --binary) tern="${image_args[1]}" ;;
      *) tern="$CARGO_TARGET_DIR/release/tern" ;;
    esac
    if [ -f "$state/variant" ] && [ "$(cat "$state/variant")" != "$variant" ]; then
      say "another deployment ($(cat "$state/variant")) is up: scripts/cluster.sh down first"
      exit 1
    fi
    echo "$variant" >"$state/variant"
    echo "$image" >"$state/image"
    # Every node's clock offset file (libfaketime reads it when preloaded): no offset.
    for node in $(grep -o '^  [a-z-]*-node-[0-9]*:' "$dir/docker-compose.yml" | tr -d ' :'); do
      mkdir -p "$TERN_CLOCKS/$node"
      echo "+0" >"$TERN_CLOCKS/$node/offset"
    done
    chmod -R a+rX "$TERN_CLOCKS"
    compose up -d --remove-orphans
    wait_healthy
    wait_leaders "$tern"
    say "up: $variant from $image"
    while read -r region nodes caches; do
      echo "$region:"
      echo "  tern --endpoint $nodes list-tables"
      [ -n "$caches" ] && echo "  tern --endpoint $caches get-item ...      (the region's cache)"
      echo "  docker run --rm --network tern_$region $image --endpoint $region-node-1:7001 list-tables"
    done < <(host_topology)
    echo "topology (the host's view): $dir/topology.host.toml"
    ;;
  status)
    if [ ! -f "$state/variant" ]; then
      say "no deployment is up"
      exit 1
    fi
    export TERN_IMAGE="$(cat "$state/image")"
    if [ -z "$(containers)" ]; then
      say "no container of the deployment exists: scripts/cluster.sh up"
      exit 1
    fi
    docker inspect --format '{{.Name}} {{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{end}}' $(containers) |
      sed 's#^/##' | sort
    . scripts/env.sh
    tern="$(command -v tern || true)"
    for candidate in "$CARGO_TARGET_DIR/release/tern" "$CARGO_TARGET_DIR/debug/tern"; do
      [ -z "$tern" ] && [ -x "$candidate" ] && tern="$candidate"
    done
    while read -r region nodes _; do
      leader="$("$tern" --endpoint "$nodes" --deadline-secs 3 cluster status 2>/dev/null | grep -o '"LeaderId": [1-9]*' || echo 'no leader')"
      echo "$region: $leader"
    done < <(host_topology)
    ;;
  down)
    [ -f "$state/image" ] && export TERN_IMAGE="$(cat "$state/image")"
    compose down $volumes --remove-orphans
    rm -f "$state/variant" "$state/image"
    [ -n "$volumes" ] && rm -rf "$TERN_CLOCKS"
    say "down"
    ;;
  *)
    sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
