"""DistillConfig: every setting of a distillation run (saved to config.json, strict on load)."""

from __future__ import annotations

from dataclasses import dataclass

from engine.config import check_budget, check_numbers
from engine.errors import ConfigError

# What the residual term's gradient may move (engine/distill/loss.py): every entry (PIDDM Eq. 9)
# or only the solution entries, the coefficient entering R detached.
PHYSICS_ON = ("all", "solution")

# λ_train: equal-budget sweep on darcy 32² (CPU teacher, 2,048 Heun-18 pairs, 800 steps of batch 32;
# `resources/bench/generate-darcy-32-cpu-sweep800-raw.json`, raw weights), residual_mse relative to
# the teacher's / mmse_a relative: λ 0.01 → 0.22 / 0.75, λ 0.1 → 0.047 / 0.60, λ 1 → 0.022 / 13;
# without the λ warm-up over the first half 0.54 / 3.0, 0.20 / 15, 0.090 / 31. λ = 0.1 with warm-up
# is the smallest λ at 1/20 of the teacher's residual whose mean coefficient stays with the teacher.
# PIDDM-ref defaults (``sample.refine``), from darcy 64² (bundled student, 16 samples, CPU):
# residual_mse 11.4 (PIDDM-1) → k=50: λ 1, lr 0.02: 2.12; λ 10: 1.78; k=100, λ 10, lr 0.05: 0.53;
# k=200: 0.35; k=300, λ 30: 0.25 (1/108 of the teacher's 26.8). More steps keep paying.
REFINE_LAMBDA = 10.0
REFINE_LR = 0.05


@dataclass(frozen=True)
class DistillConfig:
    teacher: str = ""  # teacher run directory (or bundled teacher folder)
    init_from: str = ""  # warm start: a student (run or bundled folder) of this teacher's PDE, grid and scaling
    lam: float = 0.1  # λ_train of ‖R(G(ε))‖²/s (0 = pure distillation); chosen by the sweep above
    lam_warmup: float = 0.5  # fraction of the steps over which λ ramps linearly from 0 (0 = none)
    physics_on: str = "all"  # entries the residual term may move: "all" (PIDDM Eq. 9) | "solution" (see loss.py)
    pairs: int = 1024  # K (ε, x0) pairs kept with the run
    refresh: int = 500  # R: steps between pair refreshes (0 = never)
    refresh_fraction: float = 0.25  # part of the pairs replaced by fresh ε at each refresh
    sampler_steps: int = 18  # N_s of the teacher's Heun sampler (NFE 2N_s - 1)
    batch_size: int = 64
    lr: float = 1e-4
    warmup_steps: int = 50  # linear learning-rate warm-up
    steps: int = 2000
    minutes: float = 0.0  # wall-clock budget; > 0 overrides steps as the stopping rule
    ema_halflife_steps: float = 200.0
    seed: int = 0
    report_every: int = 10
    preview_every: int = 100  # steps between sample previews (one-step samples + their residual); 0 = off
    checkpoint_minutes: float = 5.0  # wall-clock interval between checkpoints; 0 = none by the clock
    device: str = "auto"  # "auto" | "cpu" | "cuda" | "cuda:1"

    def __post_init__(self) -> None:
        # steps 0 and lr 0 stay valid here: the engine's step-0 student is the teacher's σ_max denoiser
        # (tests build it); `piddm distill` refuses both, as `piddm train` does
        check_numbers(self, at_least_one=("pairs", "batch_size", "report_every"),
                      positive=("ema_halflife_steps",),
                      non_negative=("lam", "lr", "steps", "refresh", "warmup_steps", "minutes",
                                    "checkpoint_minutes", "preview_every"))
        check_budget(self.steps, self.minutes)
        # rows are drawn from the pairs with replacement; far beyond them (batch 5,000 of 8 pairs) the
        # batch only repeats them, until the OOM killer ends the run without a word (as piddm train)
        limit = max(self.pairs, DistillConfig.batch_size)
        if self.batch_size > limit:
            raise ConfigError(f"batch {self.batch_size} is larger than the {self.pairs} pairs (and the default "
                              f"{DistillConfig.batch_size}); give --batch {limit} or less, or more --pairs")
        if not 0 <= self.lam_warmup <= 1:
            raise ConfigError(f"lam_warmup is a fraction of the run in [0, 1], got {self.lam_warmup:g}",
                              setting="lam_warmup")
        if self.physics_on not in PHYSICS_ON:
            raise ConfigError(f"physics_on must be one of {', '.join(PHYSICS_ON)}, got {self.physics_on!r}")
        if not 0 < self.refresh_fraction <= 1:
            raise ConfigError(f"refresh_fraction must be in (0, 1], got {self.refresh_fraction}")
        if self.sampler_steps < 2:
            raise ConfigError(f"sampler_steps must be at least 2, got {self.sampler_steps}", setting="sampler_steps")
