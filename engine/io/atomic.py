"""Atomic writes: write to a temporary name in the target folder, then rename.

A crash, a cancel or a full disk never leaves a half-written file under the final name.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import h5py

from engine.errors import EngineError

# The process umask, read once at import (reading it means setting it, which is not thread-safe).
_UMASK = os.umask(0o022)
os.umask(_UMASK)


def existing_folder(final: Path) -> Path:
    """The folder ``final`` goes into; EngineError naming both if there is no such folder or it is
    not writable (no permission, a read-only file system)."""
    folder = final.parent if str(final.parent) else Path(".")
    if not folder.is_dir():
        raise EngineError(f"cannot write {final}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise EngineError(f"cannot write {final}: folder {folder} is not writable")
    return folder


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` if the block succeeds."""
    final = Path(path)
    if final.is_symlink():  # write through a link to its target; replacing it would drop the link
        final = final.resolve()
    folder = existing_folder(final)
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=folder)
    except OSError as exc:  # a read-only folder or file system: name the file asked for, not the temporary
        raise EngineError(f"cannot write {final}: {exc.strerror or exc}") from exc
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


IN_MEMORY_BYTES = 1 << 30  # atomic_hdf5 builds files up to this (uncompressed) size in memory


@contextlib.contextmanager
def atomic_hdf5(path: str | os.PathLike[str], size: int = 0) -> Iterator[h5py.File]:
    """An HDF5 file written to ``path`` atomically when the block succeeds; ``size``: the bytes of
    the arrays it will hold (uncompressed), an upper bound of the file's size.

    Why not simply h5py on the temporary name: when the disk fills up under HDF5's own writes, its
    close fails and h5py then crashes the process (a segmentation fault) while freeing the file's
    objects. So a file of up to ``IN_MEMORY_BYTES`` is built in memory and written from Python, where
    a full disk is an OSError that ``atomic_path`` turns into one line and nothing is left behind. A
    larger one (twice its size in memory would be too much) is written by HDF5 directly, once the
    disk is seen to have room for its uncompressed size.
    """
    final = Path(path)
    folder = existing_folder(final)  # before the work of filling the file, not after
    if size > IN_MEMORY_BYTES:
        free = shutil.disk_usage(folder).free
        if free < size + (64 << 20):
            raise EngineError(f"cannot write {final}: it needs up to {size / 2**30:.1f} GiB, and "
                              f"{folder} has {free / 2**30:.1f} GiB free")
        with atomic_path(final) as tmp, h5py.File(tmp, "w") as h:
            yield h
        return
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as h:
        yield h
    write_bytes(final, buffer.getbuffer())


def write_bytes(path: str | os.PathLike[str], data: bytes | memoryview) -> None:
    """Write ``data`` atomically. Libraries that write files themselves (HDF5, torch.save) fill a
    buffer and hand it here: their own failures on a full disk are crashes or RuntimeErrors."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
