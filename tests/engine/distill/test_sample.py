"""PIDDM-ref lowers the residual; piddm distill / piddm sample --model STUDENT end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import engine.cli.train_cmds as train_cmds
from engine.cli.main import main
from engine.distill.generator import load_student
from engine.distill.loss import residual_energy
from engine.distill.sample import refine, sample_student
from engine.distill.train import distill
from engine.errors import ConfigError
from engine.io.hdf5 import read_fields

HAS_STUDENT_SAMPLE = hasattr(train_cmds, "sample_student_cmd")


@pytest.fixture(scope="module")
def student_run(distill_cfg, tmp_path_factory):
    """A pure-distillation student (λ = 0), so any drop of the residual comes from refinement."""
    run = tmp_path_factory.mktemp("student") / "s"
    distill(distill_cfg(lam=0.0, steps=10), run)
    return run


@pytest.fixture(scope="module")
def student(student_run):
    return load_student(student_run)


def _energy(student, eps) -> torch.Tensor:
    with torch.no_grad():
        return residual_energy(student.pde, student.generate(eps), student.grid)


def test_refinement_lowers_the_residual(student):
    eps = student.noise(list(range(100, 116)))
    before = _energy(student, eps)
    # λ_infer is relative to s, the teacher's mean r² (large for this barely trained teacher)
    refined = refine(student, eps, 10, lam_infer=1000.0, lr=0.05)
    assert refined.shape == eps.shape and not refined.requires_grad
    after = _energy(student, refined)
    assert float(after.mean()) <= 0.6 * float(before.mean()), (float(after.mean()), float(before.mean()))
    assert torch.equal(refine(student, eps, 0), eps)
    # per sample: refining a sample alone or in a batch moves it the same way (Adam is element-wise)
    alone = refine(student, eps[3:4], 10, lam_infer=1000.0, lr=0.05)
    torch.testing.assert_close(alone, refined[3:4], rtol=1e-4, atol=1e-5)


def test_sample_student_refine_and_seeds(student):
    one = sample_student(student, 4, seed=2, batch=4)
    assert one.fields.shape == (4, *student.latent_shape) and one.nfe == 1 and one.path is None
    # per-sample seeds: the batch size does not change the samples
    np.testing.assert_allclose(sample_student(student, 4, seed=2, batch=3).fields, one.fields, rtol=1e-5, atol=1e-5)
    ref = sample_student(student, 4, seed=2, batch=4, refine_steps=10, lam_infer=1000.0, refine_lr=0.05)
    assert ref.nfe == 11 and ref.refine == 10
    assert ref.residual_mse < one.residual_mse


def test_cli_distill_then_sample(teacher_run, tmp_path, capsys):
    run = tmp_path / "student"
    assert main(["distill", "--teacher", str(teacher_run), "-o", str(run), "--lambda", "0.1", "--pairs", "16",
                 "--sampler-steps", "3", "--steps", "4", "--batch", "4", "--device", "cpu", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["step"] == 4 and res["stopped"] == "steps" and res["residual_scale"] > 0
    assert (run / "checkpoint.pt").is_file() and (run / "pairs.h5").is_file()
    if not HAS_STUDENT_SAMPLE:
        pytest.skip("piddm sample has no student branch yet")
    out = tmp_path / "out.h5"
    assert main(["sample", "--model", str(run), "-n", "4", "--refine", "3", "--device", "cpu",
                 "-o", str(out), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["n"] == 4 and res["refine"] == 3 and res["nfe"] == 4
    ff = read_fields(out)
    assert ff.method == "piddm-ref" and ff.fields.shape == (4, 2, 16, 16) and ff.residual.shape == (4, 16, 16)


def test_a_run_directory_is_listed_with_what_its_config_tells(student):
    """A run without a card.json (one trained in the app) is described by its config.json: kind, λ
    (a λ = 0 run offers the distill method), parameters; not by the config's raw layout keys."""
    from engine.models import find_runs, read_card

    run = student.path.parent  # the checkpoint's folder
    card = read_card(run)
    assert card["kind"] == "student" and card["lambda"] == 0.0 and card["parameters"] > 0
    assert not {"format", "type", "config", "meta"} & set(card)
    (info,) = find_runs(run)
    assert info.kind == "student" and info.card == card and info.path == run


def _sample_error(capsys, argv) -> str:
    assert main(["sample", *map(str, argv)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("piddm: error: ") and err.count("\n") == 1, err
    return err


def test_sample_refuses_bad_numbers_before_loading_the_model(tmp_path, capsys):
    """--lambda-infer -1 pushed the samples up the residual and --refine-lr 0 refined nothing, both
    silently. The model path does not exist: the number is refused first."""
    nowhere = tmp_path / "nowhere"
    for argv, flag, want in ((["--lambda-infer", "-1"], "--lambda-infer", "≥ 0"), (["--lambda-infer", "nan"], "--lambda-infer", "≥ 0"),
                             (["--refine-lr", "0"], "--refine-lr", "> 0"), (["--refine-lr", "inf"], "--refine-lr", "> 0"),
                             (["--refine", "-1"], "--refine", "≥ 0"), (["--steps", "0"], "--steps", "≥ 1"),
                             (["--batch", "0"], "--batch", "≥ 1")):
        err = _sample_error(capsys, ["--model", nowhere, "-n", "2", *argv, "-o", tmp_path / "x.h5"])
        assert err.startswith(f"piddm: error: {flag} must be a ") and want in err, err
    assert "-n must be a whole number ≥ 1, got 0" in _sample_error(capsys, ["--model", nowhere, "--n", "0", "-o", tmp_path / "x.h5"])


def test_sample_student_checks_the_refinement_settings(student):
    for kw, name in (({"lam_infer": -1.0}, "lam_infer"), ({"refine_lr": 0.0}, "refine_lr"),
                     ({"refine_lr": float("nan")}, "refine_lr"), ({"refine_steps": -1}, "refine_steps")):
        with pytest.raises(ConfigError, match=name):
            sample_student(student, 2, **kw)


def test_sample_takes_n_as_generate_does_and_words_one_step_right(teacher_run, tmp_path, capsys):
    """``--n`` as in ``piddm generate``; one Heun step and one sample are singular; a student's
    refinement options given for a teacher are refused rather than ignored."""
    assert main(["sample", "--model", str(teacher_run), "--n", "1", "--steps", "1", "--device", "cpu",
                 "-o", str(tmp_path / "t.h5")]) == 0
    assert "wrote 1 teacher sample (1 Heun step, NFE 1)" in capsys.readouterr().out
    for flag, value in (("--lambda-infer", "3"), ("--refine-lr", "0.1"), ("--refine", "2")):
        err = _sample_error(capsys, ["--model", teacher_run, "-n", "1", flag, value, "-o", tmp_path / "t.h5"])
        assert f"{flag} applies to a distilled student, not to a teacher" in err


def test_sample_refuses_heun_steps_for_a_one_step_student(student_run, tmp_path, capsys):
    """--steps (the teacher's Heun steps) was ignored for a student without a word."""
    err = _sample_error(capsys, ["--model", student_run, "-n", "1", "--steps", "40", "-o", tmp_path / "s.h5"])
    assert "--steps is the Heun steps of a teacher" in err and "--refine K" in err
    assert not (tmp_path / "s.h5").exists()
    assert main(["sample", "--model", str(student_run), "-n", "1", "-o", str(tmp_path / "s.h5")]) == 0


def test_a_student_moved_without_its_teacher_names_where_the_teacher_was(student_run, tmp_path):
    """The teacher baselines need the student's teacher, found by the path its checkpoint records
    (relative to the run): a student copied elsewhere alone gets that path in the error, not a bare
    "needs a model with a teacher"."""
    import shutil

    from engine.models import load_model
    from engine.solve.api import SolveOptions, solve
    from engine.solve.observations import Observations

    moved = tmp_path / "elsewhere" / "s"
    shutil.copytree(student_run, moved)
    model = load_model(moved)
    assert model.student is not None and model.teacher is None
    truth = model.pde.solve(model.pde.sample_inputs([5], model.grid), model.grid).numpy()
    obs = Observations.from_task(model.pde, truth, "forward", "full", seed=0)
    with pytest.raises(ConfigError, match=r"needs this student's teacher, recorded as .*teacher.*move together"):
        solve(model, model.pde, obs, SolveOptions(method="diffusionpde", steps=2, ensemble=1))
