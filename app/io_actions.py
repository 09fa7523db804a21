"""Export the current result as a fields file; import fields files and .npy arrays into the state."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from app.state import AppState, SolveOutcome
from engine.errors import DatasetError


def export_result(path: str | Path, state: AppState, r: SolveOutcome) -> Path:
    """Write ``r`` as a one-sample fields file with mask, std and residual (engine.io.hdf5), and, as
    ``piddm solve`` does, what the solve used in a ``solve`` attribute (JSON)."""
    import json

    from engine import pdes
    from engine.io.hdf5 import FieldsFile, write_fields

    pde = state.pde
    mask = r.mask if r.mask is not None else state.mask  # the solve's observations, not later edits
    solve = {"method": r.method, "seconds": r.seconds, "nfe": r.nfe, **r.settings}
    ff = FieldsFile(fields=r.mean[None].astype(np.float32), pde=pde.name, channels=pde.fields,
                    pde_params=pdes.params_of(pde), method=r.method, seed=state.seed,
                    mask=None if mask is None else mask[None],
                    std=None if r.std is None else r.std[None], residual=r.residual[None],
                    extra={"task": r.task or state.task, "solve": json.dumps(solve, default=str)})
    return write_fields(path, ff)


def export_observations(path: str | Path, state: AppState) -> Path:
    """Write the canvases (values + mask) as an observation file for `piddm solve`."""
    from engine import pdes
    from engine.io.hdf5 import FieldsFile, write_fields

    pde = state.pde
    ff = FieldsFile(fields=state.values[None].astype(np.float32), pde=pde.name, channels=pde.fields,
                    pde_params=pdes.params_of(pde), method="observations", seed=state.seed,
                    mask=state.mask[None])
    return write_fields(path, ff)


def import_fields(path: str | Path, state: AppState, *, sample: int = 0, mask_only: bool = False) -> str:
    """Load sample ``sample`` of a fields file into the canvases (only that sample is read). Returns
    a status line. The canvases take the file's PDE and grid; whether the open model still fits them is
    the window's to settle (MainWindow.import_fields opens the listed model of the file's PDE and grid).
    The state changes only once the file has been read.
    """
    from engine.io.hdf5 import count_samples, read_fields

    total = count_samples(path)
    ff = read_fields(path, observations=True, sample=sample)
    if mask_only:
        if ff.mask is None:
            raise DatasetError(f"{path}: no 'mask' dataset to import")
        if ff.pde != state.pde_name or ff.grid != state.grid_n:
            raise DatasetError(f"{path}: mask is {ff.pde} {ff.grid}², canvases are {state.pde_name} {state.grid_n}²")
        state.mask[...] = ff.mask[0]
        return f"mask of sample {sample} loaded ({int(ff.mask[0].sum())} observed values)"
    from app.jobs import task_mask

    state.pde_name, state.pde_params, state.grid_n = ff.pde, dict(ff.pde_params), ff.grid
    state.values = ff.fields[0].astype(np.float64)
    if ff.mask is not None:  # observations: their own mask, and no truth to score against
        state.mask, state.truth = ff.mask[0].copy(), None
        observed = "its mask"
    else:  # whole fields (a dataset): the current task's observations of them, scored against them
        state.mask = task_mask(state.pde, ff.grid, state.task, np.random.default_rng(state.seed))
        state.truth = state.values.copy()
        observed = f"the {state.task} task's observations, scored against the file's fields"
    state.results.clear()
    samples = "1 sample" if total == 1 else f"{total} samples"
    return f"sample {sample} of {Path(path).name} loaded ({ff.pde} {ff.grid}², {samples}; {observed})"
