"""--screenshot-tour DIR: capture the main states (start-up, drawing, solved inverse, compare, training);
--screenshot FILE: capture the screen once the window has started (seconds, for checking a layout).

The training shot is a real run (darcy 32², 128 samples, tiny U-Net, a preview every 250 steps) in a
temporary runs folder, captured at the fourth preview, then cancelled."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path


async def wait_for_start_up(window) -> None:
    while not window.has_started:  # start-up workflow: a model, a demo task or a file loaded
        take_the_first_sample()
        await asyncio.sleep(0.1)
    await asyncio.sleep(0.8)  # the layouts and the first paint settle


def take_the_first_sample() -> None:
    """Answer start-up's question which sample of a fields file to import (PATH with several samples)
    with its default, sample 0: a tour runs unattended. The question is a modal dialog started before
    the tour's first step, in a nested event loop, which runs the tour's steps while it waits."""
    from PySide6.QtWidgets import QApplication, QInputDialog

    dialog = QApplication.activeModalWidget()
    if isinstance(dialog, QInputDialog):
        dialog.accept()


async def take_screenshot(window, path: str) -> None:
    """The whole screen, not only the window: a window larger than the screen shows cut off, as a
    user sees it."""
    await wait_for_start_up(window)
    window.screen().grabWindow(0).save(path)
    window.close()


async def run_tour(window, out_dir: str) -> None:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    def shot(name):
        window.grab().save(str(out / f"{name}.png"))

    await wait_for_start_up(window)
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
    # training in progress: a real generate → teacher run, captured at the fourth preview, then cancelled
    window.tabs.setCurrentWidget(window.training)
    tp = window.training
    user_folder = tp.folder.text()  # the user's runs folder is kept in the settings, not the temporary one
    with tempfile.TemporaryDirectory(prefix="piddm-tour-") as runs:
        tp.folder.setText(runs)
        tp.resume.setChecked(False)
        tp.grid.setCurrentText("32")
        tp.n_samples.setValue(128)
        tp.model_size.setCurrentText("tiny")
        tp.teacher_steps.setValue(2000)
        tp.teacher_minutes.setValue(5.0)
        tp.teacher_preview_every.setValue(250)
        previews = []
        tp.preview_shown.connect(previews.append)
        tp.run_chain()
        while tp.current is None:  # the chain starts as a task of its own
            await asyncio.sleep(0.05)
        while len(previews) < 4 and tp.current is not None:
            await asyncio.sleep(0.2)
        await asyncio.sleep(1.0)
        shot("04-training")
        tp.cancel()
        while tp.current is not None:
            await asyncio.sleep(0.2)
        tp.preview_shown.disconnect(previews.append)
    tp.folder.setText(user_folder)
    window.close()
