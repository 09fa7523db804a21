"""piddm solve: the command-line round trip and its refusals of bad observation files."""

from __future__ import annotations

import subprocess
import sys

import h5py
import numpy as np
import pytest
from solve_standins import make_case

from engine.cli.main import main
from engine.io.hdf5 import FieldsFile, write_fields
from engine.solve import Observations


def _obs_file(path, name="poisson", task="forward", spec="full", mask=True):
    pde, grid, truth = make_case(name)
    obs = Observations.from_task(pde, truth.numpy(), task, spec)
    write_fields(path, FieldsFile(fields=obs.values, pde=name, channels=pde.fields,
                                  mask=obs.mask if mask else None))
    return obs


def test_cli_round_trip_dataspace(tmp_path):
    obs = _obs_file(tmp_path / "obs.h5")
    out = tmp_path / "sol.h5"
    proc = subprocess.run([sys.executable, "-m", "engine", "solve", "--obs", str(tmp_path / "obs.h5"),
                           "--method", "dataspace", "--steps", "5", "-o", str(out), "--json"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert '"residual_mse"' in proc.stdout
    with h5py.File(out, "r") as h:
        assert h.attrs["method"] == "dataspace" and h.attrs["pde"] == "poisson"
        assert h["fields"].shape == h["std"].shape == h["mask"].shape == obs.values.shape
        assert h["residual"].shape == (2, 16, 16)
        m = h["mask"][()].astype(bool)
        np.testing.assert_array_equal(h["fields"][()][m], obs.values[m].astype(np.float32))


def test_cli_classical_reads_nan_as_unobserved_and_reports_strict_json(tmp_path, capsys):
    import json

    def strict(text):  # JSON as every parser reads it: NaN and Infinity are not JSON
        return json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} in JSON output"))

    obs = _obs_file(tmp_path / "obs.h5")
    with h5py.File(tmp_path / "obs.h5", "a") as h:  # u unknown: left as NaN, as another tool may write it
        h["fields"][:, 1] = np.nan
    out = tmp_path / "sol.h5"
    assert main(["solve", "--obs", str(tmp_path / "obs.h5"), "--method", "classical", "-o", str(out), "--json"]) == 0
    printed = strict(capsys.readouterr().out)
    assert printed["misfit"] is None and printed["residual_mse"] < 1e-10  # float32 storage of an exact solve
    with h5py.File(out, "r") as h:
        assert strict(h.attrs["solve"])["misfit"] is None
        np.testing.assert_array_equal(h["fields"][:, 0], obs.values[:, 0].astype(np.float32))
        assert np.isfinite(h["fields"][()]).all()
    assert main(["solve", "--obs", str(tmp_path / "obs.h5"), "--method", "classical", "-o", str(out)]) == 0
    assert "misfit" not in capsys.readouterr().out  # the text line leaves out what is not there


@pytest.mark.parametrize("problem, message", [
    ("no mask", "no 'mask' dataset"),
    ("all observed", "observes everything"),
    ("nothing observed", "observes nothing"),
    ("not a file", "no such file"),
    ("needs model", "needs --model"),
])
def test_bad_observation_files_are_refused_in_one_line(tmp_path, capsys, problem, message):
    path = tmp_path / "obs.h5"
    method = "piddm" if problem == "needs model" else "dataspace"
    if problem in ("no mask", "needs model"):
        _obs_file(path, mask=problem != "no mask")
    elif problem != "not a file":
        pde, grid, truth = make_case("poisson")
        mask = np.full(truth.shape, problem == "all observed")
        write_fields(path, FieldsFile(fields=truth.numpy(), pde="poisson", channels=pde.fields, mask=mask))
    rc = main(["solve", "--obs", str(path), "--method", method, "-o", str(tmp_path / "s.h5")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and message in err and "\n" not in err


@pytest.mark.parametrize("expect, message", [("pde", "model is for poisson"), ("grid", "model is for 32x32")])
def test_observation_file_must_match_the_model(tmp_path, expect, message):
    from engine.errors import DatasetError
    from engine.io.hdf5 import read_fields

    _obs_file(tmp_path / "obs.h5", name="darcy")
    kw = {"expect_pde": "poisson"} if expect == "pde" else {"expect_grid": 32}
    with pytest.raises(DatasetError, match=message.split(" is for ")[0]):
        read_fields(tmp_path / "obs.h5", require_mask=True, **kw)  # what `solve --model` does


def test_a_solve_logged_to_a_file_says_where_it_is(tmp_path, capsys, monkeypatch):
    from engine.cli import common

    monkeypatch.setattr(common, "STEP_LOG_SECONDS", 0.0)  # every report is "a minute later" here
    _obs_file(tmp_path / "obs.h5")
    assert main(["solve", "--obs", str(tmp_path / "obs.h5"), "--method", "dataspace", "--steps", "5",
                 "-o", str(tmp_path / "sol.h5")]) == 0
    lines = capsys.readouterr().err.strip().splitlines()  # stderr is no terminal under pytest
    assert lines and all(line.startswith("solve dataspace: solve: step ") for line in lines), lines
    assert lines[-1].startswith("solve dataspace: solve: step 5/5, misfit")
