#!/usr/bin/env bash
# The README's test command: make .venv (CPU torch pin), install the project with its test extras,
# then ruff, import-linter and pytest (the default, fast tier).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q "torch==2.13.0" -e ".[test]"
.venv/bin/ruff check .
.venv/bin/lint-imports
QT_QPA_PLATFORM=${QT_QPA_PLATFORM:-offscreen} .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
