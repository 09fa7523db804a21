"""Stand-in runs for the Models list (listing reads a run's card only; the ``loads`` fixture of
conftest.py answers their loads)."""

from __future__ import annotations

import json

from engine import models


def fake_run(folder, pde_name: str = "darcy", grid: int = 16):
    """A student run as the Models list sees it (listing reads the card only)."""
    folder.mkdir(parents=True)
    (folder / models.FILENAME).write_bytes(b"")
    (folder / models.CARD).write_text(json.dumps({"pde": pde_name, "kind": "student", "grid": grid}))
    return folder
