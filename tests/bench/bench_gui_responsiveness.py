"""GUI responsiveness while a CPU-heavy torch job runs on the JobRunner (not a test).

A 10 ms QTimer records its gaps while a training-like loop (a small MLP/conv net, backward and
Adam steps) runs on the worker thread; prints max and median gap. Target: max < 200 ms.

    QT_QPA_PLATFORM=offscreen python tests/bench/bench_gui_responsiveness.py [seconds]
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np


def heavy_training(seconds: float, *, on_progress, cancel):
    import torch

    from app.panels.training_panel import leave_a_core_for_the_gui
    from engine.jobs import Progress

    leave_a_core_for_the_gui()  # the Training tab's thread policy
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(2, 64, 3, padding=1), torch.nn.SiLU(),
                              torch.nn.Conv2d(64, 64, 3, padding=1), torch.nn.SiLU(),
                              torch.nn.Conv2d(64, 2, 3, padding=1))
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    x = torch.randn(32, 2, 32, 32)
    t0, step = time.perf_counter(), 0
    while time.perf_counter() - t0 < seconds:
        cancel.raise_if_cancelled()
        loss = (net(x) - x).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1
        on_progress(Progress("teacher", step, 0, {"loss": float(loss.detach())}))
    return step


def main() -> int:
    from PySide6.QtCore import QElapsedTimer, QTimer

    import app  # noqa: F401  (compat first)
    from app.main import setup_qt
    from app.plots.loss_plot import LossPlot
    from app.workers import JobRunner

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("seconds", nargs="?", type=float, default=8.0, help="how long the worker trains (default 8)")
    seconds = ap.parse_args().seconds
    qapp = setup_qt()
    plot = LossPlot(("loss",))
    plot.resize(600, 400)
    plot.show()
    gaps: list[float] = []
    clock = QElapsedTimer()
    clock.start()
    last = [clock.elapsed()]

    def tick():
        now = clock.elapsed()
        gaps.append(now - last[0])
        last[0] = now

    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(tick)
    job = JobRunner(heavy_training, seconds)
    job.progress.connect(lambda p: plot.add(p.stage, p.step, dict(p.metrics)))
    done = []
    job.finished.connect(done.append)
    timer.start()
    job.start()
    while not done:
        qapp.processEvents()
        time.sleep(0.001)
    job.wait()
    g = np.array(gaps[5:])
    print(f"training steps {done[0]} in {seconds:.0f} s on the worker; 10 ms timer: "
          f"max gap {g.max():.0f} ms, median {np.median(g):.1f} ms, p99 {np.percentile(g, 99):.0f} ms ({len(g)} ticks)")
    return 0 if g.max() < 200 else 1


if __name__ == "__main__":
    sys.exit(main())
