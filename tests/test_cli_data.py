"""`piddm pdes | generate | evaluate` end to end: exit codes, one-line errors, JSON output that
agrees with an independent residual computation, and a file standard tools can read."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import h5py
import numpy as np
import pytest

from engine import pdes
from engine.cli.main import main

PIDDM = [sys.executable, "-m", "engine.cli.main"]


def run(*args):
    return subprocess.run([*PIDDM, *map(str, args)], capture_output=True, text=True, timeout=120)


def one_line_error(capsys, argv):
    rc = main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert rc != 0
    assert err.count("\n") == 1 and err.startswith("piddm: error: "), err
    return err


def test_pdes_json(capsys):
    assert main(["pdes", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["pdes"]
    assert main(["pdes"]) == 0
    assert "-Δu - k²u = f, u = 0 on the boundary  (k = 1)" in capsys.readouterr().out  # its parameters too
    assert [r["name"] for r in rows] == pdes.names()
    assert {r["name"]: r["channels"] for r in rows}["darcy"] == ["a", "u"]
    assert {r["name"]: r["params"] for r in rows}["helmholtz"] == {"k": 1.0}


def test_generate_and_evaluate_bad_input_one_line(capsys, tmp_path):
    out = tmp_path / "x.h5"
    assert "at least 1" in one_line_error(capsys, ["generate", "--pde", "darcy", "--n", "0", "-o", out])
    assert "grid" in one_line_error(capsys, ["generate", "--pde", "darcy", "--grid", "3", "-o", out])
    assert "helmholtz k" in one_line_error(capsys, ["generate", "--pde", "helmholtz", "--n", "1", "--grid", "8",
                                                    "--param", "k=9", "-o", out])
    assert "NAME=NUMBER" in one_line_error(capsys, ["generate", "--pde", "helmholtz", "--param", "k", "-o", out])
    assert "unknown parameters" in one_line_error(capsys, ["generate", "--pde", "darcy", "--n", "1", "--grid", "8",
                                                           "--param", "q=1", "-o", out])
    assert "does not exist" in one_line_error(capsys, ["generate", "--pde", "poisson", "--n", "1", "--grid", "8",
                                                       "-o", tmp_path / "no" / "x.h5"])
    assert "no such file" in one_line_error(capsys, ["evaluate", tmp_path / "missing.h5"])
    (tmp_path / "t.h5").write_text("not hdf5")
    assert "not an HDF5 file" in one_line_error(capsys, ["evaluate", tmp_path / "t.h5"])
    for name in ("darcy", "poisson"):
        assert main(["generate", "--pde", name, "--n", "1", "--grid", "8", "-o", str(tmp_path / f"{name}.h5")]) == 0
    capsys.readouterr()
    err = one_line_error(capsys, ["evaluate", tmp_path / "darcy.h5", "--truth", tmp_path / "poisson.h5"])
    assert err.strip().endswith(f"poisson.h5: holds poisson fields, but {tmp_path / 'darcy.h5'} is for darcy")
    assert not out.exists()


def test_evaluate_against_an_all_zero_truth_is_one_line(capsys, tmp_path):
    from engine.io.hdf5 import FieldsFile, read_fields, write_fields

    samples = tmp_path / "s.h5"
    assert main(["generate", "--pde", "poisson", "--n", "2", "--grid", "8", "-o", str(samples)]) == 0
    ff = read_fields(samples)
    zero = ff.fields.copy()
    zero[1] = 0.0  # f = 0 solves to u = 0: a valid truth whose relative error is undefined
    truth = write_fields(tmp_path / "t.h5", FieldsFile(fields=zero, pde="poisson", channels=("f", "u"), seed=0))
    capsys.readouterr()
    err = one_line_error(capsys, ["evaluate", samples, "--truth", truth])
    assert f"--truth {truth}: rel_l2 of f is undefined: the true f of sample 1 is all zero" in err


def test_the_bar_names_the_work_after_its_last_step():
    from engine.cli.common import show_phase, then_phase
    from engine.jobs import Progress

    class Bar:
        def __init__(self, disable):
            self.disable, self.shown = disable, []

        def set_postfix_str(self, text):
            self.shown.append(text)

    seen, bar = [], Bar(disable=False)
    report = then_phase(seen.append, bar, "writing out.h5")
    report(Progress("data", 2, 3))
    assert bar.shown == [] and len(seen) == 1
    report(Progress("data", 3, 3))
    assert bar.shown == ["writing out.h5"] and len(seen) == 2
    quiet = Bar(disable=True)  # stderr is a log, not a terminal: no bar, no phase
    then_phase(seen.append, quiet, "writing")(Progress("data", 3, 3))
    show_phase(quiet, "writing")
    assert quiet.shown == []


def test_a_full_disk_is_one_line(capsys, tmp_path, full_disk):
    out = tmp_path / "x.h5"
    err = one_line_error(capsys, ["generate", "--pde", "poisson", "--n", "2", "--grid", "8", "-o", out])
    assert "No space left on device" in err and str(out) in err
    assert list(tmp_path.iterdir()) == []


def test_an_os_error_no_writer_wrapped_is_one_line(capsys, tmp_path, tiny_dataset, monkeypatch):
    import errno

    from engine.io.rundir import RunDir

    def full(*_):  # the run's metrics log is appended to in place, not written atomically
        raise OSError(errno.ENOSPC, "No space left on device", "runs/t/metrics.jsonl")

    monkeypatch.setattr(RunDir, "append_metrics", full)
    err = one_line_error(capsys, ["train", "--data", tiny_dataset, "-o", tmp_path / "t", "--model", "tiny",
                                  "--steps", "2"])
    assert err == "piddm: error: runs/t/metrics.jsonl: No space left on device\n"


def test_argparse_errors_are_one_line(tmp_path):
    p = run("generate", "--pde", "darcy", "--n", "abc", "-o", tmp_path / "x.h5")
    assert p.returncode != 0
    assert p.stderr.count("\n") == 1, p.stderr


def independent_residual_mse(name, fields):
    """SPEC formulas in NumPy slicing (float64 of the stored values), interior nodes only."""
    x = fields.astype(np.float64)
    n = x.shape[-1]
    h = 1.0 / (n - 1)
    if name == "burgers":
        u, dt, dx, nu = x[:, 0], 1.0 / (n - 1), 1.0 / n, 0.01

        def F(v):
            vp, vm = np.roll(v, -1, -1), np.roll(v, 1, -1)
            return (vp**2 - vm**2) / (4 * dx) - nu * (vp - 2 * v + vm) / dx**2

        r = (u[:, 1:] - u[:, :-1]) / dt + 0.5 * (F(u[:, 1:]) + F(u[:, :-1]))
        return float((r**2).mean()), 0.0
    c, u = x[:, 0], x[:, 1]
    C, E, W, N, S = (u[:, 1:-1, 1:-1], u[:, 1:-1, 2:], u[:, 1:-1, :-2], u[:, 2:, 1:-1], u[:, :-2, 1:-1])
    if name == "darcy":
        a = c
        ac = a[:, 1:-1, 1:-1]
        ae, aw = (ac + a[:, 1:-1, 2:]) / 2, (ac + a[:, 1:-1, :-2]) / 2
        an, as_ = (ac + a[:, 2:, 1:-1]) / 2, (ac + a[:, :-2, 1:-1]) / 2
        r = -(ae * (E - C) - aw * (C - W) + an * (N - C) - as_ * (C - S)) / h**2 - 1.0
    else:
        k2 = 1.0 if name == "helmholtz" else 0.0
        r = -(E + W + N + S - 4 * C) / h**2 - k2 * C - c[:, 1:-1, 1:-1]
    ring = np.concatenate([u[:, 0], u[:, -1], u[:, 1:-1, 0], u[:, 1:-1, -1]], axis=1)
    return float((r**2).mean()), float((ring**2).mean())


@pytest.mark.parametrize("name", pdes.names())
def test_generate_then_evaluate_agrees_with_independent_residual(tmp_path, capsys, name):
    out = tmp_path / f"{name}.h5"
    assert main(["generate", "--pde", name, "--n", "3", "--grid", "16", "--seed", "2", "-o", str(out),
                 "--json"]) == 0
    gen = json.loads(capsys.readouterr().out)
    assert gen["n"] == 3 and gen["grid"] == 16 and gen["path"] == str(out)
    assert main(["evaluate", str(out), "--json", "--reference", str(out), "--truth", str(out)]) == 0
    ev = json.loads(capsys.readouterr().out)
    with h5py.File(out, "r") as h:
        fields = h["fields"][()]
    res, bc = independent_residual_mse(name, fields)
    assert ev["residual_mse"] == pytest.approx(res, rel=1e-9) and ev["bc_mse"] == pytest.approx(bc, abs=1e-30)
    assert gen["residual_mse"] == pytest.approx(res, rel=1e-9)
    assert res < 1e-8  # float32 storage of a solution at round-off
    assert all(ev[k] == 0.0 for k in ev if k.startswith(("mmse", "smse", "rel_l2", "error_rate")))
    assert ev["n"] == 3 and ev["pde"] == name


def test_cli_subprocess_end_to_end(tmp_path):
    out = tmp_path / "d.h5"
    p = run("generate", "--pde", "darcy", "--n", "2", "--grid", "32", "--dtype", "float64", "-o", out, "--json")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["n"] == 2 and p.stderr == ""  # no progress bar when not a terminal
    p = run("evaluate", out, "--json")
    assert p.returncode == 0 and json.loads(p.stdout)["residual_mse"] < 1e-20  # float64: round-off


def test_h5dump_reads_the_header(tmp_path):
    if shutil.which("h5dump") is None:
        pytest.skip("h5dump not installed (Debian package hdf5-tools)")
    out = tmp_path / "p.h5"
    assert main(["generate", "--pde", "poisson", "--n", "2", "--grid", "8", "-o", str(out)]) == 0
    p = subprocess.run(["h5dump", "-H", str(out)], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    for needle in ('DATASET "fields"', "H5T_IEEE_F32LE", "( 2, 2, 8, 8 )", 'ATTRIBUTE "format"',
                   'ATTRIBUTE "channels"', 'ATTRIBUTE "pde_params"'):
        assert needle in p.stdout, needle
    p = subprocess.run(["h5dump", "-a", "/format", str(out)], capture_output=True, text=True, timeout=60)
    assert '"piddm-fields"' in p.stdout


def test_json_output_is_standard_json():
    from engine.cli.common import json_text

    text = json_text({"a": float("nan"), "b": [float("inf"), 1.5, (2, float("-inf"))], "c": {"d": None}})
    assert json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} in JSON")) == {
        "a": None, "b": [None, 1.5, [2, None]], "c": {"d": None}}


def test_running_out_of_memory_is_one_line(capsys, monkeypatch, tmp_path):
    import torch

    import engine.data.generate as gen

    def gpu_full(*_, **__):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB.\nGPU 0 has a total ...")

    monkeypatch.setattr(gen, "generate_dataset", gpu_full)
    err = one_line_error(capsys, ["generate", "--pde", "darcy", "--n", "2", "-o", tmp_path / "x.h5"])
    assert "out of GPU memory" in err and "Tried to allocate 2.00 GiB" in err
    monkeypatch.setattr(gen, "generate_dataset", lambda *_, **__: torch.empty(10**15))  # 4 PB on the CPU
    assert "out of CPU memory" in one_line_error(capsys, ["generate", "--pde", "darcy", "--n", "2",
                                                          "-o", tmp_path / "x.h5"])
    monkeypatch.setattr(gen, "generate_dataset", lambda *_, **__: 1 / 0)  # a bug stays a traceback
    with pytest.raises(ZeroDivisionError):
        main(["generate", "--pde", "darcy", "--n", "2", "-o", str(tmp_path / "x.h5")])


def test_an_unwritable_output_file_is_refused_before_the_work(capsys, monkeypatch, tmp_path):
    import engine.data.generate as gen

    monkeypatch.setattr(gen, "generate_dataset", lambda *_, **__: pytest.fail("generated before checking -o"))
    err = one_line_error(capsys, ["generate", "--pde", "darcy", "--n", "5000", "-o", tmp_path / "no" / "x.h5"])
    assert "folder" in err and "does not exist" in err
    err = one_line_error(capsys, ["generate", "--pde", "darcy", "--n", "5000", "-o", tmp_path])
    assert "it is a folder" in err


def test_an_output_never_overwrites_what_the_command_reads(capsys, tmp_path, tiny_dataset):
    """-o onto the observation file, a hard link of it, or a file of the model folder is refused before
    any work; a new file beside them is written."""
    import os

    obs = tmp_path / "obs.h5"
    with h5py.File(tiny_dataset) as h, h5py.File(obs, "w") as o:
        for k, v in h.attrs.items():
            o.attrs[k] = v
        o["fields"] = h["fields"][:1]
        mask = np.zeros_like(h["fields"][:1], dtype=np.uint8)
        mask[:, 0] = 1  # the whole coefficient: classical needs no model
        o["mask"] = mask
    before = obs.read_bytes()
    os.link(obs, tmp_path / "hard.h5")
    for target in (obs, tmp_path / "hard.h5", tmp_path / "." / "obs.h5"):
        err = one_line_error(capsys, ["solve", "--method", "classical", "--obs", obs, "-o", target])
        assert "is the input" in err
    model = tmp_path / "model"
    model.mkdir()
    (model / "checkpoint.pt").write_bytes(b"weights")
    err = one_line_error(capsys, ["sample", "--model", model, "-n", "2", "-o", model / "checkpoint.pt"])
    assert "would overwrite a file of" in err and (model / "checkpoint.pt").read_bytes() == b"weights"
    assert obs.read_bytes() == before
    assert main(["solve", "--method", "classical", "--obs", str(obs), "-o", str(tmp_path / "sol.h5")]) == 0


def test_an_output_link_is_written_through_and_a_readonly_folder_refused(capsys, tmp_path, monkeypatch):
    import os

    real = tmp_path / "real.h5"
    real.write_bytes(b"old")
    link = tmp_path / "link.h5"
    link.symlink_to(real)
    assert main(["generate", "--pde", "darcy", "--n", "2", "--grid", "16", "-o", str(link)]) == 0
    capsys.readouterr()
    assert link.is_symlink() and h5py.is_hdf5(real)  # the link stays, its target holds the file
    monkeypatch.setattr(os, "access", lambda path, mode: mode != os.W_OK)  # as on a read-only mount
    err = one_line_error(capsys, ["generate", "--pde", "darcy", "--n", "2", "--grid", "16", "-o", tmp_path / "x.h5"])
    assert f"cannot write {tmp_path / 'x.h5'}: folder {tmp_path} is not writable" in err


def test_a_seed_out_of_range_is_one_line(tmp_path):
    for seed in ("-1", "4294967296", "9223372036854775807", "x"):
        r = run("generate", "--pde", "darcy", "--n", "2", "--grid", "16", "--seed", seed, "-o", tmp_path / "x.h5")
        assert r.returncode == 2 and r.stderr.count("\n") == 1 and "seed" in r.stderr, r.stderr
    assert not (tmp_path / "x.h5").exists()
