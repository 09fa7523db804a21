"""After a compare, the Results tab says which method's answer is on screen: in every view's title (so
in its PNG) and in the summary, and its colour scales span all the answers. The status lines say the
solve is done, not the shown answer's figures (test_solve_messages.py)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np


def two_answers(model, pde, values, mask, opts, on_progress, cancel):
    """dataspace: the observations + 1 with a spread; classical: the observations × 3 (another range)."""
    mean = values + 1.0 if opts["method"] == "dataspace" else values * 3.0
    std = np.full_like(values, 0.1) if opts["method"] == "dataspace" else None
    return SimpleNamespace(mean=mean[None], std=None if std is None else std[None], residual=None, nfe=1,
                           settings={}, misfit=None)


def test_the_showing_box_names_the_method_everywhere_and_keeps_one_scale(qtbot, make_window, tmp_path):
    w = make_window(16)
    tp, rp = w.task_panel, w.results
    tp.task_box.setCurrentText("forward")
    tp.method_box.setCurrentText("dataspace")
    tp.compare_box.setChecked(True)
    tp.compare_method.setCurrentText("classical")
    w.controller.solve_fn = two_answers
    with qtbot.waitSignal(w.controller.solve_done, timeout=10_000) as blocker:
        tp.solve_btn.click()
    first, second = blocker.args[0]
    assert [rp.method_box.itemText(i) for i in range(rp.method_box.count())] == ["dataspace", "classical"]
    u = rp.views()["u"]
    levels = u.cbar.levels()
    assert u.plot.titleLabel.text == "dataspace: u"
    status, bar = tp.status.text(), w.statusBar().currentMessage()

    rp.method_box.setCurrentIndex(1)  # showing: classical
    views = rp.views()
    assert np.array_equal(views["u"].data(), second.mean[1])
    for name in ("a", "u", "residual", "error"):
        assert views[name].plot.titleLabel.text.startswith("classical: "), name
    assert rp.summary.text().startswith("<b>classical</b>")
    # the status lines are about the solve, which the box does not change
    assert (tp.status.text(), w.statusBar().currentMessage()) == (status, bar)
    # one scale for u whichever answer is shown: it spans both
    assert u.cbar.levels() == levels
    both = np.concatenate([first.mean[1].ravel(), second.mean[1].ravel()])
    assert np.isclose(levels[0], both.min()) and np.isclose(levels[1], both.max())
    # the exported PNG is the view as drawn, title and all
    w.export_png(views["u"], "result u", str(tmp_path / "u.png"))
    assert (tmp_path / "u.png").stat().st_size > 0

    rp.method_box.setCurrentIndex(0)
    assert rp.views()["u"].plot.titleLabel.text == "dataspace: u"
    # the Compare tab names each column's method over its residual too, not only over its field
    residual_titles = [res.plot.titleLabel.text for _, res in w.compare.sides[:2]]
    assert residual_titles[0].startswith("dataspace: ") and residual_titles[1].startswith("classical: ")
    assert all("residual" in t for t in residual_titles)
    assert rp.summary.text().startswith("<b>dataspace</b>")
