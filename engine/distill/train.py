"""Physics-informed distillation (PIDDM stage 3): train the one-step student on the teacher's pairs.

Loop: step s draws its batch indices from a generator seeded by (cfg.seed, s) (a resumed run
sees the same batches); the loss is ``piddm_loss`` with λ ramped in over the first
``lam_warmup`` of the budget; AdamW with linear warm-up; EMA with β = 0.5^(1/halflife), capped
early on (``ema_decay``). Every ``refresh`` steps a rotating block of pairs is replaced by fresh
ε mapped through the teacher. Checkpoints (kind "student") are atomic, taken every
``checkpoint_minutes`` (0 = none by the clock, as for the teacher), at the end, on cancel and Ctrl-C;
a non-finite loss stops the run naming the step (the loop is ``engine.train_loop``'s, shared with
the teacher).
Under torchrun each rank takes its slice of the global batch (DDP).
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import os
import time
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from engine import __version__, dist
from engine.config import check_resumable, from_dict, save_config, to_dict
from engine.diffusion.model import load_teacher
from engine.diffusion.sampler import noise_from_seeds
from engine.diffusion.train import PREVIEW_SEEDS
from engine.diffusion.train import RESUME_MAY_CHANGE as TEACHER_MAY_CHANGE
from engine.diffusion.unet import count_parameters
from engine.distill.config import DistillConfig
from engine.distill.generator import one_step
from engine.distill.loss import piddm_loss, residual_energy
from engine.distill.pairs import load_pairs, pair_seed, refresh_indices, save_pairs, teacher_map
from engine.errors import CheckpointError, ConfigError
from engine.io.checkpoint import check_warm_start, load_checkpoint, save_checkpoint
from engine.io.rundir import RunDir, removed_if_left_empty, writing_alone
from engine.jobs import CancelToken, Progress, ProgressFn, Throttle, no_progress
from engine.metrics import residual_map, residual_stats
from engine.train_loop import Budget, checkpoint_note, lr_at, run_steps, step_generator

log = logging.getLogger(__name__)

# Settings a resumed run may change: the teacher's (budget, reports, checkpoints, previews, device: none
# changes the mathematics) that a student has too, and the teacher folder, which may move
# (_check_same_teacher checks that it is the same teacher).
RESUME_MAY_CHANGE = {f.name for f in fields(DistillConfig) if f.name in TEACHER_MAY_CHANGE} | {"teacher"}


@dataclass(frozen=True)
class DistillResult:
    run_dir: Path
    checkpoint: Path
    step: int
    loss: float
    residual: float  # mean r² of the last report window's student outputs (physical units)
    residual_scale: float
    seconds: float  # wall time of this session (pairs included)
    pair_seconds: float  # of which spent generating / refreshing pairs with the teacher
    n_params: int
    stopped: str
    ema: nn.Module | None = field(default=None, repr=False, compare=False)  # this rank's EMA student


def ema_decay(step: int, halflife_steps: float) -> float:
    """β of the student's EMA after optimiser step ``step`` (0-based): 0.5^(1/halflife), capped by
    (1 + step) / (10 + step) so that the average forgets the start quickly (its half-life is then
    about step/7 until the cap meets 0.5^(1/halflife)). Without the cap a short run's EMA is mostly
    the initial teacher denoiser and the λ-ramp's early weights: measured on darcy 32² after 800
    steps, the plain EMA (half-life 200) left 17x the raw weights' residual at λ = 1."""
    return min(0.5 ** (1.0 / halflife_steps), (1.0 + step) / (10.0 + step))


def _warm_start(init_from: str, teacher) -> dict:
    """The student checkpoint ``init_from``, checked to fit ``teacher``: same PDE and parameters, grid,
    channels, U-Net size, σ_max and normaliser (its weights map ε to fields in that scaling, so a
    teacher trained on with ``TeacherConfig.init_from`` fits its earlier students; a fresh one does not)."""
    t = teacher
    init = load_checkpoint(init_from, kind="student", pde=t.pde.name, grid=t.grid)
    check_warm_start(init_from, init, channels=t.channels, pde_params=t.config.pde_params, model=t.config.model)
    ours, theirs = t.normalizer.to_dict(), init["normalizer"]
    same_scaling = ours.keys() == theirs.keys() and all(
        np.allclose(ours[k], theirs[k], rtol=1e-6, atol=0) for k in ours)
    if not same_scaling or not np.isclose(float(init["sigma_max"]), float(t.sigma_max), rtol=1e-6):
        raise CheckpointError(f"{init_from}: its normaliser or σ_max differs from the teacher's "
                              "(a student fits only a teacher trained on from its own teacher)")
    return init


def _check_pairs_fit(pairs: int, channels: int, n: int) -> None:
    """Refuse K pairs whose ε and x0 (float32, kept in memory for the whole run) outgrow the machine's
    memory: 10⁸ pairs mapped for minutes before the OOM killer ended the run without a word."""
    need = 2 * pairs * channels * n * n * 4
    try:
        have = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not a POSIX system: no figure to check against
        return
    if need > have:
        raise ConfigError(f"{pairs} pairs need {need / 2**30:.0f} GiB of memory for ε and x0, more than this "
                          f"machine's {have / 2**30:.0f} GiB; give fewer --pairs")


def _check_same_teacher(teacher, ckpt: dict, run: Path) -> None:
    """Refuse to resume ``ckpt`` with another teacher than the one it was distilled from.

    The teacher's path may change (folders move, a resume runs from another directory), so the
    teacher is known by what made its weights: its step and the settings a resumed teacher run may
    not change. Checked before any weights load, so a teacher of another U-Net size is this one line
    rather than load_state_dict's size-mismatch listing.
    """
    old, new = ckpt.get("teacher_config", {}), to_dict(teacher.config)
    diff = [f"{k}: {old[k]!r} -> {new[k]!r}" for k in old
            if k in new and k not in TEACHER_MAY_CHANGE and old[k] != new[k]]
    if "teacher_step" in ckpt and int(ckpt["teacher_step"]) != teacher.step:
        diff.insert(0, f"step: {int(ckpt['teacher_step'])} -> {teacher.step}")
    if diff:
        raise ConfigError(f"cannot resume {run} with another teacher: {teacher.path} is not the one it was "
                          f"distilled from ({'; '.join(diff)})")


def distill(cfg: DistillConfig, run_dir: str | Path, *, resume: bool = False,
            on_progress: ProgressFn = no_progress, cancel: CancelToken | None = None) -> DistillResult:
    """Distill ``cfg.teacher`` into a one-step student in ``run_dir`` (or resume it)."""
    with removed_if_left_empty(run_dir), writing_alone(run_dir) if dist.env_rank() == 0 else contextlib.nullcontext():
        return dist.run_job(cfg.device, lambda info: _Distiller(cfg, Path(run_dir), info, resume, on_progress, cancel),
                            lambda job: job.run(on_progress, cancel))


class _Distiller:
    def __init__(self, cfg: DistillConfig, path: Path, info: dist.DistInfo, resume: bool,
                 on_progress: ProgressFn, cancel: CancelToken | None) -> None:
        self.cfg, self.info = cfg, info
        self.t_start = time.perf_counter()
        self.run_dir = RunDir.open_shared(path, is_main=info.is_main, barrier=dist.barrier)
        if not cfg.teacher:
            raise ConfigError("distillation needs a teacher run directory (--teacher)")
        # absolute in config.json, as a teacher run records its dataset (the checkpoint keeps it relative
        # to the run as well, so that the two folders may move together: teacher_ref)
        cfg = self.cfg = replace(cfg, teacher=os.path.abspath(cfg.teacher))
        self.teacher = load_teacher(cfg.teacher, info.device)
        t = self.teacher
        _check_pairs_fit(cfg.pairs, len(t.pde.fields), t.grid.n)
        ckpt = None
        if resume:
            if not self.run_dir.has_checkpoint():
                raise CheckpointError(f"{path}: no checkpoint to resume from")
            ckpt = load_checkpoint(self.run_dir.checkpoint_path, kind="student", pde=t.pde.name, grid=t.grid)
            check_resumable(cfg, from_dict(DistillConfig, ckpt["config"]), RESUME_MAY_CHANGE, int(ckpt["step"]))
            _check_same_teacher(t, ckpt, path)
        elif self.run_dir.has_checkpoint():
            raise ConfigError(f"{path} already holds a checkpoint; resume it or choose another run directory")

        # The student: a copy of the teacher's EMA denoiser, so G(ε) = D(σ_max ε; σ_max) at step 0 —
        # or, warm-started, the EMA weights of an earlier student (distilled from an earlier teacher).
        self.model = copy.deepcopy(t.denoiser).requires_grad_(True).train()
        self.ema = copy.deepcopy(t.denoiser).requires_grad_(False).eval()
        if ckpt is None and cfg.init_from:
            init = _warm_start(cfg.init_from, t)
            self.model.load_state_dict(init["ema"])
            self.ema.load_state_dict(init["ema"])
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=cfg.lr, weight_decay=0.0)
        self.step, self.elapsed_before, self.generation = 0, 0.0, 0
        self.pair_seconds, self.pair_seconds_before = 0.0, 0.0  # this process's, earlier processes'
        if ckpt is not None:
            self.model.load_state_dict(ckpt["model"])
            self.ema.load_state_dict(ckpt["ema"])
            self.opt.load_state_dict(ckpt["optimizer"])
            self.step, self.generation = int(ckpt["step"]), int(ckpt["generation"])
            self.elapsed_before = float(ckpt.get("elapsed", 0.0))
            self.pair_seconds_before = float(ckpt.get("pair_seconds", 0.0))
            self.seeds = [int(s) for s in ckpt["pair_seeds"].tolist()]
        else:
            self.seeds = [pair_seed(cfg.seed, 0, i) for i in range(cfg.pairs)]
        self._build_pairs(on_progress, cancel)
        self.residual_scale = float(ckpt["residual_scale"]) if ckpt is not None else self._residual_scale()
        self.net: nn.Module = self.model
        if info.world_size > 1:
            ids = [info.device.index] if info.device.type == "cuda" else None
            self.net = nn.parallel.DistributedDataParallel(self.model, device_ids=ids)
        if info.is_main:
            save_config(self.run_dir.config_path, cfg, kind="student", software_version=__version__,
                        torch_version=str(torch.__version__), device=str(info.device),
                        world_size=info.world_size, n_params=count_parameters(self.model),
                        residual_scale=self.residual_scale, teacher_step=t.step)
            self.run_dir.write_json("normalization.json", {"channels": list(t.channels), **t.normalizer.to_dict()})
            if resume:
                self.run_dir.truncate_metrics(self.step)
            else:
                self.run_dir.start_fresh()

    # -- pairs ----------------------------------------------------------------------------------
    @property
    def pairs_path(self) -> Path:
        return self.run_dir.path / "pairs.h5"

    @property
    def pairs_source(self) -> str:
        """What maps ε to x0 here: the teacher (its step and the settings that make its weights) and the
        sampler's steps. pairs.h5 keeps it, so that a file another teacher filled (left by a start that
        died, or copied in) is mapped afresh, while one of the same teacher saves the mapping."""
        teacher = {k: v for k, v in to_dict(self.teacher.config).items() if k not in TEACHER_MAY_CHANGE}
        return json.dumps({"teacher_step": self.teacher.step, "teacher": teacher,
                           "sampler_steps": self.cfg.sampler_steps}, sort_keys=True, default=str)

    def _build_pairs(self, on_progress: ProgressFn, cancel: CancelToken | None) -> None:
        """Load pairs.h5 and map through the teacher only the seeds it lacks."""
        t0 = time.perf_counter()
        stored = load_pairs(self.pairs_path, self.pairs_source)
        have = {} if stored is None else {s: i for i, s in enumerate(stored[2])}
        missing = [s for s in self.seeds if s not in have]
        new_eps, new_x0 = (teacher_map(self.teacher, missing, self.cfg.sampler_steps, on_progress=on_progress,
                                       cancel=cancel) if missing else (None, None))
        fresh = {s: i for i, s in enumerate(missing)}
        eps, x0 = [], []
        for s in self.seeds:
            if s in fresh:
                eps.append(new_eps[fresh[s]])
                x0.append(new_x0[fresh[s]])
            else:
                eps.append(stored[0][have[s]])
                x0.append(stored[1][have[s]])
        self.eps, self.x0 = torch.stack(eps).to(self.info.device), torch.stack(x0).to(self.info.device)
        if missing and self.info.is_main:
            save_pairs(self.pairs_path, self.eps.cpu(), self.x0.cpu(), self.seeds, self.pairs_source)
        self.pair_seconds += time.perf_counter() - t0

    def _refresh(self) -> None:
        generation, seeds = self.generation + 1, list(self.seeds)
        for i in refresh_indices(len(seeds), self.cfg.refresh_fraction, generation):
            seeds[int(i)] = pair_seed(self.cfg.seed, generation, int(i))
        # generation and seeds change together, before the slow mapping: a checkpoint taken during it
        # (Ctrl-C) holds the new seeds, whose pairs a resume maps afresh
        self.generation, self.seeds = generation, seeds
        self._build_pairs(no_progress, None)

    def _residual_scale(self) -> float:
        """s = mean r² of the teacher's own samples (the pairs' x0): λ is relative to the teacher."""
        t = self.teacher
        with torch.no_grad():
            r = torch.cat([residual_energy(t.pde, t.normalizer.decode(self.x0[i : i + 256].double()), t.grid)
                           for i in range(0, len(self.x0), 256)])
        return max(float(r.mean()), 1e-30)

    # -- training -------------------------------------------------------------------------------
    def checkpoint(self) -> dict:
        t, cfg = self.teacher, self.cfg
        return {"kind": "student", "config": to_dict(cfg), "teacher": self.teacher_ref(),
                "teacher_config": to_dict(t.config), "teacher_step": t.step,
                "pde": {"name": t.pde.name, "params": dict(t.config.pde_params)},
                "grid": {"n": t.grid.n, "length": 1.0}, "channels": list(t.channels),
                "normalizer": t.normalizer.to_dict(), "sigma_max": float(t.sigma_max),
                "residual_scale": self.residual_scale, "model": self.model.state_dict(),
                "ema": self.ema.state_dict(), "optimizer": self.opt.state_dict(), "step": self.step,
                "generation": self.generation, "pair_seeds": torch.tensor(self.seeds, dtype=torch.int64),
                "elapsed": self.elapsed(), "pair_seconds": self.pair_seconds_before + self.pair_seconds,
                "software_version": __version__}

    def teacher_ref(self) -> str:
        """The teacher folder as load_student reads it back: relative to the run directory (so the
        two folders may move together), absolute where no relative path exists."""
        teacher = Path(self.cfg.teacher).resolve()
        try:
            return os.path.relpath(teacher, self.run_dir.path.resolve())
        except ValueError:  # another drive (Windows)
            return str(teacher)

    def save(self) -> None:
        if self.info.is_main:
            save_checkpoint(self.run_dir.checkpoint_path, self.checkpoint())
            log.info("checkpoint at step %d -> %s", self.step, self.run_dir.checkpoint_path)
        self.last_ckpt_step, self.last_ckpt_time = self.step, time.perf_counter()

    def elapsed(self) -> float:
        return self.elapsed_before + time.perf_counter() - self.t0

    def preview(self, report: ProgressFn, step: int, total: int, metrics: dict) -> None:
        """One-step samples of the EMA student on fixed ε, with their residual (float64 of float32)."""
        t = self.teacher
        with torch.no_grad():
            eps = noise_from_seeds(PREVIEW_SEEDS, t.shape, self.info.device)
            x = t.normalizer.decode(one_step(self.ema, eps, t.sigma_max).float()).cpu().numpy()
        stats = residual_stats(t.pde, x)
        self.run_dir.save_preview(step, x, residual=residual_map(t.pde, x).astype(np.float32))
        rec = {"step": step, "preview_residual_mse": stats["residual_mse"], "preview_bc_mse": stats["bc_mse"]}
        self.run_dir.append_metrics(rec)
        report(Progress("distill", step, total, {**metrics, **rec}, preview=x[0], message="preview"))

    def lam(self, step: int) -> float:
        """λ at ``step``: the ramp ends after lam_warmup of the step budget or of the time budget,
        whichever comes first (the time-based part makes a minutes-limited run less reproducible)."""
        cfg = self.cfg
        frac = step / cfg.steps
        if cfg.minutes > 0:
            frac = max(frac, self.elapsed() / (60 * cfg.minutes))
        return cfg.lam if cfg.lam_warmup <= 0 else cfg.lam * min(1.0, frac / cfg.lam_warmup)

    def train_step(self) -> torch.Tensor:
        cfg, info, B = self.cfg, self.info, self.cfg.batch_size
        gen = step_generator(cfg.seed, self.step, info.device)
        idx = torch.randint(len(self.eps), (B * info.world_size,), generator=gen, device=info.device)
        idx = idx[info.rank * B : (info.rank + 1) * B]
        for g in self.opt.param_groups:
            g["lr"] = lr_at(cfg.lr, self.step, cfg.warmup_steps)  # linear warm-up, no cooldown
        t = self.teacher
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=info.device.type == "cuda"):
            pred = one_step(self.net, self.eps[idx], t.sigma_max)
        loss, parts = piddm_loss(pred, self.x0[idx], self.lam(self.step), t.pde, t.grid,
                                 t.normalizer, self.residual_scale, cfg.physics_on)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        beta = ema_decay(self.step, cfg.ema_halflife_steps)
        torch._foreach_lerp_(list(self.ema.parameters()), list(self.model.parameters()), 1.0 - beta)
        return torch.stack([loss.detach().float(), parts["residual"].detach().float()])

    def after_step(self, step: int) -> None:
        if self.cfg.refresh and step % self.cfg.refresh == 0 and step < self.cfg.steps:
            self._refresh()

    def non_finite(self, step: int, loss: float) -> str:
        cfg = self.cfg
        return (f"distillation loss is {loss} at step {step}; stopped, "
                f"{checkpoint_note(self.run_dir, self.last_ckpt_step)} "
                f"(a lower lr than {cfg.lr:g} or a smaller lambda than {cfg.lam:g} may help)")

    def at_boundary(self, step: int, window: torch.Tensor, preview_due: bool) -> None:
        self.loss_mean, self.res_mean = float(window[:, 0].mean()), float(window[:, 1].mean())
        metrics = {"loss": self.loss_mean, "residual": self.res_mean, "lam": self.lam(step - 1),
                   "elapsed": self.elapsed(), "pair_seconds": self.pair_seconds_before + self.pair_seconds}
        if self.info.is_main:
            self.run_dir.append_metrics({"step": step, **metrics})
            self.report(Progress("distill", step, self.cfg.steps, metrics))
            if preview_due:
                self.preview(self.report, step, self.cfg.steps, metrics)

    def run(self, on_progress: ProgressFn, cancel: CancelToken | None) -> DistillResult:
        cfg, info = self.cfg, self.info
        self.report = Throttle(on_progress) if info.is_main else no_progress
        self.t0 = self.last_ckpt_time = time.perf_counter()
        self.last_ckpt_step = self.step
        self.loss_mean, self.res_mean = self.run_dir.last_metric("loss"), self.run_dir.last_metric("residual")
        log.info("distill: λ %g from %s, %d pairs, step %d/%d on %s x%d", cfg.lam, cfg.teacher, cfg.pairs,
                 self.step, cfg.steps, info.device, info.world_size)
        # cfg.steps is an upper bound when cfg.minutes > 0 (as for the teacher)
        budget = Budget(cfg.steps, cfg.minutes, cfg.report_every, cfg.preview_every, cfg.checkpoint_minutes)
        stopped = run_steps(self, budget, cancel, info.device, info.world_size)
        log.info("distill: stopped (%s) at step %d, loss %.4g, residual %.4g", stopped, self.step,
                 self.loss_mean, self.res_mean)
        return DistillResult(self.run_dir.path, self.run_dir.checkpoint_path, self.step, self.loss_mean,
                             self.res_mean, self.residual_scale, time.perf_counter() - self.t_start,
                             self.pair_seconds, count_parameters(self.model), stopped, ema=self.ema)
