"""The progress of `piddm train` and `piddm distill` (engine/cli/common.py: progress_bar): a run limited
by minutes alone shows its time budget, not the "no step limit" sentinel as a step total; a
step-limited run shows its steps as before. The engine functions are stand-ins that report and stop."""

from __future__ import annotations

import io
import sys

import pytest

from engine.cli import common
from engine.cli.main import main
from engine.config import UNLIMITED_STEPS
from engine.jobs import Cancelled, Progress

METRICS = {"train": {"loss": 0.5, "lr": 1e-4, "samples_per_s": 100.0, "elapsed": 6.0},
           "distill": {"loss": 0.5, "residual": 0.25, "lam": 0.1, "elapsed": 6.0}}
STAGE = {"train": "teacher", "distill": "distill"}


class Terminal(io.StringIO):
    def isatty(self) -> bool:  # tqdm draws its bar only on a terminal
        return True


@pytest.fixture(scope="module")
def data16(tmp_path_factory):
    from engine.data.generate import generate_dataset

    return generate_dataset("darcy", 4, 16, 0, tmp_path_factory.mktemp("progress") / "d.h5").path


def run_reporting_step_20(command, budget, data, tmp_path, monkeypatch):
    """`piddm COMMAND BUDGET` whose engine function reports step 20 at 6 s and is then stopped
    (``Cancelled``: rc 130, nothing after the report is needed)."""
    import engine.diffusion.train as teacher_train
    import engine.distill.train as distill_train

    def engine_run(cfg, run, *, on_progress, **_):
        on_progress(Progress(STAGE[command], 20, cfg.steps, METRICS[command]))
        raise Cancelled

    monkeypatch.setattr(teacher_train, "train_teacher", engine_run)
    monkeypatch.setattr(distill_train, "distill", engine_run)
    source = ["--data", str(data)] if command == "train" else ["--teacher", str(tmp_path / "teacher")]
    assert main([command, *source, "-o", str(tmp_path / "run"), *budget]) == 130


@pytest.mark.parametrize("command", ["train", "distill"])
def test_a_minutes_only_run_logs_its_minutes_not_the_step_sentinel(command, data16, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(common, "STEP_LOG_SECONDS", 0.0)  # every report is "a minute later" here
    run_reporting_step_20(command, ["--minutes", "0.3"], data16, tmp_path, monkeypatch)
    err = capsys.readouterr().err  # stderr is no terminal under pytest: the log lines
    assert str(UNLIMITED_STEPS) not in err
    assert f"{STAGE[command]}: step 20, 0.10/0.3 min, loss 0.5" in err, err
    run_reporting_step_20(command, ["--steps", "50"], data16, tmp_path, monkeypatch)
    assert f"{STAGE[command]}: step 20/50, loss 0.5" in capsys.readouterr().err  # as before


@pytest.mark.parametrize("command", ["train", "distill"])
def test_a_minutes_only_runs_bar_fills_with_its_minutes(command, data16, tmp_path, monkeypatch):
    screen = Terminal()
    monkeypatch.setattr(sys, "stderr", screen)
    run_reporting_step_20(command, ["--minutes", "0.3"], data16, tmp_path, monkeypatch)
    bar = screen.getvalue().replace("\r", "\n")
    assert str(UNLIMITED_STEPS) not in bar
    assert "33%" in bar and "0.10/0.3 min, step=20, loss=0.5" in bar, bar
    assert "elapsed=" not in bar  # the bar itself is the elapsed time
    screen.seek(0)
    screen.truncate()
    run_reporting_step_20(command, ["--steps", "50"], data16, tmp_path, monkeypatch)
    bar = screen.getvalue().replace("\r", "\n")
    assert "40%" in bar and "20/50" in bar and " min" not in bar and "elapsed=6" in bar, bar  # as before


def test_a_run_with_steps_and_minutes_and_a_stage_with_a_count_show_their_steps(monkeypatch, capsys):
    """The budget's bar is for the sentinel total only: a real step count (a run limited both ways,
    the distiller's pair drawing between its steps) keeps the step bar."""
    monkeypatch.setattr(common, "STEP_LOG_SECONDS", 0.0)
    on_progress, bar = common.progress_bar("distill", minutes=0.3)
    with bar:
        on_progress(Progress("pairs", 8, 16))
        on_progress(Progress("distill", 20, 50, {"elapsed": 6.0}))
        on_progress(Progress("distill", 21, UNLIMITED_STEPS, {"elapsed": 6.6}))
    lines = capsys.readouterr().err.splitlines()
    assert lines == ["distill: pairs: step 8/16", "distill: distill: step 20/50, elapsed 6",
                     "distill: distill: step 21, 0.11/0.3 min"]  # the minutes are the elapsed time
