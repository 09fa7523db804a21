"""piddm observe: an observation file (and its truth) from cases of a fields file, with the masks
`Observations.from_task` draws, NaN where unobserved; it round-trips through solve and evaluate, and
refuses bad input in one line (rc 2) before writing anything."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from engine import pdes
from engine.cli.main import main
from engine.errors import DatasetError
from engine.io.hdf5 import read_fields
from engine.solve import Observations


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """6 darcy cases at 16², stored in float64 (kept by observe)."""
    from engine.data.generate import generate_dataset

    return generate_dataset("darcy", 6, 16, 0, tmp_path_factory.mktemp("observe") / "data.h5", dtype="float64").path


@pytest.fixture(scope="module")
def helmholtz(tmp_path_factory):
    """4 helmholtz cases with k = 2 (a parameter the files must keep)."""
    from engine.data.generate import generate_dataset

    return generate_dataset("helmholtz", 4, 16, 0, tmp_path_factory.mktemp("observe") / "k2.h5", {"k": 2.0}).path


def observe(*argv):
    return main(["observe", *map(str, argv)])


def test_forward_full_round_trips_through_classical_solve_and_evaluate(data, tmp_path, capsys):
    obs, truth, sol = tmp_path / "obs.h5", tmp_path / "truth.h5", tmp_path / "sol.h5"
    assert observe(data, "--task", "forward", "--obs", "full", "--cases", "3", "-o", obs, "--truth", truth) == 0
    assert main(["solve", "--obs", str(obs), "--method", "classical", "-o", str(sol)]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(sol), "--truth", str(truth), "--json"]) == 0
    scores = json.loads(capsys.readouterr().out)
    assert scores["n"] == 3 and scores["rel_l2_u"] < 1e-6  # the data's own solver; the answer is stored in float32


@pytest.mark.parametrize("task, spec, seed", [("inverse", "points:20", 5), ("reconstruct", "fraction:0.05", 0),
                                              ("forward", "points:7", 3)])
def test_the_mask_is_from_task_and_only_observed_values_are_kept(helmholtz, tmp_path, capsys, task, spec, seed):
    obs = tmp_path / "obs.h5"
    assert observe(helmholtz, "--task", task, "--obs", spec, "--seed", seed, "-o", obs, "--json") == 0
    printed = json.loads(capsys.readouterr().out)
    src = read_fields(helmholtz)
    want = Observations.from_task(pdes.get("helmholtz", k=2.0), src.fields, task, spec, seed=seed).mask
    with h5py.File(obs) as h:
        fields, mask = h["fields"][()], h["mask"][()].astype(bool)
        assert h.attrs["pde"] == "helmholtz" and json.loads(h.attrs["pde_params"]) == {"k": 2.0}
        assert list(h.attrs["channels"]) == ["f", "u"] and h.attrs["method"] == "observations"
        assert h.attrs["task"] == task and h.attrs["obs"] == spec and h.attrs["seed"] == seed
    np.testing.assert_array_equal(mask, want)
    assert np.isnan(fields[~mask]).all()  # nothing unobserved can leak into a solve
    assert fields[mask].tobytes() == src.fields[mask].tobytes()  # observed: the source, bitwise
    assert printed["observed_per_case"] == int(want[0].sum()) and printed["cases"] == 4
    with pytest.raises(DatasetError, match="non-finite values"):
        read_fields(obs)  # nor pass for training data


def test_first_and_cases_select_the_cases_and_keep_their_masks_and_dtype(data, tmp_path):
    obs, truth = tmp_path / "obs.h5", tmp_path / "truth.h5"
    assert observe(data, "--task", "inverse", "--obs", "points:9", "--seed", "2", "--first", "2", "--cases", "3",
                   "-o", obs, "--truth", truth) == 0
    src = read_fields(data)
    whole = Observations.from_task(pdes.get("darcy"), src.fields, "inverse", "points:9", seed=2).mask
    with h5py.File(obs) as o, h5py.File(truth) as t:
        assert o["fields"].dtype == t["fields"].dtype == np.float64
        mask = o["mask"][()].astype(bool)
        np.testing.assert_array_equal(mask, whole[2:5])  # case i's mask whatever --first takes
        assert o["fields"][()][mask].tobytes() == src.fields[2:5][mask].tobytes()
        assert t["fields"][()].tobytes() == src.fields[2:5].tobytes() and "mask" not in t
        assert t.attrs["method"] == "reference" and t.attrs["first"] == 2
    assert observe(data, "--task", "inverse", "--obs", "full", "--first", "4", "-o", obs, "--truth", truth) == 0
    assert read_fields(truth).fields.tobytes() == src.fields[4:].tobytes()  # --cases: all from --first on


@pytest.mark.parametrize("argv, message", [
    (["--task", "sideways", "--obs", "full"], "unknown task 'sideways'; known: forward, inverse, reconstruct"),
    (["--task", "forward", "--obs", "points:x"], "observation spec must be full, points:K or fraction:F"),
    (["--task", "forward", "--obs", "fraction:2"], "the fraction F must be in (0, 1]"),
    (["--task", "forward", "--obs", "points:999"], "need between 1 and 256 observed nodes"),
    (["--task", "reconstruct", "--obs", "full"], "reconstruct needs scattered points"),
    (["--task", "forward", "--obs", "full", "--first", "6"], "--first 6 is out of range: "),
    (["--task", "forward", "--obs", "full", "--first", "-1"], "--first -1 is out of range"),
    (["--task", "forward", "--obs", "full", "--cases", "0"], "--cases must be at least 1"),
    (["--task", "forward", "--obs", "full", "--first", "4", "--cases", "3"], "runs past the last case"),
])
def test_bad_arguments_are_one_line(data, tmp_path, capsys, argv, message):
    rc = observe(data, *argv, "-o", tmp_path / "obs.h5", "--truth", tmp_path / "truth.h5")
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and message in err, err
    assert list(tmp_path.iterdir()) == []


def test_bad_files_are_one_line(data, tmp_path, capsys):
    def refused(source, message, out=tmp_path / "obs.h5", truth=None):
        rc = observe(source, "--task", "forward", "--obs", "full", "-o", out, *(["--truth", truth] if truth else []))
        err = capsys.readouterr().err
        assert rc == 2 and err.count("\n") == 1 and message in err, err

    with h5py.File(tmp_path / "empty.h5", "w") as h, h5py.File(data) as d:
        h.attrs.update(d.attrs)  # a fields file's header, no fields
    refused(tmp_path / "empty.h5", "missing dataset 'fields'")
    refused(tmp_path / "none.h5", "no such file")
    assert observe(data, "--task", "forward", "--obs", "full", "-o", tmp_path / "obs.h5") == 0
    refused(tmp_path / "obs.h5", "already has a mask", out=tmp_path / "again.h5")  # our own output
    refused(data, f"-o {data} is the input", out=data)
    refused(data, f"--truth {data} is the input", out=tmp_path / "x.h5", truth=data)
    refused(data, "is also -o", out=tmp_path / "x.h5", truth=tmp_path / "x.h5")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.h5", "obs.h5"]


def test_a_seed_out_of_range_is_one_line(data, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        observe(data, "--task", "forward", "--obs", "full", "--seed", "-1", "-o", tmp_path / "obs.h5")
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.count("\n") == 1 and "seed -1 out of range" in err


def test_a_full_disk_is_one_line_naming_the_file_and_leaves_nothing(data, tmp_path, capsys, full_disk):
    rc = observe(data, "--task", "forward", "--obs", "full", "-o", tmp_path / "obs.h5")
    err = capsys.readouterr().err
    assert rc == 2 and err == f"piddm: error: cannot write {tmp_path / 'obs.h5'}: No space left on device\n"
    assert list(tmp_path.iterdir()) == []  # no half file, no staging folder
