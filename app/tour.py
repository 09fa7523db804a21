"""--screenshot-tour DIR: capture the main states (start-up, drawing, solved inverse, compare, training).

The training shot uses stand-in curves (``_fake_training``), not a real run."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import numpy as np

from engine.jobs import Progress


def _fake_training(name, steps=400):
    """Stands in for a real run in the tour: plausible decaying curves and a sample preview."""

    def fn(*args, on_progress, cancel):
        from engine import pdes
        from engine.grid import Grid

        pde = pdes.get("darcy")
        g = Grid(32)
        x = pde.solve(pde.sample_inputs([7], g), g)[0].numpy().astype(np.float32)
        rng = np.random.default_rng(0)
        for i in range(1, steps + 1):
            cancel.raise_if_cancelled()
            time.sleep(0.01)
            m = {"loss": 0.5 * i ** -0.6 * (1 + 0.1 * rng.standard_normal()), "residual": 40 * i ** -0.8}
            prev = (x + 0.002 * rng.standard_normal(x.shape).astype(np.float32)) if i % 100 == 0 else None
            on_progress(Progress(name, i, steps, {} if name == "data" else m, preview=prev))
        return name

    return fn


async def run_tour(window, out_dir: str) -> None:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    def shot(name):
        window.grab().save(str(out / f"{name}.png"))

    while window.state.truth is None:  # start-up workflow
        await asyncio.sleep(0.1)
    await asyncio.sleep(0.8)
    shot("01-startup")
    # drawing (forward task: the whole coefficient is observed): a GRF, thresholded, plus a brushed bar
    window.task_panel.task_box.setCurrentText("forward")
    window.inputs.channel_box.setCurrentIndex(0)
    window.inputs.random_grf()
    window.inputs.threshold()
    n = window.state.grid_n
    window.state.values[0, n // 8:n // 8 + max(2, n // 16), n // 16:n * 7 // 16] = 12.0
    window.inputs.set_tool("brush")
    window.inputs.redraw()
    await asyncio.sleep(0.5)
    shot("02-drawing")
    # a real inverse solve from ~3 % clicked-looking points of a held-out sample
    window.task_panel.task_box.setCurrentText("inverse")
    window.state.task = "inverse"
    await window.controller.load_demo()
    window.task_panel.task_box.setCurrentText("inverse")
    methods = window.state.methods()
    window.task_panel.method_box.setCurrentText("piddm" if "piddm" in methods else "dataspace")
    done = asyncio.get_event_loop().create_future()

    def finished(r):
        if not done.done():
            done.set_result(r)

    window.controller.solve_done.connect(finished)
    window.controller.solve_failed.connect(finished)
    window.controller.solve()
    await done
    await asyncio.sleep(0.8)
    shot("03-inverse-solved")
    # compare: the same observations with piddm and the model-free dataspace baseline
    window.task_panel.compare_box.setChecked(True)
    window.task_panel.compare_method.setCurrentText("dataspace")
    done = asyncio.get_event_loop().create_future()
    window.controller.solve()
    await done
    await asyncio.sleep(0.8)
    shot("05-compare")
    window.task_panel.compare_box.setChecked(False)
    # training in progress (fake curves unless a real engine run is wanted)
    window.tabs.setCurrentWidget(window.training)
    tp = window.training
    tp.folder.setText(str(out / "_runs"))
    tp.fns = {k: _fake_training(k, 40 if k == "data" else 400) for k in ("data", "teacher", "distill")}
    tp.run_chain()
    await asyncio.sleep(6.0)
    shot("04-training")
    tp.cancel()
    await asyncio.sleep(1.0)
    window.close()
