"""bench_solve on a tiny real model folder (16² teacher + piddm and distill students, a few steps)."""

from __future__ import annotations

import pytest

from engine.bench import format_table
from engine.bench_solve import bench_solve, default_methods
from engine.errors import ConfigError
from engine.solve import METHODS


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    from engine.config import TeacherConfig
    from engine.data.generate import generate_dataset
    from engine.diffusion.train import train_teacher
    from engine.distill.config import DistillConfig
    from engine.distill.train import distill

    root = tmp_path_factory.mktemp("models")
    data = generate_dataset("darcy", 8, 16, 0, root / "darcy16.h5").path
    train_teacher(TeacherConfig(pde="darcy", grid_n=16, dataset=str(data), model="tiny", batch_size=4, lr=2e-3,
                                warmup_steps=1, steps=2, report_every=1, checkpoint_minutes=0), root / "teacher")
    for name, lam in (("piddm", 0.01), ("distill", 0.0)):
        distill(DistillConfig(teacher=str(root / "teacher"), lam=lam, pairs=8, sampler_steps=2, batch_size=4,
                              steps=2, warmup_steps=1, report_every=1, checkpoint_minutes=0, device="cpu"),
                root / name)
    return root


def test_every_method_row_and_the_reference_rows_are_right(folder):
    seen = []
    res = bench_solve(folder, task="forward", obs="full", cases=2, seeds=1, ensemble=2, steps=2,
                      on_progress=seen.append)
    table = res["table"]
    assert list(table) == list(METHODS)  # every method, classical included for forward/full
    done = [p for p in seen if p.stage == "bench"]
    assert len(done) == len(METHODS) and done[-1].step == done[-1].total
    stepped = {p.message for p in seen if p.stage == "bench-step"}  # the direct solves have no steps to report
    assert stepped == {f"seed 0 · {m}" for m in METHODS if m not in ("classical", "piddm-exact")}
    for row in table.values():
        assert set(row) >= {"rel_l2_u", "residual_mse", "seconds_per_case", "nfe"}
        assert "rel_l2_a" not in row  # the coefficient is observed: not scored
    # the reference solver, and piddm-exact with the whole coefficient, give the truth
    for m in ("classical", "piddm-exact"):
        assert table[m]["rel_l2_u"]["mean"] < 1e-5
        assert table[m]["residual_mse"]["mean"] < 1e-8
    assert table["piddm"]["rel_l2_u"]["mean"] > 1e-3  # a 2-step student is not the truth
    text = format_table(res)
    assert "obs full" in text and all(m in text for m in METHODS)
    assert res["residual_norm"] == 1.0 and "σ 1" in text  # forward from the whole a: u measured in H^-2


def test_inverse_points_scores_both_channels_and_exact_stays_at_tolerance(folder):
    res = bench_solve(folder, task="inverse", obs="points:20", cases=2, seeds=1, ensemble=2, steps=2,
                      methods=["piddm", "piddm-exact", "dataspace"])
    table = res["table"]
    assert list(table) == ["piddm", "piddm-exact", "dataspace"]
    for row in table.values():
        assert {"rel_l2_a", "rel_l2_u", "error_rate"} <= set(row)
        assert 0.0 <= row["error_rate"]["mean"] <= 1.0
    assert table["piddm-exact"]["residual_mse"]["mean"] < 1e-8


def test_a_method_at_its_own_step_count_is_a_row_of_its_own(folder):
    res = bench_solve(folder, task="inverse", obs="points:20", cases=1, seeds=1, ensemble=1, steps=2,
                      methods=["piddm", "piddm@5", "teacher@3"])
    table = res["table"]
    assert list(table) == ["piddm", "piddm@5", "teacher@3"]
    assert (table["piddm"]["nfe"]["mean"], table["piddm@5"]["nfe"]["mean"]) == (3, 6)  # steps + 1
    assert table["teacher@3"]["nfe"]["mean"] == 5  # Heun: 2·3 − 1
    assert table["piddm@5"]["rel_l2_a"]["mean"] != table["piddm"]["rel_l2_a"]["mean"]
    for bad in ("piddm@0", "piddm@x", "magic@5"):
        with pytest.raises(ConfigError, match="whole number|unknown method"):
            bench_solve(folder, task="inverse", obs="points:20", cases=1, seeds=1, methods=[bad])


def test_defaults_and_refusals(folder):
    assert "classical" not in default_methods("forward", "points:123", {"piddm", "distill", "teacher"})
    assert "distill" not in default_methods("inverse", "full", {"piddm", "teacher"})
    with pytest.raises(ConfigError, match="unknown method"):
        bench_solve(folder, task="forward", obs="full", cases=1, seeds=1, methods=["magic"])
    with pytest.raises(ConfigError, match="unknown task"):
        bench_solve(folder, task="sideways", cases=1, seeds=1)
    with pytest.raises(ConfigError, match="classical"):
        bench_solve(folder, task="forward", obs="points:5", cases=1, seeds=1, methods=["classical"], steps=2)


def test_tune_guidance_stores_the_best_recorded_weights_in_a_run_folder(folder, tmp_path, packaging_script):
    """packaging/tune_guidance.py --models: run folders get a card.json whose weights the solver uses."""
    import json
    import shutil

    from engine.models import load_model
    from engine.solve.api import _guidance_weights

    tune = packaging_script("tune_guidance")
    copy = tmp_path / "models"
    shutil.copytree(folder, copy)
    assert not (copy / "piddm" / "card.json").exists()
    assert tune.main(["--models", str(copy), "--tasks", "forward", "--spec", "points:20", "--cases", "2",
                      "--steps", "2", "--zetas-obs", "0.3", "3", "--pde-factors", "0"]) == 0
    for name in ("piddm", "distill"):
        card = json.loads((copy / name / "card.json").read_text())
        weights, record = card["guidance"]["forward"], card["guidance_tuning"]["forward"]
        finite = [s for s in record["scores"] if s["rel_l2"] is not None]
        best = min(finite, key=lambda s: s["rel_l2"])
        assert len(record["scores"]) >= 4  # ζ_obs 0.3, 1 (default), 3; then ζ_pde factors 0, 1e-2
        assert weights["zeta_obs"] == best["zeta_obs"] and weights["rel_l2"] == best["rel_l2"]
        assert weights["spec"] == "points:20" and record["grid"] == 16
    model = load_model(copy / "piddm")
    assert _guidance_weights(model, "forward", model.grid)["zeta_obs"] == weights["zeta_obs"]
    # --spec full: whole-channel weights under "forward/full"; the points weights stay
    assert tune.main(["--models", str(copy), "--tasks", "forward", "--spec", "full", "--cases", "2",
                      "--steps", "2", "--zetas-obs", "0.3", "--pde-factors", "0"]) == 0
    card = json.loads((copy / "piddm" / "card.json").read_text())
    assert card["guidance"]["forward"] == weights and card["guidance"]["forward/full"]["spec"] == "full"
    model = load_model(copy / "piddm")
    full = _guidance_weights(model, "forward", model.grid, "full")
    assert full == card["guidance"]["forward/full"] and full["zeta_obs"] in (0.3, 1.0)


def test_tune_solve_stores_each_task_and_kind_in_the_students_card(folder, tmp_path, packaging_script):
    """packaging/tune_solve.py --models: the piddm card gets card["solve"]["<task>/<kind>"], which the solve uses."""
    import json
    import shutil

    from engine import pdes
    from engine.models import load_model
    from engine.solve import Observations, SolveOptions, solve
    from engine.solve.api import default_lambda, default_lr

    tune = packaging_script("tune_solve")
    copy = tmp_path / "models"
    shutil.copytree(folder, copy)
    assert tune.main(["--models", str(copy), "--tasks", "inverse", "--specs", "points:20", "full", "--cases", "2",
                      "--ensemble", "2", "--steps", "2", "--lrs", "0.01", "--lams", "0.1"]) == 0
    card = json.loads((copy / "piddm" / "card.json").read_text())
    assert sorted(card["solve"]) == ["inverse/full", "inverse/points"]
    assert not (copy / "distill" / "card.json").exists()  # --students piddm by default
    for key, chosen in card["solve"].items():
        record = card["solve_tuning"][key]
        scores = {(s["lr"], s["lam"]): s["rel_l2_after"]["2"] for s in record["scores"]}
        assert (chosen["lr"], chosen["lam"]) == min(scores, key=scores.get) and record["grid"] == 16
    model = load_model(copy / "piddm")
    pde = model.pde
    truth = pdes.get(pde.name).solve(pde.sample_inputs([5], model.grid), model.grid).numpy()
    obs = Observations.from_task(pde, truth, "inverse", "points:20", seed=0)
    assert default_lr("piddm", pde, obs, model) == card["solve"]["inverse/points"]["lr"]
    assert default_lambda("piddm", pde, obs, model) == card["solve"]["inverse/points"]["lam"]
    res = solve(model, pde, obs, SolveOptions(method="piddm", ensemble=1, steps=1))
    assert res.settings["lr"] == card["solve"]["inverse/points"]["lr"]


def test_bench_command_gives_the_guidance_baselines_their_own_step_count(folder, tmp_path, capsys):
    import json

    from engine.cli.main import main

    out = tmp_path / "bench.json"
    assert main(["bench", "--pde", "darcy", "--task", "inverse", "--obs", "points:20", "--models", str(folder),
                 "--cases", "1", "--seeds", "1", "--ensemble", "1", "--steps", "2", "--guidance-steps", "3",
                 "--methods", "piddm", "teacher", "-o", str(out)]) == 0
    res = json.loads(out.read_text())
    assert (res["steps"], res["guidance_steps"]) == (2, 3)
    assert (res["candidates"], res["residual_norm"]) == (1, 0.0)  # from points: no screening, plain residual
    assert res["precision"].startswith("float32 networks")  # the default
    assert res["table"]["piddm"]["nfe"]["mean"] == 3  # steps + 1 generator evaluations
    assert (res["settings"]["piddm"]["lambda"], res["settings"]["piddm"]["lr"]) == (1.0, 0.05)  # no tuned card
    assert res["table"]["teacher"]["nfe"]["mean"] == 5  # Heun: 2·3 − 1 denoiser evaluations
    printed = capsys.readouterr()
    assert "piddm" in printed.out
    # stderr is no terminal here: instead of a bar, a line per method done (what a log file shows)
    lines = printed.err.strip().splitlines()
    assert [line.split(":")[1].strip() for line in lines] == ["1/2 seed 0 · piddm", "2/2 seed 0 · teacher"]
    assert lines[0].startswith("bench darcy inverse: ") and "seconds_per_case" in lines[0]


def test_bench_log_shows_the_steps_of_a_long_method(folder, capsys, monkeypatch):
    from engine.cli import common
    from engine.cli.main import main

    monkeypatch.setattr(common, "STEP_LOG_SECONDS", 0.0)  # every step report is "long enough" here
    assert main(["bench", "--pde", "darcy", "--task", "inverse", "--obs", "points:20", "--models", str(folder),
                 "--cases", "1", "--seeds", "1", "--ensemble", "1", "--steps", "2", "--guidance-steps", "3",
                 "--methods", "piddm", "teacher", "--json"]) == 0
    lines = capsys.readouterr().err.strip().splitlines()
    steps = [line.split(": ", 1)[1] for line in lines if ": step " in line]
    assert "seed 0 · piddm: step 2/2" in steps and "seed 0 · teacher: step 3/3" in steps
    # each method's steps come before its own "done" line and after the previous one's
    done = [i for i, line in enumerate(lines) if "/2 seed 0 · " in line]
    assert len(done) == 2 and any(": step " in line for line in lines[done[0] + 1:done[1]])


def test_solve_command_records_the_residual_norm_precision_and_exact_rate_it_used(folder, tmp_path, monkeypatch):
    import json

    import h5py
    import numpy as np
    import torch

    from engine import pdes
    from engine.cli.main import main
    from engine.grid import Grid
    from engine.io.hdf5 import FieldsFile, write_fields

    pde = pdes.get("darcy")
    truth = pde.solve(pde.sample_inputs([5], Grid(16)), Grid(16)).numpy()
    mask = np.zeros(truth.shape, bool)
    mask[:, 0] = True  # the whole coefficient: a forward solve
    write_fields(tmp_path / "obs.h5", FieldsFile(fields=truth, pde="darcy", channels=pde.fields, mask=mask))
    compiled = []  # a real compile is the slow solve test's; here only that --compile reaches it
    monkeypatch.setattr(torch, "compile", lambda net: compiled.append(net) or net)
    for extra, sigma, precision in (([], 1.0, "float32"),
                                    (["--residual-norm", "0.5", "--precision", "bf16", "--compile"], 0.5, "bf16")):
        out = tmp_path / f"sol{sigma}.h5"
        assert main(["solve", "--model", str(folder / "piddm"), "--obs", str(tmp_path / "obs.h5"), "--ensemble", "2",
                     "--steps", "2", "-o", str(out), *extra]) == 0
        with h5py.File(out, "r") as h:
            recorded = json.loads(h.attrs["solve"])
            assert (recorded["residual_norm"], recorded["precision"]) == (sigma, precision)
            assert recorded["compile"] == ("--compile" in extra) and len(compiled) == int("--compile" in extra)
            assert "exact_lr" not in recorded  # piddm has no exact phase
            assert (recorded["lambda"], recorded["lr"]) == (1.0, 0.05)  # what "default" resolved to, not None
    out = tmp_path / "exact.h5"
    assert main(["solve", "--model", str(folder / "piddm"), "--obs", str(tmp_path / "obs.h5"), "--ensemble", "2",
                 "--steps", "2", "--method", "piddm-exact", "--lr", "0.04", "-o", str(out)]) == 0
    with h5py.File(out, "r") as h:
        recorded = json.loads(h.attrs["solve"])
        assert (recorded["exact_lr"], recorded["continue_moments"]) == (pytest.approx(0.004), True)  # a whole channel
        assert recorded["lr"] == 0.04
