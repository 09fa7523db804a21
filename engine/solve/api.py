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
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch

from engine import pdes
from engine.config import check_number
from engine.dist import resolve_device
from engine.errors import ConfigError
from engine.grid import Grid
from engine.jobs import CancelToken, ProgressFn, no_progress
from engine.metrics import residual_map
from engine.pdes import PDE
from engine.solve import baselines, exact, guidance, latent
from engine.solve.common import MethodOutput, device_of
from engine.solve.observations import Observations

METHODS = ("piddm", "piddm-ref", "piddm-exact", "distill", "diffusionpde", "teacher", "dataspace", "classical")
STUDENT_METHODS = ("piddm", "piddm-ref", "piddm-exact", "distill")
TEACHER_METHODS = ("diffusionpde", "teacher")
MODEL_FREE = ("dataspace", "classical")
PRECISIONS = ("float32", "bf16")  # of the networks' evaluations, see network_precision
# Members per batch on a CPU (case_chunks). A latent step's cost per member on the 2-core CPU, 64²
# student (tests/bench/bench_member_batch.py): 26 ms in batches of 8 or 16, 40 at 32, 84 at 128 —
# past ~16 the activations outgrow the caches. On a GPU larger batches only get cheaper per member.
CPU_MEMBERS_PER_BATCH = 16

# λ defaults (dimensionless: the residual term is divided by the starting residual s, see latent.py),
# used where the student's card holds no tuned value for the task and observation kind (default_lambda).
DEFAULT_LAMBDA = {"piddm": 1.0, "distill": 1.0, "piddm-ref": 1.0, "piddm-exact": 1.0}
DEFAULT_LR = 0.05  # Adam's rate on the latent ε per step, where the card holds no tuned value (default_lr)
# The plain latent solve, whose λ the cards' tuned settings give (engine.solve.tuning); the rate they give
# serves every student method, since it is a property of the student's latent map.
TUNED_LAMBDA_METHODS = ("piddm", "distill")

@dataclass(frozen=True)
class SolveOptions:
    method: str = "piddm"
    ensemble: int = 8  # E latent starts per case
    steps: int = 200  # optimiser / sampler steps
    lam: float | None = None  # physics weight λ; None = the method's per-PDE default (diffusionpde: ζ_pde)
    lr: float | None = None  # latent methods; None = the card's tuned rate, else DEFAULT_LR
    candidates: int | None = None  # latent methods: start from the best of K draws; None = the model card's
    residual_norm: float | None = None  # latent methods and dataspace: physics term in H^(−2σ); None = default_residual_norm
    seed: int = 0
    device: str | None = None  # model-free methods only; model methods run where the model is
    cuda_graphs: bool = True  # on a GPU, replay each latent step as one CUDA graph (engine.solve.graphs)
    precision: str = "float32"  # the networks' arithmetic: float32 | bf16 (network_precision)
    compile_network: bool = False  # latent methods: the student's network through torch.compile (Student.compiled)


# The SolveOptions fields each method reads (beyond seed and device; ``settings_record`` writes down
# their values): `piddm solve` refuses another one given, the app greys out the others' boxes.
_LATENT_READS = ("ensemble", "steps", "lam", "lr", "candidates", "residual_norm", "precision", "compile_network")
OPTIONS_READ: dict[str, tuple[str, ...]] = {
    # dataspace: one deterministic answer, and no λ: its objective is the residual alone (``baselines``)
    "classical": (), "dataspace": ("steps", "residual_norm"),
    "teacher": ("ensemble", "steps", "precision"), "diffusionpde": ("ensemble", "steps", "lam", "precision"),
    **dict.fromkeys(STUDENT_METHODS, _LATENT_READS)}


@dataclass
class SolveResult:
    mean: np.ndarray  # (B, C, N, N) float32 physical; observed entries equal the observations
    std: np.ndarray  # (B, C, N, N) ensemble std (0 where observed)
    residual: np.ndarray  # (B, N, N) residual of the float32 mean, computed in float64
    members: np.ndarray | None  # (B, E, C, N, N) float32, or None
    method: str
    seconds: float
    nfe: int
    history: list[dict] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)  # what the solve used (``settings_record``)

    @property
    def misfit(self) -> float | None:
        """The final observation misfit (std units, before observed entries are copied back); None
        for classical, which fits no observations."""
        last = self.history[-1] if self.history else {}
        return float(last["misfit"]) if "misfit" in last else None


def tuned_settings(model: Any, pde: PDE, obs: Observations) -> dict[str, float]:
    """The student card's latent-solve settings for this task and observation kind, card["solve"]["<task>/<kind>"]
    ({"lr", "lam"}, chosen on validation cases by ``engine.solve.tuning``), or {}.

    Why per student: on the bundled poisson 64² PIDDM student the inverse solve from points wants a
    rate 2.5× smaller than darcy's, and its physics term λ = 0.01 (a student that already carries the
    physics is held near its starting samples by λ = 1); see ``engine.solve.tuning``.
    """
    card = getattr(model, "card", None) or {}
    return dict((card.get("solve") or {}).get(settings_key(pde, obs)) or {})


def settings_key(pde: PDE, obs: Observations) -> str:
    """"<task>/<kind>", the key of card["solve"]: e.g. "inverse/points", "forward/full"."""
    return f"{infer_task(pde, obs, Grid(int(obs.values.shape[-1])))}/{observation_kind(obs)}"


def default_lambda(method: str, pde: PDE, obs: Observations, model: Any = None) -> float:
    """The method's physics weight λ: the card's tuned one for the plain latent solve, else DEFAULT_LAMBDA."""
    if method in TUNED_LAMBDA_METHODS and (lam := tuned_settings(model, pde, obs).get("lam")) is not None:
        return float(lam)
    return DEFAULT_LAMBDA.get(method, 1.0)


def default_lr(method: str, pde: PDE, obs: Observations, model: Any = None) -> float:
    """Adam's rate on ε for the student methods: the card's tuned one, else DEFAULT_LR."""
    lr = tuned_settings(model, pde, obs).get("lr") if method in STUDENT_METHODS else None
    return float(lr) if lr is not None else DEFAULT_LR


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
        recorded = getattr(getattr(model, "student", None), "teacher_path", None) if name == "teacher" else None
        if recorded is not None:  # a student whose teacher folder did not move with it
            raise ConfigError(f"method {method} needs this student's teacher, recorded as {recorded}, which is "
                              "not there (a student's run folder and its teacher's move together)")
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
    phase (H^(−2σ) residual) already ends near the answer, so a fresh full-rate start undoes part of
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


def resolved_options(model: Any, pde: PDE, obs: Observations, opts: SolveOptions) -> SolveOptions:
    """``opts`` with the defaults it left open (None) filled in as the solve uses them: λ, the rate,
    start screening K and the residual norm σ. Only the student methods get a default λ: the teacher
    methods' stays None (their ζ_pde comes from the card's guidance weights, ``_run``), and the
    model-free methods read none."""
    m = opts.method
    lam = default_lambda(m, pde, obs, model) if opts.lam is None and m in STUDENT_METHODS else opts.lam
    return replace(opts, lam=lam,
                   lr=opts.lr if opts.lr is not None else default_lr(m, pde, obs, model),
                   candidates=opts.candidates if opts.candidates is not None else default_candidates(model, obs),
                   residual_norm=(opts.residual_norm if opts.residual_norm is not None
                                  else default_residual_norm(pde, obs)))


def settings_record(opts: SolveOptions, obs: Observations, model: Any = None, pde: PDE | None = None,
                    grid: Grid | None = None) -> dict[str, Any]:
    """What a resolved solve used, for the output file's ``solve`` attribute and the bench JSON: only
    the settings its method reads (classical reads none; the teacher methods' ζ weights as ``_run``
    takes them)."""
    m = opts.method
    if m == "classical":
        return {}
    if m in TEACHER_METHODS:
        return {"steps": opts.steps, **guidance_zetas(model, pde, obs, opts, grid), "precision": opts.precision}
    if m == "dataspace":
        return {"steps": opts.steps, "residual_norm": opts.residual_norm}
    if m == "piddm-exact" and pde is not None and grid is not None and exact.whole_coefficient_known(pde, obs, grid).all():
        return {"reference_solve": "the whole coefficient is observed: the answer is S(c), no latent steps"}
    rec: dict[str, Any] = {"steps": opts.steps, "lambda": opts.lam}
    if m in STUDENT_METHODS:
        rec |= {"lr": opts.lr, "candidates": opts.candidates, "residual_norm": opts.residual_norm,
                "precision": opts.precision, "compile": opts.compile_network}
    if m == "piddm-exact":
        rec |= exact_phase_settings(obs, opts.lr)
    return rec


def guidance_zetas(model: Any, pde: PDE, obs: Observations, opts: SolveOptions, grid: Grid) -> dict[str, float]:
    """The teacher methods' guidance weights for these observations and steps: the card's tuned ζ (or
    the defaults) scaled to the step count; ``teacher`` has no PDE term, ``--lambda`` sets diffusionpde's."""
    w = _guidance_weights(model, infer_task(pde, obs, grid), grid, observation_kind(obs))
    w = guidance.weights_for_steps(w, opts.steps)
    zeta_pde = 0.0 if opts.method == "teacher" else (opts.lam if opts.lam is not None else w["zeta_pde"])
    return {"zeta_obs": w["zeta_obs"], "zeta_pde": zeta_pde}


def case_chunks(cases: int, ensemble: int, device: torch.device) -> list[slice]:
    """The cases solved together: all at once on a GPU; on a CPU batches of at most
    ``CPU_MEMBERS_PER_BATCH`` members (one case at least)."""
    per = cases if device.type == "cuda" else max(1, CPU_MEMBERS_PER_BATCH // ensemble)
    return [slice(i, min(i + per, cases)) for i in range(0, cases, per)]


def joined_outputs(outs: list[MethodOutput], sizes: list[int]) -> MethodOutput:
    """One output of the batches' outputs, cases in order. Each step's metrics are means over a batch's
    members, so the joined ones are their means weighted by the batch's cases; a batch answered without
    optimising (piddm-exact's shortcut, no history beyond step 0) does not enter them."""
    steps = max(len(o.history) for o in outs)
    timed = [(n, o) for n, o in zip(sizes, outs) if len(o.history) == steps]
    w = np.asarray([n for n, _ in timed], dtype=np.float64) / sum(n for n, _ in timed)
    history = [{k: v if k == "step" else float(sum(wi * o.history[j][k] for wi, (_, o) in zip(w, timed)))
                for k, v in row.items()} for j, row in enumerate(timed[0][1].history)]

    def joined(parts: list, cat: Any) -> Any:  # a field every batch has, else None
        return None if any(p is None for p in parts) else cat(parts)

    moments = joined([o.adam_moments for o in outs], lambda ms: {
        "step": ms[0]["step"], **{k: torch.cat([m[k] for m in ms]) for k in ("exp_avg", "exp_avg_sq")}})
    return MethodOutput(members=np.concatenate([o.members for o in outs]), nfe=max(o.nfe for o in outs),
                        history=history, mean=joined([o.mean for o in outs], np.concatenate),
                        exact_solution=outs[0].exact_solution,
                        latents=joined([o.latents for o in outs], torch.cat), adam_moments=moments)


def solve_batches(model: Any, pde: PDE, obs: Observations, opts: SolveOptions, grid: Grid) -> list[tuple[slice, bool]]:
    """The batches a solve runs, cases in order, as (cases, optimised): the model methods' cases in
    ``case_chunks``, the model-free methods' in one. piddm-exact answers the cases that know their
    whole coefficient with S(c) and no optimisation: each run of such neighbours is one batch, the
    other cases are chunked as piddm's."""
    m = opts.method
    if m in MODEL_FREE:
        return [(slice(0, len(obs)), False)]
    device = device_of(_part(model, "teacher" if m in TEACHER_METHODS else "student", m))
    known = exact.whole_coefficient_known(pde, obs, grid) if m == "piddm-exact" else np.zeros(len(obs), bool)
    edges = [0, *np.flatnonzero(known[1:] != known[:-1]) + 1, len(obs)]
    batches = []
    for start, stop in zip(edges[:-1], edges[1:]):
        if known[start]:
            batches.append((slice(start, stop), False))
        else:
            batches += [(slice(start + c.start, start + c.stop), True)
                        for c in case_chunks(stop - start, opts.ensemble, device)]
    return batches


def _run_in_chunks(model: Any, pde: PDE, obs: Observations, opts: SolveOptions, grid: Grid,
                   on_progress: ProgressFn, cancel: CancelToken | None) -> MethodOutput:
    """``_run`` on the batches of ``solve_batches``, joined as one solve of them all: each case is optimised
    or sampled on its own and its members' seeds follow its place among all the cases, so the answers
    are the one-batch solve's (up to the float rounding of another batch size). Progress counts the
    optimised batches' steps one after the other; the preview is the first optimised case's (none after
    its batch)."""
    batches = solve_batches(model, pde, obs, opts, grid)
    if len(batches) == 1:
        return _run(model, pde, obs, opts, grid, on_progress, cancel)
    optimised = sum(opt for _, opt in batches)
    outs, done = [], 0
    for which, opt in batches:
        def progress(p: Any, i: int = done) -> None:
            on_progress(replace(p, step=i * p.total + p.step, total=optimised * p.total,
                                preview=p.preview if i == 0 else None))
        outs.append(_run(model, pde, obs.cases(which), opts, grid, progress, cancel, first_case=which.start))
        done += opt
    return joined_outputs(outs, [w.stop - w.start for w, _ in batches])


def _run(model: Any, pde: PDE, obs: Observations, opts: SolveOptions, grid: Grid,
         on_progress: ProgressFn, cancel: CancelToken | None, first_case: int = 0) -> MethodOutput:
    """One method on resolved options (``resolved_options``); ``first_case``: the cases' place among
    those of the whole solve (``_run_in_chunks``)."""
    m, lam, candidates, norm = opts.method, opts.lam, opts.candidates, opts.residual_norm
    common = dict(ensemble=opts.ensemble, steps=opts.steps, seed=opts.seed, on_progress=on_progress, cancel=cancel,
                  first_case=first_case)
    if m == "classical":
        return baselines.classical(pde, obs, grid)
    if m == "dataspace":
        return baselines.dataspace(pde, obs, grid, steps=opts.steps, residual_norm=norm, device=opts.device or "cpu",
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
    with network_precision(teacher.device, opts.precision):
        return guidance.guided_sample(teacher, pde, obs, **guidance_zetas(model, pde, obs, opts, grid), **common)


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
    for name in ("ensemble", "steps", "candidates"):
        check_number(name, getattr(opts, name), 1)
    check_number("lam", opts.lam, 0)  # λ, the physics weight
    check_number("lr", opts.lr, 0, above=True)  # the latent rate
    check_number("residual_norm", opts.residual_norm, 0, high=2)  # σ of H^-2σ
    if opts.precision not in PRECISIONS:
        raise ConfigError(f"unknown precision {opts.precision!r}; known: {', '.join(PRECISIONS)}")
    if opts.device is not None:
        opts = replace(opts, device=str(resolve_device(opts.device)))  # a clear error for a missing GPU
    grid = Grid(int(obs.values.shape[-1]))
    obs.validate(pde, grid)
    t0 = time.perf_counter()
    opts = resolved_options(model, pde, obs, opts)
    with torch.no_grad():  # methods enable gradients where they need them
        out = _run_in_chunks(model, pde, obs, opts, grid, on_progress, cancel)
    res = _assemble(pde, obs, grid, out, opts.method, time.perf_counter() - t0)
    res.settings = settings_record(opts, obs, model, pde, grid)
    return res


def _assemble(pde: PDE, obs: Observations, grid: Grid, out: MethodOutput, method: str, seconds: float) -> SolveResult:
    keep = obs.mask
    if out.exact_solution:  # only the coefficient entries may be copied back
        keep = obs.mask & pde.coefficient_mask(grid).numpy()[None]
    values = obs.clean_values
    members = np.where(keep[:, None], values[:, None], out.members)
    mean64 = out.mean if out.mean is not None else members.mean(1)
    mean64 = np.where(keep, values, mean64)
    std = members.std(1)
    std[keep] = 0.0  # an exact solution's observed solution entries are fitted: their spread is real
    mean = mean64.astype(np.float32)
    mean[keep] = np.asarray(obs.values)[keep].astype(np.float32)
    # the residual of the answer as returned and stored (float32), so that it, the file's `residual`
    # and every figure from them agree with what anyone recomputes from the file's fields
    return SolveResult(mean=mean, std=std.astype(np.float32), residual=residual_map(pde, mean),
                       members=members.astype(np.float32), method=method, seconds=seconds, nfe=out.nfe,
                       history=out.history)
