"""train_teacher: the loss falls, resume is exact, cancel and NaN leave a good checkpoint."""

from __future__ import annotations

import re

import pytest
import torch

from engine.diffusion.train import train_teacher
from engine.errors import CheckpointError, ConfigError, DatasetError, NonFiniteError
from engine.io.checkpoint import load_checkpoint
from engine.io.rundir import RunDir
from engine.jobs import Cancelled, CancelToken


def _losses(run):
    return [(r["step"], r["loss"]) for r in RunDir(run).read_metrics() if "loss" in r]


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_loss_falls_on_a_toy_set(tiny_cfg, tmp_path):
    cfg = tiny_cfg(steps=40, batch_size=8, lr=3e-3, warmup_steps=5)
    seen = []
    res = train_teacher(cfg, tmp_path / "run", on_progress=seen.append)
    losses = [loss for _, loss in _losses(tmp_path / "run")]
    assert len(losses) == 40 and res.step == 40
    first, last = sum(losses[:8]) / 8, sum(losses[-8:]) / 8
    assert last < 0.8 * first, f"loss did not fall: first {first:.3f}, last {last:.3f}"
    assert seen[-1].step == 40 and seen[-1].stage == "teacher" and "samples_per_s" in seen[-1].metrics
    for name in ("config.json", "checkpoint.pt", "metrics.jsonl", "log.txt", "normalization.json"):
        assert (tmp_path / "run" / name).is_file(), name


def test_resume_follows_the_uninterrupted_run(tiny_cfg, tmp_path):
    straight = train_teacher(tiny_cfg(steps=6), tmp_path / "a")
    train_teacher(tiny_cfg(steps=3), tmp_path / "b")
    resumed = train_teacher(tiny_cfg(steps=6), tmp_path / "b", resume=True)
    assert _losses(tmp_path / "a") == _losses(tmp_path / "b")  # bitwise, step by step
    assert _same_weights(straight.model, resumed.model) and _same_weights(straight.ema, resumed.ema)
    ck_a, ck_b = load_checkpoint(tmp_path / "a"), load_checkpoint(tmp_path / "b")
    assert ck_a["step"] == ck_b["step"] == 6
    assert all(torch.equal(ck_a["optimizer"]["state"][k]["exp_avg_sq"], ck_b["optimizer"]["state"][k]["exp_avg_sq"])
               for k in ck_a["optimizer"]["state"])


def test_cancel_leaves_a_resumable_checkpoint(tiny_cfg, tmp_path):
    token, at = CancelToken(), []

    def on_progress(p):  # the first report (step 1) always passes the throttle
        if not at:
            at.append(p.step)
            token.cancel()

    with pytest.raises(Cancelled):
        train_teacher(tiny_cfg(), tmp_path / "run", on_progress=on_progress, cancel=token)
    assert load_checkpoint(tmp_path / "run", kind="teacher")["step"] == at[0] + 1  # the next step
    res = train_teacher(tiny_cfg(), tmp_path / "run", resume=True)
    straight = train_teacher(tiny_cfg(), tmp_path / "ref")
    assert res.step == 6 and _same_weights(res.model, straight.model)


def test_resume_refuses_changed_settings_and_missing_checkpoint(tiny_cfg, tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint"):
        train_teacher(tiny_cfg(), tmp_path / "run", resume=True)
    train_teacher(tiny_cfg(steps=2), tmp_path / "run")
    with pytest.raises(ConfigError, match="already holds a checkpoint"):
        train_teacher(tiny_cfg(), tmp_path / "run")
    with pytest.raises(ConfigError, match=r"lr: 0\.002 -> 0\.1"):
        train_teacher(tiny_cfg(lr=0.1), tmp_path / "run", resume=True)


def test_non_finite_loss_names_the_step_and_keeps_the_last_good_checkpoint(tiny_cfg, tmp_path):
    cfg = tiny_cfg(lr=1e30, warmup_steps=0, steps=20, checkpoint_every=1)
    with pytest.raises(NonFiniteError, match=r"at step \d+") as info:
        train_teacher(cfg, tmp_path / "run")
    bad_step = int(re.search(r"at step (\d+)", str(info.value)).group(1))
    ckpt = load_checkpoint(tmp_path / "run")
    assert 1 <= ckpt["step"] < bad_step
    assert f"step {ckpt['step']}" in str(info.value)  # the message points at the good checkpoint
    assert all(torch.isfinite(v).all() for v in ckpt["model"].values())


def test_minutes_budget_stops_the_run(tiny_cfg, tmp_path):
    res = train_teacher(tiny_cfg(steps=10_000, minutes=1e-9, report_every=2), tmp_path / "run")
    # one process stops at the first step past the budget, not at the next report (step 2)
    assert res.stopped == "minutes" and res.step == 1


def test_preview_reports_a_sample_and_its_residual(tiny_cfg, tmp_path):
    seen = []
    train_teacher(tiny_cfg(steps=2, preview_every=2, preview_steps=2), tmp_path / "run", on_progress=seen.append)
    previews = [p for p in seen if p.preview is not None]
    assert len(previews) == 1 and previews[0].preview.shape == (2, 16, 16)
    assert previews[0].preview.dtype.name == "float32"
    assert previews[0].metrics["preview_residual_mse"] > 0
    assert list((tmp_path / "run" / "previews").glob("*.npz"))
    assert any("preview_residual_mse" in r for r in RunDir(tmp_path / "run").read_metrics())


def _close_losses(a, b) -> bool:
    la, lb = _losses(a), _losses(b)
    return [s for s, _ in la] == [s for s, _ in lb] and all(abs(x - y) <= 1e-4 * max(abs(x), 1e-3)
                                                           for (_, x), (_, y) in zip(la, lb, strict=True))


def test_channels_last_trains_the_same_model_and_may_be_switched_on_resume(tiny_cfg, tmp_path):
    train_teacher(tiny_cfg(steps=6), tmp_path / "plain")
    fast = train_teacher(tiny_cfg(steps=6, channels_last=True), tmp_path / "nhwc")
    assert _close_losses(tmp_path / "plain", tmp_path / "nhwc")  # a layout, not a different model
    conv = next(m for m in fast.model.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    train_teacher(tiny_cfg(steps=3), tmp_path / "switch")
    train_teacher(tiny_cfg(steps=6, channels_last=True), tmp_path / "switch", resume=True)
    assert _close_losses(tmp_path / "plain", tmp_path / "switch")


@pytest.mark.slow
def test_compiled_network_trains_the_same_model(tiny_cfg, tmp_path):
    train_teacher(tiny_cfg(steps=4), tmp_path / "eager")
    train_teacher(tiny_cfg(steps=4, compile=True), tmp_path / "compiled")
    assert _close_losses(tmp_path / "eager", tmp_path / "compiled")


@pytest.mark.parametrize(("env", "forced"), [(None, True), ("1", True), ("0", False)])
def test_compiled_training_on_cuda_forces_the_layout_choice_unless_told_not_to(monkeypatch, env, forced):
    import torch._inductor.config as inductor_config

    from engine.diffusion.train import force_layout_optimization

    if env is None:
        monkeypatch.delenv("TORCHINDUCTOR_FORCE_LAYOUT_OPT", raising=False)
    else:
        monkeypatch.setenv("TORCHINDUCTOR_FORCE_LAYOUT_OPT", env)
    with inductor_config.patch(force_layout_optimization=False):  # restored afterwards
        force_layout_optimization()
        assert inductor_config.force_layout_optimization is forced


def test_cooldown_brings_the_learning_rate_down_to_the_last_step(tiny_cfg, tmp_path):
    from engine.train_loop import lr_at

    cfg = tiny_cfg(steps=10, warmup_steps=2, cooldown=0.5, lr=1e-3)
    lrs = [lr_at(1e-3, s, 2, 0.5, 10) for s in range(10)]
    want = [0.5, 1, 1, 1, 1, 1, 0.8, 0.6, 0.4, 0.2]  # warm-up, constant, then (10 − s) / 5
    assert lrs == pytest.approx([1e-3 * w for w in want])
    assert [lr_at(1e-3, s, 2, 0.0, 10) for s in range(10)] == pytest.approx([5e-4] + [1e-3] * 9)
    train_teacher(cfg, tmp_path / "run")
    logged = [r["lr"] for r in RunDir(tmp_path / "run").read_metrics() if "lr" in r]
    assert logged == pytest.approx(lrs)  # the optimiser was given the schedule
    with pytest.raises(ConfigError, match="cooldown"):
        tiny_cfg(cooldown=1.5)


def test_init_from_starts_at_the_teachers_ema_weights_and_normaliser(tiny_cfg, tmp_path):
    from engine.data.generate import generate_dataset

    first = train_teacher(tiny_cfg(steps=4), tmp_path / "first")
    other = generate_dataset("darcy", 8, 16, 5, tmp_path / "other.h5").path  # other samples, other statistics
    warm = train_teacher(tiny_cfg(steps=1, dataset=str(other), lr=1e-12, warmup_steps=0,
                                  init_from=str(tmp_path / "first")), tmp_path / "warm")
    cold = train_teacher(tiny_cfg(steps=1, dataset=str(other), lr=1e-12, warmup_steps=0), tmp_path / "cold")
    start = first.ema.state_dict()
    for name, w in warm.model.state_dict().items():  # an lr of 1e-12 leaves the start in place
        assert torch.allclose(w, start[name], atol=1e-6), name
    assert not all(torch.allclose(w, start[n], atol=1e-6) for n, w in cold.model.state_dict().items())
    norm = lambda run: load_checkpoint(run)["normalizer"]  # noqa: E731
    assert norm(tmp_path / "warm") == norm(tmp_path / "first") != norm(tmp_path / "cold")
    assert load_checkpoint(tmp_path / "warm")["config"]["init_from"] == str(tmp_path / "first")


def test_init_from_refuses_a_teacher_of_another_pde_or_size(tiny_cfg, tmp_path):
    from engine.data.generate import generate_dataset

    train_teacher(tiny_cfg(steps=1), tmp_path / "darcy")
    poisson = generate_dataset("poisson", 8, 16, 0, tmp_path / "poisson.h5").path
    with pytest.raises(CheckpointError, match="trained for PDE 'darcy', expected 'poisson'"):
        train_teacher(tiny_cfg(pde="poisson", dataset=str(poisson), init_from=str(tmp_path / "darcy")),
                      tmp_path / "p")
    with pytest.raises(CheckpointError, match="U-Net size 'tiny', this run needs 'small'"):
        train_teacher(tiny_cfg(model="small", init_from=str(tmp_path / "darcy")), tmp_path / "s")
    assert not (tmp_path / "p" / "checkpoint.pt").exists() and not (tmp_path / "s" / "checkpoint.pt").exists()


def test_non_finite_loss_before_any_checkpoint_says_none_was_written(tiny_cfg, tmp_path):
    # checkpoint_minutes=0 and no checkpoint_every: nothing is saved before the loss blows up
    with pytest.raises(NonFiniteError, match="no checkpoint was written") as info:
        train_teacher(tiny_cfg(lr=1e30, warmup_steps=0, steps=20), tmp_path / "run")
    assert "last good checkpoint" not in str(info.value)
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


def test_a_batch_larger_than_the_training_set_and_the_default_is_refused(tiny_cfg, tmp_path):
    """100,000 rows of 6 samples (8 less the 2 held out) had the OOM killer end the run without a word;
    a batch up to the default 32 stays allowed on a tiny set (the app trains 8 samples at it)."""
    with pytest.raises(ConfigError, match=r"batch 1000 is larger than the 6 training samples") as info:
        train_teacher(tiny_cfg(steps=1, batch_size=1000), tmp_path / "big")
    assert "\n" not in str(info.value) and not (tmp_path / "big" / "checkpoint.pt").exists()
    assert train_teacher(tiny_cfg(steps=1, batch_size=32), tmp_path / "default").step == 1


def test_a_run_records_its_dataset_so_that_it_resumes_from_any_directory(tiny_cfg, darcy16, tmp_path,
                                                                         monkeypatch):
    import json
    import shutil

    shutil.copy(darcy16, tmp_path / "d.h5")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path)
    train_teacher(tiny_cfg(steps=1, dataset="d.h5"), "run")
    saved = json.loads((tmp_path / "run" / "config.json").read_text())["config"]["dataset"]
    assert saved == str(tmp_path / "d.h5")
    monkeypatch.chdir(tmp_path / "elsewhere")
    from engine.config import TeacherConfig, load_config

    cfg = load_config(tmp_path / "run" / "config.json", TeacherConfig)
    assert train_teacher(tiny_cfg(steps=2, dataset=cfg.dataset), "../run", resume=True).step == 2
    # a run that recorded a relative path (before this) says, from elsewhere, to pass the dataset
    with pytest.raises(DatasetError, match=r"d\.h5: no such file .*pass --data"):
        train_teacher(tiny_cfg(steps=3, dataset="d.h5"), "../run", resume=True)
    monkeypatch.chdir(tmp_path)  # and from where it was started it still resumes
    assert train_teacher(tiny_cfg(steps=3, dataset="d.h5"), "run", resume=True).step == 3


def _checkpoint_steps(run) -> list[int]:
    """The steps at which the run saved a checkpoint, from its log.txt."""
    return [int(m) for m in re.findall(r"checkpoint at step (\d+)", (run / "log.txt").read_text())]


def test_checkpoint_minutes_0_takes_no_checkpoint_by_the_clock(tiny_cfg, tmp_path):
    """0 = none by the clock (as for the student): a checkpoint at the end and by checkpoint_every only."""
    train_teacher(tiny_cfg(steps=4, report_every=1, checkpoint_minutes=0), tmp_path / "a")
    assert _checkpoint_steps(tmp_path / "a") == [4]
    train_teacher(tiny_cfg(steps=4, report_every=1, checkpoint_minutes=0, checkpoint_every=2), tmp_path / "b")
    assert _checkpoint_steps(tmp_path / "b") == [2, 4]


def test_no_draw_uses_the_global_torch_rng_and_an_older_checkpoints_rng_entry_loads(tiny_cfg, tmp_path):
    """Every draw of a step comes from step_generator, so the checkpoint keeps no global RNG state; a
    checkpoint written when it did ("rng") still resumes, on the uninterrupted run's weights."""
    from engine.io.checkpoint import save_checkpoint

    with torch.random.fork_rng(devices=[]):  # (the seeds below stay in this test)
        torch.manual_seed(1)
        straight = train_teacher(tiny_cfg(steps=4), tmp_path / "a")
        torch.manual_seed(2)  # another global RNG state: the same run
        train_teacher(tiny_cfg(steps=2), tmp_path / "b")
        ckpt = load_checkpoint(tmp_path / "b")
        assert "rng" not in ckpt
        ckpt.pop("format")
        save_checkpoint(tmp_path / "b" / "checkpoint.pt", {**ckpt, "rng": {"torch": torch.get_rng_state()}})
        torch.manual_seed(3)
        resumed = train_teacher(tiny_cfg(steps=4), tmp_path / "b", resume=True)
    assert _same_weights(straight.model, resumed.model) and _same_weights(straight.ema, resumed.ema)
    assert _losses(tmp_path / "a") == _losses(tmp_path / "b")
