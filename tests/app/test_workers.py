"""JobRunner: progress on the GUI thread, cancel, failure, and the awaitable result."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from app.workers import JobFailed, JobRunner
from engine.jobs import Cancelled, Progress


def counting(n, delay=0.005, *, on_progress, cancel):
    for i in range(n):
        cancel.raise_if_cancelled()
        time.sleep(delay)
        on_progress(Progress("test", i + 1, n))
    return n


def failing(*, on_progress, cancel):
    raise ValueError("bad value 42")


def test_progress_arrives_on_gui_thread_in_order(qtbot):
    seen = []
    main = threading.get_ident()
    job = JobRunner(counting, 5)
    job.progress.connect(lambda p: seen.append((p.step, threading.get_ident() == main)))
    with qtbot.waitSignal(job.finished, timeout=5000) as blocker:
        job.start()
    assert blocker.args == [5]
    assert job.wait(2000)
    qtbot.waitUntil(lambda: len(seen) == 5)
    assert seen == [(i, True) for i in range(1, 6)]


def test_the_worker_is_destroyed_on_the_gui_thread(qtbot):
    # destroyed on its own thread it would take Qt's connection lock and then ask for the GIL,
    # which the GUI thread may hold while waiting for that lock (a deadlock seen in a test run)
    from PySide6.QtCore import QCoreApplication

    destroyed_on = []
    job = JobRunner(counting, 3)
    job._worker.destroyed.connect(lambda: destroyed_on.append(threading.get_ident()))
    with qtbot.waitSignal(job.thread_done, timeout=5000):
        job.start()
    assert job._worker.thread() is QCoreApplication.instance().thread()
    qtbot.waitUntil(lambda: bool(destroyed_on), timeout=2000)
    assert destroyed_on == [threading.get_ident()]


def test_every_report_is_handed_on_before_the_outcome(qtbot):
    """A burst of reports right before the job returns (faster than the GUI's poll) all arrive, in
    order, before any listener of ``finished`` runs."""
    seen, at_finish = [], []
    job = JobRunner(counting, 500, 0.0)
    job.progress.connect(lambda p: seen.append(p.step))
    job.finished.connect(lambda n: at_finish.append(list(seen)))
    with qtbot.waitSignal(job.finished, timeout=5000):
        job.start()
    assert at_finish == [list(range(1, 501))]


def test_cancel_and_failure(qtbot):
    job = JobRunner(counting, 10_000, 0.002)
    job.progress.connect(lambda p: job.cancel() if p.step >= 5 else None)
    with qtbot.waitSignal(job.cancelled, timeout=5000):
        job.start()
    assert job.wait(2000)
    bad = JobRunner(failing)
    with qtbot.waitSignal(bad.failed, timeout=5000) as blocker:
        bad.start()
    assert "bad value 42" in blocker.args[0]
    assert bad.wait(2000)


def test_await_result(qtbot, aloop):
    async def flow():
        ok = await JobRunner(counting, 3).start().result()
        with pytest.raises(JobFailed, match="bad value 42"):
            await JobRunner(failing).start().result()
        job = JobRunner(counting, 10_000, 0.002).start()
        job.cancel()
        with pytest.raises(Cancelled):
            await job.result()
        return ok

    task = asyncio.ensure_future(flow())
    qtbot.waitUntil(task.done, timeout=5000)
    assert task.result() == 3
