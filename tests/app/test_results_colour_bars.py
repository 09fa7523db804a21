"""Every result view keeps a readable colour scale: the bar inside its view, with numbers on its axis,
also after a solve whose live previews blanked the std and error views under a long title."""

from __future__ import annotations

import time
from types import SimpleNamespace

import numpy as np
from PySide6.QtGui import QImage, QPainter

from engine.jobs import Progress


def previews_then_answer(model, pde, values, mask, opts, on_progress, cancel):
    """A few live previews (they blank residual, std and error), then an answer with a spread."""
    for i in range(3):
        time.sleep(0.05)
        on_progress(Progress("solve", i, 3, preview=(values * (1 + 0.1 * i)).astype(np.float32)))
    n = values.shape[-1]
    mean = values.copy()
    mean[0] = np.where(np.add.outer(np.arange(n), np.arange(n)) % 3 == 0, 12.0, 3.0)  # a guessed coefficient
    std = np.zeros_like(values)
    std[0] = 4.0 * np.abs(np.sin(np.arange(n)))[None, :]  # a's spread, 0–4
    std[1] = 1e-4 * np.abs(np.cos(np.arange(n)))[:, None]
    return SimpleNamespace(mean=mean[None], std=std[None], residual=None, nfe=1, settings={}, misfit=0.001)


def tick_labels(view) -> list[str]:
    """The numbers the colour bar's axis draws at its present size (those that do not fit are dropped)."""
    image = QImage(200, 800, QImage.Format.Format_ARGB32)
    painter = QPainter(image)
    try:
        return [text for _, _, text in view.cbar.axis.generateDrawSpecs(painter)[2]]
    finally:
        painter.end()


def bar_on_screen(view) -> bool:
    """The colour bar and its axis lie inside the view's visible area."""
    bar = view.cbar.mapRectToScene(view.cbar.boundingRect())
    return view.graphics.viewport().rect().contains(view.graphics.mapFromScene(bar).boundingRect())


def test_every_result_view_keeps_a_readable_scale_after_an_inverse_solve(qtbot, make_window):
    w = make_window(16)
    w.resize(1366, 740)  # the reviewer's window: three columns of ~350 px
    w.tabs.setCurrentWidget(w.results)
    w.task_panel.task_box.setCurrentText("inverse")
    w.task_panel.method_box.setCurrentText("dataspace")
    w.controller.solve_fn = previews_then_answer
    with qtbot.waitSignal(w.controller.solve_done, timeout=10_000):
        w.task_panel.solve_btn.click()
    qtbot.wait(300)  # the axes size themselves to their labels at the first paints
    views = w.results.views()
    assert all(v.data() is not None for v in views.values())
    for name, v in views.items():
        assert bar_on_screen(v), name
        labels = tick_labels(v)
        assert len(labels) >= 2, (name, labels)
        lo, hi = v.cbar.levels()
        assert hi > lo, name
