"""piddm-studio PATH / --model RUN_DIR: what the window lists and opens at start-up."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
from fake_runs import fake_run

from app.main import make_window, parse_args


def start(qtbot, settings, argv):
    w = make_window(parse_args(argv), settings)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitUntil(lambda: w.has_started, timeout=30_000)
    return w


def test_a_run_given_with_model_is_listed_with_the_others_and_opened(qtbot, settings, aloop, loads, tmp_path):
    from engine.models import bundled_models

    remembered = fake_run(tmp_path.resolve() / "old" / "student")
    given = fake_run(tmp_path.resolve() / "new" / "student")
    settings.setValue("models/runs", json.dumps([str(remembered)]))
    w = start(qtbot, settings, ["--model", str(given)])
    listed = [i.path for i in w.model_panel.infos()]
    assert listed == [*(i.path for i in bundled_models()), remembered, given]
    assert w.model_panel.models.currentRow() == len(listed)  # row 0 is "no model"
    assert w.state.model_info.path == given
    assert loads == [given]  # not the bundled default first
    assert w.state.truth is not None  # its demo task
    w.close()


def test_a_fields_file_given_as_path_is_imported_with_a_model_of_its_grid(
        qtbot, settings, aloop, loads, monkeypatch, tmp_path, tiny_dataset, dialogs):
    import app.main_window as mw

    with h5py.File(tiny_dataset) as h:
        stored = h["fields"][()]
    run16 = fake_run(tmp_path.resolve() / "runs" / "student", grid=16)  # the file is darcy 16²
    settings.setValue("models/runs", json.dumps([str(run16)]))
    monkeypatch.setattr(mw.QInputDialog, "getInt", lambda *a: (3, True))  # "which of the 8 samples?"
    w = start(qtbot, settings, [str(tiny_dataset)])
    assert not dialogs
    assert (w.state.pde_name, w.state.grid_n) == ("darcy", 16)
    np.testing.assert_array_equal(w.state.values, stored[3])  # no demo over it
    assert w.state.model_info.path == run16 and loads == [run16]
    assert w.statusBar().currentMessage().startswith("sample 3 of tiny.h5")
    w.close()


@pytest.mark.parametrize("what", ["missing", "text file", "empty folder"])
def test_a_path_that_is_neither_a_run_nor_a_fields_file_is_a_dialog(
        qtbot, settings, aloop, monkeypatch, tmp_path, dialogs, what):
    import app.main_window as mw

    monkeypatch.setattr(mw, "bundled_models", lambda: [])
    path = tmp_path / "x"
    if what == "text file":
        path.write_text("not fields")
    elif what == "empty folder":
        path.mkdir()
    w = start(qtbot, settings, [str(path)])
    assert dialogs[-1]["title"] == {"missing": "Cannot open", "text file": "Import failed",
                                    "empty folder": "No model found"}[what]
    assert dialogs[-1]["text"].startswith(f"{path}: " if what != "empty folder" else f"{path} holds no model")
    assert w.state.truth is not None  # and the usual start: the demo task
    w.close()


@pytest.mark.parametrize("argv", [["a", "b"], ["a", "--model", "b"], ["a", "--no-startup"]])
def test_one_path_at_most(argv):
    with pytest.raises(SystemExit):
        parse_args(argv)


def test_the_app_collects_garbage_on_the_gui_thread_only(qapp):
    """A collection triggered on a worker thread destroyed Qt objects there and deadlocked the GUI
    (app.main.setup_qt): automatic collection is off once the app is set up."""
    import gc

    from app.main import setup_qt

    gc.enable()
    setup_qt()
    assert not gc.isenabled()
