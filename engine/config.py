"""Typed, frozen configs for each workflow step, and their strict JSON round trip.

A config is a flat frozen dataclass (nanoGPT's ``GPTConfig``, made strict): ``to_dict`` gives
plain JSON values, ``from_dict`` refuses unknown keys, ``save_config`` / ``load_config`` write and
read ``config.json`` atomically. Adding a field stays backward compatible (old files get the
default). The helpers are generic over any config dataclass.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from engine.errors import ConfigError
from engine.io.atomic import write_text

T = TypeVar("T")

CONFIG_FORMAT = 1
MODEL_SIZES = ("tiny", "small", "base")
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")  # torch.compile's
# A step count this large is no step limit (10⁸ steps of the tiny U-Net take weeks): what `--minutes` alone
# sets, so that the clock decides. Such a run must have a time limit (minutes > 0), or it never ends.
UNLIMITED_STEPS = 100_000_000


def check_number(name: str, value: float | None, low: float = -math.inf, *, above: bool = False,
                 high: float | None = None) -> None:
    """Refuse a setting that is not a finite number ≥ ``low`` (> ``low`` with ``above``; ≤ ``high`` when
    given): one ConfigError naming ``name`` and the value. None (an option left out) passes.

    NaN and ±inf are in no range: NaN passes every ``<`` test (an lr of NaN reached AdamW, a λ of NaN
    gave a table of NaN), and an infinite rate, weight or budget is a typo, not a setting.
    """
    if value is None:
        return
    want = (f" in {'(' if above else '['}{low:g}, {high:g}]" if high is not None
            else "" if low == -math.inf else f" {'>' if above else '≥'} {low:g}")
    if not math.isfinite(value):
        raise ConfigError(f"{name} must be a finite number{want}, got {value}", setting=name)
    if (value <= low if above else value < low) or (high is not None and value > high):
        kind = "a whole number" if isinstance(value, int) else "a number"
        raise ConfigError(f"{name} must be {kind}{want}, got {value:g}", setting=name)


def check_numbers(cfg: Any, *, at_least_one: tuple[str, ...] = (), positive: tuple[str, ...] = (),
                  non_negative: tuple[str, ...] = (), finite: tuple[str, ...] = (), what: str = "") -> None:
    """``check_number`` on fields of ``cfg`` (a config dataclass); ``what`` prefixes their names."""
    for names, low, above in ((finite, -math.inf, False), (at_least_one, 1, False), (positive, 0, True),
                              (non_negative, 0, False)):
        for name in names:
            check_number(f"{what}{name}", getattr(cfg, name), low, above=above)


def check_budget(steps: int, minutes: float) -> None:
    """Refuse a run without a limit: minutes 0 (no time limit) with steps of UNLIMITED_STEPS or more."""
    if minutes == 0 and steps >= UNLIMITED_STEPS:
        raise ConfigError("a run needs a limit: minutes is 0 (no time limit) and no step count is given; "
                          "give a step count or minutes > 0")


@dataclass(frozen=True)
class TeacherConfig:
    """Settings of one teacher training run (EDM, Karras et al. 2022)."""

    pde: str = "darcy"
    pde_params: dict[str, Any] = field(default_factory=dict)
    grid_n: int = 64  # N: fields are N x N; a multiple of 8 (three U-Net halvings)
    dataset: str = ""  # fields file written by `piddm generate`
    holdout_fraction: float = 0.1  # the last floor(n * fraction) samples are held out, never trained on
    model: str = "small"  # U-Net size: "tiny" (tests) | "small" (CPU, 32²) | "base" (GPU, 64²)
    batch_size: int = 32  # per process; the global batch under DDP is batch_size * world size
    lr: float = 2e-4  # AdamW peak learning rate
    weight_decay: float = 0.0
    warmup_steps: int = 200  # linear warm-up of the learning rate
    cooldown: float = 0.0  # the last fraction of `steps` over which the learning rate falls linearly to 0
    steps: int = 20_000  # optimiser steps (an upper bound when minutes > 0)
    minutes: float = 0.0  # wall-clock budget over all sessions; 0 = run `steps`
    ema_halflife_steps: float = 500.0  # EMA decay β = 0.5^(1 / halflife)
    sigma_data: float = 0.5  # σ_data: std of the normalised data (EDM §5)
    P_mean: float = -1.2  # ln σ ~ N(P_mean, P_std²) during training (EDM Table 1)
    P_std: float = 1.2
    seed: int = 0
    init_from: str = ""  # warm start: a teacher run or checkpoint whose EMA weights and normaliser this run starts from
    report_every: int = 20  # steps between Progress reports and metrics.jsonl lines
    checkpoint_minutes: float = 5.0  # wall-clock interval between checkpoints; 0 = none by the clock
    checkpoint_every: int = 0  # also checkpoint every this many steps; 0 = off
    preview_every: int = 500  # steps between sample previews (2 Heun samples + residual); 0 = off
    preview_steps: int = 10  # Heun steps of a preview sample (NFE = 2·steps − 1)
    device: str = "auto"  # "auto" | "cpu" | "cuda" | "cuda:1"
    # Speed only (the mathematics is unchanged, so a resumed run may switch them):
    channels_last: bool = False  # NHWC layout for the convolutions (bf16 tensor cores prefer it)
    compile: bool = False  # torch.compile the network (a one-time compile, then fused kernels)
    compile_mode: str = "default"  # torch.compile mode, e.g. "max-autotune-no-cudagraphs" (longer compile)

    def __post_init__(self) -> None:
        if self.grid_n < 8 or self.grid_n % 8:
            raise ConfigError(f"grid_n must be a multiple of 8 (U-Net downsampling), got {self.grid_n}")
        if self.model not in MODEL_SIZES:
            raise ConfigError(f"model must be one of {list(MODEL_SIZES)}, got {self.model!r}")
        check_numbers(self, finite=("P_mean",), at_least_one=("batch_size", "steps", "report_every", "preview_steps"),
                      positive=("lr", "ema_halflife_steps", "sigma_data", "P_std"),
                      non_negative=("warmup_steps", "minutes", "checkpoint_minutes", "checkpoint_every",
                                    "preview_every", "weight_decay"))
        check_budget(self.steps, self.minutes)
        if not 0 <= self.cooldown <= 1:
            raise ConfigError(f"cooldown is a fraction of the steps, between 0 and 1, got {self.cooldown:g}",
                              setting="cooldown")
        if self.cooldown and self.steps >= UNLIMITED_STEPS:
            # the fall would start after ~10⁸ steps: the clock ends the run first and the lr never falls
            raise ConfigError(f"cooldown is a fraction of the run's steps, and steps {self.steps} is no step "
                              "limit (minutes alone set it): give --steps for a cooldown", setting="cooldown")
        if self.compile_mode not in COMPILE_MODES:
            raise ConfigError(f"compile_mode must be one of {list(COMPILE_MODES)}, got {self.compile_mode!r}")
        if not 0 <= self.holdout_fraction < 1:
            raise ConfigError(f"holdout_fraction must be in [0, 1), got {self.holdout_fraction:g}",
                              setting="holdout_fraction")


def to_dict(cfg: Any) -> dict[str, Any]:
    """Plain-JSON dict of a config dataclass (nested dicts copied)."""
    if not dataclasses.is_dataclass(cfg) or isinstance(cfg, type):
        raise TypeError(f"expected a config dataclass instance, got {type(cfg).__name__}")
    return dataclasses.asdict(cfg)


def from_dict(cls: type[T], data: Mapping[str, Any]) -> T:
    """Build ``cls`` from ``data``; unknown keys and bad values raise ConfigError."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{cls.__name__}: expected a mapping, got {type(data).__name__}")
    known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    if unknown := set(data) - known:
        raise ConfigError(f"{cls.__name__}: unknown keys {sorted(unknown)}; known: {sorted(known)}")
    try:
        return cls(**data)
    except TypeError as exc:
        raise ConfigError(f"{cls.__name__}: {exc}") from None


def save_config(path: str | os.PathLike[str], cfg: Any, **meta: Any) -> Path:
    """Write ``{"format", "type", "config", "meta"}`` as JSON, atomically. Returns the path."""
    doc = {"format": CONFIG_FORMAT, "type": type(cfg).__name__, "config": to_dict(cfg), "meta": meta}
    write_text(path, json.dumps(doc, indent=2, sort_keys=False) + "\n")
    return Path(path)


def load_config(path: str | os.PathLike[str], cls: type[T]) -> T:
    """Read a config written by ``save_config``; ConfigError on a wrong type or unknown key."""
    p = Path(path)
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{p}: no such config file") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{p}: unreadable config ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != CONFIG_FORMAT:
        raise ConfigError(f"{p}: not a config file of format {CONFIG_FORMAT}")
    if doc.get("type") != cls.__name__:
        raise ConfigError(f"{p}: holds a {doc.get('type')}, expected a {cls.__name__}")
    return from_dict(cls, doc.get("config", {}))


def check_resumable(cfg: Any, old: Any, may_change: set[str], done: int) -> None:
    """Refuse to resume a run whose settings changed, except those in ``may_change``, or whose step
    limit lies below the ``done`` steps of its checkpoint (the resume would train nothing, yet record
    the lower limit in config.json beside a checkpoint beyond it)."""
    diff = [f"{k}: {getattr(old, k)!r} -> {getattr(cfg, k)!r}" for k in to_dict(cfg)
            if k not in may_change and getattr(cfg, k) != getattr(old, k)]
    if diff:
        raise ConfigError("cannot resume with changed settings (" + "; ".join(diff) + ")")
    if cfg.steps < done:
        raise ConfigError(f"steps {cfg.steps} lies below the run's step {done}: give more to train it further",
                          setting="steps")
