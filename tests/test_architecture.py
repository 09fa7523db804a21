"""The engine runs headless: importing it must not pull in Qt, pyqtgraph or the app."""

import subprocess
import sys


def test_engine_imports_without_qt():
    code = (
        "import engine.pdes, engine.jobs, engine.io.hdf5, engine.cli.main, sys; "
        "bad = [m for m in sys.modules if m.split('.')[0] in {'PySide6', 'pyqtgraph', 'app', 'qasync', 'superqt'}]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
