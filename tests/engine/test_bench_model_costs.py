"""engine.bench.model_costs reads a run's metrics.jsonl through RunDir: a killed run's torn line is skipped."""

from __future__ import annotations

import json

from engine.bench import model_costs
from engine.io.rundir import RunDir


def test_costs_of_a_killed_run_skip_its_half_written_last_line(tmp_path):
    """`piddm bench` raised JSONDecodeError on the half-written line a killed run leaves."""
    run = RunDir(tmp_path / "piddm", create=True)
    run.append_metrics({"step": 10, "loss": 0.5, "elapsed": 3.0, "pair_seconds": 1.5})
    run.append_metrics({"step": 10, "preview_residual_mse": 0.1})  # a preview record: no elapsed
    run.append_metrics({"step": 20, "loss": 0.4, "elapsed": 6.0, "pair_seconds": 1.5})
    with open(run.metrics_path, "a", encoding="utf-8") as f:
        f.write('{"step": 30, "loss": 0.3, "ela')  # the writer killed mid-line
    assert model_costs(run.path) == {"seconds": 6.0, "steps": 20, "pair_seconds": 1.5}


def test_costs_of_a_folder_without_metrics_are_empty(tmp_path):
    assert model_costs(tmp_path) == {}
    assert model_costs(tmp_path / "none") == {}  # as before RunDir read them
    (tmp_path / "card.json").write_text(json.dumps({"training": {"seconds": 1.0, "steps": 2}}))
    assert model_costs(tmp_path) == {"seconds": 1.0, "steps": 2}  # a bundled model's card wins
