"""The optimiser loop the teacher and the student share: steps, boundaries, stops, checkpoints.

A run takes optimiser steps until its step budget ends. After step s it stops at a "boundary" when s
is a multiple of ``report_every``, ``preview_every`` or ``checkpoint_every``, is the last step, or
(one process) a cancel is pending or the time budget is spent. There all ranks agree with one
all-reduce each on the window's per-step scalars (the loss first) and on three flags — cancel, time
budget spent, checkpoint due by the clock — so that every rank takes the same branch; under DDP a
cancel or the clock seen between boundaries waits for the next one (a rank leaving the loop alone
would hang the others in their all-reduce).
A non-finite loss raises NonFiniteError naming its step before anything is saved, so the checkpoint
on disk is always a good one; Ctrl-C saves only a state between whole steps whose losses were finite.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch

from engine import dist
from engine.errors import NonFiniteError
from engine.io.rundir import RunDir
from engine.jobs import Cancelled, CancelToken


@dataclass(frozen=True)
class Budget:
    """When a run stops, reports, previews and checkpoints (the fields of its config)."""

    steps: int
    minutes: float  # > 0: stop at the first boundary after this much wall time over all sessions
    report_every: int
    preview_every: int  # 0 = no previews
    checkpoint_minutes: float  # 0 = none by the clock
    checkpoint_every: int = 0  # 0 = none by the step count


def step_generator(seed: int, step: int, device: torch.device) -> torch.Generator:
    """The generator of step ``step``: a pure function of (seed, step)."""
    state = np.random.SeedSequence([seed, step]).generate_state(2, dtype=np.uint32)
    return torch.Generator(device).manual_seed((int(state[0]) << 31) ^ int(state[1]))


def checkpoint_note(run: RunDir, step: int) -> str:
    """Where a stopped run can go back to: its last checkpoint, or, before the first one, none (naming a
    step-0 checkpoint there sent people to a file that does not exist, and --resume refused)."""
    if run.has_checkpoint():
        return f"the last good checkpoint is step {step} in {run.checkpoint_path}"
    return f"no checkpoint was written to {run.path}, so start it again without --resume"


def lr_at(lr: float, step: int, warmup_steps: int, cooldown: float = 0.0, steps: int = 0) -> float:
    """The learning rate of optimiser step ``step`` (0-based), for the teacher and the student alike:
    linear warm-up to ``lr`` over ``warmup_steps``, constant, then (``cooldown`` > 0, a fraction of
    ``steps``) a linear fall that would reach 0 after step ``steps``: the last updates anneal the
    weights instead of stirring them."""
    factor = min(1.0, (step + 1) / warmup_steps) if warmup_steps else 1.0
    if cooldown:
        factor = min(factor, (steps - step) / (cooldown * steps))
    return lr * factor


class TrainingRun(Protocol):
    """What the loop drives: a teacher's ``_Trainer`` or a student's ``_Distiller``."""

    step: int  # optimiser steps completed
    last_ckpt_step: int
    last_ckpt_time: float  # perf_counter() of the last checkpoint (or of the session's start)
    run_dir: RunDir

    def train_step(self) -> torch.Tensor:
        """One optimiser step; returns its scalars (1-D, the loss first), not yet synchronised."""
        ...

    def after_step(self, step: int) -> None:
        """Work between steps once ``step`` steps are done (the student's pair refresh); a checkpoint
        taken while it runs (Ctrl-C) must still be a state a resume continues from."""
        ...

    def at_boundary(self, step: int, window: torch.Tensor, preview_due: bool) -> None:
        """Record and report the window (k, m) of per-step scalars, averaged over ranks; preview if due.
        Called on every rank (rank 0 writes)."""
        ...

    def non_finite(self, step: int, loss: float) -> str:
        """The message for a non-finite ``loss`` at ``step`` (what stopped and what may help)."""
        ...

    def elapsed(self) -> float:
        """Wall time over all sessions of the run."""
        ...

    def save(self) -> None:
        """Write a checkpoint (rank 0) and set last_ckpt_step / last_ckpt_time."""
        ...


def run_steps(job: TrainingRun, budget: Budget, cancel: CancelToken | None, device: torch.device,
              world_size: int) -> str:
    """Train ``job`` until its budget ends; returns why it stopped: "steps" or "minutes".

    Raises Cancelled after saving a checkpoint when ``cancel`` is set, NonFiniteError (nothing
    saved) for a NaN/inf loss; re-raises KeyboardInterrupt after saving a consistent state.
    """
    window: list[torch.Tensor] = []
    consistent, stopped = True, "steps"
    try:
        while job.step < budget.steps:
            consistent = False  # an interrupt from here until the step is counted leaves a half update
            window.append(job.train_step())
            job.step += 1
            consistent = True
            s = job.step
            job.after_step(s)
            # one process needs no agreement, so a cancel or a spent time budget stops it at once (a CPU
            # step of the 64² U-Net takes seconds: waiting for the report boundary overshot --minutes 0.3
            # five-fold); under DDP both wait for the next boundary
            urgent = world_size == 1 and ((cancel is not None and cancel.cancelled)
                                          or (budget.minutes > 0 and job.elapsed() >= 60 * budget.minutes))
            preview_due = bool(budget.preview_every) and s % budget.preview_every == 0
            step_ckpt = bool(budget.checkpoint_every) and s % budget.checkpoint_every == 0
            if not (urgent or preview_due or step_ckpt or s % budget.report_every == 0 or s == budget.steps):
                continue
            values = dist.all_reduce_mean(torch.stack(window).float()).cpu()  # (k, m): k steps, m scalars
            flags = torch.tensor([
                float(cancel is not None and cancel.cancelled),
                float(budget.minutes > 0 and job.elapsed() >= 60 * budget.minutes),
                float(time.perf_counter() - job.last_ckpt_time >= 60 * budget.checkpoint_minutes > 0),
            ], device=device)
            do_cancel, time_up, ckpt_due = dist.all_reduce_max(flags).tolist()
            losses = values[:, 0]
            if not torch.isfinite(losses).all():
                bad = int((~torch.isfinite(losses)).nonzero()[0, 0])
                raise NonFiniteError(job.non_finite(s - len(window) + bad + 1, losses[bad].item()))
            window = []
            job.at_boundary(s, values, preview_due)
            if do_cancel:
                job.save()
                raise Cancelled
            if ckpt_due or step_ckpt:
                job.save()
            if time_up:
                stopped = "minutes"
                break
        if job.step > job.last_ckpt_step or not job.run_dir.has_checkpoint():
            job.save()
        dist.barrier()
    except KeyboardInterrupt:
        finite = not window or bool(np.isfinite(torch.stack(window).float()[:, 0].cpu().numpy()).all())
        if consistent and finite and job.step > job.last_ckpt_step:
            with contextlib.suppress(Exception):
                job.save()
        raise
    return stopped
