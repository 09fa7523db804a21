"""Run engine jobs on a QThread (STYLE §4.6) and await them from qasync workflows."""

from __future__ import annotations

import asyncio
import collections
import re
import traceback
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QCoreApplication, QObject, QThread, QTimer, Signal, Slot

from engine.jobs import Cancelled, CancelToken


class JobFailed(Exception):
    """A job raised; ``message`` is the last line, ``details`` the traceback."""

    def __init__(self, message: str, details: str) -> None:
        super().__init__(message)
        self.message, self.details = message, details


def _last_line(tb: str) -> str:
    """The exception's line of a traceback. The engine's own errors (engine.errors) are messages for
    the user and lose their type's name; any other keeps it (``ValueError: …``), a clue to a bug."""
    lines = [ln for ln in tb.strip().splitlines() if ln.strip()]
    return re.sub(r"^engine\.errors\.\w+: ", "", lines[-1]) if lines else "unknown error"


# The worker's progress goes through a deque that the GUI thread drains on a timer, not through a
# Qt signal per report: a solve reports every step (with a preview), and every Qt call on the worker
# thread is a chance for the GIL-against-Qt-mutex deadlock described in _Worker.run. Three signals
# per job (the outcome, thread end) remain.
PROGRESS_POLL_MS = 30


class _Worker(QObject):
    finished = Signal(object)
    failed = Signal(str)
    cancelled = Signal()

    def __init__(self, fn: Callable[..., Any], args: tuple, kwargs: dict, token: CancelToken,
                 outbox: collections.deque) -> None:
        super().__init__()
        self._fn, self._args, self._kwargs, self._token, self._outbox = fn, args, kwargs, token, outbox

    @Slot()
    def run(self) -> None:
        try:
            # deque.append is atomic: the worker never touches Qt to report progress
            result = self._fn(*self._args, on_progress=self._outbox.append, cancel=self._token, **self._kwargs)
        except Cancelled:
            self.cancelled.emit()
        except Exception:
            self.failed.emit(traceback.format_exc())
        else:
            self.finished.emit(result)
        finally:
            # Back to the GUI thread before this one ends, so that the worker is destroyed there. A
            # QObject of a Python class destroyed on a worker thread asks Python for overrides while
            # holding Qt's connection lock: with the GUI thread holding the GIL and waiting for that
            # lock (any connect(), e.g. building a combo box) both wait forever — seen in a test run
            # (the worker's deleteLater on its own thread against QComboBox's constructor).
            app = QCoreApplication.instance()
            if app is not None:
                self.moveToThread(app.thread())
            QThread.currentThread().quit()  # quit from inside run(): thread-safe, no finished→quit wiring


class JobRunner(QObject):
    """Lives in the GUI thread; its signals are always delivered there.

    ``fn(*args, on_progress=..., cancel=..., **kwargs)`` runs on a worker thread. Progress, the
    result, a failure (traceback text) or a cancellation come back as this object's signals.
    """

    progress = Signal(object)
    finished = Signal(object)
    failed = Signal(str)
    cancelled = Signal()
    thread_done = Signal()  # the worker thread has ended (after finished/failed/cancelled)
    _alive: set[JobRunner] = set()

    def __init__(self, fn: Callable[..., Any], /, *args: Any, parent: QObject | None = None,
                 name: str = "job", **kwargs: Any) -> None:
        super().__init__(parent)
        self.name = name
        self._token = CancelToken()
        self._future: asyncio.Future | None = None
        self._outcome: tuple[str, Any] | None = None
        self._thread = QThread(self)
        self._outbox: collections.deque = collections.deque()
        self._poll = QTimer(self)  # GUI thread: hands the worker's progress on, in order
        self._poll.setInterval(PROGRESS_POLL_MS)
        self._poll.timeout.connect(self._drain)
        self._worker = _Worker(fn, args, kwargs, self._token, self._outbox)
        self._worker.moveToThread(self._thread)
        self._thread.started.connect(self._worker.run)
        self._worker.finished.connect(self.finished)
        self._worker.failed.connect(self.failed)
        self._worker.cancelled.connect(self.cancelled)
        self._thread.finished.connect(self._on_thread_finished)
        self.finished.connect(self._on_finished)
        self.failed.connect(self._on_failed)
        self.cancelled.connect(self._on_cancelled)

    def start(self) -> JobRunner:
        JobRunner._alive.add(self)  # a running thread must outlive a dropped Python reference
        self._poll.start()
        self._thread.start()
        return self

    @Slot()
    def _drain(self) -> None:
        while self._outbox:
            self.progress.emit(self._outbox.popleft())

    @Slot()
    def _on_thread_finished(self) -> None:
        # QThread.finished is emitted from the ending thread: wait for it before letting go
        self._thread.wait()
        self._worker.deleteLater()  # on the GUI thread, where run() handed it back
        self._poll.stop()
        self._drain()
        self.thread_done.emit()
        QTimer.singleShot(0, self._release)

    def _release(self) -> None:
        JobRunner._alive.discard(self)

    def cancel(self) -> None:
        self._token.cancel()

    @property
    def cancel_requested(self) -> bool:
        return self._token.cancelled

    def is_running(self) -> bool:
        return self._thread.isRunning()

    def wait(self, ms: int = 5000) -> bool:
        return self._thread.wait(ms)

    # -- awaitable side (qasync) -------------------------------------------------------------
    def result(self) -> asyncio.Future:
        """A Future resolved from GUI-thread slots: the result, JobFailed or Cancelled."""
        if self._future is None:
            self._future = asyncio.get_event_loop().create_future()
            if self._outcome is not None:
                self._resolve(*self._outcome)
        return self._future

    def _resolve(self, kind: str, value: Any) -> None:
        self._outcome = (kind, value)
        fut = self._future
        if fut is None or fut.done():
            return
        if kind == "ok":
            fut.set_result(value)
        elif kind == "failed":
            fut.set_exception(JobFailed(_last_line(value), value))
        else:
            fut.set_exception(Cancelled())

    # The outcome slots are connected first, so they run before any other listener: the progress
    # still queued is handed on before anyone learns the outcome.
    @Slot(object)
    def _on_finished(self, result: object) -> None:
        self._drain()
        self._resolve("ok", result)

    @Slot(str)
    def _on_failed(self, tb: str) -> None:
        self._drain()
        self._resolve("failed", tb)

    @Slot()
    def _on_cancelled(self) -> None:
        self._drain()
        self._resolve("cancelled", None)


class Jobs(QObject):
    """The window's running jobs: start, cancel all, wait for all (closeEvent)."""

    changed = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._runners: list[JobRunner] = []

    def start(self, fn: Callable[..., Any], /, *args: Any, name: str = "job", **kwargs: Any) -> JobRunner:
        runner = JobRunner(fn, *args, parent=self, name=name, **kwargs)
        self._runners.append(runner)
        for sig in (runner.finished, runner.failed, runner.cancelled, runner.thread_done):
            sig.connect(self._prune)
        runner.start()
        self.changed.emit()
        return runner

    @Slot()
    def _prune(self) -> None:
        keep = []
        for r in self._runners:
            if r.is_running() or not r._thread.isFinished():
                keep.append(r)
            else:
                r.deleteLater()
        self._runners = keep
        self.changed.emit()

    def running(self) -> list[JobRunner]:
        return [r for r in self._runners if r._outcome is None]

    def cancel_all(self) -> None:
        for r in self._runners:
            r.cancel()

    def wait_all(self, ms: int = 10_000) -> bool:
        return all(r.wait(ms) for r in list(self._runners))
