"""After a solve each of the three lines says its own thing: the Results summary the figures, the task
panel's status that it is done (time, verdict), the status bar what was solved and how to keep it."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from app.panels.task_panel import TaskPanel
from app.state import SolveOutcome


def plus_one(model, pde, values, mask, opts, on_progress, cancel):
    return SimpleNamespace(mean=(values + 1.0)[None], std=None, residual=None, nfe=1, settings={}, misfit=None)


def test_summary_task_status_and_status_bar_do_not_repeat_each_other(qtbot, make_window):
    w = make_window(16)
    tp = w.task_panel
    tp.task_box.setCurrentText("forward")
    tp.method_box.setCurrentText("dataspace")
    w.controller.solve_fn = plus_one
    with qtbot.waitSignal(w.controller.solve_done, timeout=10_000) as blocker:
        tp.solve_btn.click()
    (r,) = blocker.args[0]
    summary, status, bar = w.results.summary.text(), tp.status.text(), w.statusBar().currentMessage()
    assert summary.startswith("<b>dataspace</b>: ") and "residual_mse" in summary
    assert status == f"Done in {r.seconds:.2f} s (dataspace); the figures are on the Results tab."
    assert bar.startswith("Solved forward (darcy 16²) with dataspace;") and "Export result" in bar
    assert not any("residual_mse" in line or "rel_l2" in line for line in (status, bar))  # the figures: once


def test_the_task_status_says_which_answers_did_not_converge(qtbot):
    panel = TaskPanel()
    qtbot.addWidget(panel)
    field = np.zeros((2, 4, 4))
    fitted = SolveOutcome("piddm", field, None, field[0], 1.5, metrics={"misfit": 0.001})
    unfitted = SolveOutcome("piddm-ref", field, None, field[0], 2.25, metrics={"misfit": 0.5})
    panel.show_done([fitted, unfitted])
    assert panel.status.text() == ("Done in 3.75 s (piddm 1.50 s, piddm-ref 2.25 s); the figures are on the "
                                   "Compare tab. <b>piddm-ref did not converge</b>: try more steps.")
