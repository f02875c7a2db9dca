# Sourced by the scripts that install what they need: apt_install WHY PACKAGE... installs Debian
# packages (through sudo unless root), or says what to install where apt-get is not available.
apt_install() {
  local why="$1"
  shift
  if ! command -v apt-get >/dev/null 2>&1; then
    printf '[setup] missing: %s, and apt-get is not available: install them (%s) and run this again\n' "$*" "$why" >&2
    return 1
  fi
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  printf '[setup] installing %s (%s)\n' "$*" "$why" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null
}
