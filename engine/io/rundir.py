"""A run directory (SPEC "Files"): everything a training run writes, in one folder.

    RUN/config.json          the resolved config, strict on load (engine.config)
    RUN/checkpoint.pt        plain-dict checkpoint (engine.io.checkpoint)
    RUN/metrics.jsonl        one JSON object per report
    RUN/log.txt              the engine logger's records during the run
    RUN/normalization.json   per-channel statistics of the training split
    RUN/previews/            sample previews (npz)

The app lists runs by reading these folders; there is no other database.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import CheckpointError, ConfigError, EngineError
from engine.io.atomic import atomic_path, write_text
from engine.io.checkpoint import FILENAME


def _jsonable(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)  # JSON has no NaN/inf; keep the information as text
    if isinstance(v, np.generic):
        return v.item()
    return v


@contextlib.contextmanager
def removed_if_left_empty(path: str | os.PathLike[str]) -> Iterator[None]:
    """A run folder this start creates (with the parents it creates) is removed again when the start
    fails before writing anything into it (a refused setting, a missing dataset or teacher): a
    corrected command then finds no stray empty folder. A folder that existed, or holds anything, stays."""
    folder = Path(path).absolute()
    created = [p for p in (folder, *folder.parents) if not p.exists()]  # the leaf first, then its parents
    try:
        yield
    except BaseException:
        for p in created:  # (mkdir(parents=True) made them all; each goes only while empty)
            if p.is_dir() and not any(p.iterdir()):
                with contextlib.suppress(OSError):  # another rank may have removed it first
                    p.rmdir()
        raise


def being_written(path: str | os.PathLike[str]) -> bool:
    """Whether a job holds the run folder ``path`` now (``writing_alone``): a resume would be refused."""
    try:
        import fcntl

        fd = os.open(path, os.O_RDONLY)
    except (ImportError, OSError):  # no flock (Windows), or no such folder: nobody writes it
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # (releases the lock taken just now)
    return False


LOCK_ATTEMPTS = 5  # over 0.2 s


@contextlib.contextmanager
def writing_alone(path: str | os.PathLike[str]) -> Iterator[None]:
    """Hold the run folder for one writing job: a second job on it is refused in one line instead of
    interleaving metrics.jsonl and overwriting checkpoint.pt (the workers of a torchrun killed with
    SIGKILL train on as orphans; a command-line run beside the app's). An exclusive flock on the
    folder itself: the kernel releases it when the process dies, and it leaves no file behind.
    Creates the folder. Without flock (Windows) the folder is only created."""
    RunDir(path, create=True)
    try:
        import fcntl
    except ImportError:
        yield
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        for attempt in range(LOCK_ATTEMPTS):
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if attempt == LOCK_ATTEMPTS - 1:
                    raise ConfigError(f"{path} is being written by another job (a training still running, or "
                                      "the orphaned workers of a killed torchrun): stop it first") from None
                time.sleep(0.05)  # (``being_written`` holds it for an instant: the app's run label asking)
        yield
    finally:
        os.close(fd)  # releases the lock


class RunDir:
    """Paths and small writers of one run directory.

    Parameters
    ----------
    path : the folder.
    create : make the folder (and parents) if missing; otherwise it must exist.
    """

    def __init__(self, path: str | os.PathLike[str], *, create: bool = False) -> None:
        self.path = Path(path)
        if create:
            if self.path.exists() and not self.path.is_dir():
                raise EngineError(f"cannot create run directory {self.path}: it is a file")
            try:
                self.path.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise EngineError(f"cannot create run directory {self.path}: {exc.strerror or exc}") from None
        elif not self.path.is_dir():
            raise CheckpointError(f"{self.path}: no such run directory")

    @classmethod
    def open_shared(cls, path: str | os.PathLike[str], *, is_main: bool, barrier) -> RunDir:
        """Open the run of a (possibly distributed) job: rank 0 creates it, the others wait for it."""
        run = cls(path, create=True) if is_main else None
        barrier()
        return run if run is not None else cls(path)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    @property
    def config_path(self) -> Path:
        return self.path / "config.json"

    @property
    def checkpoint_path(self) -> Path:
        return self.path / FILENAME

    @property
    def metrics_path(self) -> Path:
        return self.path / "metrics.jsonl"

    @property
    def log_path(self) -> Path:
        return self.path / "log.txt"

    @property
    def previews_dir(self) -> Path:
        return self.path / "previews"

    def has_checkpoint(self) -> bool:
        return self.checkpoint_path.is_file()

    def start_fresh(self) -> None:
        """Drop what an earlier start that never checkpointed left (metrics, previews): a new run
        begins at step 0, and its preview of step 500 must not be a killed run's."""
        self.metrics_path.unlink(missing_ok=True)
        for old in self.previews_dir.glob("step-*.npz"):
            old.unlink(missing_ok=True)

    def append_metrics(self, record: dict[str, Any]) -> None:
        """Append one JSON object as a line of metrics.jsonl."""
        line = json.dumps({k: _jsonable(v) for k, v in record.items()})
        with open(self.metrics_path, "a", encoding="utf-8") as f:
            f.write(line + "\n")

    def read_metrics(self) -> list[dict[str, Any]]:
        """All records of metrics.jsonl, the one reader of it (bench costs, the app's curves, resume):
        a torn last line (killed writer), or any line that is not a JSON object, is skipped."""
        if not self.metrics_path.is_file():
            return []
        out = []
        for line in self.metrics_path.read_text(encoding="utf-8").splitlines():
            with contextlib.suppress(json.JSONDecodeError):
                if isinstance(rec := json.loads(line), dict):
                    out.append(rec)
        return out

    def last_metric(self, name: str) -> float:
        """The last recorded value of ``name`` (a resumed run with no step left reports it), else NaN."""
        return next((float(r[name]) for r in reversed(self.read_metrics()) if name in r), float("nan"))

    def truncate_metrics(self, after_step: int) -> None:
        """Drop records past ``after_step`` (a resumed run rewrites the steps it repeats)."""
        keep = [r for r in self.read_metrics() if int(r.get("step", 0)) <= after_step]
        write_text(self.metrics_path, "".join(json.dumps(r) + "\n" for r in keep))

    def write_json(self, name: str, doc: dict[str, Any]) -> Path:
        write_text(self.path / name, json.dumps(doc, indent=2) + "\n")
        return self.path / name

    def save_preview(self, step: int, fields: np.ndarray, **arrays: np.ndarray) -> Path:
        """Write previews/step-<step>.npz holding ``fields`` (k, C, N, N) physical and extras."""
        self.previews_dir.mkdir(exist_ok=True)
        final = self.previews_dir / f"step-{step:08d}.npz"
        with atomic_path(final) as tmp, open(tmp, "wb") as f:
            np.savez_compressed(f, fields=fields, **arrays)
        return final

    @contextlib.contextmanager
    def logging_to_file(self, logger_name: str = "engine") -> Iterator[logging.Logger]:
        """Attach a file handler for log.txt to the ``engine`` logger for the block's duration."""
        logger = logging.getLogger(logger_name)
        handler = logging.FileHandler(self.log_path, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        handler.setLevel(logging.INFO)
        old_level = logger.level
        if logger.getEffectiveLevel() > logging.INFO:
            logger.setLevel(logging.INFO)
        logger.addHandler(handler)
        try:
            yield logger
        finally:
            logger.removeHandler(handler)
            logger.setLevel(old_level)
            handler.close()
