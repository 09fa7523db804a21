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
    assert main(["solve", "--method", "classical", "--lambda", "5", "--precision", "bf16", "--obs", str(obs),
                 "-o", str(out)]) == 0
    with h5py.File(out) as h:
        recorded = json.loads(h.attrs["solve"])
    assert not {"lambda", "steps", "precision", "compile", "lr"} & set(recorded)  # the reference solve reads none
    out = tmp_path / "d.h5"
    assert main(["solve", "--method", "dataspace", "--steps", "3", "--obs", str(obs), "-o", str(out)]) == 0
    with h5py.File(out) as h:
        recorded = json.loads(h.attrs["solve"])
    assert recorded["steps"] == 3 and "lambda" in recorded and not {"precision", "compile", "lr"} & set(recorded)
