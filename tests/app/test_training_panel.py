"""Training chain generate → teacher → distill with fake engine functions: progress, curves, cancel."""

from __future__ import annotations

import time

import numpy as np
import torch

from engine.io.checkpoint import load_checkpoint
from engine.jobs import Progress


def fake_stage(name, steps=20, delay=0.002):
    def fn(*args, on_progress, cancel):
        for i in range(1, steps + 1):
            cancel.raise_if_cancelled()
            time.sleep(delay)
            prev = np.random.default_rng(i).random((2, 16, 16)).astype(np.float32) if i == steps else None
            on_progress(Progress(name, i, steps, {"loss": 1.0 / i, "residual": 2.0 / i}, preview=prev))
        return name

    return fn


def test_chain_runs_and_cancels(qtbot, make_window, tmp_path):
    w = make_window(16)
    tp = w.training
    tp.folder.setText(str(tmp_path))
    tp.fns = {"data": fake_stage("data"), "teacher": fake_stage("teacher"), "distill": fake_stage("distill")}
    with qtbot.waitSignal(tp.chain_done, timeout=10_000) as blocker:
        tp.start_btn.click()
    assert blocker.args[0].endswith("student")
    assert {"teacher/loss", "distill/loss"} <= set(tp.plot.curves)
    assert {"teacher/residual", "distill/residual"} <= set(tp.res_plot.curves)
    assert len(tp.plot.buffers["teacher/loss"]) == 20
    assert tp.preview.data() is not None and tp.preview_res.data() is not None
    assert all(b.value() == b.maximum() for b in tp.bars.values())

    tp.fns["teacher"] = fake_stage("teacher", steps=100_000, delay=0.001)
    with qtbot.waitSignal(tp.chain_stopped, timeout=5000) as blocker:
        tp.start_btn.click()
        qtbot.waitUntil(lambda: tp.runner is not None and tp.runner.name == "teacher", timeout=5000)
        tp.cancel_btn.click()
    assert blocker.args[0] == "cancelled" and tp.start_btn.isEnabled()


def test_real_chain_lists_the_student(qtbot, make_window, tmp_path):
    """The real engine chain at 16² (tiny U-Net, a few steps each) through the panel's controls."""
    w = make_window(16)
    tp = w.training
    tp.folder.setText(str(tmp_path / "runs"))
    tp.grid.setCurrentText("16")
    tp.n_samples.setValue(16)
    tp.model_size.setCurrentText("tiny")
    tp.teacher_steps.setValue(4)
    tp.teacher_minutes.setValue(0)
    tp.teacher_cooldown.setValue(0.5)
    tp.preview_every.setValue(2)
    tp.pairs.setValue(8)
    tp.distill_steps.setValue(4)
    tp.distill_minutes.setValue(0)
    before = len(w.model_panel.infos())
    previews = []
    tp.preview_shown.connect(previews.append)
    threads = torch.get_num_threads()
    with qtbot.waitSignal(tp.chain_done, timeout=120_000) as blocker:
        tp.start_btn.click()
    assert torch.get_num_threads() == threads  # training left a core to the window, then gave it back
    student = tmp_path / "runs" / "darcy-16" / "student"
    assert blocker.args[0] == str(student)
    assert (student / "checkpoint.pt").is_file() and (student.parent / "teacher" / "checkpoint.pt").is_file()
    assert load_checkpoint(student.parent / "teacher")["config"]["cooldown"] == 0.5  # the panel's setting arrived
    # previews of the teacher (steps 2, 4), then of the student (steps 2, 4)
    assert previews == [2, 4, 2, 4] and tp.preview.data() is not None and tp.preview_res.data() is not None
    assert {"teacher/loss", "distill/loss"} <= set(tp.plot.curves)
    assert {"teacher/preview_residual_mse", "distill/residual", "distill/preview_residual_mse"} <= set(tp.res_plot.curves)
    legend = [label.text for _, label in tp.res_plot.plotItem.legend.items]
    teacher_x, student_x = (tp.plot.buffers[k].arrays()[0] for k in ("teacher/loss", "distill/loss"))
    assert student_x.min() > teacher_x.max() and len(tp.plot.stage_lines) == 1  # the student follows on
    assert {"teacher samples", "student training batch", "student samples"} <= set(legend)
    qtbot.waitUntil(lambda: w.state.model is not None and w.state.model.kind == "student", timeout=60_000)
    paths = [str(i.path) for i in w.model_panel.infos()]
    assert len(paths) == before + 2 and str(student) in paths
    assert str(w.state.model_info.path) == str(student)
    info = w.model_panel.info.toPlainText()  # described from its config.json: λ, not the file's layout
    assert "λ (physics)" in info and "0.1" in info and "DistillConfig" not in info
    assert "parameters (tiny)" in info and "distillation" in info and "4 steps" in info
    listed = [w.model_panel.models.item(i).text() for i in range(w.model_panel.models.count())]
    assert "darcy · student  (run darcy-16)" in listed  # a run of the user's, told apart from a bundled set
    # a fresh start never overwrites the finished run
    assert tp.run_base() == tmp_path / "runs" / "darcy-16-2"


def test_distill_settings_start_at_the_engine_defaults(make_window, tmp_path):
    from engine.distill.config import DistillConfig

    tp = make_window(16).training
    cfg = tp.distill_config({"teacher": tmp_path / "teacher"})
    assert cfg["lam"] == DistillConfig.lam and cfg["physics_on"] == DistillConfig.physics_on
    tp.physics_on.setCurrentText("solution")
    tp.lam.setValue(0.5)
    cfg = tp.distill_config({"teacher": tmp_path / "teacher"})
    assert (cfg["lam"], cfg["physics_on"]) == (0.5, "solution")
    DistillConfig(**cfg)  # the engine takes what the panel builds
