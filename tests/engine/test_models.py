"""Finding bundled model sets: resources/models/<pde>/ first, further sets <pde>-<grid>/ after it."""

from __future__ import annotations

import json

import pytest

import engine.models as models
from engine.errors import CheckpointError


def _fake_model(folder, pde: str, kind: str) -> None:
    folder.mkdir(parents=True)
    (folder / models.FILENAME).write_bytes(b"")  # listing reads the card only, never the weights
    (folder / models.CARD).write_text(json.dumps({"pde": pde, "kind": kind}))


def test_bundled_sets_of_a_pde_are_listed_main_set_first(tmp_path, monkeypatch):
    for folder in ("darcy-32", "darcy", "poisson", "darcyish"):
        pde = "poisson" if folder == "poisson" else "darcy"
        for name, kind in (("teacher", "teacher"), ("piddm", "student"), ("distill", "student")):
            _fake_model(tmp_path / folder / name, pde, kind)
    monkeypatch.setattr(models, "bundled_root", lambda: tmp_path)
    listed = [(i.path.parent.name, i.name) for i in models.bundled_models()]
    assert listed == [("darcy", "piddm"), ("darcy", "distill"), ("darcy", "teacher"),
                      ("darcy-32", "piddm"), ("darcy-32", "distill"), ("darcy-32", "teacher"),
                      ("poisson", "piddm"), ("poisson", "distill"), ("poisson", "teacher")]


def test_a_set_folder_given_as_a_model_is_refused_naming_its_models(tmp_path):
    for name, kind in (("teacher", "teacher"), ("piddm", "student")):
        _fake_model(tmp_path / "darcy" / name, "darcy", kind)
    with pytest.raises(CheckpointError, match=r"darcy is a set of models, not one: pass .*darcy/piddm \(or teacher"):
        models.load_model(tmp_path / "darcy")
    with pytest.raises(CheckpointError, match="no such checkpoint"):  # an empty folder stays a missing checkpoint
        models.load_model(tmp_path)
    _fake_model(tmp_path / "poisson" / "distill", "poisson", "student")
    with pytest.raises(CheckpointError, match=r"pass .*poisson/distill$"):  # one model: nothing else to name
        models.load_model(tmp_path / "poisson")


def test_find_runs_looks_two_levels_down_but_not_inside_a_run(tmp_path):
    """A runs folder of the app's chains holds <chain>/teacher and <chain>/student."""
    _fake_model(tmp_path / "darcy-16" / "teacher", "darcy", "teacher")
    _fake_model(tmp_path / "darcy-16" / "student", "darcy", "student")
    _fake_model(tmp_path / "one", "darcy", "student")
    _fake_model(tmp_path / "one" / "inner", "darcy", "student")  # inside a run: not searched
    _fake_model(tmp_path / "a" / "b" / "c", "darcy", "student")  # three levels down: not searched
    found = [i.path.relative_to(tmp_path).as_posix() for i in models.find_runs(tmp_path)]
    assert found == ["darcy-16/student", "darcy-16/teacher", "one"]
    assert [i.path for i in models.find_runs(tmp_path / "one")] == [tmp_path / "one"]
    assert [i.path for i in models.find_runs(tmp_path / "a", depth=3)] == [tmp_path / "a" / "b" / "c"]
    assert models.find_runs(tmp_path / "missing") == []


def _fake_run(folder, config: dict, kind: str) -> None:
    folder.mkdir(parents=True)
    (folder / models.FILENAME).write_bytes(b"")  # not a checkpoint: a listing that loads it finds nothing
    (folder / "config.json").write_text(json.dumps({"config": config, "meta": {"kind": kind, "n_params": 7}}))


def test_a_run_is_listed_from_its_config_without_reading_its_checkpoint(tmp_path):
    """Listing runs happens on the GUI thread (start-up, Open run…): PDE and grid come from the
    config.json files (a student's from its teacher's), never from a checkpoint load."""
    teacher = tmp_path / "helmholtz-16" / "teacher"
    _fake_run(teacher, {"pde": "helmholtz", "grid_n": 16, "model": "tiny"}, "teacher")
    _fake_run(tmp_path / "helmholtz-16" / "student", {"teacher": str(teacher), "lam": 0.1}, "student")
    found = {i.name: (i.pde, i.kind, i.card.get("grid"), i.card.get("model_size")) for i in models.find_runs(tmp_path)}
    assert found == {"student": ("helmholtz", "student", 16, "tiny"), "teacher": ("helmholtz", "teacher", 16, "tiny")}


def test_every_member_of_a_bundled_set_carries_the_same_tuned_guidance_weights():
    """The diffusionpde / teacher methods read ζ from the card of the folder --model names: a set's
    teacher/ must not give other (untuned or stale) weights than its piddm/ (packaging/tune_guidance.py
    writes all three)."""
    from engine.models import SET_MEMBERS, bundled_root

    sets = [d for d in sorted(bundled_root().iterdir()) if (d / "teacher" / "card.json").is_file()]
    assert len(sets) >= 5
    for d in sets:
        weights = {m: json.loads((d / m / "card.json").read_text()).get("guidance") for m in SET_MEMBERS
                   if (d / m / "card.json").is_file()}
        assert weights["teacher"], d.name
        assert all(w == weights["teacher"] for w in weights.values()), d.name
