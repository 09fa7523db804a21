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
    """The real engine chain at 16² (tiny U-Net, a few steps each) through the panel's controls, from a
    window on 32²: the student opens with a demo task of its grid."""
    w = make_window(32)
    tp = w.training
    tiny_chain(tp, tmp_path / "runs")
    tp.teacher_preview_every.setValue(2)
    tp.distill_preview_every.setValue(2)
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
    qtbot.wait(200)  # the student's demo task, if it brings one, does not take the training's line
    assert w.statusBar().currentMessage().startswith("Training finished: student of darcy-16"), \
        w.statusBar().currentMessage()
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


def test_the_teacher_and_the_student_preview_at_their_own_cadence(make_window, tmp_path):
    from engine.config import TeacherConfig
    from engine.distill.config import DistillConfig

    tp = make_window(16).training
    tp.teacher_preview_every.setValue(200)
    tp.distill_preview_every.setValue(0)
    dirs = {"data": tmp_path / "data.h5", "teacher": tmp_path / "teacher", "distill": tmp_path / "student"}
    t_cfg, d_cfg = tp.teacher_config(dirs), tp.distill_config(dirs)
    assert (t_cfg["preview_every"], d_cfg["preview_every"]) == (200, 0)
    assert TeacherConfig(**t_cfg).preview_every == 200 and DistillConfig(**d_cfg).preview_every == 0
    assert tp.distill_preview_every.text() == "never" and tp.teacher_preview_every.text() == "every 200 steps"
    tips = tp.teacher_preview_every.toolTip(), tp.distill_preview_every.toolTip()
    assert tips[0].startswith("teacher steps between") and tips[1].startswith("student steps between")


def tiny_chain(tp, runs):
    """The panel set for a real chain of a few seconds at 16²."""
    tp.folder.setText(str(runs))
    tp.grid.setCurrentText("16")
    tp.n_samples.setValue(16)
    tp.model_size.setCurrentText("tiny")
    tp.teacher_steps.setValue(4)
    tp.teacher_minutes.setValue(0)
    tp.teacher_cooldown.setValue(0.5)
    tp.teacher_preview_every.setValue(0)
    tp.distill_preview_every.setValue(0)
    tp.pairs.setValue(8)
    tp.distill_steps.setValue(4)
    tp.distill_minutes.setValue(0)


def test_resume_in_a_new_session_takes_the_runs_own_settings(qtbot, make_window, tmp_path):
    """A new window knows only the runs folder: resuming takes the run's settings from its config.json
    files (and shows them, those a resume keeps greyed out), not the widgets' defaults."""
    tp = make_window(16).training
    tiny_chain(tp, tmp_path / "runs")
    with qtbot.waitSignal(tp.chain_done, timeout=120_000):
        tp.start_btn.click()

    tp = make_window(16).training  # the next session: default widgets (128 pairs, 2000 steps…)
    tp.folder.setText(str(tmp_path / "runs"))
    tp.grid.setCurrentText("16")
    assert tp.pairs.value() == 128 and tp.pairs.isEnabled()
    tp.resume.setChecked(True)
    assert tp.start_btn.text() == "Resume the run"
    shown = {w: (w.value(), w.isEnabled()) for w in (tp.pairs, tp.teacher_cooldown, tp.teacher_steps,
                                                     tp.distill_steps, tp.n_samples)}
    assert shown == {tp.pairs: (8, False), tp.teacher_cooldown: (0.5, False), tp.teacher_steps: (4, True),
                     tp.distill_steps: (4, True), tp.n_samples: (16, False)}
    tp.distill_steps.setValue(6)  # a resume may run further
    ended = []
    tp.chain_done.connect(ended.append)
    tp.chain_stopped.connect(lambda why: ended.append(f"stopped: {why}"))
    tp.start_btn.click()
    qtbot.waitUntil(lambda: bool(ended), timeout=120_000)
    assert ended == [str(tmp_path / "runs" / "darcy-16" / "student")]  # not "cannot resume with changed settings"
    student = load_checkpoint(tmp_path / "runs" / "darcy-16" / "student")
    assert student["step"] == 6 and student["config"]["pairs"] == 8
    tp.resume.setChecked(False)  # a new run: every setting editable again
    assert tp.pairs.isEnabled() and tp.teacher_cooldown.isEnabled() and tp.n_samples.isEnabled()


def refused(*args, on_progress, cancel):
    from engine.errors import ConfigError

    raise ConfigError("runs/darcy-16/teacher is being written by another job")  # as the run lock says


def waits_for_cancel(*args, on_progress, cancel):
    while True:  # reports nothing: its bar stays busy until it stops
        cancel.raise_if_cancelled()
        time.sleep(0.005)


def test_no_bar_stays_busy_after_a_stage_stops(qtbot, make_window, dialogs, tmp_path):
    tp = make_window(16).training
    tp.folder.setText(str(tmp_path))
    tp.fns = {"data": fake_stage("data"), "teacher": refused, "distill": fake_stage("distill")}
    with qtbot.waitSignal(tp.chain_stopped, timeout=10_000) as blocker:
        tp.start_btn.click()
    assert "being written by another job" in blocker.args[0] and dialogs[-1]["title"] == "Training failed"
    assert all(b.maximum() > 0 for b in tp.bars.values())  # 0/0 is Qt's busy bar: it would spin on
    assert tp.bars["teacher"].text() == "stopped" and tp.bars["data"].text() == "done"

    tp.fns["teacher"] = waits_for_cancel
    with qtbot.waitSignal(tp.chain_stopped, timeout=10_000) as blocker:
        tp.start_btn.click()
        qtbot.waitUntil(lambda: tp.runner is not None and tp.runner.name == "teacher", timeout=5000)
        tp.cancel_btn.click()
    assert blocker.args[0] == "cancelled"
    assert all(b.maximum() > 0 for b in tp.bars.values())


def test_a_chain_stopped_before_its_student_resumes_with_the_students_settings_it_chose(
        qtbot, make_window, tmp_path):
    """Cancelled in the teacher stage, the student had no config.json: a new window resumed it with
    its own defaults (128 pairs, 500 steps) instead of the settings the chain was started with."""
    tp = make_window(16).training
    tiny_chain(tp, tmp_path / "runs")
    tp.fns = {"data": fake_stage("data"), "teacher": waits_for_cancel, "distill": fake_stage("distill")}
    with qtbot.waitSignal(tp.chain_stopped, timeout=10_000):
        tp.start_btn.click()
        qtbot.waitUntil(lambda: tp.runner is not None and tp.runner.name == "teacher", timeout=5000)
        tp.cancel_btn.click()

    tp = make_window(16).training  # the next session: default widgets
    tp.folder.setText(str(tmp_path / "runs"))
    tp.grid.setCurrentText("16")
    assert (tp.pairs.value(), tp.distill_steps.value()) == (128, 500)
    tp.resume.setChecked(True)
    assert (tp.pairs.value(), tp.distill_steps.value()) == (8, 4)  # as chosen; still editable
    assert "its student, not begun yet, takes the student settings shown" in tp.run_label.text()
    assert tp.pairs.isEnabled() and tp.distill_config(tp.run_dirs(True), resume=True)["pairs"] == 8


def test_trains_on_a_dataset_file_of_the_users(qtbot, make_window, dialogs, monkeypatch, tmp_path):
    """A dataset file (piddm generate, own simulations) replaces the generated one: its grid is taken,
    a file of another PDE or grid is refused in one line before anything is written."""
    import app.panels.training_panel as tpm
    from engine import pdes
    from engine.config import TeacherConfig
    from engine.io.hdf5 import FieldsFile, write_fields

    fields = np.random.default_rng(0).random((12, 2, 16, 16)).astype(np.float32)
    mine = write_fields(tmp_path / "mine.h5", FieldsFile(fields, "darcy", pdes.get("darcy").fields))
    tp = make_window(16).training
    tp.folder.setText(str(tmp_path / "runs"))
    tp.grid.setCurrentText("32")
    monkeypatch.setattr(tpm.QFileDialog, "getOpenFileName", lambda *a, **k: (str(mine), ""))
    tp._browse_dataset()
    assert tp.dataset.text() == str(mine) and tp.grid_n == 16  # the grid comes from the file
    assert (tp.n_samples.value(), tp.n_samples.isEnabled()) == (12, False)  # nothing to generate
    assert "mine.h5" in tp.run_label.text()
    calls = {}

    def record(stage):
        def fn(*args, on_progress, cancel):
            calls[stage] = args
            return stage
        return fn

    tp.fns = {s: record(s) for s in ("data", "teacher", "distill")}
    with qtbot.waitSignal(tp.chain_done, timeout=10_000):
        tp.start_btn.click()
    assert "data" not in calls and tp.bars["data"].text() == "done (chosen file)"
    cfg = calls["teacher"][0]
    assert cfg["dataset"] == str(mine) and cfg["grid_n"] == 16
    TeacherConfig(**cfg)  # the engine takes it
    assert not (tmp_path / "runs" / "darcy-16" / "data.h5").exists()

    tp.grid.setCurrentText("32")  # now the file's grid is not the run's
    assert "mine.h5 holds darcy fields at 16²" in tp.run_label.text()
    calls.clear()
    with qtbot.waitSignal(tp.chain_stopped, timeout=10_000) as blocker:
        tp.start_btn.click()
    assert blocker.args[0].startswith("mine.h5 holds darcy fields at 16², but this run is darcy at 32²")
    assert "\n" not in blocker.args[0] and dialogs[-1]["title"] == "Training failed"
    assert calls == {} and not (tmp_path / "runs" / "darcy-32").exists()


def test_the_run_label_says_when_another_job_writes_the_run(qtbot, make_window, tmp_path):
    """The resume panel showed a command-line job's settings as the run's without a word."""
    from engine.io.rundir import writing_alone

    tp = make_window(16).training
    tp.folder.setText(str(tmp_path / "runs"))
    tp.grid.setCurrentText("16")
    teacher = tmp_path / "runs" / "darcy-16" / "teacher"
    with writing_alone(teacher):
        tp.resume.setChecked(True)
        assert "Another job is writing its teacher now" in tp.run_label.text()
    tp.resume.setChecked(False)
    tp.resume.setChecked(True)
    assert "Another job" not in tp.run_label.text()


def test_the_preview_residual_is_the_datasets_pde_not_the_defaults(qtbot, make_window, tmp_path):
    """Training on a helmholtz k = 2 file showed the residual of k = 1 (the PDE's default)."""
    from engine import pdes
    from engine.io.hdf5 import FieldsFile, write_fields
    from engine.metrics import residual_map

    x = np.random.default_rng(0).random((2, 16, 16)).astype(np.float32)
    mine = write_fields(tmp_path / "k2.h5", FieldsFile(np.stack([x] * 8), "helmholtz",
                                                       pdes.get("helmholtz").fields, pde_params={"k": 2.0}))
    tp = make_window(16).training
    tp.set_pde("helmholtz")
    tp.folder.setText(str(tmp_path / "runs"))
    tp.use_dataset(str(mine))

    def teacher(*args, on_progress, cancel):
        on_progress(Progress("teacher", 1, 1, {"loss": 1.0}, preview=x))
        return "teacher"

    tp.fns = {"data": fake_stage("data"), "teacher": teacher, "distill": lambda *a, on_progress, cancel: "distill"}
    with qtbot.waitSignal(tp.chain_done, timeout=10_000):
        tp.start_btn.click()
    want = np.abs(residual_map(pdes.get("helmholtz", k=2.0), x[None].astype(np.float64))[0])
    default = np.abs(residual_map(pdes.get("helmholtz"), x[None].astype(np.float64))[0])
    assert not np.allclose(want, default)
    np.testing.assert_allclose(tp.preview_res.data(), want, rtol=1e-6)
