#!/usr/bin/env bash
# Install Omni and run it on embedded defaults (SQLite file in ./.omni, in-process fan-out and
# Celery worker). Prints demo logins (fresh passwords on every start), then serves on
# http://127.0.0.1:8000 (OMNI_HOST / OMNI_PORT to change).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e .
if command -v npm >/dev/null 2>&1; then
  for dir in widget omni/web/ui; do   # customer widget; staff console live modules
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error && npm run --silent build)
  done
else
  echo "npm not found: the chat widget and the staff console scripts are not built" >&2
fi
.venv/bin/omni demo --reset-passwords
exec .venv/bin/omni serve
