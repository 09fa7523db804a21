"""The engine-to-caller contract for long jobs: progress callbacks and cancellation, no Qt.

Every long engine function ends with ``*, on_progress=no_progress, cancel=None``. The app runs it
on a worker thread and re-emits ``Progress`` as signals; the command line draws a tqdm bar.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np


class Cancelled(Exception):
    """Raised inside a job when its CancelToken was set."""


class CancelToken:
    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise Cancelled


@dataclass(frozen=True)
class Progress:
    stage: str  # "data" | "teacher" | "pairs" | "distill" | "sample" | "solve" | "bench" | "bench-step"
    step: int
    total: int
    metrics: Mapping[str, float] = field(default_factory=dict)
    preview: np.ndarray | None = None  # a CPU copy, never a live tensor
    message: str = ""


ProgressFn = Callable[[Progress], None]


def no_progress(_: Progress) -> None:
    """The default callback: report nothing."""


def check_cancel(cancel: CancelToken | None) -> None:
    if cancel is not None:
        cancel.raise_if_cancelled()


class Throttle:
    """Forward at most one Progress per ``interval`` seconds; always forward the final step."""

    def __init__(self, fn: ProgressFn, interval: float = 0.1) -> None:
        self._fn, self._interval, self._last = fn, interval, -1e9

    def __call__(self, p: Progress) -> None:
        now = time.monotonic()
        if now - self._last >= self._interval or p.step >= p.total or p.preview is not None:
            self._last = now
            self._fn(p)
