#!/usr/bin/env bash
# Build the one-folder desktop app: dist/piddm-studio/piddm-studio (plus _internal/ beside it).
# Uses the project's .venv, made or updated as packaging/run-app.sh does (CPU torch), or the Python
# named by $PYTHON; installs PyInstaller into it if missing. Extra arguments go to pyinstaller.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${PYTHON:-}" ]; then
    source packaging/venv.sh
    venv_install app
fi
PY=${PYTHON:-.venv/bin/python}
# The bundle takes whatever torch is installed: a CUDA or ROCm build makes it several GB.
if v=$("$PY" -c "import sys, torch; print(torch.__version__); sys.exit(not (torch.version.cuda or torch.version.hip))"); then
    echo "build-app.sh: torch $v is a GPU build; the bundle will be several GB, not ~900 MB" >&2
fi
if ! "$PY" -c "import PyInstaller" 2>/dev/null; then
    "$PY" -m pip install -q "pyinstaller>=6.22,<7"
fi
"$PY" -m PyInstaller --noconfirm --clean --distpath dist --workpath build "$@" packaging/piddm-studio.spec
echo "built: dist/piddm-studio/piddm-studio ($(du -sh dist/piddm-studio | cut -f1))"
