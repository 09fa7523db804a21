"""Training: generate a dataset → train a teacher → distill a student, as one async chain.

Each stage runs on the worker thread with a progress bar; loss curves and sample previews
(with their residual map) update live; Cancel stops the chain (the engine checkpoints first);
"resume" continues the run directories that exist.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)
from qasync import asyncSlot

from app.canvas.field_view import FieldView
from app.plots.loss_plot import LossPlot
from app.workers import JobFailed, Jobs
from engine.jobs import Cancelled

STAGES = ("data", "teacher", "distill")


def generate(pde, n, grid_n, seed, path, *, on_progress, cancel):
    from engine.data.generate import generate_dataset

    return generate_dataset(pde, n, grid_n, seed, path, on_progress=on_progress, cancel=cancel)


def train(cfg: dict, run_dir, resume, *, on_progress, cancel):
    from engine.config import TeacherConfig
    from engine.diffusion.train import train_teacher

    return train_teacher(TeacherConfig(**cfg), run_dir, resume=resume, on_progress=on_progress, cancel=cancel)


def distill(cfg: dict, run_dir, resume, *, on_progress, cancel):
    from engine.distill.config import DistillConfig
    from engine.distill.train import distill as _distill

    return _distill(DistillConfig(**cfg), run_dir, resume=resume, on_progress=on_progress, cancel=cancel)


def _spin(lo, hi, val, double=False):
    w = QDoubleSpinBox() if double else QSpinBox()
    w.setRange(lo, hi)
    if double:
        w.setDecimals(4)
    w.setValue(val)
    return w


class TrainingPanel(QWidget):
    chain_done = Signal(str)  # the student run directory
    chain_stopped = Signal(str)  # "cancelled" | error message
    busy_changed = Signal(bool)

    def __init__(self, jobs: Jobs, report_error, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.jobs, self.report_error = jobs, report_error
        self.fns = {"data": generate, "teacher": train, "distill": distill}  # tests swap in fakes
        self.pde_name, self.grid_n = "darcy", 32
        self.runner = None
        self._cancelled = False
        self.folder = QLineEdit(str(Path.home() / "piddm-runs"))
        browse = QPushButton("…")
        browse.clicked.connect(self._browse)
        self.n_samples = _spin(8, 1_000_000, 256)
        self.model_size = QComboBox()
        self.model_size.addItems(["tiny", "small", "base"])
        self.model_size.setCurrentText("small")
        self.teacher_steps = _spin(1, 10_000_000, 2000)
        self.teacher_minutes = _spin(0, 10_000, 0.0, double=True)
        self.teacher_minutes.setSpecialValueText("no limit")
        self.lam = _spin(0, 1e4, 0.05, double=True)
        self.distill_steps = _spin(1, 10_000_000, 1000)
        self.resume = QCheckBox("resume existing runs")
        self.start_btn = QPushButton("Generate → train → distill")
        self.cancel_btn = QPushButton("Cancel")
        self.cancel_btn.setEnabled(False)
        self.bars = {s: QProgressBar() for s in STAGES}
        self.status = QLabel("Idle.")
        self.status.setWordWrap(True)
        self.plot = LossPlot(("loss", "residual", "preview_residual_mse"))
        self.preview = FieldView("preview sample", "field")
        self.preview_res = FieldView("preview |residual|", "residual", log_option=True)

        form = QFormLayout()
        frow = QHBoxLayout()
        frow.addWidget(self.folder, 1)
        frow.addWidget(browse)
        form.addRow("runs folder", frow)
        form.addRow("samples", self.n_samples)
        form.addRow("U-Net", self.model_size)
        form.addRow("teacher steps", self.teacher_steps)
        form.addRow("teacher minutes", self.teacher_minutes)
        form.addRow("distill λ", self.lam)
        form.addRow("distill steps", self.distill_steps)
        form.addRow(self.resume)
        for s in STAGES:
            form.addRow(s, self.bars[s])
        box = QGroupBox("Settings")
        box.setLayout(form)
        left = QVBoxLayout()
        left.addWidget(box)
        btns = QHBoxLayout()
        btns.addWidget(self.start_btn)
        btns.addWidget(self.cancel_btn)
        left.addLayout(btns)
        left.addWidget(self.status)
        left.addStretch(1)
        right = QVBoxLayout()
        right.addWidget(self.plot, 1)
        prow = QHBoxLayout()
        prow.addWidget(self.preview, 1)
        prow.addWidget(self.preview_res, 1)
        right.addLayout(prow, 1)
        lay = QHBoxLayout(self)
        lay.addLayout(left, 0)
        lay.addLayout(right, 1)
        self.start_btn.clicked.connect(self.run_chain)
        self.cancel_btn.clicked.connect(self.cancel)

    def _browse(self) -> None:
        d = QFileDialog.getExistingDirectory(self, "Runs folder", self.folder.text())
        if d:
            self.folder.setText(d)

    def run_dirs(self) -> dict[str, Path]:
        base = Path(self.folder.text()) / f"{self.pde_name}-{self.grid_n}"
        return {"data": base / "data.h5", "teacher": base / "teacher", "distill": base / "student"}

    def cancel(self) -> None:
        self._cancelled = True
        if self.runner is not None:
            self.runner.cancel()
        self.status.setText("Cancelling (the engine saves a checkpoint first)…")

    def _set_busy(self, busy: bool) -> None:
        self.start_btn.setEnabled(not busy)
        self.cancel_btn.setEnabled(busy)
        self.busy_changed.emit(busy)

    def on_progress(self, p) -> None:
        bar = self.bars.get("distill" if p.stage == "pairs" else p.stage)
        if bar is not None and p.total > 0:
            bar.setRange(0, p.total)
            bar.setValue(min(p.step, p.total))
        metrics = dict(p.metrics or {})
        self.plot.add(p.stage, p.step, metrics)
        text = ", ".join(f"{k} {v:.3g}" for k, v in metrics.items() if isinstance(v, float))
        self.status.setText(f"{p.stage} {p.step}/{p.total} {text} {p.message}".strip())
        if p.preview is not None:
            self.show_preview(np.asarray(p.preview))

    def show_preview(self, x: np.ndarray) -> None:
        """x (C, N, N): show the last channel and its PDE residual."""
        from engine import pdes
        from engine.metrics import residual_map

        self.preview.set_field(x[-1])
        try:
            self.preview_res.set_field(np.abs(residual_map(pdes.get(self.pde_name), x[None])[0]))
        except Exception:
            self.preview_res.set_field(None)

    async def _stage(self, stage: str, *args):
        self.bars[stage].setRange(0, 0)
        self.runner = self.jobs.start(self.fns[stage], *args, name=stage)
        self.runner.progress.connect(self.on_progress)
        result = await self.runner.result()
        if self._cancelled:  # the job finished before it saw the token: stop the chain anyway
            raise Cancelled
        self.bars[stage].setRange(0, 1)
        self.bars[stage].setValue(1)
        return result

    @asyncSlot()
    async def run_chain(self) -> None:
        """generate → train → distill; each awaited on the worker; cancel stops the chain."""
        self._cancelled = False
        self._set_busy(True)
        self.plot.clear_curves()
        dirs = self.run_dirs()
        resume = self.resume.isChecked()
        try:
            dirs["teacher"].parent.mkdir(parents=True, exist_ok=True)
            if not (resume and dirs["data"].exists()):
                await self._stage("data", self.pde_name, self.n_samples.value(), self.grid_n, 0, dirs["data"])
            tcfg = {"pde": self.pde_name, "grid_n": self.grid_n, "dataset": str(dirs["data"]),
                    "model": self.model_size.currentText(), "steps": self.teacher_steps.value(),
                    "minutes": self.teacher_minutes.value(), "preview_every": 200}
            t_resume = resume and (dirs["teacher"] / "checkpoint.pt").exists()
            await self._stage("teacher", tcfg, dirs["teacher"], t_resume)
            dcfg = {"teacher": str(dirs["teacher"]), "lam": self.lam.value(), "steps": self.distill_steps.value()}
            d_resume = resume and (dirs["distill"] / "checkpoint.pt").exists()
            await self._stage("distill", dcfg, dirs["distill"], d_resume)
        except Cancelled:
            self.status.setText("Cancelled. Tick “resume” and start again to continue.")
            self.chain_stopped.emit("cancelled")
        except (JobFailed, OSError) as exc:
            self.status.setText(f"Stopped: {exc}")
            self.report_error("Training failed", str(exc), getattr(exc, "details", ""))
            self.chain_stopped.emit(str(exc))
        except asyncio.CancelledError:
            self.chain_stopped.emit("cancelled")
        else:
            self.status.setText(f"Done: student in {dirs['distill']}")
            self.chain_done.emit(str(dirs["distill"]))
        finally:
            self.runner = None
            self._set_busy(False)
