"""Metrics of generated or solved fields, all in physical units (SPEC "Metrics")."""

from __future__ import annotations

import numpy as np
import torch

from engine.errors import EngineError
from engine.grid import Grid
from engine.pdes import PDE


class UndefinedMetricError(EngineError, ValueError):
    """A metric that does not exist for the given fields: the relative error of an all-zero truth."""


def residual_map(pde: PDE, fields: np.ndarray | torch.Tensor, batch: int = 256) -> np.ndarray:
    """(n, N, N) float64 residual of every sample, computed in float64 from the stored values."""
    x = torch.as_tensor(np.asarray(fields), dtype=torch.float64)
    grid = Grid(x.shape[-1])
    with torch.no_grad():
        out = [pde.residual(x[i : i + batch], grid) for i in range(0, len(x), batch)]
    return torch.cat(out).numpy()


def residual_stats(pde: PDE, fields: np.ndarray) -> dict[str, float]:
    """residual_mse (mean r² over interior nodes, then over samples) and bc_mse (boundary nodes; 0 for a
    PDE without boundary-condition nodes, burgers, so that every JSON reader gets a number)."""
    r = residual_map(pde, fields)
    grid = Grid(r.shape[-1])
    interior, boundary = pde.interior_mask(grid).numpy(), pde.boundary_mask(grid).numpy()
    res = float((r[:, interior] ** 2).mean())
    bc = float((r[:, boundary] ** 2).mean()) if boundary.any() else 0.0
    return {"residual_mse": res, "bc_mse": bc}


def moment_errors(fields: np.ndarray, reference: np.ndarray, channels: tuple[str, ...]) -> dict[str, float]:
    """mmse_<ch> / smse_<ch>: MSE between pixel-wise means (stds, population: ddof 0) of two sets, per channel."""
    out: dict[str, float] = {}
    for c, name in enumerate(channels):
        a, b = fields[:, c].astype(np.float64), reference[:, c].astype(np.float64)
        out[f"mmse_{name}"] = float(((a.mean(0) - b.mean(0)) ** 2).mean())
        out[f"smse_{name}"] = float(((a.std(0) - b.std(0)) ** 2).mean())
    return out


def rel_l2(pred: np.ndarray, true: np.ndarray, what: str = "") -> float:
    """Mean over samples of ‖pred − true‖₂ / ‖true‖₂; arrays (n, ...), ``what`` names them in errors.

    Raises UndefinedMetricError when a true sample is all zero: its relative error does not exist
    (a clamped denominator made it ~1e300, which averaged into a figure that looked like a result).
    """
    p = pred.reshape(len(pred), -1).astype(np.float64)
    t = true.reshape(len(true), -1).astype(np.float64)
    if len(zero := np.flatnonzero(~t.any(axis=1))):
        more = f" (and {len(zero) - 1} more)" if len(zero) > 1 else ""
        raise UndefinedMetricError(f"rel_l2{' of ' + what if what else ''} is undefined: the true "
                                   f"{what or 'field'} of sample {zero[0]}{more} is all zero, and a relative "
                                   "error needs a nonzero truth")
    return float((np.linalg.norm(p - t, axis=1) / np.linalg.norm(t, axis=1)).mean())


def phase_error_rate(a_pred: np.ndarray, a_true: np.ndarray, threshold: float) -> float:
    """Fraction of pixels where a two-phase coefficient thresholded at ``threshold`` (``PDE.phase_threshold``:
    darcy's 7.5 for the default phases 3 and 12) differs from the truth."""
    return float(((a_pred >= threshold) != (a_true >= threshold)).mean())


def unknown_channels(mask: np.ndarray | None, n_channels: int) -> list[int]:
    """Channels that some sample does not observe whole (all channels if there is no mask)."""
    if mask is None:
        return list(range(n_channels))
    return [c for c in range(n_channels) if not mask[:, c].all()]


def truth_errors(pde: PDE, pred: np.ndarray, truth: np.ndarray, mask: np.ndarray | None) -> dict[str, float]:
    """rel_l2_<ch> of every unknown channel (``unknown_channels``; over the whole channel, observed
    entries included, as SPEC "Metrics" defines it), and error_rate of a two-phase coefficient (darcy's a). UndefinedMetricError
    (``rel_l2``) when a case's true channel is all zero."""
    out: dict[str, float] = {}
    for c in unknown_channels(mask, pred.shape[1]):
        name = pde.fields[c]
        out[f"rel_l2_{name}"] = rel_l2(pred[:, c], truth[:, c], name)
        if name == pde.two_phase_channel:
            out["error_rate"] = phase_error_rate(pred[:, c], truth[:, c], pde.phase_threshold)
    return out
