"""Dataset generation: per-sample seeds, reference-solved content, the written file."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine import pdes
from engine.data.generate import generate_dataset, generate_fields, sample_seeds
from engine.errors import ConfigError
from engine.grid import Grid
from engine.io.hdf5 import read_fields
from engine.jobs import Cancelled, CancelToken


def test_samples_do_not_depend_on_n_or_batch():
    five = generate_fields("darcy", 5, 16, seed=3, batch=2)
    three = generate_fields("darcy", 3, 16, seed=3)
    np.testing.assert_array_equal(five[:3], three)
    assert not np.array_equal(generate_fields("darcy", 3, 16, seed=4), three)
    assert len(set(sample_seeds(0, 10)) & set(sample_seeds(1, 10))) == 0


@pytest.mark.parametrize("name", pdes.names())
def test_generated_fields_are_reference_solutions(name):
    x = generate_fields(name, 2, 16, seed=1)
    pde, grid = pdes.get(name), Grid(16)
    assert x.shape == (2, len(pde.fields), 16, 16) and x.dtype == np.float64
    seeds = sample_seeds(1, 2)
    np.testing.assert_array_equal(pde.inputs_of(torch.from_numpy(x)).numpy(),
                                  pde.sample_inputs(seeds, grid).numpy())
    assert pde.residual(torch.from_numpy(x), grid).abs().max() < 1e-9


def test_generate_validates_arguments():
    with pytest.raises(ConfigError, match="at least 1"):
        generate_fields("darcy", 0, 16, 0)
    with pytest.raises(ConfigError, match="grid must be"):
        generate_fields("darcy", 1, 4, 0)
    with pytest.raises(ConfigError, match="unknown PDE"):
        generate_fields("nope", 1, 16, 0)


def test_generate_dataset_writes_a_readable_file(tmp_path):
    seen = []
    res = generate_dataset("helmholtz", 3, 16, 7, tmp_path / "h.h5", {"k": 2.0}, on_progress=seen.append)
    ff = read_fields(res.path)
    assert (ff.pde, ff.pde_params, ff.seed, ff.method, len(ff), ff.grid) == ("helmholtz", {"k": 2.0}, 7,
                                                                            "reference", 3, 16)
    assert ff.fields.dtype == np.float32
    np.testing.assert_allclose(ff.fields, generate_fields("helmholtz", 3, 16, 7, {"k": 2.0}), rtol=1e-6, atol=1e-7)
    assert seen and seen[-1].step == seen[-1].total == 3
    assert (seen[0].step, seen[0].total) == (0, 3)  # reported before the first solve: a bar's clock starts
    assert res.residual_mse < 1e-8 and res.bc_mse == 0.0 and res.samples_per_s > 0


def test_generate_cancels_and_writes_nothing(tmp_path):
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        generate_dataset("poisson", 2, 16, 0, tmp_path / "c.h5", cancel=token)
    assert list(tmp_path.iterdir()) == []
