"""MainWindow: docks (model, task, log), tabs (inputs, results, compare, training), menus, settings."""

from __future__ import annotations

import asyncio
import json
import logging
import traceback
from pathlib import Path

from PySide6.QtCore import QSettings, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QIcon, QKeySequence
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QInputDialog,
    QLabel,
    QMainWindow,
    QPlainTextEdit,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app import dialogs, io_actions
from app.canvas.draw_canvas import TOOLS
from app.canvas.field_view import FieldView
from app.controller import Controller
from app.panels.inputs_panel import InputsPanel
from app.panels.model_panel import ModelPanel, bundled_models, is_bundled, model_params
from app.panels.results_panel import ComparePanel, ResultsPanel
from app.panels.task_panel import TaskPanel
from app.panels.training_panel import TrainingPanel
from app.screen_fit import default_size, fit_to_screen, scrolled
from app.state import AppState, params_diff_text
from app.workers import Jobs

ICON = Path(__file__).resolve().parents[1] / "resources" / "icons" / "piddm-studio.png"

log = logging.getLogger("app")
DEMO_LOADED = "Demo task loaded: click observation points or draw, then Solve."
NO_MODEL_BANNER = ("No model yet — train one (Training tab) or open a run (File ▸ Open run…). "
                   "The dataspace and classical methods work without one.")


def about_text() -> str:
    """Version, method reference and the versions a bug report needs."""
    import torch
    from PySide6.QtCore import qVersion

    from engine import __version__
    from engine.models import bundled_root

    return (f"<b>PIDDM Studio {__version__}</b><br>Draw, solve, watch the residual: forward, inverse and "
            "reconstruction with a physics-informed one-step generator.<br><br>Method: Zhang, Wang &amp; Zou, "
            "<i>Physics-Informed Distillation of Diffusion Models for PDE-Constrained Generation</i>, ICML 2026."
            f"<br><br>torch {torch.__version__} ({'CUDA' if torch.cuda.is_available() else 'CPU'}), "
            f"Qt {qVersion()}<br>bundled models: {bundled_root()}")


def _model_key(info) -> str:
    """How settings name a listed model: a bundled one by its place in resources/models (it moves with
    the app), a run by its folder; "" for none."""
    if info is None:
        return ""
    if is_bundled(info.path):
        from engine.models import bundled_root

        return "bundled:" + Path(str(info.path)).resolve().relative_to(bundled_root().resolve()).as_posix()
    return str(info.path)


class _LogView(QPlainTextEdit):
    def sizeHint(self) -> QSize:  # noqa: N802
        """Six lines: shown on a short screen, the log dock takes that, not half the window (a
        QPlainTextEdit asks for 192 px, which left the result views thumbnails at 1024 × 600)."""
        return QSize(super().sizeHint().width(), 6 * self.fontMetrics().lineSpacing() + 12)


class MainWindow(QMainWindow):
    started = Signal()  # start-up workflow finished (model opened or no-model state shown)

    def __init__(self, settings: QSettings, *, startup: bool = True, open_path: str | None = None) -> None:
        """``startup``: list the models and open one (``start_up``); ``open_path``: what it opens."""
        super().__init__()
        from engine import pdes

        self.settings = settings
        self.setWindowTitle("PIDDM Studio")
        if ICON.is_file():
            self.setWindowIcon(QIcon(str(ICON)))
        self.state = AppState()
        self.jobs = Jobs(self)
        self.model_panel = ModelPanel(pdes.names())
        self.task_panel = TaskPanel()
        self.inputs = InputsPanel(self.state)
        self.results = ResultsPanel()
        self.compare = ComparePanel()
        self.training = TrainingPanel(self.jobs, self.report_error)
        panels = {"model": self.model_panel, "inputs": self.inputs, "task": self.task_panel,
                  "results": self.results, "compare": self.compare}
        self.controller = Controller(self.state, self.jobs, panels, self.report_error, self)
        self.banner = QLabel(NO_MODEL_BANNER)
        self.banner.setWordWrap(True)
        self.banner.setStyleSheet("background:#fff4ce; color:#5c4400; padding:6px; border:1px solid #e0c060;")
        self.tabs = QTabWidget()
        for w, name in ((self.inputs, "Inputs"), (self.results, "Results"), (self.compare, "Compare"),
                        (self.training, "Training")):
            self.tabs.addTab(w, name)
        central = QWidget()
        lay = QVBoxLayout(central)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addWidget(self.banner)
        lay.addWidget(self.tabs, 1)
        self.setCentralWidget(central)
        self.log_view = _LogView()
        self.log_view.setReadOnly(True)
        self.log_view.setMaximumBlockCount(2000)
        self.docks = {}
        for name, w, area in (("Model", scrolled(self.model_panel), Qt.DockWidgetArea.LeftDockWidgetArea),
                              ("Task", self.task_panel, Qt.DockWidgetArea.LeftDockWidgetArea),
                              ("Log", self.log_view, Qt.DockWidgetArea.BottomDockWidgetArea)):
            d = QDockWidget(name, self)
            d.setObjectName(f"dock_{name.lower()}")
            d.setWidget(w)
            self.addDockWidget(area, d)
            self.docks[name] = d
        self.docks["Log"].hide()
        self._log_handler = dialogs.QtLogHandler()
        self._log_handler.emitter.line.connect(self.log_view.appendPlainText)
        logging.getLogger().addHandler(self._log_handler)
        logging.getLogger().setLevel(min(logging.getLogger().level or logging.INFO, logging.INFO))
        self._build_menus()
        self._wire()
        self._idle_message = "Ready."  # what the status bar returns to when no job runs
        self._demo_on_canvases = False  # the canvases hold a demo task (not a file's fields)
        # a line kept in front of the next demo's when it comes with the model at this path (None: no
        # model): a finished training's, whose student opens; start-up's; a parameter change's
        self._news: tuple[str, Path | None] = ("", None)
        self.show_status("Ready.")
        self.resize(default_size(self.screen().availableGeometry()))
        self._restore_settings()
        self.state.ensure_fields()
        self.inputs.rebuild()
        self.results.set_channels(self.state.channels)
        self.model_panel.set_equation(self.state.pde)
        self._show_params()
        self.task_panel.load(self.state)
        self._apply_remembered()
        self.has_started = False  # the start-up workflow finished (``started``)
        if startup:
            QTimer.singleShot(0, lambda: self.start_up(open_path))

    # -- construction ---------------------------------------------------------------------------
    def _build_menus(self) -> None:
        mb = self.menuBar()
        f = mb.addMenu("&File")
        f.addAction("Open run…", self.model_panel._open_run)
        f.addAction("Import fields file…", self.import_fields)
        f.addAction("Import mask from fields file…", lambda: self.import_fields(mask_only=True))
        f.addAction("Import .npy into channel…", self.import_npy)
        f.addAction("Import .npy mask into channel…", lambda: self.import_npy(as_mask=True))
        f.addSeparator()
        self.export_action = f.addAction("Export result…", self.export_result)
        self.export_action.setShortcut(QKeySequence.StandardKey.Save)
        f.addAction("Export observations…", self.export_observations)
        self.png_menu = f.addMenu("Export PNG of view")
        self.png_menu.aboutToShow.connect(self._fill_png_menu)
        f.addSeparator()
        f.addAction("Quit", self.close).setShortcut(QKeySequence.StandardKey.Quit)
        e = mb.addMenu("&Edit")
        self.undo_action = QAction("Undo", self, shortcut=QKeySequence.StandardKey.Undo, triggered=self.inputs.undo)
        self.redo_action = QAction("Redo", self, triggered=self.inputs.redo)
        # Ctrl+Y too, where the platform's Redo keys lack it: bound twice, Qt finds the key ambiguous
        # and does nothing ("Ambiguous shortcut overload")
        redo_keys = QKeySequence.keyBindings(QKeySequence.StandardKey.Redo)
        if QKeySequence("Ctrl+Y") not in redo_keys:
            redo_keys.append(QKeySequence("Ctrl+Y"))
        self.redo_action.setShortcuts(redo_keys)
        e.addActions([self.undo_action, self.redo_action])
        self.inputs.undo_available.connect(self._sync_undo)  # (enabled only with a step to undo / redo)
        self._sync_undo(*self.inputs.history.available())
        r = mb.addMenu("&Solve")  # the task panel's buttons, from the keyboard
        self.solve_action = r.addAction("Solve", self.task_panel.solve_btn.click)
        self.solve_action.setShortcut(QKeySequence("Ctrl+Return"))
        self.cancel_action = r.addAction("Cancel", self.task_panel.cancel_btn.click)
        self.cancel_action.setShortcut(QKeySequence("Ctrl+."))
        v = mb.addMenu("&View")
        for d in self.docks.values():
            v.addAction(d.toggleViewAction())
        v.addSeparator()
        v.addAction("Whole fields (reset zoom)", self.reset_zoom).setShortcut(QKeySequence("Ctrl+0"))
        h = mb.addMenu("&Help")
        h.addAction("About", lambda: dialogs.QMessageBox.about(self, "About PIDDM Studio", about_text()))

    def _wire(self) -> None:
        c, mp, tp = self.controller, self.model_panel, self.task_panel
        mp.model_selected.connect(c.open_model)
        mp.pde_changed.connect(c.change_pde)
        mp.grid_changed.connect(c.change_grid)
        mp.params_changed.connect(self.change_params)
        tp.task_changed.connect(c.apply_task)
        tp.solve_requested.connect(c.solve)
        tp.cancel_requested.connect(c.cancel)
        c.model_changed.connect(self._refresh_model_ui)
        c.demo_ready.connect(self._refresh_model_ui)
        c.demo_ready.connect(self._on_demo_ready)
        c.solve_done.connect(self._on_solved)
        self.inputs.task_restored.connect(self._on_task_restored)
        self.training.chain_done.connect(self._on_trained)
        self.jobs.changed.connect(self._on_jobs_changed)

    # -- start-up -------------------------------------------------------------------------------
    def start_up(self, path: str | None = None) -> None:
        """List the bundled models and the runs of earlier sessions, and open the bundled darcy model
        with a demo task. ``path`` (the command line's): a run directory, listed and opened in its place,
        or a fields file, imported with the listed model of its PDE and grid (if any) opened on it."""
        infos = bundled_models()
        self.model_panel.set_models(infos + self._remembered_runs())
        first = next((i for i in infos if i.pde == "darcy"), None)
        if path is None:  # the model open when the app last closed, else (a first start) the default
            first = self._remembered_model(first)
        elif Path(path).is_dir():
            first = self.model_panel.list_folder(path) or first  # none there: a dialog, and the default
        elif Path(path).is_file():
            # here, not in the task below: the import may ask which sample, in a nested event loop
            if self.import_fields(path):
                first = self.listed_model(self.state.pde_name, self.state.grid_n)
                if first is None:
                    self.show_status(f"{self._idle_message}; {self._no_model_note()}")
        else:
            self.report_error("Cannot open", f"{path}: no such file or folder. PIDDM Studio opens a run "
                              "directory (with checkpoint.pt) or a fields file (.h5).")
        self.model_panel.set_models(self.model_panel.infos(), first)
        task = asyncio.ensure_future(self._start_up(first))
        task.add_done_callback(self._task_done)

    async def _start_up(self, info) -> None:
        if info is not None:  # a model opened on blank canvases brings its demo task
            await self.controller.load_model_info(info)
        if self.state.model is None and self.state.blank():
            await self.controller.load_demo()
            self.task_panel.load(self.state)
        self._apply_remembered()  # (opening the model chose its own method and reset the brush value)
        self._refresh_model_ui()
        self.has_started = True
        self.started.emit()

    def _task_done(self, task) -> None:
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            self.show_exception(type(exc), exc, exc.__traceback__)

    def listed_model(self, pde_name: str, grid_n: int, name: str | None = None):
        """The listed model of ``pde_name`` on grid ``grid_n``, made for the canvases' PDE parameters
        when they are of ``pde_name`` (a model whose card tells none is taken to be): the member called
        ``name`` (piddm, distill, teacher, a run's name) where there is one, else the first listed. None
        if none."""
        fits = [i for i in self._on_grid(pde_name, grid_n) if self._params_fit(i)]
        return next((i for i in fits if i.name == name), fits[0] if fits else None)

    def _on_grid(self, pde_name: str, grid_n: int) -> list:
        return [i for i in self.model_panel.infos() if i.pde == pde_name and i.card.get("grid") == grid_n]

    def _params_fit(self, info) -> bool:
        from engine import pdes

        s = self.state
        theirs = model_params(info)
        return info.pde != s.pde_name or theirs is None or theirs == pdes.params_of(s.pde)

    def _no_model_note(self) -> str:
        """Why no model is open on the canvases' PDE, parameters and grid, when models are listed:
        those listed are for other parameters, grids or PDEs."""
        from engine import pdes

        s = self.state
        on_grid = self._on_grid(s.pde_name, s.grid_n)
        if on_grid:  # of this PDE and grid, but made for other parameters
            mine = pdes.params_of(s.pde)
            theirs = [p for p in (model_params(i) for i in on_grid) if p is not None]
            keys = [k for k in mine if any(p.get(k) != mine[k] for p in theirs)]
            listed = sorted({params_diff_text({k: p.get(k) for k in keys}) for p in theirs})
            return (f"no model for {s.pde_name} {params_diff_text({k: mine[k] for k in keys})} on {s.grid_n}² "
                    f"(the listed {s.pde_name} {s.grid_n}² models are for {' or '.join(listed)})")
        grids = sorted({i.card.get("grid") for i in self.model_panel.infos() if i.pde == s.pde_name} - {None})
        listed = (f"the listed {s.pde_name} models are for {', '.join(f'{g}²' for g in grids)}" if grids
                  else f"no {s.pde_name} model is listed")
        return f"no model for {s.pde_name} {s.grid_n}² ({listed})"

    def _banner_text(self) -> str:
        s = self.state
        infos = self.model_panel.infos()
        if s.model is not None and not s.model_fits():  # open, but made for other parameters
            theirs, mine = s.params_mismatch()
            name = getattr(s.model_info, "label", s.pde_name)
            return (f"{name} was made for {params_diff_text(theirs)}, the canvases are for "
                    f"{params_diff_text(mine)}: its methods are not offered. Set {params_diff_text(theirs)} "
                    "in the Model panel to use it; the dataspace and classical methods work as they are.")
        if not infos:
            return NO_MODEL_BANNER
        if self.listed_model(s.pde_name, s.grid_n) is not None:
            return (f"No model open: pick a {s.pde_name} {s.grid_n}² model in the Models list. "
                    "The dataspace and classical methods work without one.")
        note = self._no_model_note()
        return (f"{note[0].upper()}{note[1:]} — train one (Training tab) or open a run (File ▸ Open run…). "
                "The dataspace and classical methods work without one.")

    def _refresh_model_ui(self) -> None:
        s = self.state
        self.banner.setText(self._banner_text())
        self.banner.setVisible(s.model is None or not s.model_fits())
        self.model_panel.show_info(s.model_info, s.model)
        self.model_panel.set_equation(s.pde)
        self._show_params()
        for box, val in ((self.model_panel.pde_box, s.pde_name), (self.model_panel.grid_box, str(s.grid_n))):
            box.blockSignals(True)
            box.setCurrentText(val)
            box.blockSignals(False)
        self.model_panel.grid_box.setEnabled(s.model is None)
        self.training.set_pde(s.pde_name)
        self.task_panel.offer_methods(s)
        for view in self.findChildren(FieldView):  # burgers' rows are time
            view.set_axes(s.pde.axes, periodic_columns=s.pde.periodic_columns)

    def _sync_undo(self, can_undo: bool, can_redo: bool) -> None:
        self.undo_action.setEnabled(can_undo)
        self.redo_action.setEnabled(can_redo)

    def change_params(self, params: dict) -> None:
        """The PDE parameters set in the Model panel (helmholtz's k, darcy's a_low, …), for the
        model-free methods. A demo task is made anew for them; drawn, imported or edited canvases keep
        their values and observations, and the sample they were scored against (made with the old
        parameters) is set aside."""
        from engine import pdes

        s = self.state
        self.task_panel.store(s)  # (the method boxes are offered anew below, from the state)
        try:
            new = pdes.get(s.pde_name, **params)
        except Exception as exc:  # out of the PDE's range (helmholtz k ≥ 4.4, darcy a_low ≥ a_high, …)
            self.report_error("PDE parameters refused", str(exc))
            self._refresh_model_ui()  # the boxes back to the canvases' parameters
            return
        if pdes.params_of(new) == pdes.params_of(s.pde):
            return
        self.controller.stop_solve_for_change()
        old = s.pde
        s.pde_params = pdes.params_of(new)
        demo = self._demo_on_canvases and s.truth is not None
        if not demo:
            s.truth = None  # (a sample of the old parameters: no truth of these)
            s.results.clear()
            self.inputs.rebind()
            self.controller.clear_results()
        self._refresh_model_ui()
        changed = {k: v for k, v in pdes.params_of(new).items() if pdes.params_of(old)[k] != v}
        what = f"{s.pde_name} {params_diff_text(changed)}"
        if demo:
            self._news = (f"{what}:", getattr(s.model_info, "path", None))
            self.show_status(f"{what}: making a demo task for it…")
            task = asyncio.ensure_future(self.controller.load_demo())
            task.add_done_callback(self._task_done)
        else:
            self.show_status(f"{what}: the canvases keep their values and observations")

    def _show_params(self) -> None:
        """The PDE parameter boxes: the model-free methods' to choose; a model fixes its own (as its
        grid), unless the canvases are for others than the open model's (then they may be set to its)."""
        s = self.state
        free = s.model is None or not s.model_fits()
        tip = ("PDE parameter: the dataspace and classical methods solve with it" if s.model is None else
               "the canvases' PDE parameter: set it to the model's to use the model's methods" if free else
               f"fixed by the open model ({getattr(s.model_info, 'label', '')}); pick (no model) to change it")
        self.model_panel.show_params(s.pde, enabled=free, tip=tip)

    def reset_zoom(self) -> None:
        """Every view back to its whole field (a view also does on a double click)."""
        for view in self.findChildren(FieldView):
            view.reset_view()

    def _on_task_restored(self, task: str) -> None:
        """Undo/redo restored another task's mask: the task box and the methods follow it."""
        box = self.task_panel.task_box
        box.blockSignals(True)
        box.setCurrentText(task)
        box.blockSignals(False)
        s = self.state
        self.task_panel.store(s)
        self.task_panel.offer_methods(s)

    def _on_solved(self, outcomes) -> None:
        """The answers' tab comes up. The status line says what was solved and how to keep it: the
        figures are in the Results summary, the time and verdict in the task panel."""
        self.tabs.setCurrentWidget(self.compare if len(outcomes) > 1 else self.results)
        s = self.state
        methods = " and ".join(r.method for r in outcomes)
        keys = self.export_action.shortcut().toString(QKeySequence.SequenceFormat.NativeText)
        keys = f" ({keys})" if keys else ""  # a platform without a Save key binding has none
        them = "them" if len(outcomes) > 1 else "it"
        self.show_status(f"Solved {outcomes[0].task or s.task} ({s.pde_name} {s.grid_n}²) with {methods}; "
                         f"File ▸ Export result{keys} saves {them}.")

    def _on_demo_ready(self) -> None:
        """The demo's line replaces the last problem's result line; the news it came with (``_news``:
        a finished training's, whose student opened with it, …) stays in front of it."""
        self._demo_on_canvases = True
        news, student = self._news
        opened = getattr(self.state.model_info, "path", None)
        self.show_status(f"{news} {DEMO_LOADED}" if news and opened == student else DEMO_LOADED)
        self._news = ("", None)

    def _on_trained(self, run_dir: str) -> None:
        """List the new teacher and student and open the student."""
        info = self.model_panel.add_run(run_dir)
        if info is None:
            self.show_status(f"Training finished, but no model was found in {run_dir}.")
        else:
            # the student opens with a demo task, whose line would take this one's place at once
            news = f"Training finished: {info.name} of {Path(run_dir).parent.name} is listed and opened."
            self._news = (news, info.path)
            self.show_status(news)

    def show_status(self, message: str) -> None:
        """A status line that stays (the status bar comes back to it after "Running: …")."""
        self._idle_message = message
        self.statusBar().showMessage(message)

    def _on_jobs_changed(self) -> None:
        names = [r.name for r in self.jobs.running()]
        if names:
            self.statusBar().showMessage("Running: " + ", ".join(names))
        elif self.statusBar().currentMessage().startswith("Running:"):
            self.statusBar().showMessage(self._idle_message)

    # -- errors ---------------------------------------------------------------------------------
    def report_error(self, title: str, message: str, details: str = "") -> None:
        dialogs.show_error(self, title, message, details)

    def show_exception(self, exc_type, exc, tb) -> None:
        """sys.excepthook: log and show; the app carries on."""
        details = "".join(traceback.format_exception(exc_type, exc, tb))
        self.report_error("Unexpected error", f"{exc_type.__name__}: {exc}", details)

    # -- import / export ------------------------------------------------------------------------
    def _ask(self, save: bool, title: str, filt: str) -> str:
        last = self.settings.value("last_dir", str(Path.home()))
        fn = QFileDialog.getSaveFileName if save else QFileDialog.getOpenFileName
        path, _ = fn(self, title, last, filt)
        if path:
            self.settings.setValue("last_dir", str(Path(path).parent))
        return path

    def export_result(self, path: str | None = None) -> Path | None:
        """The answer the Results tab shows (its "showing" box after a compare, else the chosen method's)
        to ``path``; the other methods' answers to the same observations beside it, as
        ``<name>-<method>.h5``. Returns the first file."""
        box = self.results.method_box
        shown = box.currentText() if box.isVisibleTo(self.results) else ""
        r = (self.state.results.get(shown) or self.state.results.get(self.state.method)
             or next(iter(self.state.results.values()), None))
        if r is None:
            self.report_error("Nothing to export", "Run a solve first.")
            return None
        path = path or self._ask(True, "Export result", "Fields file (*.h5)")
        if not path:
            return None
        others = [o for o in self.state.results.values() if o is not r]
        try:
            out = io_actions.export_result(path, self.state, r)
            for o in others:
                io_actions.export_result(out.with_name(f"{out.stem}-{o.method}{out.suffix}"), self.state, o)
        except Exception as exc:
            self.report_error("Export failed", str(exc), traceback.format_exc())
            return None
        also = f" (and {', '.join(o.method for o in others)} beside it)" if others else ""
        self.show_status(f"Exported {r.method} result to {out}{also}")
        return out

    def export_observations(self, path: str | None = None) -> None:
        path = path or self._ask(True, "Export observations", "Fields file (*.h5)")
        if path:
            try:
                io_actions.export_observations(path, self.state)
            except Exception as exc:
                self.report_error("Export failed", str(exc), traceback.format_exc())

    def import_fields(self, path: str | None = None, mask_only: bool = False, sample: int | None = None) -> bool:
        """Load one sample of a fields file; which one is asked when the file holds several. Returns
        whether it was loaded (not when cancelled, nor when a dialog said why not)."""
        path = path or self._ask(False, "Import fields file", "Fields file (*.h5 *.hdf5)")
        if not path:
            return False
        try:
            if sample is None:
                sample = self._ask_sample(path)
                if sample is None:
                    return False
            if not mask_only:  # the canvases take the file's PDE and grid: a running solve would not fit
                self.controller.stop_solve_for_change()
            msg = io_actions.import_fields(path, self.state, sample=sample, mask_only=mask_only)
        except Exception as exc:
            self.report_error("Import failed", str(exc), traceback.format_exc())
            return False
        s = self.state
        model, match = s.model, None
        if not mask_only:
            self._demo_on_canvases = False  # the file's fields (a parameter change keeps them)
        if model is not None and ((model.pde.name, model.grid.n) != (s.pde_name, s.grid_n) or not s.model_fits()):
            # the file is for another PDE, grid or PDE parameters than the open model: as start-up with a
            # file does, the listed model of the file's PDE, parameters and grid opens (the same member
            # where there is one), or none (rather than one whose solve would refuse the file)
            match = self.listed_model(s.pde_name, s.grid_n, s.model_info.name)
            s.model_info = s.model = None  # it cannot solve the file's fields, not even while the next loads
            if s.method not in s.methods():
                s.method = "dataspace"
            self.model_panel.set_models(self.model_panel.infos(), match)
            msg += (f"; opening {match.pde} · {match.name} ({match.card.get('grid')}²)" if match
                    else f"; {self._no_model_note()}, so none is open")
        self.inputs.rebind()
        if not mask_only:
            self.controller.clear_results()
        self._refresh_model_ui()
        self.show_status(msg)
        if match is not None:
            self.banner.hide()  # not "no model" while one loads
            task = asyncio.ensure_future(self._open_listed(match))
            task.add_done_callback(self._task_done)
        return True

    async def _open_listed(self, info) -> None:
        """Open ``info`` on the canvases as they are (of its PDE and grid: no demo over them)."""
        await self.controller.load_model_info(info)
        self._refresh_model_ui()  # (also when the load failed: the banner comes back)

    def _ask_sample(self, path: str) -> int | None:
        """0 for a one-sample file, else the user's pick (None if cancelled)."""
        from engine.io.hdf5 import count_samples

        n = count_samples(path)
        if n <= 1:
            return 0
        k, ok = QInputDialog.getInt(self, "Import fields file", f"{Path(path).name} holds {n} samples; "
                                    f"load sample (0–{n - 1}):", 0, 0, n - 1)
        return k if ok else None

    def import_npy(self, path: str | None = None, as_mask: bool = False) -> None:
        path = path or self._ask(False, "Import .npy", "NumPy array (*.npy)")
        if path:
            try:
                msg = self.inputs.load_npy(path, as_mask)
            except Exception as exc:
                self.report_error("Import failed", f"{Path(path).name}: {exc}", traceback.format_exc())
            else:
                self.show_status(msg)

    def views(self) -> dict:
        out = {f"input {c.title}": c for c in self.inputs.canvases}
        out.update({f"result {k}": v for k, v in self.results.views().items()})
        for i, (f, r) in enumerate(self.compare.sides):
            out[f"compare {i + 1} field"], out[f"compare {i + 1} residual"] = f, r
        out["training preview"], out["training residual"] = self.training.preview, self.training.preview_res
        return out

    def _fill_png_menu(self) -> None:
        self.png_menu.clear()
        for name, view in self.views().items():
            self.png_menu.addAction(name, lambda v=view, n=name: self.export_png(v, n))

    def export_png(self, view, name: str, path: str | None = None) -> None:
        if view.data() is None:  # an empty plot saved without a word looked like a result
            self.report_error("Nothing to export", f"The {name} view is empty: solve first (or pick a view that shows a field).")
            return
        path = path or self._ask(True, f"Export {name}", "PNG image (*.png)")
        if path:
            try:
                view.export_png(path)
            except Exception as exc:
                self.report_error("Export failed", str(exc), traceback.format_exc())

    # -- settings and closing -------------------------------------------------------------------
    def _remembered_runs(self) -> list:
        """The run directories listed in an earlier session (opened, or trained here) that still hold
        a model; the list is saved on closing (``save_settings``)."""
        from engine.models import find_runs

        try:
            paths = json.loads(str(self.settings.value("models/runs", "[]")))
        except json.JSONDecodeError:
            paths = []
        return [i for p in paths if isinstance(p, str) for i in find_runs(p, depth=0)]

    def _remembered_model(self, default):
        """The listed model that was open when the app last closed; ``default`` on a first start, when
        none was open, or when it is gone (then the status line says so)."""
        key = str(self.settings.value("models/open", "") or "")
        if not key:
            return default
        found = next((i for i in self.model_panel.infos() if _model_key(i) == key), None)
        if found is None:
            instead = f"opened {default.label} instead" if default is not None else "no model is open"
            news = f"The model open last time ({key}) is not there any more: {instead}."
            self._news = (news, getattr(default, "path", None))
            self.show_status(news)
        return found or default

    def _apply_remembered(self) -> None:
        """The method and compare choices and the brush value of the last session, where they apply:
        the method where the open model offers it, the brush value on the PDE it was chosen for."""
        r, s, tp = self._remembered, self.state, self.task_panel
        offered = s.methods()
        if r["task/method"] in offered:
            s.method = str(r["task/method"])
        if r["task/compare_method"] in offered:
            s.compare_method = str(r["task/compare_method"])
        if r["task/compare_third"] is not None and (r["task/compare_third"] in offered or not r["task/compare_third"]):
            s.compare_third = str(r["task/compare_third"])
        tp.offer_methods(s)
        if str(r["task/compare"]).lower() == "true" and tp.compare_box.isEnabled():
            tp.compare_box.setChecked(True)
        if r["inputs/value"] is not None and r["inputs/value_pde"] == s.pde_name:
            self.inputs.value.setValue(float(r["inputs/value"]))

    def _restore_settings(self) -> None:
        st = self.settings
        if (g := st.value("geometry")) is not None:
            self.restoreGeometry(g)
            fit_to_screen(self)  # saved on a bigger monitor, or on one unplugged since
        if (w := st.value("window_state")) is not None:
            self.restoreState(w)
        s = self.state
        s.task = str(st.value("task/task", s.task))
        s.ensemble = int(st.value("task/ensemble", s.ensemble))
        s.steps = int(st.value("task/steps", s.steps))
        s.lam = float(st.value("task/lam", 0.0)) or None
        s.seed = int(st.value("task/seed", s.seed))
        sigma = float(st.value("task/residual_norm", -1.0))  # −1: auto
        s.residual_norm = None if sigma < 0 else sigma
        # what _apply_remembered sets once the model they were chosen for is open (it picks its own)
        self._remembered = {k: st.value(k) for k in ("task/method", "task/compare", "task/compare_method",
                                                     "task/compare_third", "inputs/value", "inputs/value_pde")}
        if (tool := st.value("inputs/tool")) in TOOLS:
            self.inputs.set_tool(str(tool))
        if (size := st.value("inputs/size")) is not None:
            self.inputs.size.setValue(int(size))
        self.tabs.setCurrentIndex(int(st.value("window/tab", 0)))
        if (folder := st.value("training/folder")) is not None:
            self.training.folder.setText(str(folder))
        if dataset := st.value("training/dataset"):  # a file of the user's to train on ("" = generate one)
            self.training.use_dataset(str(dataset))
        for key, boxes in self._log_boxes().items():
            if (on := st.value(f"{key}/log_scale")) is not None:
                for box in boxes:
                    box.setChecked(str(on).lower() == "true")

    def _log_boxes(self) -> dict:
        """The "log scale" boxes whose choice is kept, by the place they are in: the Results tab's
        residual, the Compare tab's row of residuals (one choice, they toggle together), the Training
        tab's preview residual."""
        return {"results": [self.results.residual.log_box],
                "compare": [res.log_box for _, res in self.compare.sides],
                "training": [self.training.preview_res.log_box]}

    def save_settings(self) -> None:
        st = self.settings
        self.task_panel.store(self.state)
        st.setValue("geometry", self.saveGeometry())
        st.setValue("window_state", self.saveState())
        st.setValue("task/task", self.state.task)
        st.setValue("task/ensemble", self.state.ensemble)
        st.setValue("task/steps", self.state.steps)
        st.setValue("task/lam", self.state.lam or 0.0)
        st.setValue("task/seed", self.state.seed)
        st.setValue("task/residual_norm", -1.0 if self.state.residual_norm is None else self.state.residual_norm)
        tp = self.task_panel
        st.setValue("task/method", self.state.method)
        st.setValue("task/compare", tp.comparing)
        st.setValue("task/compare_method", self.state.compare_method)
        st.setValue("task/compare_third", self.state.compare_third)
        st.setValue("models/open", _model_key(self.state.model_info))
        st.setValue("inputs/tool", self.inputs.tool)
        st.setValue("inputs/size", self.inputs.size.value())
        st.setValue("inputs/value", self.inputs.value.value())
        st.setValue("inputs/value_pde", self.state.pde_name)  # (a value means something for one PDE)
        st.setValue("window/tab", self.tabs.currentIndex())
        st.setValue("training/folder", self.training.folder.text())
        st.setValue("training/dataset", self.training.dataset.text())
        for key, boxes in self._log_boxes().items():
            st.setValue(f"{key}/log_scale", boxes[0].isChecked())
        runs = [str(i.path) for i in self.model_panel.infos() if not is_bundled(i.path)]
        st.setValue("models/runs", json.dumps(runs))
        st.sync()

    def closeEvent(self, event) -> None:  # noqa: N802
        """Cancel running jobs and wait for their threads before closing."""
        self.jobs.cancel_all()
        if not self.jobs.wait_all(15_000):
            log.warning("a job did not stop within 15 s")
        self.save_settings()
        logging.getLogger().removeHandler(self._log_handler)
        super().closeEvent(event)
