"""piddm train / sample, and a SIGKILLed training process resumed from its checkpoint."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from engine.cli.main import main
from engine.io.checkpoint import load_checkpoint
from engine.io.hdf5 import read_fields
from engine.io.rundir import RunDir

TRAIN = ["--model", "tiny", "--batch", "4", "--lr", "2e-3", "--warmup", "2", "--report-every", "1", "--seed", "1"]


def test_train_then_sample(darcy16, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--data", str(darcy16), "-o", str(run), "--steps", "2", "--json", *TRAIN]) == 0
    assert json.loads(capsys.readouterr().out)["step"] == 2
    out = tmp_path / "s.h5"
    assert main(["sample", "--model", str(run), "-n", "3", "--steps", "2", "--batch", "2",
                 "--device", "cpu", "-o", str(out), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["nfe"] == 3 and res["n"] == 3
    ff = read_fields(out)
    assert ff.method == "teacher" and ff.fields.shape == (3, 2, 16, 16) and ff.residual.shape == (3, 16, 16)
    assert main(["sample", "--model", str(darcy16), "-n", "1", "-o", str(tmp_path / "x.h5")]) == 2
    assert "damaged or not a checkpoint" in capsys.readouterr().err


def test_resume_needs_a_run(tmp_path, capsys):
    assert main(["train", "-o", str(tmp_path / "none"), "--resume"]) == 2
    assert "none: no run to resume (config.json missing)" in capsys.readouterr().err  # not "--data is required"


def test_resume_refuses_a_new_runs_option_and_reports_a_finished_runs_loss(darcy16, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--data", str(darcy16), "-o", str(run), "--steps", "2", "--json", *TRAIN]) == 0
    loss = json.loads(capsys.readouterr().out)["loss"]
    # an option that defines the run, given again with another value: refused, not ignored
    assert main(["train", "-o", str(run), "--resume", "--steps", "3", "--model", "small"]) == 2
    assert "changed settings (model: 'tiny' -> 'small')" in capsys.readouterr().err
    assert load_checkpoint(run)["step"] == 2
    # nothing left to train: the run's last loss, as JSON that any parser reads (no NaN)
    assert main(["train", "-o", str(run), "--resume", "--steps", "2", "--model", "tiny", "--json"]) == 0
    out = json.loads(capsys.readouterr().out, parse_constant=lambda c: pytest.fail(f"{c} in JSON"))
    assert out["step"] == 2 and out["loss"] == loss
    # a limit below the steps done: refused, and config.json keeps the run's own limit
    assert main(["train", "-o", str(run), "--resume", "--steps", "1"]) == 2
    assert "--steps 1 lies below the run's step 2" in capsys.readouterr().err
    assert json.loads((run / "config.json").read_text())["config"]["steps"] == 2


@pytest.mark.slow
def test_sigkilled_run_resumes_on_the_uninterrupted_curve(darcy16, tmp_path):
    run, ref = tmp_path / "killed", tmp_path / "ref"
    cmd = [sys.executable, "-m", "engine", "train", "--data", str(darcy16), "-o", str(run),
           "--steps", "100000", "--checkpoint-every", "3", *TRAIN]
    env = {**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads())}  # same kernels as here
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not (run / "checkpoint.pt").is_file():
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "no checkpoint within 120 s"
            time.sleep(0.05)
        time.sleep(0.3)  # let it train past the checkpoint, so the kill loses steps
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    k = load_checkpoint(run)["step"]
    total = k + 4
    assert main(["train", "-o", str(run), "--resume", "--steps", str(total)]) == 0
    assert main(["train", "--data", str(darcy16), "-o", str(ref), "--steps", str(total),
                 "--checkpoint-every", "3", *TRAIN]) == 0
    curve = [(r["step"], r["loss"]) for r in RunDir(run).read_metrics()]
    assert curve == [(r["step"], r["loss"]) for r in RunDir(ref).read_metrics()]
    assert [s for s, _ in curve] == list(range(1, total + 1))
    a, b = load_checkpoint(run)["model"], load_checkpoint(ref)["model"]
    assert all(torch.equal(a[n], b[n]) for n in a)


def test_train_init_from_a_teacher_with_a_cooldown(darcy16, tmp_path, capsys):
    first, second = tmp_path / "first", tmp_path / "second"
    assert main(["train", "--data", str(darcy16), "-o", str(first), "--steps", "2", *TRAIN]) == 0
    assert main(["train", "--data", str(darcy16), "-o", str(second), "--steps", "4", "--cooldown", "0.5",
                 "--init-from", str(first), *TRAIN]) == 0
    cfg = load_checkpoint(second)["config"]
    assert cfg["init_from"] == str(first) and cfg["cooldown"] == 0.5
    assert [r["lr"] for r in RunDir(second).read_metrics() if "lr" in r][-1] == pytest.approx(2e-3 / 2)
    capsys.readouterr()
    assert main(["train", "--data", str(darcy16), "-o", str(tmp_path / "x"), "--minutes", "1",
                 "--cooldown", "0.5", *TRAIN]) == 2
    err = capsys.readouterr().err
    assert err.startswith("piddm: error: --cooldown is a fraction") and "give --steps" in err


def test_resume_from_another_directory(darcy16, tmp_path, monkeypatch, capsys):
    import shutil

    shutil.copy(darcy16, tmp_path / "d.h5")
    (tmp_path / "other").mkdir()
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--data", "d.h5", "-o", "runs/int", "--steps", "1", *TRAIN]) == 0
    capsys.readouterr()
    monkeypatch.chdir(tmp_path / "other")
    assert main(["train", "-o", "../runs/int", "--resume", "--steps", "2", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["step"] == 2


@pytest.mark.parametrize("budget", [["--minutes", "0"], ["--minutes", "nan"], ["--minutes", "inf"]])
def test_train_refuses_a_run_without_a_limit(budget, darcy16, tmp_path, capsys):
    assert main(["train", "--data", str(darcy16), "-o", str(tmp_path / "run"), *budget, *TRAIN]) == 2
    err = capsys.readouterr().err
    assert err.startswith("piddm: error:") and err.count("\n") == 1
    assert "a run needs a limit" in err or "minutes must be a finite number" in err



@pytest.mark.parametrize("option, message", [
    (["--batch", "0"], "--batch must be a whole number ≥ 1, got 0"),  # the config field is batch_size
    (["--ema-halflife", "-2"], "--ema-halflife must be a number > 0, got -2"),  # ema_halflife_steps
    (["--holdout", "1"], "--holdout must be in [0, 1), got 1"),  # holdout_fraction
    (["--lr", "0"], "--lr must be a number > 0, got 0"),
])
def test_train_names_a_bad_setting_by_its_flag(option, message, darcy16, tmp_path, capsys):
    argv = ["train", "--data", str(darcy16), "-o", str(tmp_path / "run"), "--steps", "1", *TRAIN, *option]
    assert main(argv) == 2
    assert capsys.readouterr().err == f"piddm: error: {message}\n"


def test_a_run_folder_takes_one_writer_at_a_time(darcy16, tmp_path, capsys):
    """The orphaned workers of a SIGKILLed torchrun trained on while `--resume` started a second job in
    the same folder: metrics.jsonl interleaved, checkpoint.pt whoever saved last."""
    from engine.io.rundir import writing_alone

    run = tmp_path / "run"
    with writing_alone(run):  # another job holds it
        assert main(["train", "--data", str(darcy16), "-o", str(run), "--steps", "1", *TRAIN]) == 2
        assert "is being written by another job" in capsys.readouterr().err
        assert not (run / "checkpoint.pt").exists()
    assert main(["train", "--data", str(darcy16), "-o", str(run), "--steps", "1", *TRAIN]) == 0  # released


def test_a_fresh_start_drops_a_killed_starts_previews_and_records_absolute_paths(darcy16, tmp_path, capsys,
                                                                                  monkeypatch):
    run = tmp_path / "run"
    (run / "previews").mkdir(parents=True)
    (run / "previews" / "step-00000500.npz").write_bytes(b"from a start killed before its checkpoint")
    monkeypatch.chdir(darcy16.parent)
    assert main(["train", "--data", darcy16.name, "-o", str(run), "--steps", "1", *TRAIN]) == 0
    assert not (run / "previews" / "step-00000500.npz").exists()
    # the dataset as typed was relative: every record of it is absolute, found from any folder
    assert json.loads((run / "normalization.json").read_text())["dataset"] == str(darcy16.resolve())
    saved = json.loads((run / "config.json").read_text())
    assert saved["config"]["dataset"] == saved["meta"]["data"]["dataset"] == str(darcy16.resolve())
    out = tmp_path / "t.h5"
    assert main(["sample", "--model", str(run / "checkpoint.pt"), "-n", "1", "--steps", "1", "-o", str(out)]) == 0
    import h5py

    with h5py.File(out) as h:
        assert h.attrs["model"] == str(run.resolve())  # the model's folder, absolute


def test_sigterm_stops_a_run_with_a_checkpoint(darcy16, tmp_path):
    """kill, a scheduler or torchrun's shutdown send SIGTERM: the run saves, as on Ctrl-C (it used to
    end at once, losing everything since the last periodic checkpoint)."""
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "engine", "train", "--data", str(darcy16), "-o", str(run), "--steps", "100000",
           *TRAIN]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not (run / "metrics.jsonl").is_file() or not RunDir(run).read_metrics():
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "no training step within 120 s"
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 130
    finally:
        proc.kill()
    assert load_checkpoint(run)["step"] >= 1
    assert "interrupted" in proc.stderr.read().decode()
