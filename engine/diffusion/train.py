"""Teacher training: EDM loss, AdamW with linear warm-up, EMA, checkpoints, resume, DDP.

Reproducibility: step s (0-based) draws its batch indices, noise n and σ-normals ξ from a
generator seeded by (cfg.seed, s), on the data's device, for the global batch; rank r of W
takes rows [r·B, (r+1)·B). A resumed run therefore sees exactly the batches the uninterrupted
run would have seen, and on CPU follows its loss curve bit for bit. The EMA of the weights
uses β = 0.5^(1/halflife) per step (EDM's half-life form), applied with ``torch._foreach_lerp_``.
The loop itself — boundaries, stops, checkpoints, a non-finite loss — is ``engine.train_loop``'s,
shared with the student.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from engine import __version__, dist, pdes
from engine.config import TeacherConfig, check_resumable, from_dict, save_config, to_dict
from engine.data.dataset import Normalizer, load_split
from engine.diffusion.loss import edm_loss
from engine.diffusion.precond import Denoiser
from engine.diffusion.sampler import RHO, SIGMA_MAX, SIGMA_MIN, heun_sample, noise_from_seeds
from engine.diffusion.unet import UNet, count_parameters
from engine.errors import CheckpointError, ConfigError, DatasetError
from engine.io.checkpoint import check_warm_start, load_checkpoint, save_checkpoint
from engine.io.rundir import RunDir, removed_if_left_empty, writing_alone
from engine.jobs import CancelToken, Progress, ProgressFn, Throttle, no_progress
from engine.metrics import residual_map, residual_stats
from engine.train_loop import Budget, checkpoint_note, lr_at, run_steps, step_generator

log = logging.getLogger(__name__)

# Settings a resumed run may change; every other one must equal the checkpoint's.
RESUME_MAY_CHANGE = {"steps", "minutes", "report_every", "checkpoint_minutes", "checkpoint_every",
                     "preview_every", "preview_steps", "device", "dataset", "channels_last", "compile", "compile_mode"}
PREVIEW_SEEDS = (0, 1)


@dataclass(frozen=True)
class TeacherResult:
    run_dir: Path
    checkpoint: Path
    step: int  # optimiser steps completed in total
    loss: float  # mean loss of the last report window
    seconds: float  # wall time of this session
    samples_per_s: float  # global training samples per second over this session
    n_params: int
    stopped: str  # "steps" | "minutes"
    ema: nn.Module | None = field(default=None, repr=False, compare=False)  # this rank's EMA denoiser
    model: nn.Module | None = field(default=None, repr=False, compare=False)  # this rank's raw denoiser


def build_denoiser(cfg: TeacherConfig, channels: int) -> Denoiser:
    """D_θ with weights initialised from ``cfg.seed`` (the global RNG is left untouched)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        return Denoiser(UNet(channels, cfg.model), cfg.sigma_data)


def force_layout_optimization() -> None:
    """Have inductor choose the tensors' memory layout in the compiled backward graph too.

    Inductor picks channels-last for a graph with enough convolutions, but a backward graph holds
    no forward convolution, so the choice stays off there and convolution_backward copies every
    channels-last activation the forward graph saved (~85 activation-sized copies per step of the
    base U-Net, a fifth of its device time). Forcing it (TORCHINDUCTOR_FORCE_LAYOUT_OPT=1): base
    U-Net at 64², batch 512, one H200, 4,040 → 4,867 samples/s, 22.7 → 27.5 % of the measured bf16
    peak (``resources/bench/teacher-layout-base-64-h200.json``); keeping every tensor NCHW instead
    (TORCHINDUCTOR_LAYOUT_OPTIMIZATION=0) gave 4,039. Process-wide, and read when the first compiled
    call compiles; an explicit TORCHINDUCTOR_FORCE_LAYOUT_OPT=0 in the environment is left alone.
    """
    import torch._inductor.config as inductor_config

    if os.environ.get("TORCHINDUCTOR_FORCE_LAYOUT_OPT") != "0":
        inductor_config.force_layout_optimization = True


def _resolve_pde(cfg: TeacherConfig, file_pde: str, file_params: dict) -> TeacherConfig:
    params = pdes.params_of(pdes.get(file_pde, **file_params))
    asked = pdes.params_of(pdes.get(cfg.pde, **cfg.pde_params))
    if asked != params:
        raise ConfigError(f"pde_params {asked} differ from the dataset's {params}")
    return dataclasses.replace(cfg, pde_params=params)


def train_teacher(cfg: TeacherConfig, run_dir: str | Path | RunDir, *, resume: bool = False,
                  on_progress: ProgressFn = no_progress, cancel: CancelToken | None = None) -> TeacherResult:
    """Train (or resume) an EDM teacher on ``cfg.dataset``, writing the run directory.

    Under ``torchrun`` each process trains on its slice of the global batch with DDP; rank 0
    writes. Raises Cancelled after saving a checkpoint when ``cancel`` is set (KeyboardInterrupt
    likewise), NonFiniteError naming the step when the loss is NaN/inf, DatasetError /
    CheckpointError / ConfigError on bad input.
    """
    path = run_dir.path if isinstance(run_dir, RunDir) else run_dir
    with removed_if_left_empty(path), writing_alone(path) if dist.env_rank() == 0 else contextlib.nullcontext():
        return dist.run_job(cfg.device, lambda info: _Trainer(cfg, run_dir, info, resume),
                            lambda trainer: trainer.run(on_progress, cancel))


def _warm_start(cfg: TeacherConfig, channels: tuple[str, ...] | list[str]) -> dict:
    """The teacher checkpoint cfg.init_from, checked to fit this run (PDE, grid, channels, U-Net size)."""
    init = load_checkpoint(cfg.init_from, kind="teacher", pde=cfg.pde, grid=cfg.grid_n)
    check_warm_start(cfg.init_from, init, channels=channels, pde_params=cfg.pde_params, model=cfg.model)
    return init


class _Trainer:
    def __init__(self, cfg: TeacherConfig, run_dir: str | Path | RunDir, info: dist.DistInfo,
                 resume: bool) -> None:
        self.info, dev = info, info.device
        path = run_dir.path if isinstance(run_dir, RunDir) else Path(run_dir)
        self.run_dir = RunDir.open_shared(path, is_main=info.is_main, barrier=dist.barrier)
        if resume and cfg.dataset and not Path(cfg.dataset).exists():
            # a run started before datasets were recorded as absolute paths (below) holds one relative
            # to the directory it was started from
            raise DatasetError(f"{cfg.dataset}: no such file (a relative path is taken from the current "
                               f"directory); pass --data with the dataset of {path}")
        # Absolute in config.json, normalization.json and the checkpoint, so that --resume finds it from
        # any directory (bundled models keep only the file name: packaging/make_models.py).
        cfg = dataclasses.replace(cfg, dataset=os.path.abspath(cfg.dataset) if cfg.dataset else "")
        data = load_split(cfg.dataset, pde=cfg.pde, grid_n=cfg.grid_n, holdout_fraction=cfg.holdout_fraction)
        cfg = _resolve_pde(cfg, data.pde, data.pde_params)
        self.cfg, self.data = cfg, data
        # Rows are drawn with replacement: beyond the training set they repeat its samples under other
        # noise levels, which a tiny set may use (the app trains 8 samples at the default batch), but
        # 100,000 rows of 7 samples had the OOM killer end the run without a word. A batch above both
        # the set and the default is refused, not clamped, so that config.json says what ran.
        default = TeacherConfig.batch_size
        if cfg.batch_size > max(len(data.train), default):
            raise ConfigError(f"batch {cfg.batch_size} is larger than the {len(data.train)} training samples of "
                              f"{cfg.dataset} (and the default {default}); give --batch {max(len(data.train), default)} "
                              f"or less")
        self.pde = pdes.get(cfg.pde, **cfg.pde_params)
        ckpt = None
        if resume:
            if not self.run_dir.has_checkpoint():
                raise CheckpointError(f"{path}: no checkpoint to resume from")
            ckpt = load_checkpoint(self.run_dir.checkpoint_path, kind="teacher", pde=cfg.pde, grid=cfg.grid_n)
            check_resumable(cfg, from_dict(TeacherConfig, ckpt["config"]), RESUME_MAY_CHANGE, int(ckpt["step"]))
            if ckpt["data"]["n_train"] != len(data.train):
                raise CheckpointError(f"{path}: trained on {ckpt['data']['n_train']} samples, "
                                      f"but {cfg.dataset} now gives {len(data.train)}")
            self.normalizer = Normalizer.from_dict(ckpt["normalizer"])
        elif self.run_dir.has_checkpoint():
            raise ConfigError(f"{path} already holds a checkpoint; resume it or choose another run directory")
        elif cfg.init_from:
            init = _warm_start(cfg, data.channels)
            self.normalizer = Normalizer.from_dict(init["normalizer"])  # the weights know only its scaling
        else:
            self.normalizer = Normalizer.fit(data.train, cfg.sigma_data)

        layout = torch.channels_last if cfg.channels_last else torch.contiguous_format
        if dev.type == "cuda":  # shapes are fixed for the whole run: let cuDNN time its conv algorithms once
            torch.backends.cudnn.benchmark = True
        self.model = build_denoiser(cfg, len(data.channels)).to(dev, memory_format=layout)
        self.ema = copy.deepcopy(self.model).requires_grad_(False).eval()
        # fused: one kernel for the whole update on CUDA instead of one per parameter tensor
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay,
                                     fused=dev.type == "cuda")
        self.step, self.elapsed_before, self.last_ckpt_step = 0, 0.0, 0
        if ckpt is not None:
            self.model.load_state_dict(ckpt["model"])
            self.ema.load_state_dict(ckpt["ema"])
            self.opt.load_state_dict(ckpt["optimizer"])
            self.step = self.last_ckpt_step = int(ckpt["step"])
            self.elapsed_before = float(ckpt.get("elapsed", 0.0))
            # An older checkpoint's "rng" (the global torch RNG) is ignored: no draw uses that RNG (a
            # step's come from step_generator, the initial weights' from a forked one).
        elif cfg.init_from:
            self.model.load_state_dict(init["ema"])
            self.ema.load_state_dict(init["ema"])
        self.net: nn.Module = self.model
        if info.world_size > 1:
            ids = [dev.index] if dev.type == "cuda" else None
            self.net = nn.parallel.DistributedDataParallel(self.model, device_ids=ids)
        if cfg.compile:  # after DDP, so its bucketed all-reduce is kept (DDPOptimizer)
            if dev.type == "cuda":
                force_layout_optimization()
            self.net = torch.compile(self.net, mode=cfg.compile_mode)
        self.layout = layout
        self.x_train = self.normalizer.encode(data.train).to(dev)  # (n_train, C, N, N), kept on the device
        if info.is_main:
            self._write_run_files(resume)

    def _write_run_files(self, resume: bool) -> None:
        run, cfg = self.run_dir, self.cfg
        save_config(run.config_path, cfg, kind="teacher", software_version=__version__,
                    torch_version=str(torch.__version__), device=str(self.info.device),
                    world_size=self.info.world_size, n_params=count_parameters(self.model),
                    precision="bf16 autocast" if self.info.device.type == "cuda" else "float32",
                    data=self.data.record())
        run.write_json("normalization.json", {"channels": list(self.data.channels),
                                              **self.normalizer.to_dict(), **self.data.record()})
        if resume:
            run.truncate_metrics(self.step)  # the steps after the checkpoint are trained again
        else:
            run.start_fresh()

    def checkpoint(self) -> dict:
        cfg = self.cfg
        return {"kind": "teacher", "config": to_dict(cfg),
                "pde": {"name": cfg.pde, "params": dict(cfg.pde_params)},
                "grid": {"n": cfg.grid_n, "length": 1.0}, "channels": list(self.data.channels),
                "normalizer": self.normalizer.to_dict(), "data": self.data.record(),
                "model": self.model.state_dict(), "ema": self.ema.state_dict(),
                "optimizer": self.opt.state_dict(), "step": self.step, "elapsed": self.elapsed(),
                "sampler": {"sigma_min": SIGMA_MIN, "sigma_max": SIGMA_MAX, "rho": RHO},
                "software_version": __version__, "torch_version": str(torch.__version__)}

    def save(self) -> None:
        if self.info.is_main:
            save_checkpoint(self.run_dir.checkpoint_path, self.checkpoint())
            log.info("checkpoint at step %d -> %s", self.step, self.run_dir.checkpoint_path)
        self.last_ckpt_step, self.last_ckpt_time = self.step, time.perf_counter()

    def elapsed(self) -> float:
        return self.elapsed_before + time.perf_counter() - self.t0

    def lr(self, step: int) -> float:
        cfg = self.cfg
        return lr_at(cfg.lr, step, cfg.warmup_steps, cfg.cooldown, cfg.steps)

    def train_step(self) -> torch.Tensor:
        cfg, dev, B = self.cfg, self.info.device, self.cfg.batch_size
        gen = step_generator(cfg.seed, self.step, dev)
        G = B * self.info.world_size  # global batch, drawn whole on every rank
        idx = torch.randint(len(self.x_train), (G,), generator=gen, device=dev)
        n = torch.randn((G, *self.x_train.shape[1:]), generator=gen, device=dev)
        xi = torch.randn((G,), generator=gen, device=dev)
        rows = slice(self.info.rank * B, (self.info.rank + 1) * B)
        for g in self.opt.param_groups:
            g["lr"] = self.lr(self.step)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=dev.type == "cuda"):
            x0, noise = (t.contiguous(memory_format=self.layout) for t in (self.x_train[idx[rows]], n[rows]))
            loss = edm_loss(self.net, x0, noise, xi[rows],
                            P_mean=cfg.P_mean, P_std=cfg.P_std, sigma_data=cfg.sigma_data).mean()
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        # EMA: θ_ema ← θ_ema + (1 − β)(θ − θ_ema)
        beta = 0.5 ** (1.0 / cfg.ema_halflife_steps)
        torch._foreach_lerp_(list(self.ema.parameters()), list(self.model.parameters()), 1.0 - beta)
        return loss.detach().reshape(1)

    def preview(self, report: ProgressFn, metrics: dict) -> None:
        cfg = self.cfg
        noise = noise_from_seeds(PREVIEW_SEEDS, self.x_train.shape[1:], self.info.device)
        z = heun_sample(self.ema, noise, num_steps=cfg.preview_steps)
        x = self.normalizer.decode(z.cpu().double()).numpy()  # (k, C, N, N) physical, float64
        stats = residual_stats(self.pde, x)
        self.run_dir.save_preview(self.step, x.astype(np.float32),
                                  residual=residual_map(self.pde, x).astype(np.float32))
        rec = {"step": self.step, "preview_residual_mse": stats["residual_mse"],
               "preview_bc_mse": stats["bc_mse"]}
        self.run_dir.append_metrics(rec)
        report(Progress("teacher", self.step, cfg.steps, {**metrics, **rec},
                        preview=x[0].astype(np.float32), message="preview"))

    def after_step(self, step: int) -> None:
        pass

    def non_finite(self, step: int, loss: float) -> str:
        return (f"loss is {loss} at step {step}; training stopped, "
                f"{checkpoint_note(self.run_dir, self.last_ckpt_step)} (a lower lr than {self.cfg.lr:g} may help)")

    def at_boundary(self, step: int, window: torch.Tensor, preview_due: bool) -> None:
        cfg, info = self.cfg, self.info
        now = time.perf_counter()
        self.loss_mean = float(window[:, 0].mean())
        metrics = {"loss": self.loss_mean, "lr": self.lr(step - 1),
                   "samples_per_s": len(window) * cfg.batch_size * info.world_size / max(now - self.t_win, 1e-9),
                   "elapsed": self.elapsed()}
        self.t_win = now
        if info.is_main:
            self.run_dir.append_metrics({"step": step, **metrics})
            self.report(Progress("teacher", step, cfg.steps, metrics))
            if preview_due:
                self.preview(self.report, metrics)

    def run(self, on_progress: ProgressFn, cancel: CancelToken | None) -> TeacherResult:
        cfg, info, dev = self.cfg, self.info, self.info.device
        self.report = Throttle(on_progress) if info.is_main else no_progress
        self.t0 = self.last_ckpt_time = self.t_win = time.perf_counter()
        start_step, self.loss_mean = self.step, self.run_dir.last_metric("loss")
        log.info("teacher: %s, %d params, step %d/%d on %s x%d", cfg.model, count_parameters(self.model),
                 self.step, cfg.steps, dev, info.world_size)
        budget = Budget(cfg.steps, cfg.minutes, cfg.report_every, cfg.preview_every, cfg.checkpoint_minutes,
                        cfg.checkpoint_every)
        stopped = run_steps(self, budget, cancel, dev, info.world_size)
        seconds = time.perf_counter() - self.t0
        done = (self.step - start_step) * cfg.batch_size * info.world_size
        log.info("teacher: stopped (%s) at step %d, loss %.4g", stopped, self.step, self.loss_mean)
        return TeacherResult(self.run_dir.path, self.run_dir.checkpoint_path, self.step, self.loss_mean,
                             seconds, done / max(seconds, 1e-9), count_parameters(self.model), stopped,
                             ema=self.ema, model=self.model)
