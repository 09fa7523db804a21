"""DrawCanvas: paint a channel's values and its observation mask; undo/redo via a shared History.

Tools (mouse): ``brush`` sets value and marks observed; ``eraser`` un-observes; ``fill`` floods the
connected region of equal value; ``points`` marks single nodes observed (shift-click removes);
``mask`` brushes the observation mask without changing values; ``pan`` leaves the view alone.
Strokes are continuous: stamps are interpolated between mouse events.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from scipy import ndimage

from app.canvas.field_view import FieldView

TOOLS = ("brush", "eraser", "fill", "points", "mask", "pan")


class History:
    """Undo/redo of (values, mask) snapshots of every channel; arrays restored in place. ``tag``: a
    (get, set) pair for one more value restored with them (the task whose mask an edit set).

    ``push`` records a step at once; an edit that may change nothing (a click on a node observed
    already) calls ``begin`` before it and ``commit`` after it, which records a step only when the
    arrays changed. ``on_change(can_undo, can_redo)`` is called whenever either may have changed."""

    def __init__(self, get_arrays: Callable[[], tuple[np.ndarray, np.ndarray]], limit: int = 50,
                 tag: tuple[Callable[[], Any], Callable[[Any], None]] | None = None,
                 on_change: Callable[[bool, bool], None] | None = None) -> None:
        self._get, self._limit, self._tag = get_arrays, limit, tag
        self.on_change = on_change
        self._undo: list[tuple[np.ndarray, np.ndarray, Any]] = []
        self._redo: list[tuple[np.ndarray, np.ndarray, Any]] = []
        self._pending: tuple[np.ndarray, np.ndarray, Any] | None = None  # ``begin``'s snapshot

    def _snap(self) -> tuple[np.ndarray, np.ndarray, Any]:
        v, m = self._get()
        return v.copy(), m.copy(), None if self._tag is None else self._tag[0]()

    def _record(self, snap: tuple[np.ndarray, np.ndarray, Any]) -> None:
        self._undo.append(snap)
        del self._undo[: -self._limit]
        self._redo.clear()
        self._changed()

    def push(self) -> None:
        self._record(self._snap())

    def begin(self) -> None:
        """Remember the arrays before an edit; ``commit`` records them if the edit changed them."""
        self._pending = self._snap()

    def commit(self) -> bool:
        """Record ``begin``'s snapshot as a step if the arrays differ from it now. Returns whether it did."""
        snap, self._pending = self._pending, None
        if snap is None:
            return False
        v, m = self._get()
        if snap[0].shape == v.shape and np.array_equal(snap[0], v) and np.array_equal(snap[1], m):
            return False
        self._record(snap)
        return True

    def _swap(self, src: list, dst: list) -> bool:
        if not src:
            return False
        v, m = self._get()
        snap = src.pop()
        if snap[0].shape != v.shape:
            self.clear()
            return False
        dst.append(self._snap())
        v[...], m[...] = snap[:2]
        if self._tag is not None:
            self._tag[1](snap[2])
        self._changed()
        return True

    def undo(self) -> bool:
        return self._swap(self._undo, self._redo)

    def redo(self) -> bool:
        return self._swap(self._redo, self._undo)

    def clear(self) -> None:
        self._undo.clear()
        self._redo.clear()
        self._pending = None
        self._changed()

    def available(self) -> tuple[bool, bool]:
        """(a step to undo, a step to redo)."""
        return bool(self._undo), bool(self._redo)

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change(*self.available())


class _PaintImage(pg.ImageItem):
    """ImageItem forwarding mouse clicks/drags (in pixel coordinates) to its canvas."""

    def __init__(self, canvas: DrawCanvas) -> None:
        super().__init__(axisOrder="row-major")
        self._canvas = canvas

    def hoverEvent(self, ev) -> None:  # noqa: N802
        # claim left clicks/drags under the cursor, or pyqtgraph hands them to the ViewBox
        if not ev.isExit() and self._canvas.tool != "pan":
            ev.acceptClicks(Qt.MouseButton.LeftButton)
            ev.acceptDrags(Qt.MouseButton.LeftButton)

    def mouseClickEvent(self, ev) -> None:  # noqa: N802
        if ev.button() != Qt.MouseButton.LeftButton or self._canvas.tool == "pan":
            ev.ignore()
            return
        ev.accept()
        shift = bool(ev.modifiers() & Qt.KeyboardModifier.ShiftModifier)
        self._canvas.stroke_begin(ev.pos(), remove=shift)
        self._canvas.stroke_end()

    def mouseDragEvent(self, ev) -> None:  # noqa: N802
        if ev.button() != Qt.MouseButton.LeftButton or self._canvas.tool == "pan":
            ev.ignore()
            return
        ev.accept()
        if ev.isStart():
            self._canvas.stroke_begin(ev.buttonDownPos())
        self._canvas.stroke_to(ev.pos())
        if ev.isFinish():
            self._canvas.stroke_end()


class DrawCanvas(FieldView):
    """A FieldView whose values (N, N) and mask (N, N) are views into the app's arrays."""

    edited = Signal()
    activated = Signal(int)

    def __init__(self, channel: int, title: str, history: History, parent=None) -> None:
        self._values: np.ndarray | None = None
        self._obs: np.ndarray | None = None
        super().__init__(title, "field", parent=parent)
        self.channel, self.history = channel, history
        self.tool = "brush"
        self.brush_value = 1.0
        self.brush_size = 2  # radius in nodes
        self._last: tuple[float, float] | None = None
        self._remove = False

    def _make_image(self) -> pg.ImageItem:
        return _PaintImage(self)

    def _double_click_resets(self) -> bool:
        return self.tool == "pan"  # with a drawing tool a double click is two strokes

    def bind(self, values: np.ndarray, mask: np.ndarray) -> None:
        """Edit these (N, N) arrays in place."""
        self._values, self._obs = values, mask
        self.redraw()

    def redraw(self) -> None:
        if self._values is not None:
            self.set_field(self._values, self._obs)

    @property
    def n(self) -> int:
        return self._values.shape[-1]

    # -- strokes (pixel coordinates: x = col + ½ at a node centre) ---------------------------------
    def stroke_begin(self, pos, remove: bool = False) -> None:
        self.activated.emit(self.channel)
        self.history.begin()  # a step only if the stroke changes something (``stroke_end``)
        self._remove = remove
        x, y = pos.x(), pos.y()
        if self.tool == "fill":
            self._fill(int(np.floor(y)), int(np.floor(x)))
            self._last = None
        else:
            self._stamp(x, y)
            self._last = (x, y)
        self.redraw()

    def stroke_to(self, pos) -> None:
        if self._last is None or self.tool in ("fill",):
            return
        x0, y0 = self._last
        x1, y1 = pos.x(), pos.y()
        steps = max(1, int(np.ceil(np.hypot(x1 - x0, y1 - y0) / 0.5)))
        for t in np.linspace(0, 1, steps + 1)[1:]:
            self._stamp(x0 + t * (x1 - x0), y0 + t * (y1 - y0))
        self._last = (x1, y1)
        self.redraw()

    def stroke_end(self) -> None:
        self._last = None
        if self.history.commit():
            self.edited.emit()

    def _disk(self, x: float, y: float) -> np.ndarray:
        n = self.n
        r = self.brush_size if self.tool != "points" else 0
        rows, cols = np.ogrid[:n, :n]
        return (rows + 0.5 - y) ** 2 + (cols + 0.5 - x) ** 2 <= (r + 0.5) ** 2

    def _stamp(self, x: float, y: float) -> None:
        row, col = int(np.floor(y)), int(np.floor(x))
        if not (0 <= row < self.n and 0 <= col < self.n):
            return
        if self.tool == "points":
            self._obs[row, col] = not self._remove
            return
        d = self._disk(x, y)
        if self.tool == "brush":
            self._values[d] = self.brush_value
            self._obs[d] = True
        elif self.tool == "eraser":
            self._obs[d] = False
        elif self.tool == "mask":
            self._obs[d] = True

    def _fill(self, row: int, col: int) -> None:
        if not (0 <= row < self.n and 0 <= col < self.n):
            return
        same = np.isclose(self._values, self._values[row, col])
        labels, _ = ndimage.label(same)
        region = labels == labels[row, col]
        self._values[region] = self.brush_value
        self._obs[region] = True

    # -- whole-channel tools --------------------------------------------------------------------
    def apply(self, fn: Callable[[np.ndarray, np.ndarray], None]) -> None:
        """Run ``fn(values, mask)`` in place as one undoable edit (none if it changed nothing)."""
        self.history.begin()
        fn(self._values, self._obs)
        self.redraw()
        if self.history.commit():
            self.edited.emit()
