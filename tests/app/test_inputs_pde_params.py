"""The Model panel's PDE parameter boxes (helmholtz's k, darcy's a_low, …): they reach the model-free
solves, make a demo for the new parameters or keep the user's canvases, and refuse values out of range."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt

from engine.errors import EngineError


def _to_helmholtz(qtbot, w):
    with qtbot.waitSignal(w.controller.demo_ready, timeout=20_000):
        w.model_panel.pde_box.setCurrentText("helmholtz")
    return w.model_panel.params.boxes["k"]


def _solve(qtbot, w, task, method):
    w.task_panel.task_box.setCurrentText(task)
    w.task_panel.method_box.setCurrentText(method)
    with qtbot.waitSignal(w.controller.solve_done, timeout=30_000) as blocker:
        qtbot.mouseClick(w.task_panel.solve_btn, Qt.MouseButton.LeftButton)
    return blocker.args[0]


def test_k_set_in_the_model_panel_reaches_the_classical_and_dataspace_solves(qtbot, make_window, dialogs):
    w = make_window(16)
    assert list(w.model_panel.params.boxes) == ["forcing", "a_low", "a_high"]  # darcy's
    k = _to_helmholtz(qtbot, w)
    assert k.value() == 1.0 and k.isEnabled() and "(k = 1)" in w.model_panel.equation.text()
    with qtbot.waitSignal(w.controller.demo_ready, timeout=20_000):  # a demo made with k = 3
        k.setValue(3.0)
    s = w.state
    assert s.pde.k == 3.0 and s.truth is not None and "(k = 3)" in w.model_panel.equation.text()
    assert w.statusBar().currentMessage().startswith("helmholtz k = 3: Demo task loaded")
    # the classical solve of k = 3 has no residual under k = 3 (with k = 1 it would)
    (r,) = _solve(qtbot, w, "forward", "classical")
    assert r.metrics["residual_mse"] < 1e-8
    # the demo's u is the k = 3 solution of its f: its residual under k = 3 is nil too
    from engine.metrics import residual_map

    assert np.abs(residual_map(s.pde, s.truth[None])[0][1:-1, 1:-1]).max() < 1e-6
    seen = []

    def recording_fake(model, pde, values, mask, opts, on_progress, cancel):
        seen.append(pde)
        raise EngineError("recorded")

    w.controller.solve_fn = recording_fake
    w.task_panel.task_box.setCurrentText("inverse")
    w.task_panel.method_box.setCurrentText("dataspace")
    with qtbot.waitSignal(w.controller.solve_failed, timeout=5000):
        w.task_panel.solve_btn.click()
    assert seen[-1].name == "helmholtz" and seen[-1].k == 3.0


def test_drawn_canvases_keep_their_values_under_new_parameters(qtbot, make_window, dialogs):
    w = make_window(16)
    k = _to_helmholtz(qtbot, w)
    s, panel = w.state, w.inputs
    panel.channel_box.setCurrentIndex(0)
    panel.random_grf()  # a drawn source, observed: the user's, no demo's
    assert s.truth is None
    values, mask = s.values.copy(), s.mask.copy()
    k.setValue(2.0)
    qtbot.wait(200)
    assert s.pde.k == 2.0 and not dialogs
    np.testing.assert_array_equal(s.values, values)
    np.testing.assert_array_equal(s.mask, mask)
    assert w.statusBar().currentMessage() == "helmholtz k = 2: the canvases keep their values and observations"


def test_a_parameter_out_of_range_is_refused(qtbot, make_window, dialogs):
    w = make_window(16)
    k = _to_helmholtz(qtbot, w)
    k.setValue(5.0)  # at or above the first resonance
    assert dialogs[-1]["title"] == "PDE parameters refused" and "k must be in [0, 4.4)" in dialogs[-1]["text"]
    assert w.state.pde.k == 1.0 and w.model_panel.params.boxes["k"].value() == 1.0
    with qtbot.waitSignal(w.controller.demo_ready, timeout=20_000):
        w.model_panel.pde_box.setCurrentText("darcy")  # another PDE: its own parameters, the defaults
    a_low = w.model_panel.params.boxes["a_low"]
    assert a_low.value() == 3.0
    a_low.setValue(20.0)  # above a_high
    assert "a_low < a_high" in dialogs[-1]["text"] and w.state.pde.a_low == 3.0 and a_low.value() == 3.0
