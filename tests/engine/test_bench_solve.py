"""bench_solve on a tiny real model folder (16² teacher + piddm and distill students, a few steps)."""

from __future__ import annotations

import json

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
        assert set(row) >= {"rel_l2_u", "residual_mse", "bc_mse", "seconds_per_case", "nfe"}
        assert "rel_l2_a" not in row  # the coefficient is observed: not scored
        assert "peak_memory_mb" not in row  # a CPU run has no per-solve memory figure
    assert table["classical"]["bc_mse"]["mean"] < 1e-12  # u = 0 on the boundary, held by the solver
    assert table["dataspace"]["bc_mse"]["mean"] > 1e-10  # 2 L-BFGS steps leave it: the column is measured
    # the reference solver, and piddm-exact with the whole coefficient, give the truth
    for m in ("classical", "piddm-exact"):
        assert table[m]["rel_l2_u"]["mean"] < 1e-5
        assert table[m]["residual_mse"]["mean"] < 1e-8
    assert table["piddm"]["rel_l2_u"]["mean"] > 1e-3  # a 2-step student is not the truth
    text = format_table(res)
    assert "obs full" in text and all(m in text for m in METHODS)
    assert res["residual_norm"] == 1.0 and "σ 1" in text  # forward from the whole a: u measured in H^-2
    # one seed has no spread: null, not a 0 that reads as "perfectly reproducible"
    assert all(cell["std"] is None for row in table.values() for cell in row.values())
    assert "null" in json.dumps(res) and "± " not in text
    # the JSON says what it measured and when
    assert res["models"] == str(folder) and res["cases"] == 2 and res["software_version"]
    assert res["created"].startswith("20")


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
    assert (table["piddm"]["nfe"]["mean"], table["piddm@5"]["nfe"]["mean"]) == (4, 7)  # steps + 1, and the pass that fixes the residual scale s
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
    for name in ("teacher", "piddm", "distill"):  # every member: a solve reads the card of the folder named
        card = json.loads((copy / name / "card.json").read_text())
        weights, record = card["guidance"]["forward"], card["guidance_tuning"]["forward"]
        finite = [s for s in record["scores"] if s["rel_l2"] is not None]
        best = min(finite, key=lambda s: s["rel_l2"])
        assert len(record["scores"]) >= 4  # ζ_obs 0.3, 1 (default), 3; then ζ_pde factors 0, 1e-2
        assert weights["zeta_obs"] == best["zeta_obs"] and weights["rel_l2"] == best["rel_l2"]
        assert weights["spec"] == "points:20" and record["grid"] == 16
    for name in ("teacher", "piddm"):
        model = load_model(copy / name)
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
    assert out.read_text().endswith("}\n")  # a text file: its last line ends
    assert (res["steps"], res["guidance_steps"]) == (2, 3)
    assert (res["candidates"], res["residual_norm"]) == (1, 0.0)  # from points: no screening, plain residual
    assert res["precision"].startswith("float32 networks")  # the default
    assert res["table"]["piddm"]["nfe"]["mean"] == 4  # steps + 1 generator evaluations, + 1 for the scale s
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
    # piddm-exact from the whole u (from the whole coefficient it is the reference solve, nothing to record)
    write_fields(tmp_path / "obs_u.h5", FieldsFile(fields=truth, pde="darcy", channels=pde.fields, mask=~mask))
    out = tmp_path / "exact.h5"
    assert main(["solve", "--model", str(folder / "piddm"), "--obs", str(tmp_path / "obs_u.h5"), "--ensemble", "2",
                 "--steps", "2", "--method", "piddm-exact", "--lr", "0.04", "-o", str(out)]) == 0
    with h5py.File(out, "r") as h:
        recorded = json.loads(h.attrs["solve"])
        assert (recorded["exact_lr"], recorded["continue_moments"]) == (pytest.approx(0.004), True)  # a whole channel
        assert recorded["lr"] == 0.04


def _bench_error(capsys, argv: list[str]) -> str:
    """The one line ``piddm bench ARGV`` prints when it refuses."""
    from engine.cli.main import main

    assert main(["bench", *map(str, argv)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("piddm: error: ") and err.count("\n") == 1, err
    return err


@pytest.fixture
def no_bench_work(monkeypatch):
    """Both benches stop at once with a recognisable error, recording the folder they were given:
    a refusal that shows instead came before any of the work."""
    import engine.bench
    import engine.bench_solve

    reached: list = []

    def stop(folder, **kw):
        reached.append(folder)
        raise ConfigError("bench reached")

    monkeypatch.setattr(engine.bench, "bench_generate", stop)
    monkeypatch.setattr(engine.bench_solve, "bench_solve", stop)
    return reached


def test_bench_refuses_another_pde_or_grid_before_any_work(folder, capsys, no_bench_work):
    """--pde and --grid were checked after the whole bench (--pde), or never (--grid): a bench of the
    wrong models ran for minutes, then failed or reported the models' grid."""
    solve = ["--task", "forward", "--obs", "full", "--methods", "classical", "--cases", "1", "--seeds", "1"]
    assert "holds darcy models, not poisson" in _bench_error(capsys, ["--pde", "poisson", "--models", folder, *solve])
    err = _bench_error(capsys, ["--pde", "navier", "--models", folder, *solve])
    assert "unknown PDE 'navier'; known: darcy, poisson" in err
    assert "--pde darcy --grid 32" in _bench_error(capsys, ["--pde", "darcy-32", *solve])
    assert "multiples of 8" in _bench_error(capsys, ["--pde", "darcy", "--grid", "17", "--models", folder, *solve])
    err = _bench_error(capsys, ["--pde", "darcy", "--grid", "32", "--models", folder, "-n", "2"])
    assert f"--grid 32: the models in {folder} are on a 16² grid" in err
    err = _bench_error(capsys, ["--pde", "darcy", "--grid", "48", *solve])
    assert "no bundled darcy models on a 48² grid" in err and "32² (darcy-32)" in err
    assert no_bench_work == []
    # a matching --grid is taken, and picks the bundled set on that grid
    assert "bench reached" in _bench_error(capsys, ["--pde", "darcy", "--grid", "16", "--models", folder, *solve])
    assert "bench reached" in _bench_error(capsys, ["--pde", "darcy", "--grid", "32", *solve])
    assert no_bench_work[0] == folder and no_bench_work[1].name == "darcy-32"


@pytest.mark.parametrize("argv", [
    ["--task", "forward", "--cases", "0"], ["--task", "forward", "--ensemble", "0"],
    ["--task", "forward", "--steps", "-2"], ["--task", "inverse", "--candidates", "0"],
    ["--task", "inverse", "--guidance-steps", "0"], ["--task", "inverse", "--residual-norm", "nan"],
    ["--task", "inverse", "--residual-norm", "3"], ["--seeds", "0"], ["-n", "1"],
    ["--sampler-steps", "0"], ["--refine", "-1"], ["--lambda-infer", "nan"], ["--lambda-infer", "-1"],
    ["--refine-lr", "-1"], ["--refine-lr", "0"], ["--refine-lr", "inf"]])
def test_bench_refuses_a_bad_number_in_one_line_before_any_work(folder, capsys, no_bench_work, argv):
    """--sampler-steps 0 and --refine-lr -1 were tracebacks after the data were solved; --refine -1 and
    --lambda-infer nan ran to a row "piddm-ref (k=-1)" or a table of NaN."""
    flag = next(a for a in argv if a.startswith("-") and a != "--task")
    err = _bench_error(capsys, ["--pde", "darcy", "--models", folder, *argv])
    assert err.startswith(f"piddm: error: {'--n' if flag == '-n' else flag} must be a "), err
    assert no_bench_work == []


def test_bench_engine_functions_check_their_numbers_before_loading(folder, monkeypatch):
    import engine.bench_solve
    from engine.bench import bench_generate

    monkeypatch.setattr(engine.bench_solve, "_models", lambda *a: pytest.fail("models loaded"))
    for kw in ({"ensemble": 0}, {"guidance_steps": 0}, {"candidates": 0}, {"residual_norm": float("nan")},
               {"lam": -1.0}, {"lr": 0.0}):
        with pytest.raises(ConfigError, match=next(iter(kw))):
            bench_solve(folder, task="forward", obs="full", cases=1, seeds=1, **kw)
    for kw in ({"sampler_steps": 0}, {"refine_steps": -1}, {"lam_infer": float("nan")}, {"refine_lr": -1.0}):
        with pytest.raises(ConfigError, match=next(iter(kw))):
            bench_generate(folder / "nowhere", n=2, seeds=1, **kw)


def test_a_folder_of_runs_side_by_side_gets_the_layout_and_what_it_holds(folder, tmp_path, capsys):
    """The README's runs/darcy-teacher and runs/darcy-piddm beside each other are no set: the refusal
    says what --models takes and what the folder holds."""
    import shutil

    runs = tmp_path / "runs"
    shutil.copytree(folder / "teacher", runs / "darcy-teacher")
    shutil.copytree(folder / "piddm", runs / "darcy-piddm")
    (runs / "notes.txt").write_text("")
    layout = "a folder holding teacher/ and student folders such as piddm/ and distill/"
    holds = "it holds darcy-piddm/ (student), darcy-teacher/ (teacher), notes.txt"
    for task in ("generate", "forward"):
        err = _bench_error(capsys, ["--pde", "darcy", "--task", task, "--models", runs])
        assert layout in err and holds in err, err
    err = _bench_error(capsys, ["--pde", "darcy", "--models", tmp_path / "nowhere"])
    assert "no such folder" in err and layout in err
    (empty := tmp_path / "empty").mkdir()
    assert "it holds nothing" in _bench_error(capsys, ["--pde", "darcy", "--models", empty])


def test_bench_table_says_one_seed(folder):
    res = bench_solve(folder, task="forward", obs="full", cases=1, seeds=1, methods=["classical"])
    text = format_table(res)
    assert "n=1 × 1 seed ·" in text and "±" not in text  # one seed has no spread to show
