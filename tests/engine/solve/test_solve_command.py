"""`piddm solve` refuses what would make its output lie: a method label untrue to the student, a
model made for other PDE parameters than the observations'."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine import pdes
from engine.cli.main import main
from engine.grid import Grid
from engine.io.hdf5 import FieldsFile, write_fields

MODELS = Path(__file__).resolve().parents[3] / "resources" / "models"


def _forward_obs(path: Path, name: str, n: int, **params) -> Path:
    pde = pdes.get(name, **params)
    truth = pde.solve(pde.sample_inputs([3], Grid(n)), Grid(n)).numpy()
    mask = np.zeros(truth.shape, bool)
    mask[:, 0] = True
    write_fields(path, FieldsFile(fields=truth, pde=name, channels=pde.fields, mask=mask,
                                  pde_params=pdes.params_of(pde)))
    return path


def _error(capsys, argv) -> str:
    assert main([str(a) for a in argv]) == 2
    return capsys.readouterr().err


@pytest.mark.skipif(not (MODELS / "darcy-32").is_dir(), reason="no bundled darcy-32 set")
def test_piddm_and_distill_name_the_student_they_ran(capsys, tmp_path):
    obs = _forward_obs(tmp_path / "obs.h5", "darcy", 32)
    err = _error(capsys, ["solve", "--model", MODELS / "darcy-32" / "piddm", "--method", "distill", "--obs", obs,
                          "-o", tmp_path / "s.h5"])
    assert "distilled with λ = 0.1 (use --method piddm" in err
    err = _error(capsys, ["solve", "--model", MODELS / "darcy-32" / "distill", "--method", "piddm", "--obs", obs,
                          "-o", tmp_path / "s.h5"])
    assert "distilled with λ = 0: use --method distill" in err
    assert not (tmp_path / "s.h5").exists()


@pytest.mark.skipif(not (MODELS / "helmholtz").is_dir(), reason="no bundled helmholtz set")
def test_observations_of_other_pde_parameters_than_the_models_are_refused(capsys, tmp_path):
    obs = _forward_obs(tmp_path / "k2.h5", "helmholtz", 64, k=2.0)
    err = _error(capsys, ["solve", "--model", MODELS / "helmholtz" / "piddm", "--obs", obs, "--steps", "1",
                          "--ensemble", "1", "-o", tmp_path / "s.h5"])
    assert "'k': 1.0" in err and "'k': 2.0" in err and not (tmp_path / "s.h5").exists()


def test_the_solve_attribute_holds_only_what_the_method_used(tmp_path):
    import json

    import h5py

    obs = _forward_obs(tmp_path / "obs.h5", "darcy", 16)
    out = tmp_path / "c.h5"
    assert main(["solve", "--method", "classical", "--obs", str(obs), "-o", str(out)]) == 0
    with h5py.File(out) as h:
        recorded = json.loads(h.attrs["solve"])
    assert not {"lambda", "steps", "precision", "compile", "lr"} & set(recorded)  # the reference solve reads none
    out = tmp_path / "d.h5"
    assert main(["solve", "--method", "dataspace", "--steps", "3", "--obs", str(obs), "-o", str(out)]) == 0
    with h5py.File(out) as h:
        recorded = json.loads(h.attrs["solve"])
    assert (recorded["steps"], recorded["residual_norm"]) == (3, 1.0)  # forward from the whole a: u's residual in H^-2
    assert not {"lambda", "precision", "compile", "lr", "candidates"} & set(recorded)


@pytest.mark.parametrize("method, option, reads", [
    ("classical", ["--lambda", "5"], "none of the solve options"),
    ("classical", ["--precision", "bf16"], "none of the solve options"),
    ("dataspace", ["--ensemble", "4"], "--steps, --residual-norm"),
    ("dataspace", ["--compile"], "--steps, --residual-norm"),
    ("dataspace", ["--lambda", "3"], "--steps, --residual-norm"),  # the observations are a hard constraint: λ scales nothing
    ("teacher", ["--lambda", "1"], "--ensemble, --steps, --precision"),
    ("diffusionpde", ["--lr", "0.1"], "--ensemble, --steps, --lambda, --precision"),
])
def test_an_option_the_method_does_not_read_is_refused(capsys, tmp_path, method, option, reads):
    obs = _forward_obs(tmp_path / "obs.h5", "darcy", 16)
    err = _error(capsys, ["solve", "--method", method, *option, "--obs", obs, "-o", tmp_path / "s.h5"])
    assert f"method {method} does not use {option[0]} (it reads {reads})" in err  # before any model loads
    assert not (tmp_path / "s.h5").exists()


@pytest.mark.parametrize("argv, flag", [
    (["--steps", "0"], "--steps must be a whole number ≥ 1, got 0"),
    (["--ensemble", "0"], "--ensemble must be a whole number ≥ 1, got 0"),
    (["--lambda", "nan"], "--lambda must be a finite number ≥ 0, got nan"),
    (["--residual-norm", "3"], "--residual-norm must be a number in [0, 2], got 3"),
])
def test_bad_solve_numbers_are_named_by_their_flags(capsys, tmp_path, argv, flag):
    if argv[0] == "--steps":  # a model-free method (which reads none of the others)
        model, obs = [], _forward_obs(tmp_path / "obs.h5", "darcy", 16)
    elif (MODELS / "darcy-32").is_dir():
        model, obs = ["--model", MODELS / "darcy-32" / "piddm"], _forward_obs(tmp_path / "obs.h5", "darcy", 32)
    else:
        pytest.skip("no bundled darcy-32 set")
    method = "piddm" if model else "dataspace"
    err = _error(capsys, ["solve", *model, "--method", method, *argv, "--obs", obs, "-o", tmp_path / "s.h5"])
    assert f"piddm: error: {flag}" in err  # the engine's SolveOptions say ensemble, lam, residual_norm
