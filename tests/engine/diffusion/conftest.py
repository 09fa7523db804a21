"""Fixtures of the teacher tests: one tiny darcy set (16², 8 samples) and a tiny config."""

from __future__ import annotations

import dataclasses

import pytest

from engine.config import TeacherConfig


@pytest.fixture(scope="session")
def darcy16(tmp_path_factory):
    from engine.data.generate import generate_dataset

    return generate_dataset("darcy", 8, 16, 0, tmp_path_factory.mktemp("data") / "darcy16.h5").path


@pytest.fixture
def tiny_cfg(darcy16):
    """A config that trains in well under a second per step on a 2-core CPU."""

    def make(**kw):
        base = TeacherConfig(pde="darcy", grid_n=16, dataset=str(darcy16), model="tiny", batch_size=4,
                             lr=2e-3, warmup_steps=2, steps=6, report_every=1, checkpoint_minutes=0,
                             holdout_fraction=0.25, seed=1)
        return dataclasses.replace(base, **kw)

    return make


@pytest.fixture(scope="session")
def trained_run(darcy16, tmp_path_factory):
    """A teacher run trained for 4 steps (shared, read-only)."""
    from engine.diffusion.train import train_teacher

    cfg = TeacherConfig(pde="darcy", grid_n=16, dataset=str(darcy16), model="tiny", batch_size=4,
                        lr=2e-3, warmup_steps=2, steps=4, report_every=2, checkpoint_minutes=0)
    run = tmp_path_factory.mktemp("runs") / "teacher"
    train_teacher(cfg, run)
    return run
