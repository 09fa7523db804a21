"""MainWindow: start-up and close, solves from the UI, cancel, export, error dialogs, settings."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import time

import h5py
import numpy as np
from PySide6.QtCore import Qt

from app.panels.results_panel import NO_RESULT
from engine.errors import EngineError
from engine.jobs import Progress


def test_window_starts_and_closes_cleanly(qtbot, settings, aloop, monkeypatch):
    import app.main_window as mw

    monkeypatch.setattr(mw, "bundled_models", lambda: [])
    w = mw.MainWindow(settings)
    qtbot.addWidget(w)
    w.show()
    with qtbot.waitSignal(w.started, timeout=15_000):
        pass
    assert w.banner.isVisible() and "No model yet" in w.banner.text()
    assert w.state.truth is not None and w.state.task == "inverse"
    assert 0.01 < w.state.mask[1].mean() < 0.06 and not w.state.mask[0].any()  # ~3 % of u observed
    assert w.task_panel.method_box.currentText() in ("dataspace", "classical")
    from engine import __version__

    assert f"PIDDM Studio {__version__}" in mw.about_text()  # Help → About: what a bug report needs
    w.close()
    assert not w.jobs.running()


def _solve(qtbot, w, task, method, timeout=20_000):
    w.task_panel.task_box.setCurrentText(task)
    w.task_panel.method_box.setCurrentText(method)
    with qtbot.waitSignal(w.controller.solve_done, timeout=timeout) as blocker:
        qtbot.mouseClick(w.task_panel.solve_btn, qtbot_button())
    return blocker.args[0]


def qtbot_button():
    from PySide6.QtCore import Qt

    return Qt.MouseButton.LeftButton


def test_forward_classical_solve_fills_views_and_exports(qtbot, make_window, tmp_path):
    w = make_window(16)
    (r,) = _solve(qtbot, w, "forward", "classical")
    assert w.state.mask[0].all() and not w.state.mask[1].any()
    assert r.metrics["residual_mse"] < 1e-8
    views = w.results.views()
    assert views["u"].data() is not None and views["residual"].data() is not None
    assert views["error"].data() is not None
    assert views["std"].data() is None and views["std"].plot.titleLabel.text.endswith("none, one answer")  # deterministic
    assert w.tabs.currentWidget() is w.results
    solved_mask = w.state.mask.copy()
    w.state.mask[1, 3, 3] = True  # an edit after the solve does not belong to its answer
    out = w.export_result(str(tmp_path / "result.h5"))
    from engine.io.hdf5 import read_fields

    ff = read_fields(out, expect_pde="darcy", expect_grid=16)
    assert ff.fields.shape == (1, 2, 16, 16) and ff.mask is not None and ff.residual is not None
    np.testing.assert_array_equal(ff.mask[0], solved_mask)
    with h5py.File(out) as h:
        assert h.attrs["format"] == "piddm-fields" and h["mask"].dtype == np.uint8
        assert h["fields"].compression == "gzip"
        assert json.loads(h.attrs["solve"])["method"] == "classical" and h.attrs["task"] == "forward"
    if shutil.which("h5dump"):  # a reader that is not ours (Debian hdf5-tools)
        dump = subprocess.run(["h5dump", "-a", "/format", "-d", "/residual", str(out)],
                              capture_output=True, text=True, check=True).stdout
        assert '"piddm-fields"' in dump and "DATASET \"/residual\"" in dump
    png = tmp_path / "res.png"
    w.export_png(views["residual"], "residual", str(png))
    assert png.stat().st_size > 1000 and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_an_empty_view_is_not_exported_as_a_blank_png(make_window, tmp_path, dialogs):
    w = make_window(16)
    w.export_png(w.compare.rows[0][0], "compare 1 field", str(tmp_path / "blank.png"))
    assert [d["title"] for d in dialogs] == ["Nothing to export"] and not (tmp_path / "blank.png").exists()


def test_exports_on_a_full_disk_become_dialogs_and_leave_no_file(qtbot, make_window, tmp_path, dialogs, full_disk):
    w = make_window(16)
    _solve(qtbot, w, "forward", "classical")
    assert w.export_result(str(tmp_path / "result.h5")) is None
    w.export_png(w.results.views()["residual"], "residual", str(tmp_path / "res.png"))
    assert [d["title"] for d in dialogs] == ["Export failed", "Export failed"]
    assert all("No space left on device" in d["text"] for d in dialogs)
    assert list(tmp_path.iterdir()) == []  # neither file, nor a half-written temporary


def test_inverse_dataspace_with_compare(qtbot, make_window):
    w = make_window(16)
    w.task_panel.ensemble.setValue(2)
    w.task_panel.steps.setValue(5)
    w.task_panel.compare_box.setChecked(True)
    w.task_panel.compare_method.setCurrentText("classical")  # inverse: classical must fail cleanly
    w.task_panel.compare_box.setChecked(False)
    outs = _solve(qtbot, w, "inverse", "dataspace", timeout=60_000)
    assert outs[0].method == "dataspace" and outs[0].mean.shape == (2, 16, 16)
    assert np.isfinite(outs[0].residual).all() and "rel_l2_u" in outs[0].metrics  # vs the demo truth


def test_a_compare_shows_and_exports_every_methods_answer(qtbot, make_window, tmp_path):
    from engine.io.hdf5 import read_fields

    w = make_window(16)
    w.task_panel.steps.setValue(5)
    w.task_panel.compare_box.setChecked(True)
    w.task_panel.compare_method.setCurrentText("classical")
    outs = _solve(qtbot, w, "forward", "dataspace", timeout=60_000)
    assert [r.method for r in outs] == ["dataspace", "classical"]
    res = w.results  # the Results tab shows the chosen method's answer, and offers the other
    assert res.summary.text().startswith("<b>dataspace</b>") and res.method_box.isVisibleTo(res)
    np.testing.assert_array_equal(res.views()["u"].data(), outs[0].mean[1])
    res.method_box.setCurrentText("classical")
    assert res.summary.text().startswith("<b>classical</b>")
    np.testing.assert_array_equal(res.views()["u"].data(), outs[1].mean[1])
    out = w.export_result(str(tmp_path / "answer.h5"))  # the file named holds the answer on show
    assert sorted(p.name for p in tmp_path.iterdir()) == ["answer-dataspace.h5", "answer.h5"]
    assert read_fields(out).method == "classical" and read_fields(tmp_path / "answer-dataspace.h5").method == "dataspace"
    np.testing.assert_array_equal(read_fields(out).fields[0], outs[1].mean)
    assert "and dataspace beside it" in w.statusBar().currentMessage()
    # side by side on one colour scale per row (residuals of different size compare at a glance)
    for row in w.compare.rows:
        assert row[0].cbar.levels() == row[1].cbar.levels()
    assert w.compare.rows[1][0].natural_levels() != w.compare.rows[1][1].natural_levels()
    assert not w.compare.hint.isVisibleTo(w.compare)
    # another PDE: nothing of this compare stays on screen
    with qtbot.waitSignal(w.controller.demo_ready, timeout=10_000):
        w.model_panel.pde_box.setCurrentText("poisson")
    assert w.compare.table.rowCount() == 0 and w.compare.hint.isVisibleTo(w.compare)
    assert all(v.data() is None for pair in w.compare.sides for v in pair)
    assert res.summary.text() == NO_RESULT and res.views()["residual"].data() is None
    assert w.task_panel.status.text().strip() == "" and not res.method_box.isVisibleTo(res)
    assert w.statusBar().currentMessage().startswith("Demo task loaded")  # not the darcy compare's line


def test_export_writes_the_last_solves_answers_with_the_task_they_solved(qtbot, make_window, tmp_path):
    from engine.io.hdf5 import read_fields

    w = make_window(16)
    w.task_panel.steps.setValue(5)
    w.task_panel.compare_box.setChecked(True)
    w.task_panel.compare_method.setCurrentText("classical")
    assert len(_solve(qtbot, w, "forward", "dataspace", timeout=60_000)) == 2  # a compare
    w.task_panel.compare_box.setChecked(False)
    (r,) = _solve(qtbot, w, "inverse", "dataspace", timeout=60_000)
    solved_mask = w.state.mask.copy()
    w.task_panel.task_box.setCurrentText("forward")  # the task box and the mask move on; the answer stays
    out = w.export_result(str(tmp_path / "last.h5"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.h5"]  # not the earlier compare's classical
    with h5py.File(out) as h:
        assert h.attrs["task"] == "inverse" and h.attrs["method"] == "dataspace"
    np.testing.assert_array_equal(read_fields(out).mask[0], solved_mask)


def test_undo_of_a_task_switch_restores_the_task_and_its_methods(qtbot, make_window):
    w = make_window(16)
    tp = w.task_panel

    def methods():
        return [tp.method_box.itemText(i) for i in range(tp.method_box.count())]

    assert tp.task_box.currentText() == "inverse" and "classical" not in methods()
    assert methods() == ["dataspace"] and not tp.compare_box.isEnabled()  # no model: nothing to compare with
    inverse_mask = w.state.mask.copy()
    tp.task_box.setCurrentText("forward")
    assert w.state.mask[0].all() and "classical" in methods()
    w.undo_action.trigger()
    assert tp.task_box.currentText() == w.state.task == "inverse" and "classical" not in methods()
    np.testing.assert_array_equal(w.state.mask, inverse_mask)
    w.redo_action.trigger()
    assert tp.task_box.currentText() == w.state.task == "forward" and w.state.mask[0].all()
    assert "Ctrl+Y" in [k.toString() for k in w.redo_action.shortcuts()]


def test_ctrl_y_redoes(qtbot, make_window):
    """Ctrl+Y, the Windows redo key, redoes: bound once (the platform's Redo keys may hold it already;
    bound twice, Qt called the key ambiguous and did nothing)."""
    w = make_window(16)
    keys = [k.toString() for k in w.redo_action.shortcuts()]
    assert keys.count("Ctrl+Y") == 1 and len(keys) == len(set(keys))
    before = w.state.mask.copy()
    w.inputs.random_points(k=5)
    after = w.state.mask.copy()
    w.activateWindow()
    qtbot.keyClick(w, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    np.testing.assert_array_equal(w.state.mask, before)
    qtbot.keyClick(w, Qt.Key.Key_Y, Qt.KeyboardModifier.ControlModifier)
    np.testing.assert_array_equal(w.state.mask, after)


def slow_fake(model, pde, values, mask, opts, on_progress, cancel):
    for i in range(10_000):
        cancel.raise_if_cancelled()
        time.sleep(0.01)
        on_progress(Progress("solve", i, 10_000, {"misfit": 1.0 / (i + 1)}, preview=values.astype(np.float32)))
    raise AssertionError("not cancelled")


def failing_fake(model, pde, values, mask, opts, on_progress, cancel):
    raise EngineError("observations hold NaN at node (3, 4)")


def test_cancel_stops_a_solve_within_a_second(qtbot, make_window):
    w = make_window(16)
    w.controller.solve_fn = slow_fake
    w.task_panel.method_box.setCurrentText("dataspace")
    with qtbot.waitSignal(w.controller.busy_changed, timeout=5000):
        w.task_panel.solve_btn.click()
    qtbot.waitUntil(lambda: w.task_panel.bar.maximum() == 10_000, timeout=5000)
    assert not w.task_panel.solve_btn.isEnabled()
    t0 = time.perf_counter()
    with qtbot.waitSignal(w.controller.solve_cancelled, timeout=1000):
        w.task_panel.cancel_btn.click()
    assert time.perf_counter() - t0 < 1.0
    assert w.task_panel.solve_btn.isEnabled()
    assert w.task_panel.bar.value() == 0  # not a full bar: the solve did not finish


def test_changing_the_pde_during_a_solve_stops_it_and_keeps_nothing_of_it(qtbot, make_window, dialogs):
    w = make_window(16)
    w.controller.solve_fn = slow_fake  # darcy-shaped previews every 10 ms until cancelled
    w.task_panel.method_box.setCurrentText("dataspace")
    with qtbot.waitSignal(w.controller.busy_changed, timeout=5000):
        w.task_panel.solve_btn.click()
    qtbot.waitUntil(lambda: w.task_panel.bar.maximum() == 10_000, timeout=5000)
    with qtbot.waitSignal(w.controller.solve_cancelled, timeout=5000):
        w.model_panel.pde_box.setCurrentText("burgers")  # one channel where the solve had two
    qtbot.waitUntil(lambda: w.state.pde_name == "burgers" and w.state.values.shape[0] == 1, timeout=10_000)
    qtbot.wait(100)  # any report still queued is delivered (and must be dropped, not drawn)
    assert not w.state.results and dialogs == []
    assert "changed while it ran" in w.task_panel.status.text() and w.task_panel.solve_btn.isEnabled()


def test_quick_pde_changes_end_on_the_last_pdes_demo(qtbot, make_window, dialogs, monkeypatch):
    import torch

    import app.controller as ctl
    from engine import pdes
    from engine.grid import Grid

    w = make_window(16)
    make_demo = ctl.make_demo

    def poisson_last(name, *args, **kw):  # the first PDE's demo comes back after the others'
        time.sleep(0.5 if name == "poisson" else 0.0)
        return make_demo(name, *args, **kw)

    monkeypatch.setattr(ctl, "make_demo", poisson_last)
    for name in ("poisson", "burgers", "helmholtz"):  # faster than their demos are made
        w.model_panel.pde_box.setCurrentText(name)
    qtbot.wait(700)  # past the poisson demo's return
    qtbot.waitUntil(lambda: not w.jobs.running(), timeout=20_000)
    qtbot.wait(100)
    s = w.state
    assert s.pde_name == "helmholtz" and s.truth is not None and s.values.shape == s.mask.shape == (2, 16, 16)
    r = pdes.get("helmholtz").residual(torch.as_tensor(s.truth[None]), Grid(16))
    assert float(r.abs().max()) < 1e-8  # the helmholtz demo, not an earlier PDE's that came back last
    assert s.mask[1].any() and not s.mask[0].any() and dialogs == []  # the inverse demo's points on u


def test_solve_and_cancel_from_the_keyboard(qtbot, make_window):
    w = make_window(16)
    w.controller.solve_fn = slow_fake
    w.task_panel.method_box.setCurrentText("dataspace")
    with qtbot.waitSignal(w.controller.busy_changed, timeout=5000):
        qtbot.keyClick(w, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    with qtbot.waitSignal(w.controller.solve_cancelled, timeout=5000):
        qtbot.keyClick(w, Qt.Key.Key_Period, Qt.KeyboardModifier.ControlModifier)
    assert w.task_panel.solve_btn.isEnabled()


def test_engine_failure_shows_a_dialog(qtbot, make_window, dialogs):
    w = make_window(16)
    w.controller.solve_fn = failing_fake
    w.task_panel.method_box.setCurrentText("dataspace")
    with qtbot.waitSignal(w.controller.solve_failed, timeout=5000):
        w.task_panel.solve_btn.click()
    assert dialogs and dialogs[-1]["title"] == "Solve failed"
    assert "NaN at node (3, 4)" in dialogs[-1]["text"] and "Traceback" in dialogs[-1]["details"]
    assert dialogs[-1]["text"].startswith("observations hold NaN")  # the engine's own error: its message, no type name
    w.show_exception(ZeroDivisionError, ZeroDivisionError("x"), None)  # the excepthook: shown, survivable
    assert dialogs[-1]["title"] == "Unexpected error"
    assert w.task_panel.solve_btn.isEnabled()


def test_import_fields_file(qtbot, make_window, tiny_dataset, dialogs, monkeypatch):
    import app.main_window as mw

    with h5py.File(tiny_dataset) as h:
        stored = h["fields"][()]
    w = make_window(16)
    asked = []
    monkeypatch.setattr(mw.QInputDialog, "getInt", lambda *a: asked.append(a[2:]) or (5, True))
    w.import_fields(str(tiny_dataset))  # 8 samples: which one is asked
    assert asked[-1][1:] == (0, 0, 7) and "holds 8 samples" in asked[-1][0]
    np.testing.assert_array_equal(w.state.values, stored[5])
    # a file without a mask (a dataset): the task's observations of it, the file's fields as the truth
    assert w.state.task == "inverse" and not w.state.mask[0].any() and 0 < w.state.mask[1].mean() < 0.1
    np.testing.assert_array_equal(w.state.truth, stored[5])
    assert w.statusBar().currentMessage().startswith("sample 5 of ")
    monkeypatch.setattr(mw.QInputDialog, "getInt", lambda *a: (2, False))  # cancelled: nothing changes
    w.import_fields(str(tiny_dataset))
    np.testing.assert_array_equal(w.state.values, stored[5])
    w.import_fields(str(tiny_dataset), sample=8)  # out of range: a dialog
    assert "sample 8 out of range (the file holds 8)" in dialogs[-1]["text"]
    w.import_fields(str(tiny_dataset), mask_only=True, sample=0)  # no mask dataset: a dialog, no crash
    assert "no 'mask'" in dialogs[-1]["text"]


def test_open_run_lists_a_folders_models_and_says_when_there_is_none(qtbot, make_window, dialogs, tmp_path):
    from pathlib import Path

    bundled = Path(__file__).resolve().parents[2] / "resources" / "models" / "darcy-32"
    assert bundled.is_dir(), "resources/models/darcy-32 is committed"
    w = make_window(16)
    panel = w.model_panel
    with qtbot.waitSignal(w.controller.model_changed, timeout=60_000):
        opened = panel.open_folder(str(bundled))
    assert len(panel.infos()) == 3 and w.state.model_info is opened is panel.infos()[0]
    panel.models.setCurrentRow(0)  # "no model"
    qtbot.waitUntil(lambda: w.state.model is None, timeout=10_000)
    with qtbot.waitSignal(w.controller.model_changed, timeout=60_000):
        assert panel.open_folder(str(bundled)) is opened  # listed already: opened again, not listed twice
    assert len(panel.infos()) == 3 and w.state.model_info is panel.infos()[0]
    assert panel.open_folder(str(tmp_path)) is None and dialogs[-1]["title"] == "No model found"


def test_the_screenshot_tour_keeps_out_of_the_users_settings(qapp):
    from app.main import make_settings

    user, tour = make_settings(), make_settings(throwaway=True)
    assert tour.fileName() != user.fileName() and "piddm-settings-" in tour.fileName()
    tour.setValue("steps", 7)
    tour.sync()
    assert make_settings(throwaway=True).value("steps") is None  # each tour starts from the defaults


def test_settings_persist(qtbot, settings, aloop, monkeypatch):
    import app.main_window as mw

    monkeypatch.setattr(mw, "bundled_models", lambda: [])
    w = mw.MainWindow(settings, startup=False)
    qtbot.addWidget(w)
    w.task_panel.ensemble.setValue(13)
    w.task_panel.steps.setValue(77)
    w.resize(900, 700)
    w.close()
    w2 = mw.MainWindow(settings, startup=False)
    qtbot.addWidget(w2)
    assert w2.state.ensemble == 13 and w2.task_panel.steps.value() == 77
    assert w2.size().height() == 700 and settings.value("window_state") is not None
    w2.close()


def test_runs_opened_in_a_session_are_listed_in_the_next(qtbot, settings, aloop, monkeypatch, tmp_path):
    import app.main_window as mw
    from engine import models

    run = tmp_path / "runs" / "darcy-16" / "student"
    run.mkdir(parents=True)
    (run / models.FILENAME).write_bytes(b"")  # listing reads the card only
    (run / models.CARD).write_text(json.dumps({"pde": "darcy", "kind": "student"}))
    monkeypatch.setattr(mw, "bundled_models", lambda: [])
    w = mw.MainWindow(settings, startup=False)
    qtbot.addWidget(w)
    bundled = models.bundled_models()[:1]  # listed at every start: not remembered
    w.model_panel.set_models([*bundled, *models.find_runs(tmp_path / "runs")])
    w.task_panel.seed.setValue(7)
    w.task_panel.norm_box.setCurrentIndex(2)
    from engine import pdes
    from engine.io.hdf5 import FieldsFile, write_fields

    mine = write_fields(tmp_path / "mine.h5", FieldsFile(np.zeros((2, 2, 16, 16), np.float32), "darcy",
                                                         pdes.get("darcy").fields))
    w.training.use_dataset(str(mine))  # the file of the user's to train on, a 16² one
    w.close()
    w2 = mw.MainWindow(settings, startup=False)
    qtbot.addWidget(w2)
    assert [i.path for i in w2._remembered_runs()] == [run]
    assert w2.task_panel.seed.value() == 7 and w2.task_panel.norm_box.currentIndex() == 2
    assert w2.training.dataset.text() == str(mine) and w2.training.grid_n == 16  # not the default 32
    w2.close()
    (run / models.FILENAME).unlink()  # deleted since: no longer listed
    assert mw.MainWindow(settings, startup=False)._remembered_runs() == []


def test_a_zoomed_view_returns_to_the_whole_field(qtbot, make_window):
    from types import SimpleNamespace

    w = make_window(16)
    cv = w.inputs.canvases[0]

    def zoomed() -> bool:
        (x0, x1), (y0, y1) = cv.plot.viewRange()
        return x1 - x0 < 0.5

    cv.plot.setRange(xRange=(0.4, 0.5), yRange=(0.4, 0.5), padding=0)
    assert zoomed()
    w.reset_zoom()  # View ▸ Whole fields (Ctrl+0)
    assert not zoomed()
    double = SimpleNamespace(double=lambda: True)
    cv.plot.setRange(xRange=(0.4, 0.5), yRange=(0.4, 0.5), padding=0)
    w.inputs.set_tool("brush")
    cv._on_click(double)  # drawing: a double click is two strokes, the view stays
    assert zoomed()
    w.inputs.set_tool("pan")
    cv._on_click(double)
    assert not zoomed()


def test_residual_norm_choice_reaches_the_solve(qtbot, make_window, dialogs):
    seen = []

    def recording_fake(model, pde, values, mask, opts, on_progress, cancel):
        seen.append(opts)
        raise EngineError("recorded")

    w = make_window(16)
    w.controller.solve_fn = recording_fake
    w.task_panel.method_box.setCurrentText("dataspace")
    assert w.task_panel.norm_box.currentText() == "auto"
    for text, sigma in (("auto", None), ("H⁻²", 1.0), ("plain (L²)", 0.0)):
        w.task_panel.norm_box.setCurrentText(text)
        with qtbot.waitSignal(w.controller.solve_failed, timeout=5000):
            w.task_panel.solve_btn.click()
        assert seen[-1]["residual_norm"] == sigma and w.state.residual_norm == sigma


def test_axes_follow_the_pde(qtbot, make_window):
    """Every field view names its axes after the PDE: burgers' rows are time, the others' y."""
    from app.canvas.field_view import FieldView

    w = make_window(16)
    views = w.findChildren(FieldView)
    assert len(views) >= 4 and {v.plot.getAxis("left").labelText for v in views} == {"y"}
    with qtbot.waitSignal(w.controller.model_changed, timeout=20_000):
        asyncio.ensure_future(w.controller.change_pde("burgers"))
    views = w.findChildren(FieldView)  # the results' channel views are made anew for the new channels
    assert {(v.plot.getAxis("left").labelText, v.plot.getAxis("bottom").labelText) for v in views} == {("t", "x")}
    shown = w.model_panel.equation.text()  # the equation with its parameters, the channels with units
    assert "(nu = 0.01, ic_scale = 1)" in shown and "u: velocity" in shown
