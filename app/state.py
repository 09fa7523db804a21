"""AppState: the current selections and data, plain Python (no Qt). Widgets never hold the only copy."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.solve.api import MODEL_FREE
from engine.solve.observations import TASKS

__all__ = ["TASKS", "AppState", "SolveOutcome", "is_distill_student", "params_diff_text"]


@dataclass
class SolveOutcome:
    """One finished solve as the views need it (batch of one, NumPy)."""

    method: str
    mean: np.ndarray  # (C, N, N)
    std: np.ndarray | None  # (C, N, N)
    residual: np.ndarray  # (N, N)
    seconds: float
    nfe: int = 0
    classical: np.ndarray | None = None  # (C, N, N) reference solve of the coefficient, if any
    metrics: dict[str, float] = field(default_factory=dict)
    mask: np.ndarray | None = None  # (C, N, N) bool: what this solve observed (the canvases may change since)
    settings: dict[str, Any] = field(default_factory=dict)  # what the engine's solve used (λ, rate, …)
    task: str = ""  # the task it solved (the task box may change since)


@dataclass
class AppState:
    pde_name: str = "darcy"
    pde_params: dict[str, Any] = field(default_factory=dict)
    grid_n: int = 32
    model_info: Any = None  # engine.models.ModelInfo of the selected model
    model: Any = None  # the loaded engine Model, or None
    values: np.ndarray | None = None  # (C, N, N) canvas values, physical units
    mask: np.ndarray | None = None  # (C, N, N) bool, True = observed
    truth: np.ndarray | None = None  # (C, N, N) held-out sample behind a demo task
    task: str = "inverse"
    method: str = "dataspace"
    compare_method: str = "classical"
    compare_third: str = ""  # a third method side by side, "" for none
    ensemble: int = 4
    lam: float | None = None
    residual_norm: float | None = None  # σ of the latent solve's H^-2σ physics term; None = the engine's choice
    steps: int = 50  # ensemble 4 × 50 steps: a 64² piddm solve in ~15 s on a busy 2-core CPU
    seed: int = 0
    results: dict[str, SolveOutcome] = field(default_factory=dict)  # the last solve's, by method

    @property
    def pde(self):
        from engine import pdes

        return pdes.get(self.pde_name, **self.pde_params)

    @property
    def channels(self) -> tuple[str, ...]:
        return self.pde.fields

    def reset_fields(self, grid_n: int | None = None) -> None:
        """Blank canvases (zeros, nothing observed) at ``grid_n``."""
        if grid_n is not None:
            self.grid_n = grid_n
        c, n = len(self.channels), self.grid_n
        self.values = np.zeros((c, n, n))
        self.mask = np.zeros((c, n, n), dtype=bool)
        self.truth = None
        self.results.clear()

    def blank(self) -> bool:
        """Nothing on the canvases: no demo behind them, nothing drawn, nothing observed."""
        return self.truth is None and (self.values is None or not self.values.any()) and (
            self.mask is None or not self.mask.any())

    def ensure_fields(self) -> None:
        c, n = len(self.channels), self.grid_n
        if self.values is None or self.values.shape != (c, n, n):
            self.reset_fields()

    def methods(self) -> list[str]:
        """Methods offered now: model methods only with a model of the right kind, made for the
        canvases' PDE parameters (``model_fits``). ``distill`` (the
        latent solve of a λ = 0 student) instead of ``piddm`` when the student is one; ``classical``
        (the reference solve of a whole coefficient) only for the forward task."""
        out = [m for m in MODEL_FREE if m != "classical" or self.task == "forward"]
        if self.model is not None and self.model_fits():
            kind = getattr(self.model, "kind", "student")
            if kind == "teacher":
                out = ["teacher", "diffusionpde", *out]
            else:
                # piddm and distill are the same latent solve, named by the student's λ (as piddm solve
                # checks): a λ = 0 student offers distill in piddm's place
                first = "distill" if is_distill_student(self.model, self.model_info) else "piddm"
                student = [first, "piddm-ref", "piddm-exact"]
                if getattr(self.model, "teacher", None) is not None:
                    student += ["diffusionpde", "teacher"]
                out = [*student, *out]
        return out

    def model_fits(self) -> bool:
        """The open model was made for the canvases' PDE parameters (helmholtz k = 1 cannot solve
        observations of k = 3: the engine refuses). True without a model, and while the canvases are
        of another PDE than the model (they are switched to its PDE as it opens)."""
        mpde = getattr(self.model, "pde", None)
        if mpde is None or mpde.name != self.pde_name:
            return True
        from engine import pdes

        return pdes.params_of(mpde) == pdes.params_of(self.pde)

    def params_mismatch(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """The PDE parameters in which the open model and the canvases differ: (model's, canvases')."""
        if self.model_fits():
            return {}, {}
        from engine import pdes

        mine, theirs = pdes.params_of(self.pde), pdes.params_of(self.model.pde)
        keys = [k for k in mine if mine[k] != theirs.get(k)]
        return {k: theirs.get(k) for k in keys}, {k: mine[k] for k in keys}


def params_diff_text(params: dict[str, Any]) -> str:
    """``{"k": 3.0}`` as people read it: "k = 3"."""
    return ", ".join(f"{k} = {v:g}" if isinstance(v, float | int) else f"{k} = {v}" for k, v in params.items())


def is_distill_student(model: Any, info: Any = None) -> bool:
    """True for a student distilled without physics (λ = 0): folder "distill" or card lambda 0."""
    card = dict(getattr(model, "card", None) or getattr(info, "card", None) or {})
    if "lambda" in card:
        try:
            return float(card["lambda"]) == 0.0
        except (TypeError, ValueError):
            pass
    name = getattr(info, "name", None) or getattr(getattr(model, "path", None), "name", "")
    return str(name) == "distill"
