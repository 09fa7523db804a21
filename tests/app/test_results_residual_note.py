"""The |residual| view explains its "+" at observed nodes (an answer keeps observed values as given), and
the summary gives the residual away from them beside the whole one."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from app.jobs import make_demo, run_solve
from app.panels.results_panel import SEAM_NOTE, ResultsPanel
from engine import pdes
from engine.grid import Grid


@pytest.fixture(scope="module")
def demo():
    return make_demo("darcy", {}, 16, 0, "inverse")


def _panel(qtbot):
    panel = ResultsPanel()
    qtbot.addWidget(panel)
    panel.set_channels(("a", "u"))
    return panel


def test_observed_points_in_u_get_a_note_and_a_residual_away_from_them(qtbot, demo):
    truth, mask = demo["truth"], demo["mask"]
    assert mask[1].any() and not mask[1].all()  # inverse: points of u
    answer = truth.copy()
    answer[1][mask[1]] *= 1.5  # the observed values, copied into a generated field that does not meet them
    r = run_solve(None, "darcy", {}, answer, mask, {"method": "dataspace"}, None,
                  solve_fn=lambda *a: SimpleNamespace(mean=answer[None], std=None, residual=None, nfe=1,
                                                      settings={}, misfit=None))
    interior = pdes.get("darcy").interior_mask(Grid(16)).numpy()
    panel = _panel(qtbot)
    panel.show_result(r, mask, ("a", "u"), interior)
    assert panel.residual.note.text() == SEAM_NOTE and not panel.residual.note.isHidden()
    assert "observation point" in panel.residual.note.toolTip()
    assert "observation point" in panel.residual.graphics.toolTip()
    text = panel.summary.text()
    assert "away from observed nodes" in text
    whole = r.metrics["residual_mse"]
    away = float(text.split("residual_mse ")[1].split(" (")[1].split(" away")[0])
    assert away < 0.01 * whole  # the truth's own residual, without the seams


def test_a_forward_task_observes_its_coefficient_whole_and_gets_no_note(qtbot, demo):
    truth = demo["truth"]
    mask = np.zeros_like(demo["mask"])
    mask[0] = True
    r = run_solve(None, "darcy", {}, truth, mask, {"method": "classical"}, truth)
    panel = _panel(qtbot)
    panel.show_result(r, mask, ("a", "u"))
    assert panel.residual.note.isHidden() and "away from" not in panel.summary.text()
