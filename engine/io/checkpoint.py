"""Plain-dict checkpoints: tensors, numbers, strings, lists and dicts only.

Saved with ``torch.save`` into memory, then written to a temporary name and renamed (a crash or a
full disk never leaves a half file); loaded with ``torch.load(weights_only=True)``, so no pickled code ever runs. Every checkpoint
describes itself: ``{"format": 1, "kind": "teacher" | "student" | ..., "pde": {"name", "params"},
"grid": {"n", "length"}, "config": {...}, ...}``. Loading checks format, kind, PDE and grid.
"""

from __future__ import annotations

import io
import os
import re
from pathlib import Path
from typing import Any

import torch

from engine.errors import CheckpointError
from engine.io.atomic import write_bytes

FORMAT = 1
FILENAME = "checkpoint.pt"


def resolve(path: str | os.PathLike[str]) -> Path:
    """A run directory means its ``checkpoint.pt``; a file path is itself."""
    p = Path(path)
    return p / FILENAME if p.is_dir() else p


def model_folder(checkpoint: str | os.PathLike[str]) -> str:
    """The absolute folder of a model's checkpoint file: how an output file names the model that made it."""
    return str(Path(checkpoint).resolve().parent)


_PLAIN = (torch.Tensor, int, float, str, bool, type(None))


def _check_plain(v: Any, where: str) -> None:
    if isinstance(v, dict):
        for k, x in v.items():
            if not isinstance(k, str | int):
                raise CheckpointError(f"checkpoint key {where}.{k!r} is a {type(k).__name__}, not str/int")
            _check_plain(x, f"{where}.{k}")
    elif isinstance(v, list | tuple):
        for i, x in enumerate(v):
            _check_plain(x, f"{where}[{i}]")
    elif type(v) not in _PLAIN and not isinstance(v, torch.Tensor):
        # e.g. numpy scalars or torch.__version__ (a TorchVersion): weights_only would refuse them
        raise CheckpointError(f"checkpoint entry {where} is a {type(v).__name__}; store plain values only")


def save_checkpoint(path: str | os.PathLike[str], ckpt: dict[str, Any]) -> Path:
    """Write ``ckpt`` atomically (``format`` is added if missing). Returns the final path.

    Raises CheckpointError if an entry is not a tensor, number, string, list or dict, since
    ``torch.load(weights_only=True)`` would refuse it.
    """
    doc = {"format": FORMAT, **ckpt}
    _check_plain(doc, "ckpt")
    final = Path(path)
    buffer = io.BytesIO()  # torch.save's own file writes fail on a full disk with a RuntimeError
    torch.save(doc, buffer)
    write_bytes(final, buffer.getbuffer())
    return final


def _reason(exc: Exception) -> str:
    """One line out of torch.load's multi-paragraph message."""
    text = str(exc)
    m = re.search(r"WeightsUnpickler error:\s*(.+)", text)
    lines = [ln.strip() for ln in (m.group(1) if m else text).splitlines() if ln.strip()]
    return (lines[0] if lines else type(exc).__name__)[:160]


def _grid_n(grid: Any) -> int:
    if isinstance(grid, dict):
        return int(grid.get("n", -1))
    return int(getattr(grid, "n", grid))


def load_checkpoint(path: str | os.PathLike[str], *, kind: str | None = None, pde: str | None = None,
                    grid: Any = None, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load and validate a checkpoint (a file, or a run directory holding ``checkpoint.pt``).

    Parameters
    ----------
    kind, pde : expected ``kind`` and PDE name; None skips the check.
    grid : expected grid (an int N, an ``engine.grid.Grid`` or ``{"n": N}``); None skips it.

    Raises CheckpointError naming both values on a mismatch, and in one line when the file is
    missing, damaged or holds something other than a plain-dict checkpoint.
    """
    p = resolve(path)
    if not p.is_file():
        raise CheckpointError(f"{p}: no such checkpoint")
    try:
        ckpt = torch.load(p, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises many types for a damaged or foreign file
        raise CheckpointError(f"{p}: damaged or not a checkpoint ({_reason(exc)})") from None
    if not isinstance(ckpt, dict) or "format" not in ckpt:
        raise CheckpointError(f"{p}: not a PIDDM checkpoint (no 'format' entry)")
    if ckpt["format"] != FORMAT:
        raise CheckpointError(f"{p}: checkpoint format {ckpt['format']!r}, this version reads {FORMAT}")
    if kind is not None and ckpt.get("kind") != kind:
        raise CheckpointError(f"{p}: a {ckpt.get('kind')!r} checkpoint, expected {kind!r}")
    have_pde = (ckpt.get("pde") or {}).get("name")
    if pde is not None and have_pde != pde:
        raise CheckpointError(f"{p}: trained for PDE {have_pde!r}, expected {pde!r}")
    if grid is not None:
        have, want = _grid_n(ckpt.get("grid", {})), _grid_n(grid)
        if have != want:
            raise CheckpointError(f"{p}: trained on a {have}x{have} grid, expected {want}x{want}")
    return ckpt


def check_warm_start(source: str | os.PathLike[str], ckpt: dict[str, Any], *, channels: Any, pde_params: dict,
                     model: str) -> None:
    """A warm start (``init_from``) must have what the run builds: the same channels, PDE parameters and
    U-Net size (teacher or student checkpoint). Raises CheckpointError naming the first difference."""
    config = ckpt.get("teacher_config") or ckpt["config"]  # a student's architecture is its teacher's
    for what, have, want in (("channels", list(ckpt["channels"]), list(channels)),
                             ("PDE parameters", dict(ckpt["pde"]["params"]), dict(pde_params)),
                             ("U-Net size", config["model"], model)):
        if have != want:
            raise CheckpointError(f"{source}: {what} {have!r}, this run needs {want!r}")


def peek_kind(path: str | os.PathLike[str]) -> str:
    """The ``kind`` of a checkpoint (or run directory), for dispatching on teacher / student."""
    return str(load_checkpoint(path).get("kind", ""))
