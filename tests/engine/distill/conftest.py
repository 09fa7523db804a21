"""Fixtures of the distillation tests: one tiny darcy teacher (16², 16 samples, ~20 steps) and a
tiny DistillConfig factory. Everything runs on the CPU in seconds."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from engine.config import TeacherConfig
from engine.distill.config import DistillConfig


@pytest.fixture(scope="package", autouse=True)
def one_thread():
    """One intra-op thread: on a loaded 2-core machine this is ~10x faster for the tiny U-Net, and it
    makes every run here use the same kernels (the bitwise comparisons rely on it)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="package")
def darcy16x16(tmp_path_factory):
    from engine.data.generate import generate_dataset

    return generate_dataset("darcy", 16, 16, 0, tmp_path_factory.mktemp("distill-data") / "darcy16.h5").path


@pytest.fixture(scope="package")
def teacher_run(darcy16x16, tmp_path_factory):
    """A tiny teacher run trained for 20 steps (shared, read-only)."""
    from engine.diffusion.train import train_teacher

    cfg = TeacherConfig(pde="darcy", grid_n=16, dataset=str(darcy16x16), model="tiny", batch_size=8,
                        lr=2e-3, warmup_steps=2, steps=20, report_every=10, checkpoint_minutes=0, seed=1,
                        device="cpu")
    run = tmp_path_factory.mktemp("distill-runs") / "teacher"
    train_teacher(cfg, run)
    return run


@pytest.fixture(scope="package")
def teacher(teacher_run):
    from engine.diffusion.model import load_teacher

    return load_teacher(teacher_run, "cpu")


@pytest.fixture(scope="package")
def distill_cfg(teacher_run):
    """DistillConfig factory: 16 pairs, Heun-3, batch 8, a few steps, no checkpoints by the clock."""

    def make(**kw) -> DistillConfig:
        base = DistillConfig(teacher=str(teacher_run), lam=0.1, lam_warmup=0.0, pairs=16, refresh=0,
                             sampler_steps=3, batch_size=8, lr=1e-3, warmup_steps=0, steps=4,
                             ema_halflife_steps=2.0, seed=3, report_every=1, checkpoint_minutes=1e6,
                             device="cpu")
        return dataclasses.replace(base, **kw)

    return make
