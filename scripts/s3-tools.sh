#!/usr/bin/env bash
# Installs an S3-protocol server for the backup tests, in a virtualenv of its own ($TERN_S3_VENV,
# default ~/.cache/tern/s3-venv): moto's server (PyPI `moto[server]`, which brings boto3, used to
# create buckets and list what Tern wrote). Safe to run again.
set -euo pipefail
venv="${TERN_S3_VENV:-$HOME/.cache/tern/s3-venv}"
want="moto[server]==5.2.5"
if [ ! -f "$venv/.installed" ] || [ "$(cat "$venv/.installed")" != "$want" ]; then
  printf '[setup] installing %s into %s (the backup tests store backups in it)\n' "$want" "$venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check "$want"
  echo "$want" >"$venv/.installed"
fi
