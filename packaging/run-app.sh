#!/usr/bin/env bash
# The README's first command: make .venv (CPU torch), install the app, open it on the bundled model.
# Later starts run no pip (packaging/venv.sh keeps a stamp) and open the app at once, offline too.
set -euo pipefail
cd "$(dirname "$0")/.."
source packaging/venv.sh
if ! venv_install app; then
    # A reinstall that fails (offline, say) should not keep an app that is already installed from starting.
    [ -x .venv/bin/piddm-studio ] || exit 1
    echo "run-app.sh: the install failed; starting the app already in .venv" >&2
fi
exec .venv/bin/piddm-studio "$@"
