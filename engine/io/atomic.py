"""Atomic writes: write to a temporary name in the target folder, then rename.

A crash, a cancel or a full disk never leaves a half-written file under the final name.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import h5py

from engine.errors import EngineError

# The process umask, read once at import (reading it means setting it, which is not thread-safe).
_UMASK = os.umask(0o022)
os.umask(_UMASK)


def _existing_folder(final: Path) -> Path:
    folder = final.parent if str(final.parent) else Path(".")
    if not folder.is_dir():
        raise EngineError(f"cannot write {final}: folder {folder} does not exist")
    return folder


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` if the block succeeds."""
    final = Path(path)
    folder = _existing_folder(final)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=folder)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        # mkstemp creates the file private (0600); give it the mode a plain open() would have
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, final)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise EngineError(f"cannot write {final}: {exc.strerror or exc}") from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text(path: str | os.PathLike[str], text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


@contextlib.contextmanager
def atomic_hdf5(path: str | os.PathLike[str]) -> Iterator[h5py.File]:
    """An HDF5 file built in memory, written to ``path`` atomically when the block succeeds.

    Why in memory: when the disk fills up under HDF5's own writes, its close fails and h5py then
    crashes the process (a segmentation fault) while freeing the file's objects. Written from Python,
    the same full disk is an OSError that ``atomic_path`` turns into a one-line error, and nothing
    is left behind. The cost is the file's (compressed) size in memory while it is written.
    """
    _existing_folder(Path(path))  # before the work of filling the file, not after
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as h:
        yield h
    write_bytes(path, buffer.getbuffer())


def write_bytes(path: str | os.PathLike[str], data: bytes | memoryview) -> None:
    """Write ``data`` atomically. Libraries that write files themselves (HDF5, torch.save) fill a
    buffer and hand it here: their own failures on a full disk are crashes or RuntimeErrors."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
