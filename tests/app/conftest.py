"""App fixtures: offscreen Qt, settings in tmp_path, a qasync loop that runs inside pytest-qt's waits."""

from __future__ import annotations

import asyncio

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("qasync")


@pytest.fixture(autouse=True)
def collect_garbage_on_the_gui_thread_only():
    """As in the app (app.main.setup_qt): a cyclic collection on a job's worker thread that destroys
    Qt objects deadlocks against the GUI thread. Automatic collection is back on after each app test,
    for the engine's tests that follow in the same process."""
    import gc

    gc.disable()
    yield
    gc.collect()  # this test's garbage, here on the GUI thread
    gc.enable()


@pytest.fixture
def settings(qapp, tmp_path):
    from PySide6.QtCore import QSettings

    from app.main import make_settings, setup_qt

    setup_qt()
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp_path / "settings"))
    return make_settings()


@pytest.fixture
def dialogs(monkeypatch):
    """Record message boxes instead of showing them."""
    import app.dialogs as d

    shown = []

    class Recorder:
        class Icon:
            Critical = 3

        class StandardButton:
            Ok = 1024

        def __init__(self, icon, title, text, buttons=None, parent=None):
            shown.append({"title": title, "text": text, "details": ""})

        def setDetailedText(self, t):
            shown[-1]["details"] = t

        def open(self):
            pass

    monkeypatch.setattr(d, "QMessageBox", Recorder)
    return shown


@pytest.fixture
def aloop(qapp):
    """A qasync loop marked running: its callbacks run whenever Qt processes events (qtbot waits)."""
    import qasync

    loop = qasync.QEventLoop(qapp, already_running=True)
    asyncio.set_event_loop(loop)
    yield loop
    for task in asyncio.all_tasks(loop):
        task.cancel()
    qapp.processEvents()
    qapp.aboutToQuit.disconnect(loop._after_run_forever)
    loop._after_run_forever()
    loop._QEventLoop__is_running = False  # marked running by already_running=True; Qt never exec'd it
    asyncio.events._set_running_loop(None)
    loop.close()
    asyncio.set_event_loop(None)


@pytest.fixture
def make_window(qtbot, settings, aloop, monkeypatch):
    """Build MainWindow on a 16² darcy demo (no bundled model); closes it at teardown."""
    import pyqtgraph as pg

    import app.main_window as mw

    pg.setConfigOptions(mouseRateLimit=-1)  # simulated drags send moves faster than 100/s
    monkeypatch.setattr(mw, "bundled_models", lambda: [])
    windows = []

    def make(grid: int = 16):
        w = mw.MainWindow(settings, startup=False)
        qtbot.addWidget(w)
        w.state.grid_n = grid
        w.show()
        with qtbot.waitSignal(w.controller.demo_ready, timeout=10_000):
            asyncio.ensure_future(w.controller.load_demo())
        w._refresh_model_ui()
        qtbot.waitExposed(w)
        qtbot.wait(30)  # let the layouts settle before simulated clicks address nodes
        windows.append(w)
        return w

    yield make
    for w in windows:
        w.close()


@pytest.fixture
def loads(monkeypatch):
    """Model loads recorded, each answered by a stand-in student of its card's PDE and grid."""
    from types import SimpleNamespace

    import app.controller as ctl
    from engine import pdes
    from engine.models import read_card

    loaded = []

    def fake_load(path, *, on_progress, cancel):
        loaded.append(path)
        card = read_card(path)
        return SimpleNamespace(kind="student", pde=pdes.get(card.get("pde", "darcy")),
                               grid=SimpleNamespace(n=card.get("grid", 64)), card={}, teacher=None)

    monkeypatch.setattr(ctl, "load_model", fake_load)
    return loaded
