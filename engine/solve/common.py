"""Pieces shared by the solve methods: seeds, observation tensors, misfit, progress, prior means."""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from engine.grid import Grid
from engine.jobs import CancelToken, Progress, ProgressFn, check_cancel
from engine.pdes import PDE
from engine.seeding import member_seeds as member_seeds  # re-exported: engine.solve.latent imports it here
from engine.solve.observations import Observations


@dataclass
class MethodOutput:
    """What a method returns to ``api.solve``.

    members : (B, E, C, N, N) float64 physical fields of every ensemble member.
    mean : (B, C, N, N) float64, or None for the member mean.
    exact_solution : True when the solution channel is S(coefficient) (piddm-exact, classical):
        observed solution entries are then not overwritten, which would break the residual.
    latents : the final latents of a latent method, for a method that continues from them.
    adam_moments : the latent method's final Adam state of ε ("step", "exp_avg", "exp_avg_sq"), for a
        method that continues its optimisation (piddm-exact's exact phase).
    """

    members: np.ndarray
    nfe: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    mean: np.ndarray | None = None
    exact_solution: bool = False
    latents: torch.Tensor | None = None  # (B·E, C, N, N) final ε of latent methods (warm starts)
    adam_moments: dict[str, Any] | None = None


def device_of(model: Any) -> torch.device:
    """The device of a model part (a torch Module, or anything with ``.device`` / a module inside)."""
    for obj in (model, getattr(model, "net", None), getattr(model, "denoiser", None)):
        if isinstance(obj, torch.nn.Module):
            for p in obj.parameters():
                return p.device
        dev = getattr(obj, "device", None)
        if dev is not None:
            return torch.device(dev)
    return torch.device("cpu")


@dataclass
class ObsTensors:
    """Observations repeated over the ensemble: (B·E, C, N, N) values x′ (0 where unobserved), mask M."""

    values: torch.Tensor
    mask: torch.Tensor
    count: torch.Tensor  # (B·E,) observed entries per member

    @classmethod
    def build(cls, obs: Observations, ensemble: int, device: torch.device,
              dtype: torch.dtype = torch.float32) -> ObsTensors:
        v = torch.as_tensor(obs.clean_values, dtype=dtype).repeat_interleave(ensemble, 0).to(device)
        m = torch.as_tensor(obs.mask).repeat_interleave(ensemble, 0).to(device)
        return cls(v, m, m.flatten(1).sum(1).clamp_min(1))

    def mix(self, x: torch.Tensor) -> torch.Tensor:
        """x_mix = x′⊙M + x⊙(1−M)."""
        return torch.where(self.mask, self.values.to(x.dtype), x)

    def rows(self, start: int, stop: int) -> ObsTensors:
        """Members start…stop−1 (a chunk of a large batch)."""
        return ObsTensors(self.values[start:stop], self.mask[start:stop], self.count[start:stop])


def inverse_std(normalizer: Any, shape: tuple[int, int, int], device: torch.device) -> torch.Tensor:
    """(1, C, 1, 1) per-channel 1/std of the normaliser: the slope of its (affine) encode.

    Measured from encode(1) − encode(0), so it needs no knowledge of the normaliser's attribute names.
    """
    c = shape[0]
    if normalizer is None:
        return torch.ones(1, c, 1, 1, device=device)
    with torch.no_grad():
        ones = torch.ones((1,) + tuple(shape), device=device)
        slope = (normalizer.encode(ones) - normalizer.encode(torch.zeros_like(ones))).mean((-1, -2))
    return slope.abs().clamp_min(1e-12).reshape(1, c, 1, 1).float()


def misfit(x: torch.Tensor, obs: ObsTensors, inv_std: torch.Tensor) -> torch.Tensor:
    """(B·E,) mean over observed entries of ((x − x′)·inv_std_c)²: the misfit in normalised units.

    With the project normaliser (encode = (x − mean)/std·σ_data) inv_std = σ_data/std_c.
    """
    d = torch.where(obs.mask, (x - obs.values.to(x.dtype)) * inv_std.to(x.dtype), 0.0)
    return d.square().flatten(1).sum(1) / obs.count.to(x.dtype)


def residual_ms(pde: PDE, x: torch.Tensor, grid: Grid, norm: float = 0.0) -> torch.Tensor:
    """(B·E,) mean of R(x)² over all nodes (interior and boundary), physical units; with ``norm`` = s
    the residual is measured in H^(−2s) (``PDE.smoothed_residual``)."""
    return pde.smoothed_residual(pde.residual(x, grid), grid, norm).square().flatten(1).mean(1)


@functools.lru_cache(maxsize=16)
def prior_channel_means(pde: PDE, n: int, count: int = 8) -> tuple[float, ...]:
    """Per-channel mean of ``count`` prior samples solved by the reference solver (a neutral start)."""
    grid = Grid(n)
    x = pde.solve(pde.sample_inputs(list(range(count)), grid), grid)
    return tuple(float(v) for v in x.mean(dim=(0, 2, 3)))


class Reporter:
    """Progress every ``interval`` seconds (and at the last step) with a preview; cancel every step.

    Metrics may be 0-d tensors: they are read back from the device only when a report is sent and,
    for the history, once at the end. Reading one back every step would make the host wait for the
    device each step, and a latent step on a GPU is mostly host time launching kernels.
    """

    def __init__(self, on_progress: ProgressFn, cancel: CancelToken | None, total: int,
                 interval: float = 0.1) -> None:
        self.fn, self.cancel, self.total, self.interval = on_progress, cancel, total, interval
        self.last = -1e9
        self.rows: list[tuple[int, dict[str, float | torch.Tensor]]] = []

    def __call__(self, step: int, metrics: dict[str, float | torch.Tensor], preview: Any = None) -> None:
        """``preview``: a callable returning the (C, N, N) mean of case 0, evaluated only when sent."""
        check_cancel(self.cancel)
        self.rows.append((step, metrics))
        now = time.monotonic()
        if now - self.last >= self.interval or step >= self.total:
            self.last = now
            pv = None if preview is None else np.asarray(preview(), dtype=np.float32)
            self.fn(Progress(stage="solve", step=step, total=self.total,
                             metrics={k: float(v) for k, v in metrics.items()}, preview=pv))

    @property
    def history(self) -> list[dict[str, float]]:
        """Every step's metrics as floats, the tensors among them read back in one transfer."""
        tensors = [v.detach().double() for _, m in self.rows for v in m.values() if isinstance(v, torch.Tensor)]
        read = iter(torch.stack(tensors).tolist() if tensors else [])
        return [{"step": step, **{k: next(read) if isinstance(v, torch.Tensor) else float(v) for k, v in m.items()}}
                for step, m in self.rows]


def interior_ms(r: torch.Tensor, interior: torch.Tensor) -> torch.Tensor:
    """Mean of r² over the interior nodes of every sample, 0-d; r (B, N, N), interior (N, N) bool.

    Multiplying by the mask instead of indexing with it: boolean indexing must learn the count on
    the host, a wait for the device on every call.
    """
    return (r.detach().square() * interior).sum() / (len(r) * interior.sum())


def case0_mean(x: torch.Tensor, ensemble: int) -> Any:
    """A deferred preview: the member mean of case 0, (C, N, N)."""
    return lambda: x[:ensemble].detach().float().mean(0).cpu().numpy()
