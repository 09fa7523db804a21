"""`piddm bench --task generate`: one run, one table of every generation method."""

from __future__ import annotations

import dataclasses
import json
import shutil

import pytest

from engine.bench import bench_generate, format_table, model_costs
from engine.cli.main import main
from engine.distill.train import distill
from engine.errors import ConfigError
from engine.io.checkpoint import load_checkpoint


@pytest.fixture(scope="module")
def models(teacher_run, distill_cfg, tmp_path_factory):
    """teacher/ + distill (λ = 0) + piddm + one sweep student that steers the solution only."""
    root = tmp_path_factory.mktemp("models")
    shutil.copytree(teacher_run, root / "teacher")
    cfg = distill_cfg(teacher=str(root / "teacher"), steps=3)
    distill(dataclasses.replace(cfg, lam=0.0), root / "distill")
    distill(cfg, root / "piddm")
    distill(dataclasses.replace(cfg, physics_on="solution", lam_warmup=0.5), root / "sweep-sol")
    return root


def test_generation_bench_table(models):
    res = bench_generate(models, n=4, seeds=2, sampler_steps=3, refine_steps=2, n_reference=8)
    table = res["table"]
    assert list(table) == ["held-out data", "teacher (Heun 3)", "distill", "piddm", "piddm-ref (k=2)",
                           "sweep-sol (λ=0.1, warm-up 0.5, physics on solution)"]
    nfe = {name: row["nfe"]["mean"] for name, row in table.items()}
    assert nfe == {**dict.fromkeys(table, 1.0), "held-out data": 0.0, "teacher (Heun 3)": 5.0, "piddm-ref (k=2)": 3.0}
    # fresh reference solves satisfy the discrete PDE; the young models do not
    assert table["held-out data"]["residual_mse"]["mean"] < 1e-8
    assert table["teacher (Heun 3)"]["residual_mse"]["mean"] > 1e-3
    for row in table.values():
        assert {"mmse_a", "smse_a", "mmse_u", "smse_u", "bc_mse", "samples_per_s"} <= set(row)
        assert all(v["std"] >= 0 for v in row.values())
    # two seeds draw different samples, so the teacher's residual varies between them
    assert table["teacher (Heun 3)"]["residual_mse"]["std"] > 0
    assert res["ratios"]["teacher (Heun 3)"] == {"residual_vs_teacher": 1.0, "speedup_vs_teacher": 1.0}
    assert res["costs"]["teacher"]["steps"] == 20 and res["costs"]["piddm"]["steps"] == 3
    assert res["costs"]["piddm"]["pair_seconds"] > 0 and res["costs"]["piddm"]["seconds"] > 0
    text = format_table(res)
    assert "piddm-ref (k=2)" in text and "n=4 × 2 seeds" in text and " ± " in text


def test_generation_bench_needs_a_teacher(tmp_path):
    with pytest.raises(ConfigError, match="teacher/"):
        bench_generate(tmp_path)


def test_generation_bench_command_writes_json(models, tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["bench", "--pde", "darcy", "--task", "generate", "--models", str(models), "-n", "2",
                 "--seeds", "1", "--sampler-steps", "2", "--refine", "1", "-o", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["task"] == "generate" and doc["n"] == 2 and "piddm-ref (k=1)" in doc["table"]
    assert "piddm" in capsys.readouterr().out


def test_generation_bench_of_raw_student_weights(models, tmp_path):
    from engine.distill.generator import load_student
    from engine.errors import CheckpointError
    from engine.io.checkpoint import load_checkpoint, save_checkpoint

    ema = bench_generate(models, n=3, seeds=1, sampler_steps=2, refine_steps=0, n_reference=8)
    raw = bench_generate(models, n=3, seeds=1, sampler_steps=2, refine_steps=0, n_reference=8,
                         student_weights="model")
    assert raw["student_weights"] == "model"
    # the EMA (half-life 2 steps over 3 steps) differs from the last step's weights
    assert raw["table"]["piddm"]["residual_mse"] != ema["table"]["piddm"]["residual_mse"]
    assert raw["table"]["teacher (Heun 2)"]["residual_mse"] == ema["table"]["teacher (Heun 2)"]["residual_mse"]
    slim = {k: v for k, v in load_checkpoint(models / "piddm").items() if k != "model"}
    save_checkpoint(tmp_path / "checkpoint.pt", slim)
    load_student(tmp_path)  # EMA weights are there
    with pytest.raises(CheckpointError, match="no 'model' weights"):
        load_student(tmp_path, weights="model")


def test_costs_of_a_run_folder_with_a_card_come_from_its_metrics(models, tmp_path):
    """A run folder may get a card.json with other entries (tuned guidance weights): costs stay."""
    run = tmp_path / "piddm"
    shutil.copytree(models / "piddm", run)
    expected = model_costs(run)
    (run / "card.json").write_text(json.dumps({"guidance": {"forward": {"zeta_obs": 1.0, "zeta_pde": 0.0}}}))
    assert model_costs(run) == expected and expected["steps"] == 3
    (run / "card.json").write_text(json.dumps({"training": {"seconds": 12.5, "steps": 220}}))
    assert model_costs(run) == {"seconds": 12.5, "steps": 220}  # a bundled model's card wins


def test_bundle_runs_gives_run_folders_the_bundled_form(models, tmp_path, packaging_script):
    """packaging/bundle_runs.py: float16 EMA weights, students find ../teacher, cards carry the record."""
    from pathlib import Path

    import torch

    from engine.models import load_model

    bundle = packaging_script("bundle_runs")
    bench = tmp_path / "bench.json"
    bench.write_text(json.dumps(bench_generate(models, n=2, seeds=1, sampler_steps=2, refine_steps=0, n_reference=4)))
    out = tmp_path / "resources" / "models" / "darcy-16"
    assert bundle.main([str(models), "--bench", str(bench), "--out", str(out), "--hardware", "test"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["distill", "piddm", "teacher"]
    card = json.loads((out / "piddm" / "card.json").read_text())
    assert (card["kind"], card["grid"], card["lambda"], card["hardware"]) == ("student", 16, 0.1, "test")
    assert card["training"]["steps"] == 3 and "piddm" in card["bench_generate"]
    ckpt = torch.load(out / "piddm" / "checkpoint.pt", weights_only=True)
    assert "optimizer" not in ckpt and all(v.dtype == torch.float16 for v in ckpt["ema"].values()
                                           if v.is_floating_point())
    model = load_model(out / "piddm")  # the teacher comes from ../teacher, not the run's folder
    assert model.teacher is not None and Path(model.teacher.path).resolve().parent == (out / "teacher").resolve()
    bad = json.loads(bench.read_text()) | {"grid": 64}
    bench.write_text(json.dumps(bad))
    with pytest.raises(SystemExit, match="64"):
        bundle.main([str(models), "--bench", str(bench), "--out", str(tmp_path / "other")])


def test_make_models_teacher_from_keeps_the_teacher_and_redistills(models, tmp_path, packaging_script):
    """make_models.py --teacher-from SET: teacher and λ = 0 student kept byte for byte, a new PIDDM
    student with the asked λ, the set's tuned guidance carried, the old student benched beside it."""
    bench = tmp_path / "bench.json"
    bench.write_text(json.dumps(bench_generate(models, n=2, seeds=1, sampler_steps=2, refine_steps=0, n_reference=4)))
    old = tmp_path / "set" / "darcy"
    assert packaging_script("bundle_runs").main([str(models), "--bench", str(bench), "--out", str(old)]) == 0
    card = json.loads((old / "piddm" / "card.json").read_text())
    guidance = {"forward": {"zeta_obs": 30.0, "zeta_pde": 0.01}}
    (old / "piddm" / "card.json").write_text(json.dumps({**card, "guidance": guidance}))
    make = packaging_script("make_models")
    new = tmp_path / "new"
    assert make.main(["--teacher-from", str(tmp_path / "set"), "--pdes", "darcy", "--model", "tiny", "--lam", "0.01",
                      "--distill-minutes", "0.005", "--ablation-minutes", "0", "--pairs", "8", "--batch", "4",
                      "--sampler-steps", "2", "--bench-n", "2", "--bench-seeds", "1", "--sweep", "--device", "cpu",
                      "--work", str(tmp_path / "work"), "--out", str(new)]) == 0
    for kept in ("teacher", "distill"):
        assert (new / "darcy" / kept / "checkpoint.pt").read_bytes() == (old / kept / "checkpoint.pt").read_bytes()
    card = json.loads((new / "darcy" / "piddm" / "card.json").read_text())
    assert (card["lambda"], card["grid"], card["guidance"]) == (0.01, 16, guidance)
    assert card["teacher_training"] == json.loads((old / "teacher" / "card.json").read_text())["teacher_training"]
    assert any(row.startswith("bundled-piddm (λ=0.1,") for row in card["bench_generate"])
    with pytest.raises(SystemExit, match="no bundled teacher"):
        make.main(["--teacher-from", str(tmp_path / "new"), "--pdes", "poisson", "--work", str(tmp_path / "w2")])

    # --student-init: the new set's PIDDM student distills on from the set's, and its card adds both runs up
    on = tmp_path / "on"
    assert make.main(["--teacher-from", str(new), "--student-init", "--pdes", "darcy", "--model", "tiny",
                      "--lam", "0.01", "--distill-minutes", "0.005", "--ablation-minutes", "0", "--pairs", "8",
                      "--batch", "4", "--sampler-steps", "2", "--bench-n", "2", "--bench-seeds", "1", "--sweep",
                      "--device", "cpu", "--work", str(tmp_path / "work-on"), "--out", str(on)]) == 0
    before = card["training"]
    after = json.loads((on / "darcy" / "piddm" / "card.json").read_text())["training"]
    assert after["continued_from"] == before and after["continuation"]["steps"] > 0
    assert after["steps"] == before["steps"] + after["continuation"]["steps"]
    ckpt = load_checkpoint(on / "darcy" / "piddm")
    assert ckpt["config"]["init_from"] == str(new / "darcy" / "piddm") and ckpt["config"]["lam_warmup"] == 0
    # --piddm-init distill: the PIDDM student starts from the set's λ = 0 student, λ ramped in afresh
    fromd = tmp_path / "from-distill"
    assert make.main(["--teacher-from", str(new), "--student-init", "--piddm-init", "distill", "--pdes", "darcy",
                      "--model", "tiny", "--lam", "0.001", "--distill-minutes", "0.005", "--ablation-minutes", "0",
                      "--pairs", "8", "--batch", "4", "--sampler-steps", "2", "--bench-n", "2", "--bench-seeds", "1",
                      "--sweep", "--device", "cpu", "--work", str(tmp_path / "work-d"), "--out", str(fromd),
                      "--tune", "--tune-steps", "2"]) == 0
    ckpt = load_checkpoint(fromd / "darcy" / "piddm")
    assert ckpt["config"]["init_from"] == str(new / "darcy" / "distill") and ckpt["config"]["lam_warmup"] == 0.5
    after = json.loads((fromd / "darcy" / "piddm" / "card.json").read_text())
    source = json.loads((new / "darcy" / "distill" / "card.json").read_text())["training"]
    assert after["training"]["started_from"] == "distill" and after["training"]["continued_from"] == source
    assert after["lambda"] == 0.001
    # --tune: the student made here is tuned for every task and observation kind; the kept one is not
    assert sorted(after["solve"]) == ["forward/full", "forward/points", "inverse/full", "inverse/points"]
    assert all(r["steps"] == 2 and r["device"] == "cpu" for r in after["solve_tuning"].values())
    kept = json.loads((fromd / "darcy" / "distill" / "card.json").read_text())
    assert "solve" not in kept
    with pytest.raises(SystemExit):  # nothing to start from
        make.main(["--student-init", "--pdes", "darcy", "--work", str(tmp_path / "w3")])


def test_an_option_of_the_other_kind_of_task_is_refused_before_any_work(capsys):
    # the folder is never looked at: the refusal comes first (a generation bench takes minutes)
    for argv, flag, kinds in ((["--obs", "points:10"], "--obs", "the solve tasks"),
                              (["--task", "generate", "--steps", "5"], "--steps", "the solve tasks"),
                              (["--task", "inverse", "-n", "4"], "--n", "--task generate"),
                              (["--task", "forward", "--refine", "3"], "--refine", "--task generate")):
        assert main(["bench", "--pde", "darcy", "--models", "nowhere", *argv]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"piddm: error: {flag} applies to {kinds}") and err.count("\n") == 1, err


def test_every_bench_and_sample_option_has_help():
    """--pde (which PDEs?), --seeds, --device, --seed and --json had none; sample took only -n."""
    import argparse

    from engine import pdes
    from engine.cli.main import build_parser

    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)).choices
    for name in ("bench", "sample"):
        missing = [a.option_strings for a in commands[name]._actions if not a.help]
        assert missing == [], (name, missing)
    pde = next(a for a in commands["bench"]._actions if "--pde" in a.option_strings)
    assert all(p in pde.help for p in pdes.names())
    assert any("--n" in a.option_strings and "-n" in a.option_strings for a in commands["sample"]._actions)
