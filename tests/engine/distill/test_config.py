"""DistillConfig refuses bad numbers in one line (as TeacherConfig does); so does `piddm distill`."""

from __future__ import annotations

import json
import math

import pytest

from engine.cli.main import main
from engine.config import UNLIMITED_STEPS
from engine.distill.config import DistillConfig
from engine.errors import ConfigError


@pytest.mark.parametrize("bad", [
    {"lr": math.nan}, {"lr": -1e-4}, {"lr": math.inf}, {"ema_halflife_steps": 0.0}, {"report_every": 0},
    {"lam": math.nan}, {"lam": math.inf}, {"lam": -0.1}, {"refresh": -1}, {"checkpoint_minutes": -1.0},
    {"checkpoint_minutes": math.nan}, {"minutes": math.nan}, {"minutes": -1.0}, {"steps": -1},
    {"minutes": 0.0, "steps": UNLIMITED_STEPS},  # neither a time nor a step limit: it would never end
])
def test_bad_numbers_are_refused(bad):
    with pytest.raises(ConfigError) as info:
        DistillConfig(**bad)
    assert next(iter(bad)) in str(info.value) or "limit" in str(info.value)


def test_the_engine_may_still_build_a_step_0_student():
    DistillConfig(steps=0, lr=0.0)  # the teacher's σ_max denoiser as a student (test_student.py)
    DistillConfig(steps=UNLIMITED_STEPS, minutes=1.0)  # what --minutes alone sets


@pytest.mark.parametrize("option, message", [
    (["--steps", "0"], "error: --steps must be a whole number ≥ 1, got 0"),
    (["--lr", "0"], "error: --lr must be a number > 0, got 0"),
    (["--lr", "-1"], "error: --lr must be a number > 0, got -1"),  # the same bound as --lr 0
    (["--lr", "nan"], "error: --lr must be a finite number > 0, got nan"),
    (["--ema-halflife", "0"], "error: --ema-halflife must be a number > 0"),  # not ema_halflife_steps
    (["--report-every", "0"], "error: --report-every must be a whole number ≥ 1"),
    (["--lambda", "-1"], "error: --lambda must be a number ≥ 0, got -1"),  # not lam
    (["--lambda-warmup", "2"], "error: --lambda-warmup is a fraction of the run in [0, 1]"),
    (["--batch", "0"], "error: --batch must be a whole number ≥ 1"),  # not batch_size
    (["--minutes", "0"], "a run needs a limit"),
    (["--minutes", "-1"], "error: --minutes must be a number ≥ 0"),
    (["--minutes", "nan"], "error: --minutes must be a finite number ≥ 0"),
])
def test_distill_command_refuses_a_run_that_would_not_train(option, message, tmp_path, capsys):
    # refused before the teacher loads: the teacher folder does not even exist
    assert main(["distill", "--teacher", str(tmp_path / "none"), "-o", str(tmp_path / "s"), *option]) == 2
    err = capsys.readouterr().err
    assert message in err and err.startswith("piddm: error:") and err.count("\n") == 1
    assert not (tmp_path / "s").exists()


def test_a_refused_start_leaves_no_empty_run_folder(tmp_path, capsys):
    """The teacher does not exist: the run folder distill created is gone again; one that existed stays."""
    assert main(["distill", "--teacher", str(tmp_path / "none"), "-o", str(tmp_path / "s"), "--steps", "2"]) == 2
    assert not (tmp_path / "s").exists()
    assert main(["distill", "--teacher", str(tmp_path / "none"), "-o", str(tmp_path / "a" / "b" / "s")]) == 2
    assert not (tmp_path / "a").exists()  # nor the parents it made for it
    (tmp_path / "mine").mkdir()
    assert main(["distill", "--teacher", str(tmp_path / "none"), "-o", str(tmp_path / "mine"), "--steps", "2"]) == 2
    assert (tmp_path / "mine").is_dir()
    capsys.readouterr()


def test_a_run_resumes_from_another_folder_than_it_was_started_in(teacher_run, tmp_path, monkeypatch, capsys):
    """config.json holds --teacher absolute; the checkpoint records it relative to the run as well, so
    that a run moved together with its teacher finds it. log.txt says the run's start and checkpoints."""
    import shutil

    shutil.copytree(teacher_run, tmp_path / "teacher")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path)
    small = ["--pairs", "8", "--sampler-steps", "2", "--batch", "4", "--ema-halflife", "2"]
    assert main(["distill", "--teacher", "teacher", "-o", "runs/s", "--steps", "1", *small]) == 0
    saved = json.loads((tmp_path / "runs" / "s" / "config.json").read_text())
    assert saved["config"]["teacher"] == str(tmp_path / "teacher")
    log = (tmp_path / "runs" / "s" / "log.txt").read_text()
    assert "distill: λ 0.1 from" in log and "checkpoint at step 1" in log  # it held only the last line
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert main(["distill", "-o", "../runs/s", "--resume", "--steps", "2", "--json"]) == 0
    assert '"step": 2' in capsys.readouterr().out
    shutil.rmtree(tmp_path / "teacher")
    assert main(["distill", "-o", "../runs/s", "--resume", "--steps", "3"]) == 2
    assert "teacher is not found from here; pass --teacher" in capsys.readouterr().err


def test_a_batch_far_beyond_the_pairs_is_refused():
    """Batch 5,000 of 8 pairs only repeated them until the OOM killer ended the run (rc 137)."""
    with pytest.raises(ConfigError, match="batch 5000 is larger than the 8 pairs"):
        DistillConfig(pairs=8, batch_size=5000)
    DistillConfig(pairs=8, batch_size=64)  # up to the default: small sets keep the default batch


def test_under_torchrun_only_rank_0_prints_the_result(monkeypatch, tmp_path, capsys, teacher_run):
    """Every rank printed its JSON: `--json` output held two documents."""
    from engine import dist
    from engine.distill import train

    monkeypatch.setattr(dist, "env_rank", lambda: 1)
    monkeypatch.setattr(train, "distill", lambda *a, **k: None)  # rank 1's share of the run, done
    assert main(["distill", "--teacher", str(teacher_run), "-o", str(tmp_path / "s"), "--json"]) == 0
    assert capsys.readouterr().out == ""


def test_distill_resume_may_change_the_preview_cadence(teacher_run, tmp_path, capsys):
    """`piddm distill --resume --preview-every N` is taken (previews do not change the mathematics), as
    `piddm train --resume --preview-every N` is; a setting that does is still refused."""
    run = tmp_path / "s"
    small = ["--pairs", "8", "--sampler-steps", "2", "--batch", "4", "--ema-halflife", "2"]
    assert main(["distill", "--teacher", str(teacher_run), "-o", str(run), "--steps", "1", *small]) == 0
    assert main(["distill", "-o", str(run), "--resume", "--steps", "2", "--preview-every", "1"]) == 0
    assert json.loads((run / "config.json").read_text())["config"]["preview_every"] == 1
    assert (run / "previews" / "step-00000002.npz").is_file()
    capsys.readouterr()
    assert main(["distill", "-o", str(run), "--resume", "--steps", "3", "--lambda", "1"]) == 2
    assert "cannot resume with changed settings (lam: 0.1 -> 1.0)" in capsys.readouterr().err
