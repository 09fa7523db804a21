"""The engine runs headless: importing any of its modules must not pull in Qt, pyqtgraph or the app
(import-linter checks the import statements; this checks what actually loads, lazy imports included
where a module imports at its top)."""

import subprocess
import sys

CHECK = """
import importlib, pkgutil, sys
import engine
names = [m.name for m in pkgutil.walk_packages(engine.__path__, "engine.") if not m.name.endswith("__main__")]
for name in names:
    importlib.import_module(name)
bad = sorted(m for m in sys.modules if m.split('.')[0] in {'PySide6', 'pyqtgraph', 'app', 'qasync', 'superqt'})
assert not bad, bad
assert len(names) > 40, names  # the walk found the engine, not an empty package
print(len(names))
"""


def test_no_engine_module_imports_qt_or_the_app():
    done = subprocess.run([sys.executable, "-c", CHECK], check=True, capture_output=True, text=True)
    assert int(done.stdout.strip()) > 40
