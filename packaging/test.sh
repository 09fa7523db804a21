#!/usr/bin/env bash
# The README's test command: make .venv (CPU torch), install the project with its test extras (pip runs
# only when .venv lacks them: see packaging/venv.sh; CI's fresh clone always installs), then ruff,
# import-linter and pytest (the default, fast tier). Arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
source packaging/venv.sh
venv_install app test
.venv/bin/ruff check .
.venv/bin/lint-imports
QT_QPA_PLATFORM=${QT_QPA_PLATFORM:-offscreen} .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
