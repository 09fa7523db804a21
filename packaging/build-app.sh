#!/usr/bin/env bash
# Build the one-folder desktop app: dist/piddm-studio/piddm-studio (plus _internal/ beside it).
# Uses the project's .venv (make it with packaging/run-app.sh or `pip install -e ".[app]"` first);
# installs PyInstaller into it if missing. Extra arguments go to pyinstaller.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
if ! "$PY" -c "import PyInstaller" 2>/dev/null; then
    "$PY" -m pip install -q "pyinstaller>=6.22,<7"
fi
"$PY" -m PyInstaller --noconfirm --clean --distpath dist --workpath build "$@" packaging/piddm-studio.spec
echo "built: dist/piddm-studio/piddm-studio ($(du -sh dist/piddm-studio | cut -f1))"
