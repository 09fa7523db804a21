"""Checkpoints: plain dicts, weights_only round trip, and clear refusals."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.diffusion.model import load_teacher
from engine.errors import CheckpointError
from engine.io.checkpoint import load_checkpoint, save_checkpoint


def test_round_trip_with_weights_only_gives_identical_outputs(trained_run, tmp_path):
    ckpt = torch.load(trained_run / "checkpoint.pt", weights_only=True)  # plain tensors and numbers
    assert ckpt["kind"] == "teacher" and ckpt["format"] == 1 and ckpt["step"] == 4
    assert ckpt["pde"]["name"] == "darcy" and ckpt["grid"]["n"] == 16
    save_checkpoint(tmp_path / "copy.pt", ckpt)
    a, b = load_teacher(trained_run), load_teacher(tmp_path / "copy.pt")
    x, sigma = torch.randn(2, 2, 16, 16), torch.tensor([0.3, 3.0])
    assert torch.equal(a.denoiser(x, sigma), b.denoiser(x, sigma))
    assert torch.equal(a.sample([7], steps=2), b.sample([7], steps=2))
    assert a.normalizer.to_dict() == b.normalizer.to_dict()


def test_other_pde_grid_or_kind_is_refused(trained_run):
    with pytest.raises(CheckpointError, match=r"trained for PDE 'darcy', expected 'poisson'"):
        load_checkpoint(trained_run, pde="poisson")
    with pytest.raises(CheckpointError, match=r"trained on a 16x16 grid, expected 32x32"):
        load_checkpoint(trained_run, grid=32)
    with pytest.raises(CheckpointError, match=r"a 'teacher' checkpoint, expected 'student'"):
        load_checkpoint(trained_run, kind="student")


def test_non_teacher_checkpoint_is_refused_by_load_teacher(tmp_path):
    save_checkpoint(tmp_path / "s.pt", {"kind": "student", "pde": {"name": "darcy"}, "grid": {"n": 16}})
    with pytest.raises(CheckpointError, match="expected 'teacher'"):
        load_teacher(tmp_path / "s.pt")


def test_damaged_file_is_one_line(trained_run, tmp_path):
    data = (trained_run / "checkpoint.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint at all")
    for name in ("cut.pt", "junk.pt", "missing.pt"):
        with pytest.raises(CheckpointError) as info:
            load_checkpoint(tmp_path / name)
        assert "\n" not in str(info.value) and name in str(info.value)


def test_only_plain_values_are_saved(tmp_path):
    with pytest.raises(CheckpointError, match="ckpt.stats"):
        save_checkpoint(tmp_path / "x.pt", {"kind": "teacher", "stats": np.zeros(2)})
    assert not (tmp_path / "x.pt").exists()


def test_a_full_disk_keeps_the_last_checkpoint(trained_run, tmp_path, full_disk):
    from engine.errors import EngineError

    ckpt = torch.load(trained_run / "checkpoint.pt", weights_only=True)
    path = tmp_path / "checkpoint.pt"
    path.write_text("the last checkpoint")  # write_text is not write_bytes: not failing here
    with pytest.raises(EngineError, match=r"cannot write .*checkpoint\.pt: No space left on device"):
        save_checkpoint(path, {**ckpt, "step": 5})
    assert path.read_text() == "the last checkpoint"
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]  # the half-written temporary is gone
