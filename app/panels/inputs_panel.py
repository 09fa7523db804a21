"""Inputs: one DrawCanvas per channel and the drawing and whole-channel tool bars."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import Signal
from PySide6.QtGui import QAction, QActionGroup
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QHBoxLayout,
    QLabel,
    QSpinBox,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from app.canvas.draw_canvas import TOOLS, DrawCanvas, History
from app.state import AppState

_TOOL_TIPS = {"brush": "paint the value (marks it observed)", "eraser": "un-observe under the brush",
              "fill": "flood-fill a region of equal value", "points": "click observation points (shift: remove)",
              "mask": "brush the observation mask", "pan": "pan / zoom the view"}


class InputsPanel(QWidget):
    edited = Signal()
    task_restored = Signal(str)  # undo/redo went back to a mask another task had set
    undo_available = Signal(bool, bool)  # (a step to undo, a step to redo): the undo / redo buttons follow

    def __init__(self, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.history = History(lambda: (self.state.values, self.state.mask),
                               tag=(lambda: self.state.task, self._restore_task))
        self.canvases: list[DrawCanvas] = []
        self._built_for: tuple | None = None  # the (PDE, its parameters, grid) the canvases were made for
        # two bars, drawing and whole-channel tools: one was wider than the room a 1366-px laptop leaves
        # beside the docks, and undo/redo fell into its overflow (») menu
        self.bar = QToolBar("Drawing")
        self.tool_actions: dict[str, QAction] = {}
        group = QActionGroup(self)
        for t in TOOLS:
            act = QAction(t, self, checkable=True)
            act.setToolTip(_TOOL_TIPS[t])
            act.triggered.connect(lambda _=False, t=t: self.set_tool(t))
            group.addAction(act)
            self.bar.addAction(act)
            self.tool_actions[t] = act
        self.bar.addSeparator()
        self.value = QDoubleSpinBox()
        self.value.setRange(-1e6, 1e6)
        self.value.setDecimals(3)
        self.value.setPrefix("value ")
        self.value.setToolTip("the value brush and fill paint")
        self.size = QSpinBox()
        self.size.setRange(0, 32)
        self.size.setPrefix("size ")
        self.size.setToolTip("brush, eraser and mask radius in nodes (0: one node)")
        self.bar.addWidget(self.value)
        self.bar.addWidget(self.size)
        self.bar.addSeparator()
        self.undo_act = self.bar.addAction("undo", self.undo)
        self.redo_act = self.bar.addAction("redo", self.redo)
        self.history.on_change = self._on_history
        self._on_history(*self.history.available())
        self.channel_bar = QToolBar("Channel")
        self.channel_box = QComboBox()
        self.channel_box.setToolTip("channel for GRF / random points / clear mask / .npy import")
        self.channel_bar.addWidget(QLabel(" channel "))
        self.channel_bar.addWidget(self.channel_box)
        self.grf_act = self.channel_bar.addAction("GRF", self.random_grf)
        self.grf_act.setToolTip("fill the whole channel with a random field and observe it")
        self.threshold_act = self.channel_bar.addAction("threshold", self.threshold)
        self.threshold_act.setToolTip("darcy: set a (whatever the channel) to a_low or a_high, split at "
                                      "their midpoint")
        self.k_points = QSpinBox()
        self.k_points.setRange(0, 100_000)
        self.k_points.setSpecialValueText("3 % of nodes")  # (the prefix does not show with it)
        self.k_points.setPrefix("k ")
        self.k_points.setToolTip("random observation points: k nodes (or 3 % when 0)")
        self.channel_bar.addSeparator()  # the points' count belongs to "random points", not to "threshold"
        self.channel_bar.addWidget(self.k_points)
        self.channel_bar.addAction("random points", self.random_points).setToolTip(
            "replace the channel's observation points with k random ones")
        self.channel_bar.addAction("clear mask", self.clear_mask).setToolTip(
            "un-observe the whole channel (values stay)")
        self.row = QHBoxLayout()
        lay = QVBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        lay.setSpacing(0)  # the two bars read as one
        lay.addWidget(self.bar)
        lay.addWidget(self.channel_bar)
        lay.addLayout(self.row, 1)
        self.value.valueChanged.connect(self._push_brush)
        self.size.valueChanged.connect(self._push_brush)
        self.size.setValue(2)
        self.tool = "points"
        self.tool_actions["points"].setChecked(True)

    # -- canvases ---------------------------------------------------------------------------------
    def rebuild(self) -> None:
        """Recreate one canvas per channel, bound to the state's arrays."""
        s = self.state
        s.ensure_fields()
        for c in self.canvases:
            self.row.removeWidget(c)
            c.deleteLater()
        self.canvases = []
        self.history.clear()
        self.channel_box.clear()
        pde = s.pde
        for i, name in enumerate(pde.fields):
            cv = DrawCanvas(i, name, self.history)
            cv.bind(s.values[i], s.mask[i])
            cv.edited.connect(self._on_edit)
            cv.activated.connect(self.channel_box.setCurrentIndex)
            self.row.addWidget(cv, 1)
            self.canvases.append(cv)
            self.channel_box.addItem(name)
        self.threshold_act.setEnabled(pde.name == "darcy")
        self.value.setValue(getattr(pde, "a_high", 1.0))
        self._push_brush()
        self._built_for = self._problem()

    def _problem(self) -> tuple:
        s = self.state
        return s.pde_name, dict(s.pde_params), s.grid_n

    def rebind(self) -> None:
        """The state's arrays were replaced: rebind and redraw. Rebuilt when they are for another PDE
        (its channels, tools and brush value: an imported file's), other parameters or another grid."""
        if self.state.values is None or self._built_for != self._problem():
            self.rebuild()
            return
        self.history.clear()
        for i, cv in enumerate(self.canvases):
            cv.bind(self.state.values[i], self.state.mask[i])

    def redraw(self) -> None:
        for cv in self.canvases:
            cv.redraw()

    def set_tool(self, tool: str) -> None:
        self.tool = tool
        self.tool_actions[tool].setChecked(True)
        self._push_brush()

    def _push_brush(self) -> None:
        for cv in self.canvases:
            cv.tool, cv.brush_value, cv.brush_size = self.tool, self.value.value(), self.size.value()

    def _on_history(self, can_undo: bool, can_redo: bool) -> None:
        self.undo_act.setEnabled(can_undo)
        self.redo_act.setEnabled(can_redo)
        self.undo_available.emit(can_undo, can_redo)

    def _restore_task(self, task: str) -> None:
        if task != self.state.task:
            self.state.task = task
            self.task_restored.emit(task)

    def _on_edit(self) -> None:
        # (the last solve's answers stay: each holds the mask it observed, which export writes)
        self.edited.emit()

    @property
    def current(self) -> DrawCanvas:
        return self.canvases[max(0, self.channel_box.currentIndex())]

    # -- whole-channel tools --------------------------------------------------------------------
    def random_grf(self) -> None:
        from engine.grf import sample_2d

        s, cv = self.state, self.current
        g = np.asarray(sample_2d([int(np.random.default_rng().integers(2**31))], s.grid_n))[0]
        pde = s.pde
        if pde.name == "darcy" and cv.channel == 0:  # continuous around the two permeabilities
            lo, hi = pde.a_low, pde.a_high
            g = np.clip((lo + hi) / 2 + (hi - lo) / 2 * g / (g.std() + 1e-12), lo, hi)

        def fn(v, m):
            v[...] = g
            m[...] = True

        cv.apply(fn)

    def threshold(self) -> None:
        pde = self.state.pde
        if pde.name != "darcy":
            return
        mid = (pde.a_low + pde.a_high) / 2

        def fn(v, m):
            v[...] = np.where(v >= mid, pde.a_high, pde.a_low)

        self.canvases[0].apply(fn)

    def random_points(self, k: int | None = None, fraction: float = 0.03) -> None:
        k = self.k_points.value() if k is None else k
        n2 = self.state.grid_n**2
        k = k or max(1, round(fraction * n2))
        idx = np.random.default_rng().choice(n2, size=min(k, n2), replace=False)

        def fn(v, m):
            m[...] = False
            m.flat[idx] = True

        self.current.apply(fn)

    def clear_mask(self) -> None:
        self.current.apply(lambda v, m: m.fill(False))

    def undo(self) -> None:
        if self.history.undo():
            self.redraw()
            self._on_edit()

    def redo(self) -> None:
        if self.history.redo():
            self.redraw()
            self._on_edit()

    def load_array(self, arr: np.ndarray, as_mask: bool = False) -> int:
        """Load an (N, N) array into the current channel's values (or mask). Returns how many nodes
        held no finite value.

        NaN marks a node without a value (a grid of sensor readings with gaps): loaded as values, the
        finite nodes become observed and the others unobserved, holding the mean of the finite values
        (not 0, which stretched the colour bar); loaded as a mask, NaN is 0. A boolean array is a mask:
        refused as values.
        """
        arr = np.asarray(arr)
        n = self.state.grid_n
        if arr.dtype.kind not in "biuf":
            raise ValueError(f"array holds {arr.dtype} values, expected numbers")
        if arr.dtype.kind == "b" and not as_mask:
            raise ValueError("array holds booleans (a mask?): load it with File ▸ Import .npy mask into channel…")
        if arr.shape != (n, n):
            raise ValueError(f"array has shape {arr.shape}, expected ({n}, {n}) for this grid")
        known = np.isfinite(arr)
        if not as_mask and not known.any():
            raise ValueError("array holds no finite value")

        def fn(v, m):
            if as_mask:
                m[...] = known & (arr != 0)
            else:
                v[...] = np.where(known, arr, arr[known].mean())
                m[...] = known

        self.current.apply(fn)
        return int((~known).sum())

    def load_npy(self, path: str | Path, as_mask: bool = False) -> str:
        """Load a .npy file as ``load_array`` does. Returns a status line."""
        missing = self.load_array(np.load(path, allow_pickle=False), as_mask)
        cv = self.current
        name, observed = Path(path).name, int(self.state.mask[cv.channel].sum())
        if as_mask:
            return f"{name} loaded as the mask of {cv.title} ({observed} observed nodes)"
        gaps = f"; {missing} NaN nodes left unobserved" if missing else ""
        return f"{name} loaded into {cv.title} ({observed} observed nodes{gaps})"
