"""``solve``: one entry point for every method (the app and the bench call exactly this).

Methods (SPEC "Methods the app offers"):
    piddm, distill   latent solve of the student (``latent``); "distill" is the λ_train = 0 student
    piddm-ref        latent solve + a refinement phase with λ raised (``latent``)
    piddm-exact      student coefficient + differentiable reference solve (``exact``)
    diffusionpde     teacher Heun sampling with observation + PDE guidance (``guidance``)
    teacher          the same with observation guidance only
    dataspace        optimise the field itself, no model (``baselines``)
    classical        the reference solver, forward task with the whole coefficient (``baselines``)
"""

from __future__ import annotations

import time
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from engine import pdes
from engine.errors import ConfigError
from engine.grid import Grid
from engine.jobs import CancelToken, ProgressFn, no_progress
from engine.metrics import residual_map
from engine.pdes import PDE
from engine.solve import baselines, exact, guidance, latent
from engine.solve.common import MethodOutput
from engine.solve.observations import Observations

METHODS = ("piddm", "piddm-ref", "piddm-exact", "distill", "diffusionpde", "teacher", "dataspace", "classical")
STUDENT_METHODS = ("piddm", "piddm-ref", "piddm-exact", "distill")
TEACHER_METHODS = ("diffusionpde", "teacher")
MODEL_FREE = ("dataspace", "classical")
PRECISIONS = ("float32", "bf16")  # of the networks' evaluations, see network_precision

# λ defaults (dimensionless: the residual term is divided by the starting residual s, see latent.py).
# One value serves every PDE because of that normalisation; per-PDE overrides for scattered
# observations (points, rows: observation_kind "points") go in LAMBDA_BY_PDE.
DEFAULT_LAMBDA = {"piddm": 1.0, "distill": 1.0, "piddm-ref": 1.0, "piddm-exact": 1.0, "dataspace": 1.0}
# The bundled poisson, helmholtz and burgers PIDDM students carry the physics in the generator
# already; a solve's own physics term at λ = 1 then holds them near their starting samples. On the
# validation cases (VALIDATION_SEED, 4 cases, ensemble 4, 100 steps; poisson and helmholtz from 123
# points, burgers from its whole first / last row) rel_l2 f / u of piddm:
#   poisson forward    λ = 1 0.298 / 0.274   0.1 0.218 / 0.206   0.01 0.177 / 0.159   0 0.178 / 0.143
#   poisson inverse          0.807 / 0.291       0.697 / 0.247        0.618 / 0.207     0.617 / 0.202
#   helmholtz forward        0.336 / 0.354       0.237 / 0.262        0.196 / 0.225     0.224 / 0.206
#   helmholtz inverse        0.623 / 0.254       0.598 / 0.250        0.586 / 0.248     0.587 / 0.249
#   burgers forward (u)      0.182                                    0.165             0.155
#   burgers inverse (u)      1.120                                    0.505             0.542
# λ = 0.01 is as good as none and, in the forward solves, keeps the answers' residual 2–3× lower than λ = 0.
# With a whole channel observed the physics term is what ties the other channel to it, and λ = 1 stays:
# on the 8 bench cases poisson's f from the whole u, rel_l2 0.150 at λ = 1 against 0.309 at 0.01.
# darcy keeps λ = 1 everywhere: from 123 points λ = 0.01 changed rel_l2 a / u little (forward 0.229 / 0.089
# against 0.239 / 0.089, inverse 0.246 / 0.075 against 0.264 / 0.083) for 1.6–4× the answers' residual.
LAMBDA_BY_PDE: dict[tuple[str, str], float] = {("piddm", "poisson"): 0.01, ("piddm", "helmholtz"): 0.01,
                                                ("piddm", "burgers"): 0.01}


@dataclass(frozen=True)
class SolveOptions:
    method: str = "piddm"
    ensemble: int = 8  # E latent starts per case
    steps: int = 200  # optimiser / sampler steps
    lam: float | None = None  # physics weight λ; None = the method's per-PDE default (diffusionpde: ζ_pde)
    lr: float = 0.05
    candidates: int | None = None  # latent methods: start from the best of K draws; None = the model card's
    residual_norm: float | None = None  # latent methods: physics term in H^(−σ); None = default_residual_norm
    seed: int = 0
    device: str | None = None  # model-free methods only; model methods run where the model is
    cuda_graphs: bool = True  # on a GPU, replay each latent step as one CUDA graph (engine.solve.graphs)
    precision: str = "float32"  # the networks' arithmetic: float32 | bf16 (network_precision)
    compile_network: bool = False  # latent methods: the student's network through torch.compile (Student.compiled)


@dataclass
class SolveResult:
    mean: np.ndarray  # (B, C, N, N) float32 physical; observed entries equal the observations
    std: np.ndarray  # (B, C, N, N) ensemble std (0 where observed)
    residual: np.ndarray  # (B, N, N) residual of the mean, computed in float64
    members: np.ndarray | None  # (B, E, C, N, N) float32, or None
    method: str
    seconds: float
    nfe: int
    history: list[dict] = field(default_factory=list)

    @property
    def misfit(self) -> float:
        """The final observation misfit (std units, before observed entries are copied back)."""
        return float(self.history[-1].get("misfit", float("nan"))) if self.history else float("nan")


def default_lambda(method: str, pde: PDE, obs: Observations) -> float:
    """The method's physics weight λ for these observations (the comments above DEFAULT_LAMBDA)."""
    if observation_kind(obs) == "points" and (method, pde.name) in LAMBDA_BY_PDE:
        return LAMBDA_BY_PDE[(method, pde.name)]
    return DEFAULT_LAMBDA.get(method, 1.0)


def infer_task(pde: PDE, obs: Observations, grid: Grid) -> str:
    """forward if only coefficient entries are observed, inverse if only solution entries, else reconstruct."""
    if not (obs.mask & ~pde.coefficient_mask(grid).numpy()).any():
        return "forward"
    if not (obs.mask & ~pde.solution_mask(grid).numpy()).any():
        return "inverse"
    return "reconstruct"


def _part(model: Any, name: str, method: str) -> Any:
    part = getattr(model, name, None) if model is not None else None
    if part is None and model is not None and hasattr(model, "generate" if name == "student" else "denoiser"):
        part = model  # a bare student / teacher
    if part is None:
        raise ConfigError(f"method {method} needs a model with a {name}")
    return part


def _check_model(pde: PDE, part: Any, grid: Grid) -> None:
    mpde = getattr(part, "pde", None)
    if mpde is not None and (mpde.name != pde.name or pdes.params_of(mpde) != pdes.params_of(pde)):
        raise ConfigError(f"the model is for {mpde.name} {pdes.params_of(mpde)}, the observations for "
                          f"{pde.name} {pdes.params_of(pde)}")
    if part.grid.n != grid.n:
        raise ConfigError(f"the model is for a {part.grid.n}x{part.grid.n} grid, the observations are {grid.n}x{grid.n}")


def whole_channels(obs: Observations) -> np.ndarray:
    """(C,) bool: the channels observed whole in every case."""
    m = obs.mask
    return m.reshape(m.shape[0], m.shape[1], -1).all(-1).all(0)


def observation_kind(obs: Observations) -> str:
    """"full" when some channel is observed whole in every case, else "points" (scattered entries)."""
    return "full" if bool(whole_channels(obs).any()) else "points"


def default_candidates(model: Any, obs: Observations) -> int:
    """K of start screening (``latent.screened_latents``): the card's ["candidates"][kind], else 1.

    Whether screening pays depends on the student: for the bundled darcy 32² student the best of 8
    draws per member lowered the error of whole-channel solves at every step count (validation,
    inverse from the whole u: error rate 23.7 % → 15.6 % at 100 steps), while for the young 64²
    student it did not (9.2 % against 8.5 %); from points it did not help either (32², forward:
    rel_l2(u) 14.4 % → 17.8 %). So the choice is measured per model
    (tests/bench/bench_solve_steps.py) and stored in its card.
    """
    card = getattr(model, "card", None) or {}
    return int((card.get("candidates") or {}).get(observation_kind(obs), 1))


def default_residual_norm(pde: PDE, obs: Observations) -> float:
    """σ of the latent solve's physics term (``latent`` module docstring): half the residual's order in
    the channel solved for when the other channels are observed whole in every case, else 0.

    darcy forward from the whole a: σ = 1 (u enters with order 2); inverse from the whole u: σ = ½
    (a enters with order 1); poisson/helmholtz inverse: 0 (f enters with order 0). Scattered points
    keep the plain residual: on darcy 32² validation cases (31 points, 100 steps) σ = ½ was no better
    inverse and worse forward (rel_l2(u) 16.5 % vs 14.4 %), σ = 1 worse in both.
    """
    whole = whole_channels(obs)
    unknown = np.flatnonzero(~whole)
    return pde.residual_orders[unknown[0]] / 2 if whole.any() and len(unknown) == 1 else 0.0


# piddm-exact's exact phase by observation kind: its Adam rate / lr, and whether it continues the
# soft phase's Adam moments (see exact_phase_settings)
EXACT_PHASE = {"full": {"lr_scale": 0.1, "continue_moments": True},
               "points": {"lr_scale": 1.0, "continue_moments": False}}


def exact_phase_settings(obs: Observations, lr: float) -> dict[str, Any]:
    """piddm-exact's exact phase (``exact`` module docstring) for these observations: {"exact_lr",
    "continue_moments"} from EXACT_PHASE[observation_kind(obs)].

    The exact phase starts from the soft phase's latents. A fresh Adam's first steps move every
    latent entry by about the rate whatever its gradient, and with a whole channel observed the soft
    phase (H^(−σ) residual) already ends near the answer, so a fresh full-rate start undoes part of
    it. Darcy validation cases (8, ensemble 4, error rate of the coefficient from the whole u; fresh
    moments at the full rate / fresh at a tenth / continued at a tenth): 32², 200 steps 7.3 / 5.1 /
    3.9 %; 32², 100 steps 8.3 / 6.0 / 5.8 %; 64², 200 steps 7.1 / 5.7 / 4.9 %; checked afterwards on
    the bundled 64² source problems (rel_l2 of f from the whole u, 200 steps, fresh full rate against
    continued tenth): poisson 58 % → 34 %, helmholtz 63 % → 52 %. From scattered
    points neither change won everywhere (32², 31 points, forward rel_l2(u) at 100 steps: fresh full
    rate 17.3 %, fresh tenth 20.4 %, continued full rate 19.9 %; 64², 123 points, 200 steps: a tenth
    7.0 % against 6.8 % forward, 7.6 % against 7.3 % inverse error rate), so points keep a fresh
    Adam at the full rate. Every row: ``resources/bench/exact-phase-validation-cpu.json``.
    """
    phase = EXACT_PHASE[observation_kind(obs)]
    return {"exact_lr": lr * phase["lr_scale"], "continue_moments": phase["continue_moments"]}


def network_precision(device: torch.device, precision: str) -> AbstractContextManager:
    """The autocast context the model methods run in: bf16 networks for "bf16", else none.

    Autocast lowers only matrix-product ops (convolutions, linear layers, attention) on float32
    tensors: the denoiser casts its output back to float32, and the residuals (elementwise
    stencils), the sine transforms and the optimiser stay float32; the reference solvers run in
    float64, which autocast never touches. The weight-cast cache is off because the latent steps
    are captured as CUDA graphs (torch's CUDA-graph notes).

    float32 is the default because bf16 was slower where it was measured, though as accurate: on
    one H200 an 8-member darcy 64² solve took 0.65 s for 100 steps against 0.55 s (presumably because
    the step is a few hundred small kernels and autocast adds casts to them), and 2000-step
    diffusionpde 26.4 s per case against 16.1 s in float32 (an earlier run); on 8 held-out darcy 64² cases piddm's errors
    agreed to 0.1 % (inverse from 123 points: error rate 12.43 % against 12.41 %; forward from the
    whole a: rel_l2(u) 10.48 % both; ``resources/bench/solve-precision-darcy-64-h200.json``).
    """
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16", cache_enabled=False)


def _guidance_weights(model: Any, task: str, grid: Grid, kind: str = "points") -> dict[str, float]:
    """The card's ζ for this task and observation kind ("forward/full"), else for the task, else defaults.

    A whole channel pulls through 4,096 entries instead of ~123, so its best ζ differs (darcy 64²:
    ζ_obs tuned on 123 points gave rel_l2(u) 0.50 from the whole coefficient).
    """
    card = getattr(model, "card", None) or {}
    tuned = card.get("guidance") or {}
    stored = tuned.get(f"{task}/{kind}") or tuned.get(task)
    return dict(stored) if stored else guidance.default_guidance(grid)


def _run(model: Any, pde: PDE, obs: Observations, opts: SolveOptions, grid: Grid,
         on_progress: ProgressFn, cancel: CancelToken | None) -> MethodOutput:
    m, lam = opts.method, opts.lam if opts.lam is not None else default_lambda(opts.method, pde, obs)
    candidates = opts.candidates if opts.candidates is not None else default_candidates(model, obs)
    norm = opts.residual_norm if opts.residual_norm is not None else default_residual_norm(pde, obs)
    common = dict(ensemble=opts.ensemble, steps=opts.steps, seed=opts.seed, on_progress=on_progress, cancel=cancel)
    if m == "classical":
        return baselines.classical(pde, obs, grid)
    if m == "dataspace":
        return baselines.dataspace(pde, obs, grid, steps=opts.steps, lam=lam, device=opts.device or "cpu",
                                   on_progress=on_progress, cancel=cancel)
    if m in STUDENT_METHODS:
        student = _part(model, "student", m)
        _check_model(pde, student, grid)
        if opts.compile_network:
            student = student.compiled()
        with network_precision(student.device, opts.precision):
            if m == "piddm-exact":
                return exact.exact_solve(student, pde, obs, lam=lam, lr=opts.lr, candidates=candidates,
                                         **exact_phase_settings(obs, opts.lr),
                                         residual_norm=norm, cuda_graphs=opts.cuda_graphs, **common)
            return latent.latent_solve(student, pde, obs, lam=lam, lr=opts.lr, candidates=candidates,
                                       residual_norm=norm, refine=m == "piddm-ref", cuda_graphs=opts.cuda_graphs,
                                       **common)
    teacher = _part(model, "teacher", m)
    _check_model(pde, teacher, grid)
    w = _guidance_weights(model, infer_task(pde, obs, grid), grid, observation_kind(obs))
    w = guidance.weights_for_steps(w, opts.steps)
    zeta_pde = 0.0 if m == "teacher" else (opts.lam if opts.lam is not None else w["zeta_pde"])
    with network_precision(teacher.device, opts.precision):
        return guidance.guided_sample(teacher, pde, obs, zeta_obs=w["zeta_obs"], zeta_pde=zeta_pde, **common)


def solve(model: Any, pde: PDE, obs: Observations, opts: SolveOptions, *, on_progress: ProgressFn = no_progress,
          cancel: CancelToken | None = None) -> SolveResult:
    """Solve B cases from their observations with ``opts.method``.

    model : a loaded model (``.student``, ``.teacher``, ``.card``), a bare student/teacher, or None
        for the model-free methods. obs : validated here against ``pde`` and its grid.
    Observed entries of the answer equal the observations exactly, except the solution entries of
    piddm-exact / classical whose solution is S(coefficient) (overwriting them would break R = 0).
    """
    if opts.method not in METHODS:
        raise ConfigError(f"unknown method {opts.method!r}; known: {', '.join(METHODS)}")
    if opts.ensemble < 1 or opts.steps < 1 or (opts.candidates is not None and opts.candidates < 1):
        raise ConfigError(f"ensemble, steps and candidates must be ≥ 1, got {opts.ensemble}, {opts.steps} "
                          f"and {opts.candidates}")
    if opts.precision not in PRECISIONS:
        raise ConfigError(f"unknown precision {opts.precision!r}; known: {', '.join(PRECISIONS)}")
    if opts.residual_norm is not None and not 0 <= opts.residual_norm <= 2:
        raise ConfigError(f"residual norm σ (H^-σ) must be in [0, 2], got {opts.residual_norm:g}")
    grid = Grid(int(obs.values.shape[-1]))
    obs.validate(pde, grid)
    t0 = time.perf_counter()
    with torch.no_grad():  # methods enable gradients where they need them
        out = _run(model, pde, obs, opts, grid, on_progress, cancel)
    return _assemble(pde, obs, grid, out, opts.method, time.perf_counter() - t0)


def _assemble(pde: PDE, obs: Observations, grid: Grid, out: MethodOutput, method: str, seconds: float) -> SolveResult:
    keep = obs.mask
    if out.exact_solution:  # only the coefficient entries may be copied back
        keep = obs.mask & pde.coefficient_mask(grid).numpy()[None]
    values = obs.clean_values
    members = np.where(keep[:, None], values[:, None], out.members)
    mean64 = out.mean if out.mean is not None else members.mean(1)
    mean64 = np.where(keep, values, mean64)
    std = members.std(1)
    std[obs.mask] = 0.0
    mean = mean64.astype(np.float32)
    mean[keep] = np.asarray(obs.values)[keep].astype(np.float32)
    return SolveResult(mean=mean, std=std.astype(np.float32), residual=residual_map(pde, mean64),
                       members=members.astype(np.float32), method=method, seconds=seconds, nfe=out.nfe,
                       history=out.history)
