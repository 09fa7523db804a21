"""Seed namespaces (engine.seeding): the old values are kept, and the stated bounds hold, exactly.

Data seeds collide modulo 2**32 (torch keeps 32 bits of a seed), so the checks work on intervals of
32-bit values: dataset S of n samples is [S·P, S·P + n) mod 2**32. Each bound of the module docstring
is checked at its value and one past it, so a moved namespace fails here until its docstring is redone.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine import seeding
from engine.errors import ConfigError
from engine.seeding import (
    DEMO_BASE,
    HELD_OUT_SEED,
    MEMBER_STRIDE,
    REFERENCE_SEED,
    SAMPLE_STRIDE,
    SOLVE_SEED,
    TORCH_SEED_BITS,
    VALIDATION_SEED,
    demo_seed,
    member_seeds,
    sample_seeds,
    validation_mask_seed,
)

M = 2**TORCH_SEED_BITS
P = SAMPLE_STRIDE


def test_old_seed_values_are_kept():
    # literals from the formulas before engine.seeding existed (generate.sample_seeds, solve.common
    # member_seeds, bench/bench_solve constants, the "+ 7919" of the tuning masks)
    assert sample_seeds(0, 3) == [0, 1, 2]
    assert sample_seeds(1, 3) == [1000003, 1000004, 1000005]
    assert sample_seeds(7_000_001, 2) == [7000022000003, 7000022000004]
    assert sample_seeds(2**32 - 1, 2) == [4294980179901885, 4294980179901886]
    assert sample_seeds(seeding.BENCH_NOISE_SEED + 2, 2) == [1002003006, 1002003007]
    assert member_seeds(0, 2, 3) == [0, 1, 2, 1009, 1010, 1011]
    assert member_seeds(5, 2, 2, first_case=3) == [5045018162, 5045018163, 5045019171, 5045019172]
    assert member_seeds(2**32 - 1, 1, 2) == [4333635001521001965, 4333635001521001966]
    assert (REFERENCE_SEED, HELD_OUT_SEED, SOLVE_SEED, VALIDATION_SEED) == (7000001, 7000002, 7000003, 7000004)
    assert validation_mask_seed(0) == 7919 and validation_mask_seed(3) == 7922


def test_callers_use_the_namespaces():
    from engine import bench, bench_solve
    from engine.data import generate
    from engine.solve import common

    assert generate.sample_seeds is sample_seeds and common.member_seeds is member_seeds
    assert (bench.REFERENCE_SEED, bench.HELD_OUT_SEED) == (REFERENCE_SEED, HELD_OUT_SEED)
    assert (bench_solve.SOLVE_SEED, bench_solve.VALIDATION_SEED) == (SOLVE_SEED, VALIDATION_SEED)


def test_member_seeds_do_not_depend_on_the_batch():
    whole = member_seeds(4, 5, 3)
    assert whole == sum((member_seeds(4, 1, 3, first_case=b) for b in range(5)), [])
    assert len(set(whole)) == 15
    # members of one solve span cases·MEMBER_STRIDE consecutive integers: distinct modulo 2**32 up to
    assert M // MEMBER_STRIDE == 4_256_657  # cases (the docstring's figure)
    with pytest.raises(ConfigError, match="at most 1009 latent draws"):
        member_seeds(0, 1, MEMBER_STRIDE + 1)


def draw(seed: int) -> torch.Tensor:
    return torch.randn(4, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_torch_keeps_32_bits_of_a_seed():
    # the premise of every bound below; a generator that kept all bits would only separate them further
    for s in (0, 7, 1_000_003):
        assert torch.equal(draw(s), draw(s + M)) and torch.equal(draw(s), draw(s + 5 * M))
    assert not torch.equal(draw(7), draw(8))


def starts(seeds) -> np.ndarray:
    """First data seed of each dataset seed, modulo 2**32."""
    return (np.asarray(seeds, dtype=np.uint64) * np.uint64(P)) % np.uint64(M)


def meet(a: np.ndarray, a_len: int, b: int, b_len: int) -> bool:
    """Does any interval [a_k, a_k + a_len) meet [b, b + b_len), modulo 2**32?"""
    b64 = np.uint64(b % M)
    return bool((((b64 - a) % np.uint64(M) < a_len) | ((a - b64) % np.uint64(M) < b_len)).any())


def test_dataset_start_offsets():
    assert sorted(set((starts(range(10_000)) % np.uint64(P)).tolist())) == [0, 45_589, 91_178]
    offsets = sorted(set((starts(range(100_000)) % np.uint64(P)).tolist()))
    assert len(offsets) == 24 and np.diff(offsets).min() == 2_955 and np.diff(offsets).max() == 45_589
    assert M - 4294 * P == 954_414 and P - 954_414 == 45_589


RESERVED = [REFERENCE_SEED, SOLVE_SEED, VALIDATION_SEED, *(HELD_OUT_SEED + s for s in range(8))]


@pytest.mark.parametrize(("seeds_below", "max_n", "max_cases"), [(10_000, 218_670, 735_744), (100_000, 36_314, 9_275)])
def test_training_data_misses_the_bench_and_validation_cases(seeds_below, max_n, max_cases):
    training = starts(range(seeds_below))
    for seed in RESERVED:
        first = int(starts([seed])[0])
        assert first % P == 264_259
        assert not meet(training, max_n, first, max_cases), seed
    # and the bounds are exact: one more sample, or one more case, and some dataset meets the first set
    first = int(starts([REFERENCE_SEED])[0])
    assert meet(training, max_n + 1, first, 1) and meet(training, 1, first, max_cases + 1)


def test_reserved_sets_are_apart_but_held_out_data_shares_seeds():
    for a in RESERVED:
        for b in (REFERENCE_SEED, SOLVE_SEED, VALIDATION_SEED):
            if a != b:
                assert not meet(starts([a]), P, int(starts([b])[0]), P), (a, b)
    # documented overlap: held-out generation data of bench seed 1, 2 are the solve and validation cases
    assert (HELD_OUT_SEED + 1, HELD_OUT_SEED + 2) == (SOLVE_SEED, VALIDATION_SEED)
    assert REFERENCE_SEED not in {HELD_OUT_SEED + s for s in range(1000)}


@pytest.mark.parametrize(("seeds_below", "max_n", "max_demo"), [(10_000, 478_684, 475_730), (100_000, 22_794, 22_795)])
def test_demo_cases_are_no_training_sample(seeds_below, max_n, max_demo):
    training = starts(range(seeds_below))
    assert [demo_seed(d) for d in (0, 1)] == [DEMO_BASE, DEMO_BASE + 1] == [2_000_530_273, 2_000_530_274]
    assert sample_seeds(2000, 524_274)[-1] == DEMO_BASE  # sample 524_273 of dataset seed 2000
    assert not meet(training, max_n, DEMO_BASE, max_demo)
    assert meet(training, max_n + 1, DEMO_BASE, 1) and meet(training, 1, DEMO_BASE, max_demo + 1)
    for seed in RESERVED:  # nor a bench or validation case
        assert not meet(starts([seed]), P, DEMO_BASE, max_demo)


def test_old_demo_seed_was_a_training_sample():
    # why the demo moved: its case d = 30 + i was sample i of dataset seed 10
    assert sample_seeds(10, 1)[0] == 10_000_000 + 30
    assert not meet(starts([10]), 10_000, demo_seed(30), 1)


def test_validation_masks_are_not_the_bench_masks():
    # bench seed s draws the masks of case b from [s, b]; tuning seed t from [t + 7919, b]
    bench_mask_seeds = set(range(7919))
    assert all(validation_mask_seed(t) not in bench_mask_seeds for t in range(100))
