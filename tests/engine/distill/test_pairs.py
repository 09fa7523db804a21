"""Pairs (ε, Φ(ε)) are a pure function of their seeds; refreshes rotate through every slot."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.diffusion.sampler import heun_sample, noise_from_seeds
from engine.distill.pairs import load_pairs, pair_seed, refresh_indices, teacher_map
from engine.distill.train import distill
from engine.io.checkpoint import load_checkpoint
from engine.jobs import Cancelled, CancelToken


def test_pair_seed_is_deterministic_and_distinct():
    seeds = [pair_seed(s, g, i) for s in (0, 1) for g in (0, 1, 2) for i in range(50)]
    assert seeds == [pair_seed(s, g, i) for s in (0, 1) for g in (0, 1, 2) for i in range(50)]
    assert len(set(seeds)) == len(seeds)
    assert all(0 <= s < 2**63 for s in seeds)  # fits torch.Generator.manual_seed and int64 storage


def test_refresh_indices_rotate_and_cover():
    K, fraction = 10, 0.25
    blocks = [refresh_indices(K, fraction, g) for g in range(1, 5)]
    assert all(len(b) == 3 for b in blocks)  # ⌈0.25·10⌉
    assert blocks[0].tolist() == [0, 1, 2] and blocks[1].tolist() == [3, 4, 5]
    assert blocks[3].tolist() == [9, 0, 1]  # wraps around
    assert set(np.concatenate(blocks).tolist()) == set(range(K))
    for b in blocks:
        assert len(set(b.tolist())) == len(b) and b.min() >= 0 and b.max() < K
    assert refresh_indices(4, 1.0, 7).tolist() == [0, 1, 2, 3]
    assert len(refresh_indices(100, 1e-6, 1)) == 1


def test_teacher_map_is_a_pure_function_of_the_seeds(teacher):
    seeds = [pair_seed(5, 0, i) for i in range(6)]
    eps, x0 = teacher_map(teacher, seeds, 3)
    eps2, x02 = teacher_map(teacher, seeds, 3)
    assert torch.equal(eps, eps2) and torch.equal(x0, x02)
    assert eps.shape == x0.shape == (6, *teacher.shape) and eps.dtype == x0.dtype == torch.float32
    assert torch.equal(eps, noise_from_seeds(seeds, teacher.shape))
    with torch.no_grad():
        ref = heun_sample(teacher.denoiser, eps, num_steps=3, sigma_min=teacher.sigma_min,
                          sigma_max=teacher.sigma_max, rho=teacher.rho)
    assert torch.equal(x0, ref)
    # batching does not change a pair (up to kernel rounding)
    eps3, x03 = teacher_map(teacher, seeds, 3, batch=4)
    assert torch.equal(eps3, eps)
    torch.testing.assert_close(x03, x0, rtol=1e-5, atol=1e-5)
    # cancel is honoured between batches
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        teacher_map(teacher, seeds, 3, cancel=token)


def test_a_runs_pairs_equal_a_fresh_teacher_map_of_its_seeds(teacher, distill_cfg, tmp_path):
    # refresh every 2 steps, a quarter of the 16 pairs: two refreshes in 5 steps (at steps 2 and 4)
    cfg = distill_cfg(steps=5, refresh=2, refresh_fraction=0.25)
    distill(cfg, tmp_path / "s")
    stored = load_pairs(tmp_path / "s" / "pairs.h5")
    assert stored is not None
    eps, x0, seeds = stored
    ckpt = load_checkpoint(tmp_path / "s", kind="student")
    assert ckpt["generation"] == 2 and ckpt["pair_seeds"].tolist() == seeds
    expected = [pair_seed(cfg.seed, 0, i) for i in range(cfg.pairs)]
    for g in (1, 2):
        for i in refresh_indices(cfg.pairs, cfg.refresh_fraction, g):
            expected[int(i)] = pair_seed(cfg.seed, g, int(i))
    assert seeds == expected
    assert len(set(seeds) & {pair_seed(cfg.seed, 0, i) for i in range(cfg.pairs)}) == cfg.pairs - 8
    fresh_eps, fresh_x0 = teacher_map(teacher, seeds, cfg.sampler_steps)
    assert torch.equal(eps, fresh_eps)
    torch.testing.assert_close(x0, fresh_x0, rtol=1e-5, atol=1e-5)
