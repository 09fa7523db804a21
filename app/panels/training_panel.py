"""Training: generate a dataset → train a teacher → distill a student, as one async chain.

Each stage runs on the worker thread with a progress bar; loss curves and the teacher's periodic
sample previews (with their residual map) update live; Cancel stops the chain (the engine
checkpoints first); "resume" continues the latest run folder, stage by stage, with the settings
saved in its config.json files (the widgets show them). A fresh start never overwrites a run: it
takes the next free folder ``<pde>-<grid>[-k]`` under the runs folder. A dataset file of the user's
(``piddm generate`` or their own simulations) may replace the generated one.
"""

from __future__ import annotations

import asyncio
import html
import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt, Signal
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
    QSplitter,
    QToolButton,
    QVBoxLayout,
    QWidget,
)
from qasync import asyncSlot

from app.canvas.field_view import FieldView
from app.plots.loss_plot import LossPlot
from app.screen_fit import scrolled
from app.workers import JobFailed, Jobs
from engine.config import TeacherConfig, load_config, to_dict
from engine.diffusion.train import RESUME_MAY_CHANGE as TEACHER_MAY_CHANGE
from engine.distill.config import PHYSICS_ON, DistillConfig
from engine.distill.train import RESUME_MAY_CHANGE as DISTILL_MAY_CHANGE
from engine.errors import ConfigError, EngineError
from engine.io.atomic import write_text
from engine.io.rundir import RunDir, being_written
from engine.jobs import Cancelled

STAGES = ("data", "teacher", "distill")
GRIDS = ("16", "32", "64", "128")  # multiples of 8 (three U-Net halvings)
_SHOWN = (("loss", "loss {:.3g}"), ("residual", "residual {:.3g}"), ("preview_residual_mse", "preview res {:.3g}"),
          ("samples_per_s", "{:.0f} samples/s"))


@contextmanager
def leave_a_core_for_the_gui() -> Iterator[None]:
    """Training on the CPU: one intra-op thread fewer than the cores, so the window keeps a core.

    On a busy 2-core machine two spinning OpenMP threads beside the GUI thread made the tiny
    teacher ~25x slower (2 s/step against 0.17 s/step with one thread). The count is process-wide,
    so it is put back afterwards: solves run as fast after a training as before one."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(max(1, (os.cpu_count() or 2) - 1))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def generate(pde, n, grid_n, seed, path, *, on_progress, cancel):
    from engine.data.generate import generate_dataset

    return generate_dataset(pde, n, grid_n, seed, path, on_progress=on_progress, cancel=cancel)


def train(cfg: dict, run_dir, resume, *, on_progress, cancel):
    from engine.config import TeacherConfig
    from engine.diffusion.train import train_teacher

    with leave_a_core_for_the_gui():
        return train_teacher(TeacherConfig(**cfg), run_dir, resume=resume, on_progress=on_progress, cancel=cancel)


def distill(cfg: dict, run_dir, resume, *, on_progress, cancel):
    from engine.distill.config import DistillConfig
    from engine.distill.train import distill as _distill

    with leave_a_core_for_the_gui():
        return _distill(DistillConfig(**cfg), run_dir, resume=resume, on_progress=on_progress, cancel=cancel)


def _spin(lo, hi, val, double=False, tip=""):
    w = QDoubleSpinBox() if double else QSpinBox()
    w.setRange(lo, hi)
    if double:
        w.setDecimals(3)
    w.setValue(val)
    w.setToolTip(tip)
    return w


def _previews(tip: str) -> QSpinBox:
    """A stage's preview cadence, read "every 50 steps" (0: "never")."""
    w = _spin(0, 1_000_000, 50, tip=tip)
    w.setPrefix("every ")
    w.setSuffix(" steps")
    w.setSpecialValueText("never")
    return w


def _set_value(w: QWidget, value) -> None:
    if isinstance(w, QComboBox):
        w.setCurrentText(str(value))
    else:
        w.setValue(value)


def _value(w: QWidget):
    return w.currentText() if isinstance(w, QComboBox) else w.value()


# The student's settings chosen when a chain starts, kept beside its stages: a chain cancelled before its
# student began resumes with them, not with a new window's defaults (the student has no config.json yet).
CHAIN_FILE = "chain.json"


def resumed_config(run_dir: Path, cls):
    """The saved config of a stage that resumes (it has a checkpoint), or None for one that starts
    afresh. The run's own settings, not the panel's: the engine refuses to resume with others."""
    saved = run_dir / "config.json"
    if (run_dir / "checkpoint.pt").exists() and saved.is_file():
        return load_config(saved, cls)
    return None


def _resumed(cfg: dict, run_dir: Path, cls, may_change) -> dict:
    """A resumed stage's settings: its config.json, with only what a resume may change taken from the
    panel's ``cfg`` (as `piddm train --resume`); ``cfg`` itself for a stage not begun."""
    saved = resumed_config(run_dir, cls)
    if saved is None:
        return cfg
    return {**to_dict(saved), **{k: v for k, v in cfg.items() if k in may_change}}


def _clock(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    return f"{m}:{s:02d}"


class TrainingPanel(QWidget):
    chain_done = Signal(str)  # the student run directory
    chain_stopped = Signal(str)  # "cancelled" | error message
    busy_changed = Signal(bool)
    preview_shown = Signal(int)  # the step of the preview now shown

    def __init__(self, jobs: Jobs, report_error, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.jobs, self.report_error = jobs, report_error
        self.fns = {"data": generate, "teacher": train, "distill": distill}  # tests swap in fakes
        self.pde_name = "darcy"
        # the running chain's PDE parameters (its dataset's, e.g. helmholtz k = 2): the preview's residual
        # is that PDE's, not the defaults'
        self.pde_params: dict = {}
        self.runner = None
        self.current: dict[str, Path] | None = None  # the run folders of the chain in progress
        self._cancelled = False
        self._preview: np.ndarray | None = None
        self.folder = QLineEdit(str(Path.home() / "piddm-runs"))
        browse = QToolButton(text="…", toolTip="choose the runs folder")  # a push button is 80 px wide
        browse.clicked.connect(self._browse)
        self.dataset = QLineEdit()
        self.dataset.setPlaceholderText("none: generate one")
        self.dataset.setToolTip("a fields file to train on (piddm generate, or your own simulations) instead "
                                "of generating one; its PDE and grid must be the run's")
        browse_data = QToolButton(text="…", toolTip="choose a dataset file (its grid becomes the run's)")
        browse_data.clicked.connect(self._browse_dataset)
        self.pde_label = QLabel(self.pde_name)
        self.pde_label.setToolTip("the PDE chosen in the Model panel")
        self.grid = QComboBox()
        self.grid.addItems(GRIDS)
        self.grid.setCurrentText("32")
        self.grid.setToolTip("N: fields are N×N. 32² trains in minutes on a CPU; 64² wants a GPU")
        self.n_samples = _spin(8, 1_000_000, 128, tip="training samples to generate (10 % are held out)")
        self.model_size = QComboBox()
        self.model_size.addItems(["tiny", "small", "base"])
        self.model_size.setCurrentText("tiny")
        self.model_size.setToolTip("U-Net size: tiny ≈ 0.1 M parameters (a CPU, minutes), "
                                   "small ≈ 2.3 M (a CPU, hours at 32²), base (a GPU)")
        self.teacher_steps = _spin(1, 10_000_000, 2000, tip="optimiser steps (an upper bound when minutes is set)")
        self.teacher_minutes = _spin(0, 10_000, 2.0, double=True,
                                     tip="wall-clock budget of the teacher over all sessions; 0 = run the steps")
        self.teacher_minutes.setSpecialValueText("no limit")
        self.teacher_cooldown = _spin(0, 1, 0.0, double=True,
                                      tip="fraction of the teacher steps at the end over which its learning rate "
                                          "falls linearly to 0 (0 = constant); counted in steps, so a minutes "
                                          "budget that stops the run first leaves the fall unfinished")
        self.teacher_cooldown.setSingleStep(0.1)
        self.teacher_cooldown.setSpecialValueText("none")
        # each stage its own preview cadence: a teacher preview costs two Heun samples, a student's one step
        self.teacher_preview_every = _previews(
            "teacher steps between sample previews: two samples of the teacher (EMA weights, Heun), shown "
            "below with their PDE residual and plotted as “preview res”. Never: no previews (a little faster). "
            "A resume may change it")
        self.distill_preview_every = _previews(
            "student steps between sample previews: two one-step samples of the student, shown below with "
            "their PDE residual and plotted as “preview res”. Never: no previews. A resume may change it")
        self.lam = _spin(0, 1e4, DistillConfig.lam, double=True,
                         tip="λ: weight of the PDE residual in the distillation loss (0 = pure distillation)")
        self.lam.setDecimals(4)
        self.physics_on = QComboBox()
        self.physics_on.addItems(PHYSICS_ON)
        self.physics_on.setCurrentText(DistillConfig.physics_on)
        self.physics_on.setToolTip("what the residual term may change: all = every channel (PIDDM Eq. 9); "
                                   "solution = only the solution, the coefficient follows the teacher")
        self.pairs = _spin(1, 1_000_000, 128, tip="(noise, teacher sample) pairs; each costs a teacher solve")
        self.distill_steps = _spin(1, 10_000_000, 500, tip="optimiser steps (an upper bound when minutes is set)")
        self.distill_minutes = _spin(0, 10_000, 1.0, double=True, tip="wall-clock budget of the distillation; "
                                                                     "0 = run the steps")
        self.distill_minutes.setSpecialValueText("no limit")
        self.resume = QCheckBox("resume the latest run")
        self.resume.setToolTip("continue the latest run folder with its own settings: skip the dataset if it "
                               "exists, resume the teacher and student from their checkpoints")
        # the widget of each config field, per stage: a resumed run's settings are shown in them
        self.teacher_widgets = {"model": self.model_size, "steps": self.teacher_steps,
                                "minutes": self.teacher_minutes, "cooldown": self.teacher_cooldown,
                                "preview_every": self.teacher_preview_every}
        self.distill_widgets = {"lam": self.lam, "physics_on": self.physics_on, "pairs": self.pairs,
                                "steps": self.distill_steps, "minutes": self.distill_minutes,
                                "preview_every": self.distill_preview_every}
        self.start_btn = QPushButton("Generate → train → distill")
        self.cancel_btn = QPushButton("Cancel")
        self.cancel_btn.setEnabled(False)
        self.bars = {s: QProgressBar() for s in STAGES}
        for b in self.bars.values():
            b.setFormat("%v / %m")
        self.status = QLabel("Idle.")
        self.status.setWordWrap(True)
        self.run_label = QLabel()
        self.run_label.setWordWrap(True)
        self.plot = LossPlot(("loss",))  # the training losses (teacher: EDM loss, student: total loss)
        self.plot.setTitle("loss")
        self.res_plot = LossPlot(("residual", "preview_residual_mse"))  # PDE residuals, a different scale
        self.res_plot.plotItem.titleLabel.short = "residual, mean r²"  # (a narrow plot's title)
        self.res_plot.setTitle("PDE residual, mean r²")  # the legend names teacher previews and student
        self.preview = FieldView("preview sample", "field")
        self.preview_res = FieldView("preview |residual|", "residual", log_option=True)
        self.preview_channel = QComboBox()
        self.preview_channel.setToolTip("channel of the preview sample")
        self.preview_channel.currentIndexChanged.connect(lambda _i: self._redraw_preview())

        form = QFormLayout()
        frow = QHBoxLayout()
        frow.addWidget(self.folder, 1)
        frow.addWidget(browse)
        form.addRow("runs folder", frow)
        drow = QHBoxLayout()
        drow.addWidget(self.dataset, 1)
        drow.addWidget(browse_data)
        form.addRow("dataset", drow)
        form.addRow("PDE", self.pde_label)
        form.addRow("grid", self.grid)
        form.addRow("samples", self.n_samples)
        form.addRow("U-Net", self.model_size)
        form.addRow("teacher steps", self.teacher_steps)
        form.addRow("teacher minutes", self.teacher_minutes)
        form.addRow("teacher lr cooldown", self.teacher_cooldown)
        form.addRow("teacher previews", self.teacher_preview_every)
        form.addRow("distill λ", self.lam)
        form.addRow("physics moves", self.physics_on)
        form.addRow("distill pairs", self.pairs)
        form.addRow("distill steps", self.distill_steps)
        form.addRow("distill minutes", self.distill_minutes)
        form.addRow("distill previews", self.distill_preview_every)
        form.addRow(self.resume)
        form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)  # (narrowed by the splitter)
        self.settings_box = QGroupBox("Settings")
        self.settings_box.setLayout(form)
        prog = QFormLayout()
        for s in STAGES:
            prog.addRow(s, self.bars[s])
        pbox = QGroupBox("Progress")
        pbox.setLayout(prog)
        left = QVBoxLayout()
        # the settings scroll on a short screen; the buttons and the progress stay in view under them
        left.addWidget(scrolled(self.settings_box, grow=False))
        btns = QHBoxLayout()
        btns.addWidget(self.start_btn)
        btns.addWidget(self.cancel_btn)
        left.addLayout(btns)
        left.addWidget(pbox)
        left.addWidget(self.run_label)
        left.addWidget(self.status)
        left.addStretch(1)
        right = QVBoxLayout()
        plots = QHBoxLayout()
        plots.addWidget(self.plot, 1)
        plots.addWidget(self.res_plot, 1)
        right.addLayout(plots, 1)
        crow = QHBoxLayout()
        crow.addWidget(QLabel("preview channel"))
        crow.addWidget(self.preview_channel)
        crow.addStretch(1)
        right.addLayout(crow)
        prow = QHBoxLayout()
        prow.addWidget(self.preview, 1)
        prow.addWidget(self.preview_res, 1)
        right.addLayout(prow, 1)
        # the settings beside the plots, the line between them draggable: on a small screen the plots may
        # take room from the settings, whose rows then put their boxes under their names
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        for column, stretch in ((left, 0), (right, 1)):
            holder = QWidget()
            holder.setLayout(column)
            column.setContentsMargins(0, 0, 0, 0)
            self.splitter.addWidget(holder)
            self.splitter.setStretchFactor(self.splitter.count() - 1, stretch)
        self.splitter.setChildrenCollapsible(False)
        lay = QHBoxLayout(self)
        lay.addWidget(self.splitter)
        self.start_btn.clicked.connect(self.run_chain)
        self.cancel_btn.clicked.connect(self.cancel)
        self.resume.toggled.connect(self._update_run_label)
        self.folder.textChanged.connect(self._update_run_label)
        self.grid.currentTextChanged.connect(self._update_run_label)
        # (not per keystroke: the label reads the file's header)
        self.dataset.editingFinished.connect(self._update_run_label)
        self._update_run_label()

    # -- settings -------------------------------------------------------------------------------
    @property
    def grid_n(self) -> int:
        return int(self.grid.currentText())

    @grid_n.setter
    def grid_n(self, n: int) -> None:
        if str(n) in GRIDS:
            self.grid.setCurrentText(str(n))

    def set_pde(self, name: str) -> None:
        self.pde_name, self.pde_params = name, {}
        self.pde_label.setText(name)
        self._update_run_label()

    def _browse(self) -> None:
        d = QFileDialog.getExistingDirectory(self, "Runs folder", self.folder.text())
        if d:
            self.folder.setText(d)

    def _browse_dataset(self) -> None:
        path, _filter = QFileDialog.getOpenFileName(self, "Dataset", self.dataset.text() or self.folder.text(),
                                                    "Fields files (*.h5 *.hdf5);;All files (*)")
        if path:
            self.use_dataset(path)

    def use_dataset(self, path: str) -> None:
        """Train on the fields file ``path`` (chosen, or remembered from the last session): the grid comes
        from the file; the PDE is the Model panel's, checked at the start."""
        self.dataset.setText(path)
        with suppress(EngineError):  # else the run label says what is wrong with the file
            self.grid_n = self.check_dataset(Path(path), grid=False).grid
        self._update_run_label()

    def check_dataset(self, path: Path, grid: bool = True):
        """The header (and first sample) of a dataset file of the user's; ConfigError in one line when its
        PDE (or, with ``grid``, its grid) is not the run's."""
        from engine.io.hdf5 import read_fields

        ff = read_fields(path, sample=0)  # one sample: a large file is not read whole to check its header
        if ff.pde != self.pde_name or (grid and ff.grid != self.grid_n):
            raise ConfigError(f"{path.name} holds {ff.pde} fields at {ff.grid}², but this run is {self.pde_name} at "
                              f"{self.grid_n}²: choose its PDE in the Model panel and its grid here, or another file")
        return ff

    def data_path(self, dirs: dict[str, Path], resume: bool) -> Path:
        """The fields file the teacher trains on: the dataset chosen here, else (resuming) the one the run's
        teacher trained on, else the run's own data.h5 (generated when it is not kept)."""
        if chosen := self.dataset.text().strip():
            return Path(chosen).expanduser()
        try:
            saved = resumed_config(dirs["teacher"], TeacherConfig) if resume else None
        except EngineError:
            saved = None  # an unreadable config.json: teacher_config reports it at the start
        elsewhere = Path(saved.dataset) if saved is not None and saved.dataset else dirs["data"]
        if elsewhere.is_file() and elsewhere.resolve() != dirs["data"].resolve():
            return elsewhere  # e.g. a run started by `piddm train --data elsewhere.h5 -o RUN/teacher`
        return dirs["data"]

    def _runs(self) -> list[Path]:
        """The existing run folders of this PDE and grid, oldest first."""
        root = Path(self.folder.text()).expanduser()
        stem = f"{self.pde_name}-{self.grid_n}"
        pat = re.compile(re.escape(stem) + r"(?:-(\d+))?$")
        found = []
        if root.is_dir():
            for p in root.iterdir():
                m = pat.fullmatch(p.name)
                if m and p.is_dir():
                    found.append((int(m.group(1) or 1), p))
        return [p for _k, p in sorted(found)]

    def run_base(self, resume: bool | None = None) -> Path:
        """The folder the next chain uses: the latest run when resuming, else the next free one."""
        resume = self.resume.isChecked() if resume is None else resume
        root = Path(self.folder.text()).expanduser()
        stem = f"{self.pde_name}-{self.grid_n}"
        runs = self._runs()
        if resume and runs:
            return runs[-1]
        if not runs:
            return root / stem
        last = re.search(r"-(\d+)$", runs[-1].name[len(stem):])
        k = int(last.group(1)) + 1 if last else 2
        while (root / f"{stem}-{k}").exists():
            k += 1
        return root / f"{stem}-{k}"

    def run_dirs(self, resume: bool | None = None) -> dict[str, Path]:
        base = self.run_base(resume)
        return {"data": base / "data.h5", "teacher": base / "teacher", "distill": base / "student"}

    def _update_run_label(self, *_a) -> None:
        if self.current is not None:
            return
        base = self.run_base()
        resuming = self.resume.isChecked() and base.exists()
        self.start_btn.setText("Resume the run" if resuming else "Generate → train → distill")
        verb = "resumes" if resuming else "writes"
        dirs = self.run_dirs()
        data = self.data_path(dirs, resuming)
        files = "data.h5, teacher/, student/" if data == dirs["data"] else "teacher/, student/"
        text = f"Next run {verb} <b>{base.name}</b> ({files})"
        if resuming:
            text += " with its own settings; only steps, minutes and previews may change"
            if not (dirs["distill"] / "checkpoint.pt").exists():
                text += " (its student, not begun yet, takes the student settings shown)"
        try:
            if self.dataset.text().strip():
                self.check_dataset(data)
            if data != dirs["data"]:
                text += f", trained on {html.escape(data.name)}"
        except EngineError as exc:
            text += f".<br><b>Dataset</b>: {html.escape(str(exc))}"
        if busy := [name for name in ("teacher", "distill") if being_written(dirs[name])]:
            # (the settings shown are then that job's; a start now would be refused)
            text += (f".<br><b>Another job is writing its {'student' if busy[0] == 'distill' else 'teacher'} "
                     "now</b> (a command-line run?): wait for it or stop it first")
        self.run_label.setText(text + ".")
        self._show_run_settings(dirs, data, resuming)

    def _show_run_settings(self, dirs: dict[str, Path], data: Path, resuming: bool) -> None:
        """Resuming: the widgets show the run's saved settings, and those a resume may not change are
        greyed out, so that what the panel shows is what runs. Otherwise all are editable."""
        saved = {}
        if resuming:
            with suppress(EngineError):  # an unreadable config.json: the start reports it
                saved = {"teacher": resumed_config(dirs["teacher"], TeacherConfig),
                         "distill": resumed_config(dirs["distill"], DistillConfig)}
            if saved.get("distill") is None:  # a student not begun: the settings its chain started with
                for name, value in self.chosen_distill(dirs).items():
                    _set_value(self.distill_widgets[name], value)
        for stage, widgets, may_change in (("teacher", self.teacher_widgets, TEACHER_MAY_CHANGE),
                                           ("distill", self.distill_widgets, DISTILL_MAY_CHANGE)):
            cfg = saved.get(stage)
            for name, w in widgets.items():
                if cfg is not None:
                    _set_value(w, getattr(cfg, name))
                w.setEnabled(cfg is None or name in may_change)
        # the sample count only means something for a dataset the chain generates
        kept = data != dirs["data"] or (resuming and data.exists())
        self.n_samples.setEnabled(not kept)
        if kept:
            from engine.io.hdf5 import count_samples

            with suppress(EngineError):  # not a fields file: the start reports it
                self.n_samples.setValue(count_samples(data))

    # -- running --------------------------------------------------------------------------------
    def cancel(self) -> None:
        if self.runner is None and self.current is None:
            return
        self._cancelled = True
        if self.runner is not None:
            self.runner.cancel()
        self.status.setText("Cancelling (the engine saves a checkpoint first)…")

    def _set_busy(self, busy: bool) -> None:
        self.start_btn.setEnabled(not busy)
        self.cancel_btn.setEnabled(busy)
        self.settings_box.setEnabled(not busy)
        self.busy_changed.emit(busy)

    def on_progress(self, p) -> None:
        bar = self.bars.get("distill" if p.stage == "pairs" else p.stage)
        if bar is not None and p.total > 0:
            bar.setRange(0, p.total)
            bar.setValue(min(p.step, p.total))
        metrics = dict(p.metrics or {})
        self.plot.add(p.stage, p.step, metrics)
        self.res_plot.add(p.stage, p.step, metrics)
        parts = [f"<b>{p.stage}</b> step {p.step}/{p.total}"]
        if p.stage == "pairs":
            parts = [f"<b>distill</b>: teacher samples for the pairs {p.step}/{p.total}"]
        parts += [fmt.format(metrics[k]) for k, fmt in _SHOWN if isinstance(metrics.get(k), float)]
        if isinstance(metrics.get("elapsed"), float):
            parts.append(f"{_clock(metrics['elapsed'])} elapsed")
        if p.message and p.message != "preview":
            parts.append(p.message)
        self.status.setText(" · ".join(parts))
        if p.preview is not None:
            self.show_preview(np.asarray(p.preview))
            self.preview_shown.emit(int(p.step))

    def show_preview(self, x: np.ndarray) -> None:
        """x (C, N, N): show the chosen channel (the coefficient by default) and the PDE residual."""
        from engine import pdes
        from engine.metrics import residual_map

        self._preview = x
        pde = pdes.get(self.pde_name, **self.pde_params)
        names = list(pde.fields) if len(pde.fields) == x.shape[0] else [f"channel {i}" for i in range(x.shape[0])]
        if [self.preview_channel.itemText(i) for i in range(self.preview_channel.count())] != names:
            self.preview_channel.blockSignals(True)
            self.preview_channel.clear()
            self.preview_channel.addItems(names)
            self.preview_channel.setCurrentIndex(0)
            self.preview_channel.blockSignals(False)
        self._redraw_preview()
        try:
            self.preview_res.set_field(np.abs(residual_map(pde, x[None])[0]))
        except Exception:
            self.preview_res.set_field(None)

    def _redraw_preview(self) -> None:
        if self._preview is not None:
            c = min(max(self.preview_channel.currentIndex(), 0), self._preview.shape[0] - 1)
            self.preview.set_field(self._preview[c])

    def _load_history(self, stage: str, run_dir: Path) -> None:
        """Resuming: draw the curves of the steps already trained."""
        for rec in (r for r in RunDir(run_dir).read_metrics() if "step" in r):
            metrics = {k: v for k, v in rec.items() if isinstance(v, float)}
            self.plot.add(stage, int(rec["step"]), metrics)
            self.res_plot.add(stage, int(rec["step"]), metrics)

    async def _stage(self, stage: str, *args):
        bar = self.bars[stage]
        bar.setRange(0, 0)  # busy until the stage's first report
        try:
            self.runner = self.jobs.start(self.fns[stage], *args, name=stage)
            self.runner.progress.connect(self.on_progress)
            result = await self.runner.result()
            if self._cancelled:  # the job finished before it saw the token: stop the chain anyway
                raise Cancelled
        except BaseException:
            # failed, refused (the run lock, a resume refusal) or cancelled: the bar shows how far the
            # stage got, never busy, which would say it is still working
            if bar.maximum() == 0:
                bar.setRange(0, 1)
                bar.setValue(0)
            bar.setFormat("stopped at %v / %m" if bar.value() > 0 else "stopped")
            raise
        bar.setRange(0, 1)
        bar.setValue(1)
        bar.setFormat("done")
        return result

    def teacher_config(self, dirs: dict[str, Path], resume: bool = False, data: Path | None = None,
                       pde_params: dict | None = None) -> dict:
        """The widgets' settings for a new teacher; resuming one, its config.json with only what a resume
        may change taken from the widgets (as `piddm train --resume`)."""
        cfg = {"pde": self.pde_name, "pde_params": dict(pde_params or {}), "grid_n": self.grid_n,
               "dataset": str(data or dirs["data"]), "model": self.model_size.currentText(),
               "steps": self.teacher_steps.value(), "minutes": self.teacher_minutes.value(),
               "preview_every": self.teacher_preview_every.value(), "cooldown": self.teacher_cooldown.value(),
               "warmup_steps": 50}  # short runs on a CPU: a short warm-up (fixed, so a resume may change steps)
        return _resumed(cfg, dirs["teacher"], TeacherConfig, TEACHER_MAY_CHANGE) if resume else cfg

    def chosen_distill(self, dirs: dict[str, Path]) -> dict:
        """The student's settings recorded when the chain in ``dirs`` started (CHAIN_FILE), or {}."""
        try:
            chosen = json.loads((dirs["teacher"].parent / CHAIN_FILE).read_text(encoding="utf-8"))["distill"]
        except (OSError, ValueError, KeyError, TypeError):
            return {}
        return {k: v for k, v in chosen.items() if k in self.distill_widgets} if isinstance(chosen, dict) else {}

    def _record_chain(self, dirs: dict[str, Path]) -> None:
        write_text(dirs["teacher"].parent / CHAIN_FILE, json.dumps(
            {"distill": {name: _value(w) for name, w in self.distill_widgets.items()}}, indent=2) + "\n")

    def distill_config(self, dirs: dict[str, Path], resume: bool = False) -> dict:
        """The widgets' settings for a new student; resuming one, its config.json with only what a resume
        may change (budget, the chain's teacher folder) taken from the panel."""
        cfg = {"teacher": str(dirs["teacher"]), "lam": self.lam.value(),
               "physics_on": self.physics_on.currentText(), "pairs": self.pairs.value(),
               "preview_every": self.distill_preview_every.value(),
               "steps": self.distill_steps.value(), "minutes": self.distill_minutes.value(),
               "batch_size": min(64, self.pairs.value())}
        return _resumed(cfg, dirs["distill"], DistillConfig, DISTILL_MAY_CHANGE) if resume else cfg

    @asyncSlot()
    async def run_chain(self) -> None:
        """generate → train → distill; each awaited on the worker; cancel stops the chain."""
        if self.current is not None:
            return
        self._cancelled = False
        resume = self.resume.isChecked()
        dirs = self.current = self.run_dirs(resume)
        self._set_busy(True)
        self.plot.clear_curves()
        self.res_plot.clear_curves()
        for b in self.bars.values():
            b.setRange(0, 1)
            b.setValue(0)
            b.setFormat("%v / %m")
        self.run_label.setText(f"Run folder: <b>{dirs['data'].parent}</b>")
        try:
            data = self.data_path(dirs, resume)
            chosen = data != dirs["data"]
            # a file of the user's is checked before anything is written: a mismatch is refused in one line
            pde_params = dict(self.check_dataset(data).pde_params) if self.dataset.text().strip() else {}
            dirs["teacher"].parent.mkdir(parents=True, exist_ok=True)
            if not (dirs["distill"] / "config.json").exists():  # the student's settings, as chosen now
                self._record_chain(dirs)
            if not chosen and not (resume and data.exists()):
                await self._stage("data", self.pde_name, self.n_samples.value(), self.grid_n, 0, data)
            else:
                self.bars["data"].setFormat("done (chosen file)" if chosen else "done (kept)")
                self.bars["data"].setValue(1)
            t_resume = resume and (dirs["teacher"] / "checkpoint.pt").exists()
            if t_resume:
                self._load_history("teacher", dirs["teacher"])
            t_cfg = self.teacher_config(dirs, t_resume, data, pde_params)
            self.pde_params = dict(t_cfg["pde_params"])  # a resumed run's are in its config.json
            await self._stage("teacher", t_cfg, dirs["teacher"], t_resume)
            d_resume = resume and (dirs["distill"] / "checkpoint.pt").exists()
            if d_resume:
                self._load_history("distill", dirs["distill"])
            await self._stage("distill", self.distill_config(dirs, d_resume), dirs["distill"], d_resume)
        except Cancelled:
            self.status.setText("Cancelled; the run is checkpointed. Tick “resume the latest run” and start "
                                "again to continue it.")
            self.resume.setChecked(True)
            self.chain_stopped.emit("cancelled")
        except (JobFailed, OSError, EngineError) as exc:
            self.status.setText(f"Stopped: {exc}")
            self.report_error("Training failed", str(exc), getattr(exc, "details", ""))
            self.chain_stopped.emit(str(exc))
        except asyncio.CancelledError:
            self.chain_stopped.emit("cancelled")
        else:
            self.status.setText(f"Done: the student is in {dirs['distill']} and in the model list.")
            self.resume.setChecked(False)
            self.chain_done.emit(str(dirs["distill"]))
        finally:
            self.runner = None
            self.current = None
            self._set_busy(False)
            self._update_run_label()
