"""Forward, inverse and reconstruction solves from partial observations (SPEC "Downstream tasks").

    from engine.solve import Observations, SolveOptions, solve
    obs = Observations.from_task(pde, truth, "forward", "points:100", seed=0)
    res = solve(model, pde, obs, SolveOptions(method="piddm", ensemble=8))
"""

from engine.solve.api import METHODS, SolveOptions, SolveResult, default_lambda, infer_task, solve
from engine.solve.guidance import tune_guidance
from engine.solve.observations import TASKS, Observations

__all__ = ["METHODS", "TASKS", "Observations", "SolveOptions", "SolveResult", "default_lambda", "infer_task",
           "solve", "tune_guidance"]
