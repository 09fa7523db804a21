"""Shared fixtures: tiny grids and datasets so that no test depends on downloads."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture
def tiny_dataset(tmp_path):
    """8 darcy samples at 16x16, written by generate_dataset."""
    from engine.data.generate import generate_dataset

    return generate_dataset("darcy", 8, 16, 0, tmp_path / "tiny.h5").path


@pytest.fixture
def packaging_script():
    """Import a script of packaging/ (not a package) by name: ``packaging_script("tune_guidance")``."""
    import importlib.util
    from pathlib import Path

    def load(name: str):
        path = Path(__file__).resolve().parents[1] / "packaging" / f"{name}.py"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load


@pytest.fixture
def full_disk(monkeypatch):
    """Every ``Path.write_bytes`` writes half its data, then fails as a full disk does (ENOSPC).

    Only writes that go through Python see it: a file a library (HDF5, torch.save) wrote to disk
    itself would succeed here, so a test that expects the failure also checks that no library does.
    """
    import errno
    from pathlib import Path

    def write_half(self, data):
        with open(self, "wb") as f:
            f.write(bytes(data)[: len(data) // 2])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self))

    monkeypatch.setattr(Path, "write_bytes", write_half)
