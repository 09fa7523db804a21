"""One optimisation step replayed as a CUDA graph: the latent solve's step without the host's cost.

A latent step at 64² is a few hundred small kernels (the student's forward and backward, the
residual, Adam) doing ~0.3 ms of arithmetic on a GPU; launched one by one from Python they take
the host 10–20 ms. Captured once as a CUDA graph (torch.cuda.graph, the "whole-network capture"
of the PyTorch CUDA-graphs notes), the step is replayed with a single launch.

``CapturedStep(fn)`` wraps a step function that zeroes the gradients (``set_to_none=True``), runs
forward and backward, steps the optimiser and returns a dict of tensors (its metrics, the field).
Its tensors' shapes must not change from call to call, nothing in it may read a value back to the
host, and an Adam optimiser must be built with ``capturable=True``. On the CPU (or with
``enabled=False``) every call simply runs ``fn``. On CUDA, the first ``warmup`` calls run ``fn`` on
a side stream (lazy initialisation — cuBLAS handles, cuFFT plans, autograd buffers, optimiser
state — must happen before capture), the next call captures it and every call from then on replays
the graph. One warm-up call does all of that for a latent step (Adam's state exists after its
first step); each warm-up call costs an eager step (~18 ms at 64² on an H200 against ~5 ms
replayed), so ``WARMUP_STEPS`` is 1.
Each call is one real step either way, so the caller's loop does not change. Returned tensors are
copies: the graph overwrites its own outputs on the next replay. If the capture fails (an
operation that cannot be captured), a warning says so and every call runs ``fn`` eagerly.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import torch

StepFn = Callable[[], dict[str, torch.Tensor]]
WARMUP_STEPS = 1  # eager calls before the capture (read when a CapturedStep is made)


class CapturedStep:
    def __init__(self, fn: StepFn, device: torch.device, *, enabled: bool = True, warmup: int | None = None) -> None:
        self.fn, self.calls = fn, 0
        self.warmup = WARMUP_STEPS if warmup is None else warmup
        self.enabled = enabled and device.type == "cuda"
        self.graph: torch.cuda.CUDAGraph | None = None
        self.outputs: dict[str, torch.Tensor] = {}

    def __call__(self) -> dict[str, torch.Tensor]:
        self.calls += 1
        if not self.enabled:
            return self.fn()
        if self.calls <= self.warmup:
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                out = self.fn()
            torch.cuda.current_stream().wait_stream(side)
            return out
        if self.graph is None:
            graph = torch.cuda.CUDAGraph()
            try:
                # thread_local: other threads of the app may use CUDA while this one captures
                with torch.cuda.graph(graph, capture_error_mode="thread_local"):  # records; runs nothing
                    self.outputs = self.fn()
            except RuntimeError as e:  # something in fn cannot be captured: stay eager, lose nothing
                warnings.warn(f"CUDA graph capture failed, the solve continues without it: {e}", stacklevel=2)
                self.enabled, self.outputs = False, {}
                return self.fn()
            self.graph = graph
        self.graph.replay()
        return {k: v.clone() for k, v in self.outputs.items()}


__all__ = ["CapturedStep"]
