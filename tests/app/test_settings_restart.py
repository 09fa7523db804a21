"""Settings kept across a restart (settings in tmp_path, conftest.py): the open model, the method and
compare choices, the brush, the current tab; a remembered model that is gone gives the default, said."""

from __future__ import annotations

import asyncio

from fake_runs import fake_run


def _start(qtbot, settings, mw):
    w = mw.MainWindow(settings)
    qtbot.addWidget(w)
    w.show()
    with qtbot.waitSignal(w.started, timeout=30_000):
        pass
    return w


def test_choices_made_in_one_session_come_back_in_the_next(qtbot, settings, aloop, monkeypatch, loads, tmp_path):
    import app.main_window as mw
    from engine.models import find_runs

    monkeypatch.setattr(mw, "bundled_models", lambda: [])
    run = fake_run(tmp_path / "runs" / "darcy-16" / "student", "darcy", 16)
    w = mw.MainWindow(settings, startup=False)
    qtbot.addWidget(w)
    w.show()
    (info,) = find_runs(str(tmp_path / "runs"))
    w.model_panel.set_models([info], info)
    with qtbot.waitSignal(w.controller.model_changed, timeout=10_000):
        asyncio.ensure_future(w.controller.load_model_info(info))
    tp = w.task_panel
    assert tp.method_box.currentText() == "piddm"  # what opening a model picks
    tp.method_box.setCurrentText("piddm-ref")
    tp.compare_box.setChecked(True)
    tp.compare_method.setCurrentText("dataspace")
    w.inputs.set_tool("brush")
    w.inputs.size.setValue(4)
    w.inputs.value.setValue(7.5)
    w.tabs.setCurrentWidget(w.results)
    w.close()

    w2 = _start(qtbot, settings, mw)
    s, tp = w2.state, w2.task_panel
    assert s.model_info is not None and s.model_info.path == run and loads[-1] == run
    assert tp.method_box.currentText() == "piddm-ref" and s.method == "piddm-ref"
    assert tp.comparing and tp.compare_method.currentText() == "dataspace"
    assert w2.inputs.tool == "brush" and w2.inputs.tool_actions["brush"].isChecked()
    assert w2.inputs.size.value() == 4 and w2.inputs.value.value() == 7.5
    assert all(cv.tool == "brush" and cv.brush_size == 4 and cv.brush_value == 7.5 for cv in w2.inputs.canvases)
    assert w2.tabs.currentWidget() is w2.results
    w2.close()


def test_a_remembered_model_that_is_gone_gives_the_bundled_default_and_says_so(
        qtbot, settings, aloop, loads, tmp_path):
    import app.main_window as mw

    gone = tmp_path / "runs" / "gone"
    settings.setValue("models/open", str(gone))
    w = _start(qtbot, settings, mw)
    info = w.state.model_info
    assert info is not None and (info.pde, info.name) == ("darcy", "piddm") and mw.is_bundled(info.path)
    msg = w.statusBar().currentMessage()
    assert msg.startswith(f"The model open last time ({gone}) is not there any more: opened darcy · piddm instead.")
    assert msg.endswith(mw.DEMO_LOADED)
    w.close()
    assert settings.value("models/open") == "bundled:darcy/piddm"  # the bundled one, wherever the app is


def test_a_first_start_opens_the_bundled_default(qtbot, settings, aloop, loads):
    import app.main_window as mw

    w = _start(qtbot, settings, mw)
    assert (w.state.model_info.pde, w.state.model_info.name) == ("darcy", "piddm")
    assert w.statusBar().currentMessage() == mw.DEMO_LOADED and w.tabs.currentIndex() == 0
    w.close()


def test_the_log_scale_boxes_come_back_in_the_next_session(qtbot, settings, aloop, monkeypatch):
    """Each place's choice: the Results residual off, the Compare row (one choice) off, Training kept on."""
    import app.main_window as mw

    monkeypatch.setattr(mw, "bundled_models", lambda: [])
    w = mw.MainWindow(settings, startup=False)
    qtbot.addWidget(w)
    assert w.results.residual.log_box.isChecked()  # the default
    w.results.residual.log_box.setChecked(False)
    w.compare.sides[1][1].log_box.setChecked(False)  # one box of the row: the row follows
    assert not any(res.log_box.isChecked() for _, res in w.compare.sides)
    w.close()

    w2 = mw.MainWindow(settings, startup=False)
    qtbot.addWidget(w2)
    assert not w2.results.residual.log_box.isChecked() and not w2.results.residual.log_scale
    assert not any(res.log_box.isChecked() for _, res in w2.compare.sides)
    assert w2.training.preview_res.log_box.isChecked()
    w2.close()
