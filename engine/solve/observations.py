"""Observations: which entries of the fields are known, and their values (x′ and M in SPEC).

Tasks differ only in the mask M:
- forward: the coefficient channel (``pde.coefficient_mask``; burgers: the initial row u(0, ·));
- inverse: the solution (``pde.solution_mask``; burgers: the final row u(1, ·));
- reconstruct: scattered nodes of every channel.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.errors import ConfigError
from engine.grid import Grid
from engine.io.hdf5 import FieldsFile
from engine.pdes import PDE

TASKS = ("forward", "inverse", "reconstruct")


@dataclass(frozen=True)
class Observations:
    """Observed values x′ and mask M of B cases.

    values : (B, C, N, N) physical units; entries where ``mask`` is False are ignored (may be NaN).
    mask : (B, C, N, N) bool, True = observed.
    """

    values: np.ndarray
    mask: np.ndarray

    def __len__(self) -> int:
        return int(self.values.shape[0])

    def cases(self, which: slice) -> Observations:
        """The observations of the cases ``which`` (a slice of the B cases)."""
        return Observations(self.values[which], self.mask[which])

    @property
    def clean_values(self) -> np.ndarray:
        """values with unobserved entries set to 0 (float64), safe to compute with."""
        return np.where(self.mask, np.nan_to_num(self.values.astype(np.float64)), 0.0)

    @classmethod
    def from_task(cls, pde: PDE, truth: np.ndarray, task: str, spec: str = "full",
                  seed: int = 0) -> Observations:
        """Observations of ``truth`` (B, C, N, N) for a task.

        spec: "full" (the task's whole channel/row; reconstruct has no "full"), "points:K" (K random
        nodes of the task's entries, per case, seeded by (seed, case)), "fraction:F" (K = round(F·count)).
        A node observes every task channel at once (reconstruct: a and u at the same node).
        """
        truth = np.asarray(truth)
        if truth.ndim != 4:
            raise ConfigError(f"truth must be (B, C, N, N), got shape {truth.shape}")
        grid = Grid(truth.shape[-1])
        if task == "forward":
            base = pde.coefficient_mask(grid).numpy()
        elif task == "inverse":
            base = pde.solution_mask(grid).numpy()
        elif task == "reconstruct":
            base = np.ones((len(pde.fields), grid.n, grid.n), dtype=bool)
        else:
            raise ConfigError(f"unknown task {task!r}; known: {', '.join(TASKS)}")
        mask = np.broadcast_to(base, truth.shape).copy()
        if spec != "full":
            mask = _random_nodes(base, spec, len(truth), seed)
        elif task == "reconstruct":
            raise ConfigError("reconstruct needs scattered points (points:K or fraction:F), not full")
        return cls(values=truth.copy(), mask=mask)

    @classmethod
    def from_fields_file(cls, ff: FieldsFile) -> Observations:
        """The observations of a fields file; its ``mask`` dataset is required."""
        if ff.mask is None:
            raise ConfigError("observation file has no 'mask' dataset: it must say which values are observed")
        return cls(values=np.asarray(ff.fields), mask=np.asarray(ff.mask, dtype=bool))

    def validate(self, pde: PDE, grid: Grid) -> None:
        """Refuse shape mismatch, a case with nothing or everything observed, NaN in observed values."""
        want = (len(pde.fields), grid.n, grid.n)
        if self.values.ndim != 4 or self.values.shape[1:] != want:
            raise ConfigError(f"observations have shape {self.values.shape}, expected (B, {', '.join(map(str, want))}) "
                              f"for {pde.name} on a {grid.n}x{grid.n} grid")
        if self.mask.shape != self.values.shape:
            raise ConfigError(f"mask shape {self.mask.shape} differs from values shape {self.values.shape}")
        if len(self) == 0:
            raise ConfigError("observations hold no cases")
        counts = self.mask.reshape(len(self), -1).sum(1)
        if (none := np.flatnonzero(counts == 0)).size:
            raise ConfigError(f"case {none[0]} observes nothing ({none.size} such case(s))")
        if (full := np.flatnonzero(counts == self.mask[0].size)).size:
            raise ConfigError(f"case {full[0]} observes everything: nothing left to solve ({full.size} such case(s))")
        if not np.isfinite(self.values[self.mask]).all():
            raise ConfigError("observed values contain NaN or inf")


def _random_nodes(base: np.ndarray, spec: str, count: int, seed: int) -> np.ndarray:
    """(count, C, N, N) masks: K random nodes among base.any(0), per case, seeded by (seed, case)."""
    kind, _, arg = spec.partition(":")
    nodes = np.flatnonzero(base.any(0))
    try:
        k = int(arg) if kind == "points" else round(float(arg) * nodes.size) if kind == "fraction" else None
    except ValueError:
        k = None
    if k is None:
        raise ConfigError(f"observation spec must be full, points:K or fraction:F, got {spec!r}")
    if kind == "fraction" and not 0 < float(arg) <= 1:
        raise ConfigError(f"{spec}: the fraction F must be in (0, 1], e.g. fraction:0.03")
    if not 1 <= k <= nodes.size:
        raise ConfigError(f"{spec}: need between 1 and {nodes.size} observed nodes, got {k}")
    out = np.zeros((count,) + base.shape, dtype=bool)
    for b in range(count):
        pick = np.random.default_rng([seed, b]).choice(nodes, size=k, replace=False)
        sel = np.zeros(base.shape[1:], dtype=bool).reshape(-1)
        sel[pick] = True
        out[b] = base & sel.reshape(base.shape[1:])
    return out
