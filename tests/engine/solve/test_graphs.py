"""CapturedStep's schedule (eager warm-up, one capture, replays; eager fallback) with torch.cuda faked.

What a real capture records is checked on a GPU (test_solve.py: graphs and eager take the same
steps; tests/bench/bench_solve_latency.py compares the answers); here the order of calls is.
"""

from __future__ import annotations

import contextlib
from types import SimpleNamespace

import pytest
import torch

from engine.solve import graphs


class FakeGraph:
    """Stands in for torch.cuda.CUDAGraph: a replay rewrites the captured outputs in place."""

    def __init__(self, log: list[str], outputs: dict) -> None:
        self.log, self.outputs = log, outputs

    def replay(self) -> None:
        self.log.append("replay")
        for v in self.outputs["out"].values():
            v.add_(100.0)


@pytest.fixture
def fake_cuda(monkeypatch):
    log: list[str] = []
    captured: dict = {}
    state = SimpleNamespace(capturing=False, fail=False)

    @contextlib.contextmanager
    def graph(g, capture_error_mode="global"):
        assert capture_error_mode == "thread_local"
        state.capturing = True
        log.append("capture")
        try:
            yield
            if state.fail:
                raise RuntimeError("operation not permitted when stream is capturing")
        finally:
            state.capturing = False

    stream = SimpleNamespace(wait_stream=lambda other: None)
    monkeypatch.setattr(torch.cuda, "Stream", lambda: stream)
    monkeypatch.setattr(torch.cuda, "current_stream", lambda: stream)
    monkeypatch.setattr(torch.cuda, "stream", lambda s: contextlib.nullcontext())
    monkeypatch.setattr(torch.cuda, "CUDAGraph", lambda: FakeGraph(log, captured))
    monkeypatch.setattr(torch.cuda, "graph", graph)
    return log, captured, state


def counting_step(log: list[str], state: SimpleNamespace, captured: dict):
    calls = {"n": 0}

    def fn() -> dict[str, torch.Tensor]:
        calls["n"] += 1
        log.append("fn (capture)" if state.capturing else "fn")
        out = {"misfit": torch.tensor(float(calls["n"]))}
        captured["out"] = out
        return out

    return fn


def test_warm_up_then_one_capture_then_replays_of_copies(fake_cuda):
    log, captured, state = fake_cuda
    step = graphs.CapturedStep(counting_step(log, state, captured), SimpleNamespace(type="cuda"), warmup=2)
    results = [step() for _ in range(5)]
    assert log == ["fn", "fn", "capture", "fn (capture)", "replay", "replay", "replay"]
    assert [float(r["misfit"]) for r in results] == [1.0, 2.0, 103.0, 203.0, 303.0]
    assert results[2]["misfit"] is not captured["out"]["misfit"]  # a copy: the next replay overwrites


def test_a_failed_capture_warns_and_stays_eager(fake_cuda):
    log, captured, state = fake_cuda
    state.fail = True
    step = graphs.CapturedStep(counting_step(log, state, captured), SimpleNamespace(type="cuda"), warmup=1)
    step()
    with pytest.warns(UserWarning, match="CUDA graph capture failed"):
        second = step()
    third = step()
    assert log == ["fn", "capture", "fn (capture)", "fn", "fn"]
    assert float(second["misfit"]) == 3.0 and float(third["misfit"]) == 4.0 and not step.enabled


def test_on_the_cpu_every_call_runs_the_step():
    log: list[str] = []
    state = SimpleNamespace(capturing=False)
    step = graphs.CapturedStep(counting_step(log, state, {}), torch.device("cpu"))
    assert [float(step()["misfit"]) for _ in range(5)] == [1.0, 2.0, 3.0, 4.0, 5.0] and log == ["fn"] * 5
