"""TeacherConfig JSON round trip (strict), Normalizer, train / held-out split, RunDir."""

from __future__ import annotations

import json

import pytest
import torch

from engine.config import TeacherConfig, from_dict, load_config, save_config, to_dict
from engine.data.dataset import Normalizer, load_split
from engine.errors import ConfigError, DatasetError
from engine.io.rundir import RunDir


def test_config_round_trip_and_strictness(tmp_path):
    cfg = TeacherConfig(pde="poisson", grid_n=32, pde_params={"x": 1.0}, lr=1e-3, minutes=2.5)
    save_config(tmp_path / "config.json", cfg, note="meta is kept apart")
    assert load_config(tmp_path / "config.json", TeacherConfig) == cfg
    assert from_dict(TeacherConfig, to_dict(cfg)) == cfg
    with pytest.raises(ConfigError, match=r"unknown keys \['lr_typo'\]"):
        from_dict(TeacherConfig, {**to_dict(cfg), "lr_typo": 1})
    doc = json.loads((tmp_path / "config.json").read_text())
    doc["type"] = "DistillConfig"
    (tmp_path / "other.json").write_text(json.dumps(doc))
    with pytest.raises(ConfigError, match="holds a DistillConfig"):
        load_config(tmp_path / "other.json", TeacherConfig)


@pytest.mark.parametrize("bad", [{"grid_n": 20}, {"model": "huge"}, {"lr": 0.0}, {"holdout_fraction": 1.0}])
def test_config_validation(bad):
    with pytest.raises(ConfigError):
        TeacherConfig(**bad)


@pytest.mark.parametrize("bad", [
    {"lr": float("nan")}, {"lr": float("inf")}, {"minutes": float("nan")}, {"minutes": float("inf")},
    {"P_mean": float("nan")}, {"ema_halflife_steps": float("nan")}, {"checkpoint_minutes": float("nan")},
    {"minutes": 0.0, "steps": 100_000_000},  # neither a time nor a step limit: `train --minutes 0` ran forever
])
def test_config_refuses_non_finite_numbers_and_a_run_without_a_limit(bad):
    with pytest.raises(ConfigError, match="must be a finite number|a run needs a limit"):
        TeacherConfig(**bad)
    TeacherConfig(steps=100_000_000, minutes=1.0)  # --minutes alone: the clock decides


def test_normalizer_encodes_to_sigma_data_and_back():
    x = torch.stack([torch.randn(6, 8, 8) * 3 + 7, torch.rand(6, 8, 8) * 1e-2], dim=1).double()  # (6, 2, 8, 8)
    norm = Normalizer.fit(x, scale=0.5)
    z = norm.encode(x)
    assert torch.allclose(z.mean(dim=(0, 2, 3)), torch.zeros(2, dtype=torch.float64), atol=1e-12)
    assert torch.allclose(z.std(dim=(0, 2, 3), unbiased=False), torch.full((2,), 0.5, dtype=torch.float64))
    assert torch.allclose(norm.decode(z), x, atol=1e-12)
    again = Normalizer.from_dict(json.loads(json.dumps(norm.to_dict())))
    assert torch.equal(again.encode(x.float()), norm.encode(x.float())) and again.encode(x.float()).dtype == torch.float32
    with pytest.raises(DatasetError):
        Normalizer([0.0, 1.0], [1.0, 0.0])


def test_split_holds_out_the_last_samples(darcy16):
    split = load_split(darcy16, pde="darcy", grid_n=16, holdout_fraction=0.25)
    assert split.train.shape == (6, 2, 16, 16) and split.held_out.shape == (2, 2, 16, 16)
    assert split.record()["held_out"] == [6, 8]
    with pytest.raises(DatasetError, match="the model is for poisson"):
        load_split(darcy16, pde="poisson")


def test_rundir_metrics_survive_a_torn_line(tmp_path):
    run = RunDir(tmp_path / "r", create=True)
    run.append_metrics({"step": 1, "loss": 0.5})
    run.append_metrics({"step": 2, "loss": float("nan")})
    with open(run.metrics_path, "a") as f:
        f.write('{"step": 3, "lo')  # a writer killed mid-line
    assert [r["step"] for r in run.read_metrics()] == [1, 2]
    run.truncate_metrics(1)
    assert run.read_metrics() == [{"step": 1, "loss": 0.5}]


def test_a_cooldown_needs_a_step_count():
    """The cooldown falls over the last fraction of `steps`: with no step limit (minutes alone) it never
    started. TeacherConfig refuses it, so the API and the app hear it as `piddm train` does."""
    from engine.config import UNLIMITED_STEPS

    with pytest.raises(ConfigError, match="cooldown is a fraction of the run's steps") as info:
        TeacherConfig(cooldown=0.3, steps=UNLIMITED_STEPS, minutes=5)
    assert info.value.setting == "cooldown"
    TeacherConfig(cooldown=0.3, steps=1000, minutes=5)  # a step count: the cooldown is its last 300 steps
    TeacherConfig(steps=UNLIMITED_STEPS, minutes=5)  # no cooldown: the clock alone decides
