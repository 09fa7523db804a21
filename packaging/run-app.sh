#!/usr/bin/env bash
# The README's first command: make .venv (CPU torch pin), install the app, open it on the bundled model.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q "torch==2.13.0" -e ".[app]"
exec .venv/bin/piddm-studio "$@"
