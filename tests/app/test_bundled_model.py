"""The bundled darcy student, loaded the way the app loads it, solves a short piddm inverse task."""

from __future__ import annotations

import asyncio

import numpy as np


def _darcy_student():
    from engine.models import bundled_models

    found = [i for i in bundled_models() if i.pde == "darcy" and i.kind == "student" and i.name == "piddm"]
    assert found, "resources/models/darcy/piddm is committed: the app opens it at start-up"
    return found[0]


def test_bundled_darcy_student_piddm_solve(qtbot, make_window):
    info = _darcy_student()
    w = make_window(16)
    with qtbot.waitSignal(w.controller.model_changed, timeout=120_000):
        asyncio.ensure_future(w.controller.load_model_info(info))
    s = w.state
    assert s.model is not None and s.model.kind == "student" and s.model.teacher is not None
    n = int(info.card.get("grid", s.model.grid.n))
    assert s.grid_n == s.model.grid.n == n and s.values.shape == (2, n, n)
    assert 0.0 < s.mask[1].mean() < 0.06 and not s.mask[0].any()  # inverse demo from ~3 % of u
    assert "2,326,434" in w.model_panel.info.toPlainText() or "parameters" in w.model_panel.info.toPlainText()
    methods = [w.task_panel.method_box.itemText(i) for i in range(w.task_panel.method_box.count())]
    assert methods[:3] == ["piddm", "piddm-ref", "piddm-exact"] and "distill" not in methods
    assert {"diffusionpde", "teacher", "dataspace"} <= set(methods) and "classical" not in methods  # inverse
    assert w.task_panel.method_box.currentText() == "piddm"
    w.task_panel.task_box.setCurrentText("forward")  # the reference solve of the whole coefficient
    assert "classical" in [w.task_panel.method_box.itemText(i) for i in range(w.task_panel.method_box.count())]
    assert w.task_panel.method_box.currentText() == "piddm"  # the chosen method stays
    w.task_panel.task_box.setCurrentText("inverse")
    assert 0.0 < s.mask[1].mean() < 0.06 and not s.mask[0].any()

    w.task_panel.ensemble.setValue(2)
    w.task_panel.steps.setValue(5)
    with qtbot.waitSignal(w.controller.solve_done, timeout=120_000) as blocker:
        w.task_panel.solve_btn.click()
    (r,) = blocker.args[0]
    assert r.method == "piddm" and r.mean.shape == (2, n, n) and r.std.shape == (2, n, n)
    assert np.isfinite(r.residual).all() and np.isfinite(r.metrics["residual_mse"])
    # NFE per member: 5 latent steps, the final answer, and the pass that fixes the residual scale s
    assert r.nfe == 7 and np.isfinite(w.controller.timings["first_preview"])  # a live preview came
    views = w.results.views()
    for name in ("a", "u", "residual", "std", "error"):
        data = views[name].data()
        assert data is not None and data.shape == (n, n) and np.isfinite(data).all(), name
    assert views["std"].data().max() > 0  # the two members differ where a is unknown
    assert "piddm" in w.results.summary.text()


def test_the_bundled_32_grid_darcy_set_loads_and_is_told_apart(make_window):
    from pathlib import Path

    from engine.models import bundled_models, load_model

    darcy = [i for i in bundled_models() if i.pde == "darcy"]
    sets = [Path(str(i.path)).parent.name for i in darcy]
    assert "darcy-32" in sets, "resources/models/darcy-32 is committed"
    assert sets[0] == "darcy" and darcy[0].name == "piddm"  # start-up still opens the main set's student
    info = next(i for i, s in zip(darcy, sets, strict=True) if s == "darcy-32" and i.name == "piddm")
    assert info.kind == "student" and info.card["grid"] == 32 and "guidance" in info.card
    model = load_model(info.path)
    assert model.grid.n == 32 and model.teacher is not None and model.teacher.grid.n == 32
    w = make_window(16)
    w.model_panel.set_models(darcy)
    labels = [w.model_panel.models.item(r).text() for r in range(w.model_panel.models.count())]
    assert "darcy · piddm" in labels and "darcy · piddm  (darcy-32)" in labels


def test_the_last_model_picked_is_the_one_opened_whichever_loads_first(qtbot, make_window, monkeypatch):
    import time

    import app.controller as ctl
    from engine.models import bundled_models

    darcy32 = {i.name: i for i in bundled_models() if i.pde == "darcy" and "darcy-32" in str(i.path)}
    assert {"piddm", "distill"} <= set(darcy32), "resources/models/darcy-32 is committed"
    load = ctl.load_model

    def piddm_slow(path, **kw):  # the first pick comes back last
        time.sleep(0.5 if darcy32["piddm"].path == path else 0.0)
        return load(path, **kw)

    monkeypatch.setattr(ctl, "load_model", piddm_slow)
    w = make_window(16)
    asyncio.ensure_future(w.controller.load_model_info(darcy32["piddm"]))
    asyncio.ensure_future(w.controller.load_model_info(darcy32["distill"]))
    qtbot.wait(800)
    qtbot.waitUntil(lambda: not w.jobs.running(), timeout=30_000)
    qtbot.wait(100)
    assert w.state.model_info is darcy32["distill"] and w.state.model.card["lambda"] == 0.0
    methods = [w.task_panel.method_box.itemText(i) for i in range(w.task_panel.method_box.count())]
    assert methods[:3] == ["distill", "piddm-ref", "piddm-exact"] and "piddm" not in methods  # named by its λ
    assert w.task_panel.method_box.currentText() == "distill"


def test_loading_a_model_takes_the_optimisers_one_off_import_off_the_first_solve():
    """torch.optim's first use imports torch._dynamo (~1.4 s on 2 cores): the model load pays it, so
    the first solve's first preview comes at once. Run in a fresh interpreter, where nothing imported it."""
    import subprocess
    import sys

    info = _darcy_student()
    code = ("import sys; from app.controller import load_model; before = 'torch._dynamo' in sys.modules; "
            f"load_model({str(info.path)!r}, on_progress=None, cancel=None); "
            "print(before, 'torch._dynamo' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True)
    assert out.stdout.split() == ["False", "True"], out.stdout + out.stderr


def test_model_card_names_the_start_screening_it_chose():
    from types import SimpleNamespace

    from app.panels.model_panel import describe

    info = SimpleNamespace(name="piddm", pde="darcy", kind="student", path="x",
                           card={"grid": 32, "candidates": {"full": 8, "points": 1}})
    assert "best of 8 draws (whole channel)" in describe(info)
    info.card = {"grid": 32}
    assert "start screening" not in describe(info)


def test_model_card_names_its_tuned_latent_solve_settings():
    from types import SimpleNamespace

    from app.panels.model_panel import describe

    info = SimpleNamespace(name="piddm", pde="poisson", kind="student", path="x",
                           card={"grid": 64, "solve": {"inverse/points": {"lr": 0.02, "lam": 0.01, "rel_l2": 0.3},
                                                       "forward/full": {"lr": 0.05, "lam": 1.0}}})
    html = describe(info)
    assert "inverse, points: lr 0.02, λ 0.01" in html and "forward, whole channel: lr 0.05, λ 1<" in html
    info.card = {"grid": 64}
    assert "latent solve" not in describe(info)


def test_model_card_says_which_teacher_a_student_learnt_from():
    from types import SimpleNamespace

    from app.panels.model_panel import describe

    card = {"grid": 64, "teacher_training": {"steps": 5200, "seconds": 362.0, "continued_from": {"steps": 3400}},
            "teacher_at_distillation": {"steps": 3400, "seconds": 225.0}, "training": {"steps": 1020, "seconds": 107}}
    student = describe(SimpleNamespace(name="piddm", pde="poisson", kind="student", path="x", card=card))
    assert "5200 steps, 362 s (trained on from 3400)" in student and "the teacher at 3400 steps" in student
    teacher = describe(SimpleNamespace(name="teacher", pde="poisson", kind="teacher", path="x", card=card))
    assert "distilled from" not in teacher
    del card["teacher_at_distillation"], card["teacher_training"]["continued_from"]
    assert "trained on from" not in describe(SimpleNamespace(name="piddm", pde="poisson", kind="student",
                                                             path="x", card=card))


def test_a_model_opened_on_blank_canvases_of_its_grid_brings_a_demo(qtbot, settings, aloop, monkeypatch):
    """`--model` skips the start-up demo; a model of the window's own PDE and grid (darcy 32²) must still
    arrive with a task to solve — and must not replace a drawing."""
    import app.main_window as mw
    from engine.models import bundled_models

    darcy32 = [i for i in bundled_models() if i.pde == "darcy" and i.name == "piddm" and i.card.get("grid") == 32]
    assert darcy32, "resources/models/darcy-32 is committed"
    monkeypatch.setattr(mw, "bundled_models", lambda: [])
    w = mw.MainWindow(settings, startup=False)
    qtbot.addWidget(w)
    assert (w.state.pde_name, w.state.grid_n) == ("darcy", 32) and w.state.blank()
    with qtbot.waitSignal(w.controller.model_changed, timeout=120_000):
        asyncio.ensure_future(w.controller.load_model_info(darcy32[0]))
    assert w.state.truth is not None and w.state.mask.any() and not w.state.blank()

    drawn = w.state.values.copy()
    w.state.truth = None  # the user's own drawing from here on
    with qtbot.waitSignal(w.controller.model_changed, timeout=120_000):
        asyncio.ensure_future(w.controller.load_model_info(darcy32[0]))
    assert w.state.truth is None and np.array_equal(w.state.values, drawn)


def test_three_methods_side_by_side(qtbot, make_window):
    from engine.models import bundled_models

    found = [i for i in bundled_models() if i.pde == "darcy" and i.name == "piddm" and "darcy-32" in str(i.path)]
    assert found, "resources/models/darcy-32 is committed"
    w = make_window(16)
    with qtbot.waitSignal(w.controller.model_changed, timeout=120_000):
        asyncio.ensure_future(w.controller.load_model_info(found[0]))
    tp = w.task_panel
    tp.task_box.setCurrentText("forward")
    tp.method_box.setCurrentText("piddm")
    tp.ensemble.setValue(2)
    tp.steps.setValue(3)
    tp.compare_box.setChecked(True)
    tp.compare_method.setCurrentText("classical")
    tp.compare_third.setCurrentText("dataspace")
    with qtbot.waitSignal(w.controller.solve_done, timeout=120_000) as blocker:
        tp.solve_btn.click()
    assert [r.method for r in blocker.args[0]] == ["piddm", "classical", "dataspace"]
    table = w.compare.table
    assert [table.item(i, 0).text() for i in range(table.rowCount())] == ["piddm", "classical", "dataspace"]
    assert all(f.isVisibleTo(w.compare) for side in w.compare.sides for f in side)
    assert w.compare.sides[2][0].plot.titleLabel.text.startswith("dataspace: u")
    tp.compare_third.setCurrentIndex(0)  # back to two: the third side hides
    with qtbot.waitSignal(w.controller.solve_done, timeout=120_000) as blocker:
        tp.solve_btn.click()
    assert len(blocker.args[0]) == 2 and not w.compare.sides[2][0].isVisibleTo(w.compare)


def test_switching_the_pde_opens_that_pdes_counterpart_model(qtbot, make_window):
    """With darcy · piddm open, choosing poisson opens poisson · piddm (not "no model"); without a
    model the switch stays model-free."""
    from engine.models import bundled_models

    infos = bundled_models()
    darcy = [i for i in infos if i.pde == "darcy" and i.name == "piddm" and i.card.get("grid") == 64]
    poisson = [i for i in infos if i.pde == "poisson" and i.name == "piddm"]
    assert darcy and poisson, "resources/models/darcy and poisson are committed"
    w = make_window(16)
    w.model_panel.set_models(infos, darcy[0])
    with qtbot.waitSignal(w.controller.model_changed, timeout=120_000):
        asyncio.ensure_future(w.controller.load_model_info(darcy[0]))
    with qtbot.waitSignal(w.controller.model_changed, timeout=120_000):
        w.model_panel.pde_box.setCurrentText("poisson")
    s = w.state
    assert s.model_info is poisson[0] and s.model.pde.name == s.pde_name == "poisson"
    assert s.values.shape == (2, 64, 64) and s.truth is not None and not w.banner.isVisibleTo(w)
    assert w.model_panel.models.currentRow() == 1 + w.model_panel.infos().index(poisson[0])
    assert w.task_panel.method_box.currentText() == "piddm"
    w.model_panel.models.setCurrentRow(0)  # no model
    qtbot.waitUntil(lambda: s.model is None, timeout=10_000)
    with qtbot.waitSignal(w.controller.demo_ready, timeout=60_000):
        w.model_panel.pde_box.setCurrentText("helmholtz")
    assert s.model is None and s.pde_name == "helmholtz" and w.banner.isVisibleTo(w)
