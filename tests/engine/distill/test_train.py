"""Distillation: the residual term works, resume is exact, cancel leaves a resumable checkpoint."""

from __future__ import annotations

import dataclasses
import shutil

import pytest
import torch

from engine.distill.generator import load_student
from engine.distill.loss import residual_energy
from engine.distill.train import distill
from engine.errors import CheckpointError, ConfigError
from engine.io.checkpoint import load_checkpoint
from engine.jobs import Cancelled, CancelToken


def _sample_residual(run, seeds=range(100, 116)) -> float:
    student = load_student(run)
    with torch.no_grad():
        x = student.generate(student.noise(list(seeds)))
    return float(residual_energy(student.pde, x, student.grid).mean())


def test_lambda_lowers_the_residual_at_equal_steps(distill_cfg, tmp_path):
    # 32 pairs from Heun-4, 30 steps each; λ = 100 (relative to the teacher's own mean r²) against the
    # pure-distillation ablation λ = 0. Measured on fixed ε in physical units: ~0.1-0.15x of λ = 0's.
    cfg = distill_cfg(pairs=32, sampler_steps=4, steps=30, report_every=10)
    pure = distill(dataclasses.replace(cfg, lam=0.0), tmp_path / "pure")
    piddm = distill(dataclasses.replace(cfg, lam=100.0), tmp_path / "piddm")
    assert pure.step == piddm.step == 30
    assert pure.residual_scale == piddm.residual_scale > 0  # same pairs, same normaliser s
    r_pure, r_piddm = _sample_residual(tmp_path / "pure"), _sample_residual(tmp_path / "piddm")
    assert r_piddm <= 0.5 * r_pure, (r_piddm, r_pure)
    assert piddm.residual < pure.residual  # the training-time report agrees


@pytest.fixture(scope="module")
def straight(distill_cfg, tmp_path_factory):
    """6 uninterrupted steps with an lr warm-up and a pair refresh (the reference for resume)."""
    cfg = distill_cfg(steps=6, refresh=2, warmup_steps=2, lam=1.0)
    run = tmp_path_factory.mktemp("straight") / "s"
    distill(cfg, run)
    return cfg, load_checkpoint(run, kind="student")


def _assert_same_weights(a: dict, b: dict) -> None:
    for part in ("ema", "model"):
        assert a[part].keys() == b[part].keys()
        for k in a[part]:
            assert torch.equal(a[part][k], b[part][k]), (part, k)
    assert a["pair_seeds"].tolist() == b["pair_seeds"].tolist() and a["generation"] == b["generation"]


def test_resume_continues_on_the_uninterrupted_run(straight, tmp_path):
    cfg, ref = straight
    run = tmp_path / "s"
    assert distill(dataclasses.replace(cfg, steps=3), run).step == 3
    pair_seconds = load_checkpoint(run, kind="student")["pair_seconds"]
    with pytest.raises(ConfigError, match="already holds a checkpoint"):
        distill(cfg, run)
    with pytest.raises(ConfigError, match="lam"):
        distill(dataclasses.replace(cfg, lam=2.0), run, resume=True)
    res = distill(cfg, run, resume=True)
    assert res.step == 6
    ckpt = load_checkpoint(run, kind="student")
    assert ckpt["step"] == 6 and ckpt["residual_scale"] == ref["residual_scale"]
    assert ckpt["pair_seconds"] > pair_seconds > 0  # the teacher's time on pairs adds up over resumes
    _assert_same_weights(ckpt, ref)
    again = distill(cfg, run, resume=True)  # nothing left: the last recorded loss and residual, not NaN
    assert again.step == 6 and (again.loss, again.residual) == (res.loss, res.residual)


def test_cancel_leaves_a_checkpoint_that_resumes(straight, tmp_path):
    cfg, ref = straight
    run, token, seen = tmp_path / "s", CancelToken(), []

    def on_progress(p):
        if p.stage == "distill":
            seen.append(p.step)
            token.cancel()

    with pytest.raises(Cancelled):
        distill(cfg, run, on_progress=on_progress, cancel=token)
    k = load_checkpoint(run, kind="student")["step"]
    assert seen and 1 <= k < cfg.steps and k >= seen[0]
    res = distill(cfg, run, resume=True)
    assert res.step == cfg.steps
    _assert_same_weights(load_checkpoint(run, kind="student"), ref)


def _teacher_like(teacher_run, run, **changes):
    """A tiny teacher run made from the fixture teacher's settings with ``changes`` (1-2 steps)."""
    from engine.config import TeacherConfig, from_dict
    from engine.diffusion.train import train_teacher

    cfg = from_dict(TeacherConfig, load_checkpoint(teacher_run, kind="teacher")["config"])
    train_teacher(dataclasses.replace(cfg, **{"steps": 2, **changes}), run)
    return run


def test_init_from_starts_at_an_earlier_students_weights(straight, teacher_run, tmp_path):
    """A student warm-started from another (lr 1e-12, so one step leaves it in place) holds that student's
    EMA weights, also under a teacher trained on from its own; a cold one holds the teacher's denoiser."""
    cfg, ref = straight
    earlier = tmp_path / "earlier"
    distill(cfg, earlier)
    later_teacher = _teacher_like(teacher_run, tmp_path / "teacher-on", init_from=str(teacher_run))
    for teacher in (teacher_run, later_teacher):
        warm = distill(dataclasses.replace(cfg, teacher=str(teacher), steps=1, lr=1e-12, warmup_steps=0,
                                           init_from=str(earlier)), tmp_path / f"warm-{teacher.name}")
        for name, w in load_checkpoint(warm.checkpoint)["model"].items():
            assert torch.allclose(w, ref["ema"][name], atol=1e-6), name
    cold = distill(dataclasses.replace(cfg, steps=1, lr=1e-12, warmup_steps=0), tmp_path / "cold")
    cold_weights = load_checkpoint(cold.checkpoint)["model"]
    assert not all(torch.allclose(w, ref["ema"][n], atol=1e-6) for n, w in cold_weights.items())
    assert load_checkpoint(warm.checkpoint)["config"]["init_from"] == str(earlier)


def test_init_from_refuses_a_student_that_does_not_fit_the_teacher(straight, teacher_run, darcy16x16, tmp_path):
    from engine.data.generate import generate_dataset

    cfg, _ = straight
    earlier = tmp_path / "earlier"
    distill(dataclasses.replace(cfg, steps=1), earlier)
    other_data = generate_dataset("darcy", 8, 16, 5, tmp_path / "other.h5").path  # other statistics
    poisson = generate_dataset("poisson", 8, 16, 0, tmp_path / "poisson.h5").path
    refusals = {
        "normaliser or σ_max differs": _teacher_like(teacher_run, tmp_path / "fresh", dataset=str(other_data)),
        "U-Net size 'tiny', this run needs 'small'": _teacher_like(teacher_run, tmp_path / "small", model="small"),
        "trained for PDE 'darcy', expected 'poisson'": _teacher_like(teacher_run, tmp_path / "poisson",
                                                                     pde="poisson", pde_params={}, dataset=str(poisson)),
    }
    for i, (message, teacher) in enumerate(refusals.items()):
        with pytest.raises(CheckpointError, match=message):
            distill(dataclasses.replace(cfg, teacher=str(teacher), init_from=str(earlier)), tmp_path / f"s{i}")
        assert not (tmp_path / f"s{i}" / "checkpoint.pt").exists()


def test_a_fresh_start_maps_its_own_pairs_not_a_leftover_file(distill_cfg, tmp_path, monkeypatch):
    """A pairs.h5 left by a start that died before its first checkpoint (here: same seeds, another
    teacher's x0, zeros) is not trained on: a fresh start maps the pairs through its own teacher."""
    from engine.distill.pairs import load_pairs, pair_seed, save_pairs

    cfg = distill_cfg(steps=1)
    run = tmp_path / "s"
    run.mkdir()
    seeds = [pair_seed(cfg.seed, 0, i) for i in range(cfg.pairs)]
    save_pairs(run / "pairs.h5", torch.zeros(cfg.pairs, 2, 16, 16), torch.zeros(cfg.pairs, 2, 16, 16), seeds)
    distill(cfg, run)
    eps, x0, stored = load_pairs(run / "pairs.h5")
    assert stored == seeds and eps.abs().amax() > 0 and x0.abs().amax() > 0
    # a copy of the same teacher's pairs (packaging/make_models.py copies them between students) is used
    import engine.distill.train as train

    again = tmp_path / "again"
    again.mkdir()
    shutil.copy(run / "pairs.h5", again / "pairs.h5")
    monkeypatch.setattr(train, "teacher_map", lambda *a, **k: pytest.fail("mapped pairs it was given"))
    distill(cfg, again)
    assert torch.equal(load_pairs(again / "pairs.h5")[1], x0)


def test_resume_refuses_another_teacher_in_one_line(straight, teacher_run, tmp_path):
    """The teacher may move (its path may change), but a resume with another teacher (another step, seed
    or U-Net size) is refused before any weights load, and config.json keeps the run's teacher."""
    import json

    cfg, _ = straight
    run = tmp_path / "s"
    distill(dataclasses.replace(cfg, steps=1), run)
    others = {"step: 20 -> 2; seed: 1 -> 7": _teacher_like(teacher_run, tmp_path / "seed7", seed=7),
              "model: 'tiny' -> 'small'": _teacher_like(teacher_run, tmp_path / "small", model="small")}
    for message, other in others.items():
        with pytest.raises(ConfigError, match="cannot resume .* with another teacher") as info:
            distill(dataclasses.replace(cfg, teacher=str(other)), run, resume=True)
        assert message in str(info.value) and "\n" not in str(info.value)
        assert json.loads((run / "config.json").read_text())["config"]["teacher"] == cfg.teacher
    # the same teacher under another spelling of its path resumes
    moved = dataclasses.replace(cfg, teacher=str(teacher_run / ".." / teacher_run.name), steps=2)
    assert distill(moved, run, resume=True).step == 2


def test_non_finite_loss_before_any_checkpoint_says_none_was_written(distill_cfg, tmp_path):
    from engine.errors import NonFiniteError

    cfg = distill_cfg(lr=1e30, steps=6, checkpoint_minutes=1e6)
    with pytest.raises(NonFiniteError, match="no checkpoint was written") as info:
        distill(cfg, tmp_path / "s")
    assert "last good checkpoint" not in str(info.value)
    assert not (tmp_path / "s" / "checkpoint.pt").exists()


def test_pairs_that_cannot_fit_in_memory_are_refused_before_any_mapping(distill_cfg, tmp_path, monkeypatch):
    import engine.distill.train as train

    monkeypatch.setattr(train, "teacher_map", lambda *a, **k: pytest.fail("mapped pairs that cannot fit"))
    with pytest.raises(ConfigError, match="100000000 pairs need .* GiB of memory for ε and x0"):
        distill(distill_cfg(pairs=100_000_000), tmp_path / "s")
    assert not (tmp_path / "s").exists()


def test_checkpoint_minutes_0_takes_no_checkpoint_by_the_clock(distill_cfg, tmp_path):
    """0 = none by the clock, as for the teacher: one checkpoint at the end (0 saved at every report)."""
    import re

    distill(distill_cfg(steps=4, report_every=1, checkpoint_minutes=0), tmp_path / "s")
    saved = re.findall(r"checkpoint at step (\d+)", (tmp_path / "s" / "log.txt").read_text())
    assert saved == ["4"]


def test_resume_may_change_the_preview_cadence_as_the_teachers_does(straight, tmp_path):
    """Previews do not change the mathematics: a resume that asks for others follows the uninterrupted run."""
    from engine.diffusion.train import RESUME_MAY_CHANGE as TEACHER_MAY_CHANGE
    from engine.distill.train import RESUME_MAY_CHANGE

    cfg, ref = straight
    assert "preview_every" in RESUME_MAY_CHANGE
    assert {f.name for f in dataclasses.fields(cfg) if f.name in TEACHER_MAY_CHANGE} <= RESUME_MAY_CHANGE
    run = tmp_path / "s"
    distill(dataclasses.replace(cfg, steps=3, preview_every=0), run)
    res = distill(dataclasses.replace(cfg, preview_every=2), run, resume=True)
    assert res.step == cfg.steps
    assert sorted(p.name for p in (run / "previews").glob("*.npz")) == ["step-00000004.npz", "step-00000006.npz"]
    _assert_same_weights(load_checkpoint(run, kind="student"), ref)


def test_the_lr_warm_up_is_the_teachers_schedule(distill_cfg, tmp_path):
    """The student's AdamW rate follows lr_at (linear warm-up, no cooldown), as the inline formula did."""
    from engine.train_loop import lr_at

    cfg = distill_cfg(steps=3, warmup_steps=5, lr=1e-3)
    distill(cfg, tmp_path / "s")
    lr = load_checkpoint(tmp_path / "s", kind="student")["optimizer"]["param_groups"][0]["lr"]
    assert lr == lr_at(1e-3, 2, 5) == 1e-3 * min(1.0, 3 / 5)  # the last step's (2, 0-based): the old formula


def test_ctrl_c_inside_a_step_saves_no_half_updated_student(distill_cfg, tmp_path, monkeypatch):
    """A KeyboardInterrupt after the optimiser moved the weights but before the step was counted must not
    save those weights under the previous step's number (a resume would apply that update twice)."""
    import engine.distill.train as train

    real = train.ema_decay

    def interrupted(step, halflife):  # called after opt.step(), before the step is counted
        if step == 3:
            raise KeyboardInterrupt
        return real(step, halflife)

    monkeypatch.setattr(train, "ema_decay", interrupted)
    with pytest.raises(KeyboardInterrupt):
        distill(distill_cfg(steps=6, report_every=100, checkpoint_minutes=0, preview_every=0), tmp_path / "s")
    assert not (tmp_path / "s" / "checkpoint.pt").exists()


def test_ctrl_c_during_a_pair_refresh_saves_a_state_the_resume_continues_exactly(straight, tmp_path, monkeypatch):
    """The refresh maps fresh pairs through the teacher (the slow part between steps): interrupted there,
    the checkpoint holds the new seeds, and the resumed run maps their pairs and follows the straight run."""
    import engine.distill.train as train

    cfg, ref = straight
    real, calls = train.teacher_map, []

    def interrupted(*a, **k):
        calls.append(1)
        if len(calls) == 2:  # the first refresh (after step 2); the first call maps the initial pairs
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(train, "teacher_map", interrupted)
    run = tmp_path / "s"
    with pytest.raises(KeyboardInterrupt):
        distill(dataclasses.replace(cfg, checkpoint_minutes=0), run)
    saved = load_checkpoint(run, kind="student")
    assert (saved["step"], saved["generation"]) == (2, 1)
    monkeypatch.setattr(train, "teacher_map", real)
    assert distill(dataclasses.replace(cfg, checkpoint_minutes=0), run, resume=True).step == cfg.steps
    _assert_same_weights(load_checkpoint(run, kind="student"), ref)
