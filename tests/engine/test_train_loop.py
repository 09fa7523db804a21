"""The shared optimiser loop (engine.train_loop) on a stand-in run: boundaries, stops, checkpoints."""

from __future__ import annotations

import math

import pytest
import torch

from engine.errors import NonFiniteError
from engine.jobs import Cancelled, CancelToken
from engine.train_loop import Budget, run_steps


class _Run:
    """A run whose step k (1-based) has loss ``losses[k - 1]``; records what the loop asked of it."""

    def __init__(self, losses, interrupt_at=None, interrupt_in=""):
        self.losses, self.interrupt_at, self.interrupt_in = losses, interrupt_at, interrupt_in
        self.step = self.last_ckpt_step = 0
        self.last_ckpt_time = math.inf  # no checkpoint due by the clock
        self.boundaries, self.saved, self.after = [], [], []
        self.run_dir = self
        self.minutes_per_step = 0.0

    def has_checkpoint(self):
        return bool(self.saved)

    def train_step(self):
        self._interrupt("train_step", self.step + 1)
        return torch.tensor([self.losses[self.step], 2.0 * self.step])

    def after_step(self, step):
        self.after.append(step)
        self._interrupt("after_step", step)

    def at_boundary(self, step, window, preview_due):
        self.boundaries.append((step, window.shape, preview_due))
        self._interrupt("at_boundary", step)

    def _interrupt(self, where, step):
        if where == self.interrupt_in and step == self.interrupt_at:
            raise KeyboardInterrupt

    def non_finite(self, step, loss):
        return f"loss {loss} at step {step}"

    def elapsed(self):
        return 60.0 * self.step * self.minutes_per_step

    def save(self):
        self.saved.append(self.step)
        self.last_ckpt_step = self.step


def _budget(**kw):
    return Budget(**{"steps": 10, "minutes": 0.0, "report_every": 4, "preview_every": 0,
                     "checkpoint_minutes": 0.0, **kw})


def test_boundaries_fall_on_reports_previews_step_checkpoints_and_the_last_step():
    run = _Run([1.0] * 10)
    assert run_steps(run, _budget(preview_every=5, checkpoint_every=3), None, torch.device("cpu"), 1) == "steps"
    assert [b[0] for b in run.boundaries] == [3, 4, 5, 6, 8, 9, 10]
    assert run.boundaries[0][1] == (3, 2)  # the window: 3 steps × (loss, second scalar)
    assert [b[0] for b in run.boundaries if b[2]] == [5, 10]
    assert run.saved == [3, 6, 9, 10]  # checkpoint_every, then the end
    assert run.after == list(range(1, 11))


def test_a_non_finite_loss_names_its_step_and_saves_nothing():
    run = _Run([1.0, 1.0, 1.0, 1.0, 1.0, float("nan"), 1.0, 1.0, 1.0, 1.0])
    with pytest.raises(NonFiniteError, match="loss nan at step 6"):
        run_steps(run, _budget(), None, torch.device("cpu"), 1)
    assert run.saved == [] and [b[0] for b in run.boundaries] == [4]


def test_cancel_saves_and_raises_at_once_in_one_process_at_the_next_boundary_under_ddp(monkeypatch):
    cancel = CancelToken()
    cancel.cancel()
    run = _Run([1.0] * 10)
    with pytest.raises(Cancelled):
        run_steps(run, _budget(), cancel, torch.device("cpu"), 1)
    assert run.saved == [1]
    # several processes: a rank may not leave the loop alone between boundaries (the others would wait
    # in their all-reduce), so the cancel is taken at the next report
    run = _Run([1.0] * 10)
    with pytest.raises(Cancelled):
        run_steps(run, _budget(), cancel, torch.device("cpu"), 2)
    assert run.saved == [4]


@pytest.mark.parametrize(("where", "saved"), [
    ("at_boundary", [4]),  # between whole steps: saved
    ("train_step", []),  # step 4 half done (weights moved, step not counted): nothing to save
    ("after_step", [4]),  # the student's pair refresh: its seeds are set first, a resume maps their pairs
])
def test_ctrl_c_saves_a_state_between_steps_only(where, saved):
    run = _Run([1.0] * 10, interrupt_at=4, interrupt_in=where)
    with pytest.raises(KeyboardInterrupt):
        run_steps(run, _budget(), None, torch.device("cpu"), 1)
    assert run.saved == saved


def test_ctrl_c_between_steps_saves_only_finite_weights():
    class Interrupting:  # Ctrl-C arriving when the loop next looks at the cancel flag (after step 3)
        @property
        def cancelled(self):
            if run.step == 3:
                raise KeyboardInterrupt
            return False

    run = _Run([1.0] * 10)
    with pytest.raises(KeyboardInterrupt):
        run_steps(run, _budget(), Interrupting(), torch.device("cpu"), 1)
    assert run.saved == [3]
    run = _Run([1.0, float("inf")] + [1.0] * 8)  # the window since the last boundary holds an inf
    with pytest.raises(KeyboardInterrupt):
        run_steps(run, _budget(), Interrupting(), torch.device("cpu"), 1)
    assert run.saved == []


def test_a_spent_time_budget_stops_one_process_at_the_next_step_and_ddp_at_the_next_boundary():
    run = _Run([1.0] * 100)
    run.minutes_per_step = 1.0
    assert run_steps(run, _budget(steps=100, report_every=20, minutes=2.5), None, torch.device("cpu"), 1) == "minutes"
    assert run.step == 3 and run.saved == [3]  # not step 20: a CPU step may take seconds
    run = _Run([1.0] * 100)
    run.minutes_per_step = 1.0
    assert run_steps(run, _budget(steps=100, report_every=20, minutes=2.5), None, torch.device("cpu"), 2) == "minutes"
    assert run.step == 20
