"""Seed namespaces: which integers seed which random draws, and why the ones that must stay apart do.

Two kinds of draw take seeds:

- **data**: ``pde.sample_inputs(seeds, grid)`` draws coefficient b (an initial condition for burgers)
  from ``torch.Generator().manual_seed(seeds[b])`` alone (``engine.grf``). Two equal data seeds are the
  same case, so a coincidence here would put a training sample among bench, tuning or demo cases.
- **noise**: sampler noise (``sample_seeds`` again, as noise seeds), latent starts of solve members
  (``member_seeds``), distillation pairs (``engine.distill.pairs``) and observation masks (NumPy
  ``default_rng([seed, case])``). These need only differ *within one run* (and the tuning's masks
  from the bench's, below); a noise seed equal to a data seed draws nothing that matters in common.

Torch's CPU generator keeps only the low 32 bits of its seed (its mt19937 starts from a uint32):
``manual_seed(s)`` and ``manual_seed(s % 2**32)`` draw the same numbers. So data seeds collide modulo
2**32, not as integers, and every bound below is worked out modulo 2**32 (tests/engine/test_seeding.py
checks the generator and each bound).

Data layout. Sample i of dataset seed S (``piddm generate --seed S``, 0 ≤ S < 2**32) has data seed
S·P + i, P = ``SAMPLE_STRIDE`` = 1_000_003, whatever the batching. Since 2**32 = 4294·P + 954_414,
dataset seeds S ≤ 4294 start at S·P, one block of P seeds each; larger S wrap around and start at
offset (q·45_589) mod P of a block, q = ⌊S·P / 2**32⌋ (45_589 = P − 954_414). Datasets of seeds
below 10_000 start at offsets 0, 45_589 and 91_178 of the blocks; those below 100_000 at 24 offsets,
2_955 to 45_589 apart. P is odd, so every 32-bit value is sample 0 of *some* S < 2**32: no namespace is
out of reach of every ``--seed``, and each one below says which datasets cannot reach it.

============================  ==========================  ===================================
namespace                     data seeds                  used by
============================  ==========================  ===================================
training data                 sample_seeds(S, n)          piddm generate (bundled: S = 0,
                                                          n = 1200), the teacher's data
bench reference set           dataset REFERENCE_SEED      bench --task generate (mmse/smse)
held-out generation data      dataset HELD_OUT_SEED + s   bench --task generate, seed s
solve bench cases             dataset SOLVE_SEED          bench --task forward|inverse|...
validation cases              dataset VALIDATION_SEED     tuning λ, lr (tune_solve), ζ
                                                          (tune_guidance)
app demo case                 demo_seed(d) = DEMO_BASE+d  the app's start-up / demo task
============================  ==========================  ===================================

The reserved datasets 7_000_001 … start at offset 264_259 of blocks 3520, 3521, … A training dataset
of seed S < 10_000 reaches none of their first 735_744 cases unless it has more than 218_670
samples; S < 100_000: none of their first 9_275 cases unless it has more than 36_314 samples. They
are apart from one another up to P cases each, except that held-out generation data of bench seed
s ≥ 1 *is* the solve cases (s = 1) and the validation cases (s = 2): kept, since committed
figures and tuned settings were drawn with these values, and harmless, since that row only
measures reference solves against the reference set, which it does not share.

The app's demo case d is DEMO_BASE + d = sample 524_273 + d of dataset seed 2000, placed halfway
between the dataset starts of seeds below 100_000. No dataset of seed S < 10_000 with at most
478_684 samples holds a demo case d < 475_730; S < 100_000: at most 22_794 samples, d < 22_795. (It
was 10_000_000 + d: demo case 30 + i was sample i of dataset seed 10.)

Mask seeds (NumPy, all bits kept): bench seed s draws the masks of case b from [s, b]; tuning draws
the validation masks from [t + MASK_SEED_OFFSET, b], t = the tuning seed (default 0), so they differ
from the bench's while a bench runs fewer than 7919 seeds.

Noise seeds within a run: sample_seeds(seed, n) are n consecutive integers; member_seeds give case
b, member e the seed (seed·P + b)·MEMBER_STRIDE + e with e < MEMBER_STRIDE, so the members of up to
4_256_657 cases (2**32 // 1009) are distinct (modulo 2**32 as well), whatever the batch a case is solved in.
"""

from __future__ import annotations

from engine.errors import ConfigError

SAMPLE_STRIDE = 1_000_003  # P: sample i of seed S is S·P + i; a prime, so odd (invertible modulo 2**32)
TORCH_SEED_BITS = 32  # the bits of a seed torch's CPU generator keeps

REFERENCE_SEED = 7_000_001  # bench --task generate: the reference set for mmse/smse
HELD_OUT_SEED = 7_000_002  # bench --task generate: held-out data of bench seed s is HELD_OUT_SEED + s
SOLVE_SEED = 7_000_003  # bench --task forward|inverse|reconstruct: the held-out cases
VALIDATION_SEED = 7_000_004  # cases for tuning λ / lr / ζ, never the bench cases
BENCH_NOISE_SEED = 1000  # bench --task generate: sampler noise of bench seed s is sample_seeds(1000 + s, n)

MEMBER_STRIDE = 1009  # member seeds of one case: e < MEMBER_STRIDE keeps them apart from the next case's
MASK_SEED_OFFSET = 7919  # validation masks: tuning seed t draws [t + 7919, case], bench seed s draws [s, case]

DEMO_BASE = 2000 * SAMPLE_STRIDE + 524_273  # = 2_000_530_273: see the module docstring


def sample_seeds(seed: int, n: int) -> list[int]:
    """Per-sample seeds: sample i of run ``seed`` uses seed·1_000_003 + i, whatever the batching."""
    return [seed * SAMPLE_STRIDE + i for i in range(n)]


def member_seeds(seed: int, cases: int, ensemble: int, first_case: int = 0) -> list[int]:
    """Per-member seeds, member e of case b (numbered from ``first_case``, the batch's place among the
    cases of one solve); independent of the batch the case is solved in."""
    if ensemble > MEMBER_STRIDE:
        raise ConfigError(f"at most {MEMBER_STRIDE} latent draws per case, got {ensemble}")
    return [(seed * SAMPLE_STRIDE + b) * MEMBER_STRIDE + e for b in range(first_case, first_case + cases)
            for e in range(ensemble)]


def validation_mask_seed(seed: int) -> int:
    """The mask seed of tuning run ``seed``: apart from the bench's mask seeds 0, 1, … (module docstring)."""
    return seed + MASK_SEED_OFFSET


def demo_seed(seed: int) -> int:
    """The data seed of the app's demo case ``seed``: no training sample of a small dataset seed
    (module docstring for the bounds)."""
    return DEMO_BASE + seed
