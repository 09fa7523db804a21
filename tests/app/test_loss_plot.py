"""The Training tab's curves: a stage's sparse preview figures show even as a single point."""

from __future__ import annotations

from app.plots.loss_plot import LossPlot


def test_a_single_preview_point_is_drawn_and_dense_curves_stay_lines(qtbot):
    plot = LossPlot(keys=("loss", "preview_residual_mse"))
    qtbot.addWidget(plot)
    for step in range(10, 60, 10):
        plot.add("teacher", step, {"loss": 1.0 / step})
    plot.add("distill", 50, {"preview_residual_mse": 900.0})  # the student's first preview: one point
    preview = plot.curves["distill/preview_residual_mse"]
    assert preview.opts["symbol"] == "o"  # a line through one point draws nothing: a marker does
    assert list(plot.buffers["distill/preview_residual_mse"].arrays()[1]) == [900.0]
    assert plot.curves["teacher/loss"].opts["symbol"] is None
