"""Controller: the async workflows behind the panels (open model, demo task, solve, compare)."""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Signal
from qasync import asyncSlot

from app.jobs import make_demo, run_solve, task_mask
from app.state import AppState
from app.workers import JobFailed, Jobs
from engine import pdes
from engine.grid import Grid
from engine.jobs import Cancelled

log = logging.getLogger("app")


def load_model(path, *, on_progress, cancel):
    """Load on the worker, then warm the student up (one tiny forward and backward pass, one optimiser)
    so that the first solve's first preview is not held up by PyTorch's one-off start-up costs."""
    from engine.models import load_model as _load

    model = _load(path, device="cpu")
    warm_up(model)
    return model


def warm_up(model) -> None:
    student = getattr(model, "student", None)
    if student is None:
        return
    try:
        import torch

        eps = student.noise([0]).detach().clone().requires_grad_(True)
        student.generate(eps).square().mean().backward()
        # the first torch.optim optimiser imports torch._dynamo: ~1.4 s on a 2-core CPU, which
        # otherwise lands between the Solve click and the first preview
        torch.optim.Adam([eps], lr=0.0)
    except Exception:  # warm-up is an optimisation only
        log.debug("warm-up failed", exc_info=True)


class Controller(QObject):
    solve_done = Signal(object)  # list[SolveOutcome]
    solve_failed = Signal(str)
    solve_cancelled = Signal()
    demo_ready = Signal()
    model_changed = Signal()
    busy_changed = Signal(bool)

    def __init__(self, state: AppState, jobs: Jobs, panels: dict[str, Any], report_error, parent=None) -> None:
        super().__init__(parent)
        self.state, self.jobs, self.report_error = state, jobs, report_error
        self.model_panel, self.inputs = panels["model"], panels["inputs"]
        self.task, self.results, self.compare = panels["task"], panels["results"], panels["compare"]
        self.solve_fn = None  # tests: replace engine.solve with a fake (see app.jobs.run_solve)
        self.solve_runner = None
        self.busy = False
        self._solving: tuple | None = None  # the problem the running solve is for (``_problem``)
        self._solving_method = ""  # the method whose previews come in
        self._stopped_for_change = False  # the running solve was cancelled for a new PDE, grid or model
        self._edited_truth: np.ndarray | None = None  # the truth, set aside (``check_truth``)
        self._model_requests = 0  # model loads asked for; only the latest one's model is taken
        self._status_shows_result = False  # the task panel's status line says a finished solve is done
        self._t0: float | None = None
        self._first_preview: float | None = None
        self.timings: dict[str, float] = {}  # last solve: first_preview, total (seconds, wall clock)
        self.inputs.edited.connect(self.check_truth)

    # -- model ----------------------------------------------------------------------------------
    @asyncSlot(object)
    async def open_model(self, info) -> None:
        await self.load_model_info(info)

    async def load_model_info(self, info) -> None:
        """Load ``info`` (None = no model) on the worker; switch PDE/grid to the model's."""
        self.stop_solve_for_change()
        s = self.state
        self._model_requests += 1
        request = self._model_requests
        if info is None:
            s.model_info = s.model = None
        else:
            try:
                model = await self.jobs.start(load_model, info.path, name="load model").result()
            except (JobFailed, Cancelled) as exc:
                if request == self._model_requests:
                    # the list still points at the model that failed: back to the one still open (set_models
                    # selects without signalling, so no load of it starts)
                    self.model_panel.set_models(self.model_panel.infos(), s.model_info)
                    self.report_error("Could not open the model", str(exc), getattr(exc, "details", ""))
                return
            if request != self._model_requests:
                return  # another model was picked while this one loaded
            s.model_info, s.model = info, model
        self.model_panel.show_info(s.model_info, s.model)
        if s.model is not None:
            s.method = "piddm" if "piddm" in s.methods() else s.methods()[0]
            pde, n = s.model.pde, s.model.grid.n
            # A demo of the model's PDE and grid where the canvases would not fit it, or hold nothing
            # yet (a window opened with --model on the PDE and grid it starts with): never over a drawing.
            if pde.name != s.pde_name or n != s.grid_n or s.blank():
                s.pde_name, s.grid_n = pde.name, n
                s.pde_params = pdes.params_of(pde)  # the model's own (a run trained with k = 3 opens on k = 3)
                await self.load_demo()
        elif s.method not in s.methods():
            s.method = "dataspace"
        self.task.load(s)
        self.model_changed.emit()

    def counterpart(self, pde_name: str):
        """The listed model of ``pde_name`` that stands where the open one stands for its PDE: the same
        member (piddm, distill, teacher, a run's name), on the same grid where there is one. None if none."""
        info = self.state.model_info
        if info is None:
            return None
        same = [i for i in self.model_panel.infos() if i.pde == pde_name and i.name == info.name]
        return next((i for i in same if i.card.get("grid") == self.state.grid_n), same[0] if same else None)

    @asyncSlot(str)
    async def change_pde(self, name: str) -> None:
        """Switch the canvases to PDE ``name``. With a model open, the PDE's own counterpart opens
        (``counterpart``: e.g. poisson · piddm after darcy · piddm); without one the app stays model-free."""
        s = self.state
        if name == s.pde_name:
            return
        self.stop_solve_for_change()
        if s.model is not None and s.model.pde.name != name:
            match = self.counterpart(name)
            if match is not None:
                self.model_panel.set_models(self.model_panel.infos(), match)
                await self.load_model_info(match)  # the model's PDE and grid, with a demo
                return
            s.model_info = s.model = None
            self.model_panel.set_models(self.model_panel.infos(), None)
            self.model_panel.show_info(None)
        s.pde_name, s.pde_params = name, {}
        await self.load_demo()
        self.task.load(s)
        self.model_changed.emit()

    @asyncSlot(int)
    async def change_grid(self, n: int) -> None:
        s = self.state
        if s.model is not None or n == s.grid_n:
            return
        self.stop_solve_for_change()
        s.grid_n = n
        await self.load_demo()

    # -- demo task ------------------------------------------------------------------------------
    async def load_demo(self) -> None:
        """A held-out sample of the current PDE with the current task's mask on it."""
        s = self.state
        asked, task = self._canvas_problem(), s.task
        try:
            d = await self.jobs.start(make_demo, s.pde_name, s.pde_params, s.grid_n, s.seed, s.task,
                                      name="demo").result()
        except (JobFailed, Cancelled) as exc:
            if self._canvas_problem() != asked:
                return  # superseded: a newer demo is on its way
            self.report_error("Could not make the demo task", str(exc), getattr(exc, "details", ""))
            s.reset_fields()
        else:
            if self._canvas_problem() != asked:
                return  # the PDE or grid changed again meanwhile: its own demo is on its way
            mask = d["mask"] if s.task == task else task_mask(s.pde, s.grid_n, s.task, np.random.default_rng(s.seed))
            s.values, s.mask, s.truth = d["values"], mask, d["truth"]
            s.results.clear()
        self.inputs.rebuild()
        self.clear_results()
        self.demo_ready.emit()

    def clear_results(self) -> None:
        """New canvases (another PDE, grid or file): the views and numbers of earlier solves go."""
        self._edited_truth = None  # (the new canvases come with their own truth, or none)
        self.results.set_channels(self.state.channels)
        self.compare.clear()
        if not self.busy and self._status_shows_result:  # (a solve stopped for the change says so)
            self.task.status.setText(" ")
            self.task.set_busy(False)

    def check_truth(self) -> None:
        """The demo's sample (or a whole-fields file's) is the truth of observations of its own values
        only. Once an observed value is not the sample's (drawn, filled, loaded) it is set aside
        (state.truth None), and it comes back when the observations are the sample's again (an undo).
        Points observed on the sample's values, or drawing where nothing is observed, keep it."""
        s = self.state
        truth = s.truth if s.truth is not None else self._edited_truth
        if truth is None or s.values is None or s.values.shape != truth.shape:
            return
        observed_sample = np.array_equal(s.values[s.mask], truth[s.mask])
        s.truth, self._edited_truth = (truth, None) if observed_sample else (None, truth)

    def apply_task(self, task: str) -> None:
        """Task changed: set the observation mask the task implies (undoable, with the task) and offer
        the task's methods."""
        s = self.state
        if s.mask is not None:
            self.inputs.history.push()  # the mask and the task before the switch
        self.task.store(s)
        s.task = task
        self.task.offer_methods(s)
        if s.mask is None:
            return
        s.mask[...] = task_mask(s.pde, s.grid_n, task, np.random.default_rng(s.seed), current=s.mask)
        self.inputs.redraw()

    # -- solve ----------------------------------------------------------------------------------
    def _set_busy(self, busy: bool, finished: bool = False) -> None:
        self.busy = busy
        self.task.set_busy(busy, finished)
        self.busy_changed.emit(busy)

    def cancel(self) -> None:
        if self.solve_runner is not None:
            self.solve_runner.cancel()
            self.task.status.setText("Cancelling…")

    def _canvas_problem(self) -> tuple:
        """What the canvases' arrays belong to: the PDE (and its parameters) and the grid."""
        s = self.state
        return s.pde_name, repr(sorted(s.pde_params.items())), s.grid_n

    def _problem(self) -> tuple:
        """What a solve's answer belongs to: the canvases' problem and the model."""
        return (*self._canvas_problem(), id(self.state.model))

    def stop_solve_for_change(self) -> None:
        """The PDE, grid or model is about to change: a running solve's answer would not fit the
        canvases any more, so it is cancelled (and whatever it still reports is dropped)."""
        if self.busy:
            log.info("the problem changed during a solve: cancelling it")
            # the PDE or model may change only after this (a model loads first): the solve's own check
            # of the problem cannot tell why it stopped
            self._stopped_for_change = True
            self.cancel()

    def on_progress(self, p) -> None:
        if self._solving != self._problem():
            return  # a preview of the previous problem's solve
        if p.preview is not None and self._first_preview is None and self._t0 is not None:
            self._first_preview = time.perf_counter() - self._t0
            log.info("first preview after %.2f s", self._first_preview)
        m = p.metrics or {}
        text = "  ".join(f"{k} {v:.3g}" for k, v in m.items() if isinstance(v, float))
        self.task.show_progress(p.step, p.total, f"{p.stage} {p.step}/{p.total}  {text} {p.message}".strip())
        if p.preview is not None:
            self.results.show_preview(np.asarray(p.preview), self._solving_method)

    @asyncSlot()
    async def solve(self) -> None:
        """Solve with the chosen method (and the compare method) on the same observations."""
        if self.busy:
            return
        s = self.state
        self.task.store(s)
        if s.values is None or not s.mask.any():
            self.report_error("Nothing observed", "Observe some values first (draw, click points, or pick a task).")
            return
        self.check_truth()  # (a task switch or a mask import changes what is observed without an edit)
        methods = self.task.chosen_methods()  # the method, then the compared ones (what store() just read)
        values, mask, truth, task = s.values.copy(), s.mask.copy(), s.truth, s.task
        interior = s.pde.interior_mask(Grid(s.grid_n)).numpy()  # (the residual away from observations)
        self._solving, self._stopped_for_change = self._problem(), False
        self._status_shows_result = False
        self._set_busy(True)
        outcomes, finished = [], False
        try:
            for m in methods:
                self._t0, self._first_preview, self._solving_method = time.perf_counter(), None, m
                opts = {"method": m, "ensemble": s.ensemble, "steps": s.steps, "lam": s.lam,
                        "residual_norm": s.residual_norm, "seed": s.seed}
                self.solve_runner = self.jobs.start(run_solve, s.model, s.pde_name, s.pde_params, values, mask,
                                                    opts, truth, solve_fn=self.solve_fn, name=f"solve {m}")
                self.solve_runner.progress.connect(self.on_progress)
                r = await self.solve_runner.result()
                if self._solving != self._problem():  # changed without a cancel reaching the worker in time
                    raise Cancelled
                self.timings = {"first_preview": self._first_preview or float("nan"),
                                "total": time.perf_counter() - self._t0}
                log.info("%s finished after %.2f s (wall clock)", m, self.timings["total"])
                r.task = task
                outcomes.append(r)
                self.results.show_result(r, mask, s.channels, interior)
            # this solve's answers replace the last one's (export writes them all), only once they are
            # all in: a compare stopped half-way leaves the last finished solve, as the views do
            s.results.clear()
            s.results.update((r.method, r) for r in outcomes)
            self.results.show_outcomes(outcomes, mask, s.channels, interior)  # the chosen method's first
            if len(outcomes) > 1:
                self.compare.show_results(outcomes, mask, s.channels)
            log.info("solved with %s", ", ".join(f"{r.method} ({r.seconds:.2f} s)" for r in outcomes))
            self.task.show_done(outcomes)  # done, the time and a verdict; the figures are on the Results tab
            finished = self._status_shows_result = True
            self.solve_done.emit(outcomes)
        except Cancelled:
            self.results.restore()  # every view back to the last finished solve, which export writes
            changed = self._stopped_for_change or self._solving != self._problem()
            self.task.status.setText("Solve stopped: the PDE, grid or model changed while it ran." if changed
                                     else f"Solve cancelled{self._shown_now()}.")
            self.solve_cancelled.emit()
        except JobFailed as exc:
            self.results.restore()
            self.task.status.setText(f"Failed: {exc.message}{self._shown_now()}")
            self.report_error("Solve failed", exc.message, exc.details)
            self.solve_failed.emit(exc.message)
        finally:
            self.solve_runner, self._solving = None, None
            self._set_busy(False, finished)

    def _shown_now(self) -> str:
        """What the result views show after a solve stopped: the last finished one's answers, or none."""
        return "; the views show the previous result" if self.state.results else ""

