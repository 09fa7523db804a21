"""Finding and loading models: bundled ones (resources/models/<pde>/<name>/, further sets of a PDE in
resources/models/<pde>-<grid>/<name>/) and run directories.

A model folder holds ``checkpoint.pt`` (kind "teacher" or "student") and, when bundled, a model
card ``card.json`` (PDE, grid, sizes, training data and budget, bench figures, guidance weights).
Everything loads through the same safe loaders (``torch.load(weights_only=True)``).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from engine.diffusion.model import Teacher, load_teacher
from engine.distill.generator import Student, load_student
from engine.errors import CheckpointError, EngineError
from engine.grid import Grid
from engine.io.checkpoint import FILENAME, load_checkpoint, resolve
from engine.io.rundir import RunDir

CARD = "card.json"


@dataclass(frozen=True)
class ModelInfo:
    """A model found on disk, before loading its weights."""

    pde: str
    name: str  # folder name: "teacher", "piddm", "distill", or a run's name
    kind: str  # "teacher" | "student"
    path: Path  # the model folder
    card: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def label(self) -> str:
        return f"{self.pde} · {self.name}"


@dataclass
class Model:
    """A loaded model: a student (with its teacher when found) or a teacher alone."""

    kind: str
    path: Path
    pde: Any  # engine.pdes.PDE
    grid: Grid
    card: dict[str, Any]
    student: Student | None = None
    teacher: Teacher | None = None


def bundled_root() -> Path:
    """resources/models beside the engine package (source tree, installed wheel, frozen app).

    Found from ``engine``'s own location rather than by importing ``resources``: a folder named
    ``resources`` in the working directory would shadow that generic name."""
    import engine

    return Path(engine.__file__).resolve().parents[1] / "resources" / "models"


def read_card(folder: Path) -> dict[str, Any]:
    """The model card of a folder, or a minimal one built from its config.json (a run directory)."""
    for name in (CARD, "config.json"):
        p = folder / name
        if p.is_file():
            data = _read_json(p)
            return (data or {}) if name == CARD else _run_card(data, folder)
    return {}


def _run_card(saved: Any, folder: Path) -> dict[str, Any]:
    """What a card says that a run's config.json (``engine.io.rundir``: {"config", "meta"}) and
    metrics.jsonl can tell: kind, PDE, its parameters, grid and U-Net size (a student's from its teacher's config), λ
    (student), parameters, the device, and the steps and seconds trained so far. With the PDE known,
    listing a run reads no checkpoint (``_info``): a listing runs on the GUI thread."""
    config, meta = (saved.get(k) if isinstance(saved, dict) else None for k in ("config", "meta"))
    if not isinstance(config, dict) or not isinstance(meta, dict):
        return {}
    trained = config  # the teacher's config: PDE, grid and U-Net size (a student keeps its teacher's)
    if config.get("teacher"):
        teacher = _read_json(Path(config["teacher"]) / "config.json")
        trained = (teacher.get("config") if isinstance(teacher, dict) else None) or {}
    card = {"kind": meta.get("kind"), "pde": trained.get("pde"), "pde_params": trained.get("pde_params"),
            "grid": trained.get("grid_n"),
            "parameters": meta.get("n_params"), "model_size": trained.get("model"),
            "lambda": config.get("lam"), "hardware": meta.get("device")}
    try:
        done = next((r for r in reversed(RunDir(folder).read_metrics()) if "elapsed" in r), None)
    except (OSError, ValueError, EngineError):
        done = None
    if done is not None:  # the card key describe() shows as "teacher training" / "distillation"
        card["teacher_training" if meta.get("kind") == "teacher" else "training"] = {
            "steps": done.get("step"), "seconds": done.get("elapsed")}
    return {k: v for k, v in card.items() if v is not None}


def _read_json(path: Path) -> Any:
    """The JSON document in ``path``, or None when it cannot be read or parsed."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


def _info(folder: Path) -> ModelInfo | None:
    if not (folder / FILENAME).is_file():
        return None
    card = read_card(folder)
    kind = card.get("kind", "")
    pde = card.get("pde", "")
    if not kind or not isinstance(pde, str) or not pde:
        try:
            ckpt = load_checkpoint(folder)
        except CheckpointError:
            return None
        kind, pde = str(ckpt.get("kind", "")), str((ckpt.get("pde") or {}).get("name", ""))
    return ModelInfo(pde=pde, name=folder.name, kind=kind, path=folder, card=card)


SET_MEMBERS = ("piddm", "distill", "teacher")  # a bundled set's model folders, in the order they are offered


def bundled_models() -> list[ModelInfo]:
    """Bundled models, students first (piddm before distill), then teachers; PDEs in registry order."""
    from engine import pdes

    root = bundled_root()
    order = {name: i for i, name in enumerate(SET_MEMBERS)}
    out = []
    for pde in pdes.names():
        # resources/models/<pde>/ first, then further sets of the same PDE: <pde>-<grid>/ (e.g. darcy-32)
        sets = [root / pde, *sorted(root.glob(f"{pde}-*"))]
        for folder in (f for f in sets if f.is_dir()):
            found = [i for i in (_info(d) for d in sorted(folder.iterdir()) if d.is_dir()) if i]
            out += sorted(found, key=lambda i: order.get(i.name, 9))
    return out


def find_runs(folder: str | os.PathLike[str], depth: int = 2) -> list[ModelInfo]:
    """Run directories holding a checkpoint: ``folder`` itself and the folders up to ``depth`` levels
    below it (a runs folder of the app's chains holds <chain>/teacher and <chain>/student), in path
    order. Folders inside a run (its previews) are not searched."""
    root = Path(folder)
    if not root.is_dir():
        return []
    if (info := _info(root)) is not None:
        return [info]
    if depth == 0:
        return []
    try:
        children = sorted(p for p in root.iterdir() if p.is_dir())
    except OSError:  # unreadable: nothing found there
        return []
    return [i for child in children for i in find_runs(child, depth - 1)]


def load_model(path: str | os.PathLike[str], device: str | torch.device = "cpu") -> Model:
    """Load a teacher or student folder (or checkpoint file). A student brings its teacher along
    when the folder it records exists (needed by the diffusionpde and teacher baselines)."""
    ckpt_path = resolve(path)
    members = [m for m in SET_MEMBERS if (Path(path) / m / FILENAME).is_file()]
    if not ckpt_path.is_file() and members:  # a bundled set (resources/models/<pde>) holds several
        others = f" (or {' or '.join(members[1:])} inside it)" if len(members) > 1 else ""
        raise CheckpointError(f"{path} is a set of models, not one: pass {Path(path) / members[0]}{others}")
    folder = ckpt_path.parent
    kind = str(load_checkpoint(ckpt_path).get("kind", ""))
    card = read_card(folder)
    if kind == "student":
        student = load_student(ckpt_path, device)
        teacher = None
        if student.teacher_path is not None and resolve(student.teacher_path).is_file():
            teacher = load_teacher(student.teacher_path, device)
        return Model(kind, folder, student.pde, student.grid, card, student=student, teacher=teacher)
    if kind == "teacher":
        teacher = load_teacher(ckpt_path, device)
        return Model(kind, folder, teacher.pde, teacher.grid, card, teacher=teacher)
    raise CheckpointError(f"{ckpt_path}: a {kind!r} checkpoint is not a model")
