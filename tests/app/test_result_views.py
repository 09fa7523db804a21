"""What the result views, the summary and export show: one solve at a time (a stopped solve leaves the
last finished one), errors per channel, the fit to the observations, and a truth only while it is one."""

from __future__ import annotations

import time
from types import SimpleNamespace

import numpy as np
import pytest

from app.jobs import make_demo, run_solve
from app.panels.results_panel import NO_RESULT, ComparePanel, ResultsPanel
from engine.errors import EngineError
from engine.jobs import Progress


def answer(mean, misfit=None, std=None):
    """What engine.solve returns, as far as app.jobs.run_solve reads it: a batch of one."""
    return SimpleNamespace(mean=np.asarray(mean)[None], std=None if std is None else std[None],
                           residual=None, nfe=1, settings={}, misfit=misfit)


def quick_fake(model, pde, values, mask, opts, on_progress, cancel):
    return answer(values + 1.0)


def slow_fake(model, pde, values, mask, opts, on_progress, cancel):
    """Previews (the observations doubled) every 10 ms until cancelled."""
    for i in range(10_000):
        cancel.raise_if_cancelled()
        time.sleep(0.01)
        on_progress(Progress("solve", i, 10_000, {"misfit": 1.0}, preview=(2 * values).astype(np.float32)))
    raise AssertionError("not cancelled")


def preview_then_fail(model, pde, values, mask, opts, on_progress, cancel):
    on_progress(Progress("solve", 1, 10, preview=(2 * values).astype(np.float32)))
    time.sleep(0.3)
    raise EngineError("the solve diverged")


def _solve_quick(qtbot, w):
    w.controller.solve_fn = quick_fake
    with qtbot.waitSignal(w.controller.solve_done, timeout=10_000) as blocker:
        w.task_panel.solve_btn.click()
    return blocker.args[0]


def _start_live(qtbot, w, fake):
    """Start a solve with ``fake`` and wait for its first preview on the u view."""
    w.controller.solve_fn = fake
    w.task_panel.solve_btn.click()
    live = (2 * w.state.values[1]).astype(np.float32)
    qtbot.waitUntil(lambda: np.array_equal(w.results.views()["u"].data(), live), timeout=5000)


def _shows(w, r) -> bool:
    views = w.results.views()
    return (np.array_equal(views["a"].data(), r.mean[0]) and np.array_equal(views["u"].data(), r.mean[1])
            and np.array_equal(views["residual"].data(), np.abs(r.residual)))


def test_a_cancelled_solve_leaves_every_view_on_the_last_finished_one(qtbot, make_window, tmp_path):
    from engine.io.hdf5 import read_fields

    w = make_window(16)
    w.task_panel.method_box.setCurrentText("dataspace")
    (done,) = _solve_quick(qtbot, w)
    finished = w.results.summary.text()
    assert _shows(w, done)

    _start_live(qtbot, w, slow_fake)
    views = w.results.views()  # while it runs: its fields, nothing of the previous solve beside them
    assert all(views[k].data() is None for k in ("residual", "std", "error"))
    assert "after the solve" in views["residual"].plot.titleLabel.text
    assert "solving" in w.results.summary.text()
    with qtbot.waitSignal(w.controller.solve_cancelled, timeout=5000):
        w.task_panel.cancel_btn.click()

    assert _shows(w, done) and w.results.summary.text() == finished  # back on the finished solve
    assert list(w.state.results) == ["dataspace"] and w.state.results["dataspace"] is done
    assert "previous result" in w.task_panel.status.text()
    out = w.export_result(str(tmp_path / "result.h5"))  # what the views show
    np.testing.assert_array_equal(read_fields(out).fields[0], done.mean)


def test_a_stopped_solve_without_an_earlier_one_leaves_no_result(qtbot, make_window):
    w = make_window(16)
    w.task_panel.method_box.setCurrentText("dataspace")
    _start_live(qtbot, w, slow_fake)
    with qtbot.waitSignal(w.controller.solve_cancelled, timeout=5000):
        w.task_panel.cancel_btn.click()
    assert all(v.data() is None for v in w.results.views().values())
    assert w.results.summary.text() == NO_RESULT and not w.state.results


def test_a_failed_solve_leaves_the_views_on_the_last_finished_one(qtbot, make_window, dialogs):
    w = make_window(16)
    w.task_panel.method_box.setCurrentText("dataspace")
    (done,) = _solve_quick(qtbot, w)
    # waiting from before the click: the failure comes 0.3 s after the first preview, which a loaded
    # machine can take longer than that to show (the wait, started after it, then missed the signal)
    with qtbot.waitSignal(w.controller.solve_failed, timeout=10_000):
        _start_live(qtbot, w, preview_then_fail)
    assert _shows(w, done) and w.state.results["dataspace"] is done
    assert dialogs[-1]["title"] == "Solve failed"


def test_a_compare_stopped_half_way_keeps_the_last_finished_solve(qtbot, make_window):
    w = make_window(16)
    w.task_panel.task_box.setCurrentText("forward")
    w.task_panel.method_box.setCurrentText("dataspace")
    (done,) = _solve_quick(qtbot, w)

    def fake(model, pde, values, mask, opts, on_progress, cancel):  # dataspace answers, classical runs on
        return (quick_fake if opts["method"] == "dataspace" else slow_fake)(model, pde, values, mask, opts,
                                                                            on_progress, cancel)

    w.task_panel.compare_box.setChecked(True)
    w.task_panel.compare_method.setCurrentText("classical")
    w.controller.solve_fn = fake
    w.task_panel.solve_btn.click()
    qtbot.waitUntil(lambda: w.task_panel.bar.maximum() == 10_000, timeout=5000)  # classical's turn
    with qtbot.waitSignal(w.controller.solve_cancelled, timeout=5000):
        w.task_panel.cancel_btn.click()
    assert list(w.state.results) == ["dataspace"] and w.state.results["dataspace"] is done
    assert _shows(w, done)


def test_a_solve_stopped_for_a_change_says_so_before_the_change_lands(qtbot, make_window):
    """With a model open, a PDE switch loads the other PDE's model first: the solve stops while the PDE
    it was for is still the state's."""
    w = make_window(16)
    w.task_panel.method_box.setCurrentText("dataspace")
    _start_live(qtbot, w, slow_fake)
    with qtbot.waitSignal(w.controller.solve_cancelled, timeout=5000):
        w.controller.stop_solve_for_change()  # what change_pde, load_model_info and an import call first
    assert "changed while it ran" in w.task_panel.status.text()


# -- errors per channel, the reference, the fit --------------------------------------------------------
@pytest.fixture(scope="module")
def demo():
    return make_demo("darcy", {}, 16, 0, "inverse")


def test_errors_are_per_unknown_channel_with_darcys_error_rate(qtbot, demo):
    truth, mask = demo["truth"], demo["mask"]
    off = truth.copy()
    off[0] = np.where(truth[0] > 7.5, truth[0], 12.0)  # every node of a high: a badly off coefficient
    r = run_solve(None, "darcy", {}, truth, mask, {"method": "dataspace"}, truth,
                  solve_fn=lambda *a: answer(off))
    m = r.metrics
    assert "rel_l2" not in m and m["rel_l2_vs"] == "truth"
    assert m["rel_l2_a"] > 0.2 and m["rel_l2_u"] == 0.0 and m["error_rate"] > 0.2
    panel = ResultsPanel()
    qtbot.addWidget(panel)
    panel.set_channels(("a", "u"))
    panel.show_result(r, mask, ("a", "u"))
    text = panel.summary.text()
    assert f"rel_l2 a {m['rel_l2_a']:.3g} · u 0," in text and f"a error rate {m['error_rate']:.1%}" in text
    assert "(vs truth)" in text


def test_the_classical_row_is_the_reference_not_scored_against_itself(qtbot, demo):
    truth = demo["truth"]
    mask = np.zeros_like(demo["mask"])
    mask[0] = True  # forward: the whole coefficient
    runs = [run_solve(None, "darcy", {}, truth, mask, {"method": m}, truth, solve_fn=fake)
            for m, fake in (("dataspace", lambda *a: answer(truth * 1.01)), ("classical", None))]
    assert runs[0].metrics["rel_l2_vs"] == "classical" and "rel_l2_u" in runs[0].metrics
    assert runs[1].metrics["rel_l2_vs"] == "reference" and "rel_l2_u" not in runs[1].metrics
    compare = ComparePanel()
    qtbot.addWidget(compare)
    compare.show_results(runs, mask, ("a", "u"))
    row = [[compare.table.item(i, j).text() for j in range(3)] for i in range(2)]
    assert row[0][1].startswith("rel_l2 u 0.01") and row[0][2] == "classical"
    assert row[1] == ["classical", "—", "reference"]
    panel = ResultsPanel()
    qtbot.addWidget(panel)
    panel.set_channels(("a", "u"))
    panel.show_result(runs[1], mask, ("a", "u"))
    assert "reference solve" in panel.summary.text() and "rel_l2" not in panel.summary.text()


def test_an_all_zero_truth_gives_an_answer_without_relative_errors(qtbot):
    """A poisson forward solve of a source erased to 0 has u = 0 as its truth: its relative error does
    not exist, so the answer comes without one (the engine refuses it) instead of failing the solve."""
    truth = np.zeros((2, 16, 16))
    mask = np.zeros_like(truth, dtype=bool)
    mask[0] = True  # the whole (zero) source
    r = run_solve(None, "poisson", {}, truth, mask, {"method": "dataspace"}, truth,
                  solve_fn=lambda *a: answer(truth + 0.01))
    assert "rel_l2_u" not in r.metrics and "rel_l2_vs" not in r.metrics and "residual_mse" in r.metrics


def test_the_summary_says_when_a_latent_solve_did_not_fit_its_observations(qtbot, demo):
    truth, mask = demo["truth"], demo["mask"]
    panel = ResultsPanel()
    qtbot.addWidget(panel)
    panel.set_channels(("a", "u"))
    compare = ComparePanel()
    qtbot.addWidget(compare)
    runs = {}
    for misfit in (0.002, 0.2):
        r = run_solve(object(), "darcy", {}, truth, mask, {"method": "piddm"}, truth,
                      solve_fn=lambda *a, f=misfit: answer(truth, misfit=f))
        assert r.metrics["misfit"] == misfit
        panel.show_result(r, mask, ("a", "u"))
        runs[misfit] = (r, panel.summary.text())
    assert "misfit 0.002" in runs[0.002][1] and "not converged" not in runs[0.002][1]
    assert "not converged" in runs[0.2][1] and "misfit 0.2" in runs[0.2][1] and "more steps" in runs[0.2][1]
    compare.show_results([runs[0.002][0], runs[0.2][0]], mask, ("a", "u"))
    assert [compare.table.item(i, 3).text() for i in range(2)] == ["0.002", "0.2 not converged"]
    # dataspace holds the observations exactly: no misfit to judge
    r = run_solve(None, "darcy", {}, truth, mask, {"method": "dataspace"}, truth,
                  solve_fn=lambda *a: answer(truth, misfit=0.3))
    assert "misfit" not in r.metrics


# -- the truth scored against --------------------------------------------------------------------
def test_an_edit_of_observed_values_sets_the_demo_truth_aside_and_undo_brings_it_back(qtbot, make_window):
    w = make_window(16)
    s, inputs = w.state, w.inputs
    sample = s.truth.copy()
    inputs.channel_box.setCurrentIndex(1)
    inputs.random_points(k=10)  # more points on the sample's own values: still its truth
    assert s.truth is not None
    inputs.channel_box.setCurrentIndex(0)
    inputs.random_grf()  # a drawn coefficient, observed: the sample is no truth of it
    assert s.truth is None
    inputs.clear_mask()  # unobserved again: the observations are the sample's
    np.testing.assert_array_equal(s.truth, sample)
    inputs.undo()
    assert s.truth is None
    inputs.undo()
    np.testing.assert_array_equal(s.truth, sample)

    inputs.channel_box.setCurrentIndex(1)
    reading = np.full((16, 16), np.nan)
    reading[5, 5] = 1.0  # a sensor reading of u that is not the sample's
    inputs.load_array(reading)
    assert s.truth is None
    w.task_panel.method_box.setCurrentText("dataspace")
    (r,) = _solve_quick(qtbot, w)
    assert "rel_l2_vs" not in r.metrics and "vs truth" not in w.results.summary.text()


def test_a_task_switch_onto_drawn_values_sets_the_truth_aside_at_the_solve(qtbot, make_window):
    w = make_window(16)
    inputs = w.inputs
    inputs.channel_box.setCurrentIndex(0)
    inputs.random_grf()
    inputs.clear_mask()  # a drawn coefficient, unobserved: the inverse task's points are the sample's
    assert w.state.truth is not None
    w.task_panel.task_box.setCurrentText("reconstruct")  # observes some of the drawn coefficient
    w.task_panel.method_box.setCurrentText("dataspace")
    (r,) = _solve_quick(qtbot, w)
    assert "rel_l2_vs" not in r.metrics and w.state.truth is None
