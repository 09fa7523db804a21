"""FieldView: one field as a row-major image, y up, with a colour bar and a hover read-out."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QFontMetricsF, QPainter
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from app.plots.title import use_title
from engine.errors import EngineError
from engine.io.atomic import write_bytes

CMAPS = {"field": "viridis", "residual": "inferno", "std": "plasma", "error": "magma"}
_MASK_RGBA = (40, 40, 48, 170)  # unobserved nodes are dimmed by this overlay


LOG_DECADES = 6.0  # a log-scale colour bar spans at most this many decades


def _ignore(ev) -> None:
    ev.ignore()


EXPORT_MIN_SIZE = QSize(480, 440)  # a PNG of a view not on screen: a size its axes and colour bar fit


class _BottomAxis(pg.AxisItem):
    """A horizontal axis whose labels never overlap: pyqtgraph labels at least every fifth of the range
    ("0 0.2 … 1.0"), which ran together under a plot 70 px wide; here the spacing grows (0.2 → 0.5 → 1)
    until the labels fit. Chosen when drawn: the axis's height does not depend on it."""

    def tickSpacing(self, minVal, maxVal, size):  # noqa: N802, N803
        levels = super().tickSpacing(minVal, maxVal, size)
        if self._tickSpacing is not None or not levels or size <= 0:
            return levels
        room = 1.4 * QFontMetricsF(self.font()).horizontalAdvance("0.25")  # a label and the gap after it
        major = levels[0][0]
        span = abs(maxVal - minVal)
        # (not beyond a third of the range: labels at its ends are hidden, one inside it is kept)
        while span / major * room > size and 3 * major <= span:
            major = _coarser(major)
        if major == levels[0][0]:
            return levels
        return [(major, 0), (major / (4 if _mantissa(major) == 2 else 5), 0)]


def _mantissa(x: float) -> int:
    """1, 2 or 5 of a tick spacing 1, 2 or 5 × 10^k."""
    return round(x / 10 ** np.floor(np.log10(x)))


def _coarser(x: float) -> float:
    """The next tick spacing: 1 → 2 → 5 → 10 (× 10^k)."""
    return x * (2.5 if _mantissa(x) == 2 else 2)


class OneLine(QLabel):
    """A one-line label that, narrower than its text, draws it cut with "…". Drawn only: its size hint
    stays the whole text's, so that the cut never moves the layout."""

    def shown_text(self) -> str:
        room = self.contentsRect().width()
        return self.fontMetrics().elidedText(self.text(), Qt.TextElideMode.ElideRight, room)

    def paintEvent(self, ev) -> None:  # noqa: N802
        shown = self.shown_text()
        if shown == self.text():
            super().paintEvent(ev)
            return
        painter = QPainter(self)
        painter.setPen(self.palette().color(self.foregroundRole()))
        painter.drawText(self.contentsRect(), int(self.alignment()), shown)


class FieldView(QWidget):
    """Shows an (N, N) array indexed [row = y, col = x] on [0, 1]², row 0 at the bottom."""

    hovered = Signal(str)

    def __init__(self, title: str = "", kind: str = "field", *, log_option: bool = False,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.kind, self.title = kind, title
        self._data: np.ndarray | None = None
        self._shown: np.ndarray | None = None
        self._mask: np.ndarray | None = None
        self._levels: tuple[float, float] | None = None  # fixed colour levels (shared_levels), else its own
        self._peers: tuple[np.ndarray, ...] = ()  # the same quantity in other answers (``share_scale_with``)
        self.subject = ""  # whose field it is (a method): the title names it, and so does an exported PNG
        self.empty_title: str | None = None  # the title without data (else "<title> (n/a)")
        self.graphics = pg.GraphicsLayoutWidget()
        self.graphics.setBackground("w")
        self.plot: pg.PlotItem = self.graphics.addPlot(axisItems={"bottom": _BottomAxis("bottom")})
        use_title(self.plot)  # a long title is shortened to its cell, never cut at both ends
        self.plot.setAspectLocked(True)
        self.plot.setMenuEnabled(False)
        self.plot.hideButtons()
        for ax in ("left", "bottom"):
            self.plot.getAxis(ax).setStyle(tickLength=-4)
        # The left axis keeps one width, room for labels such as "-0.25", whatever labels it shows. Fitted to
        # its labels, it fed a loop with the aspect lock: a narrower axis widens the view box, which changes
        # the y range, whose labels widen the axis again; in a narrow cell pyqtgraph re-laid the plot out
        # without end (the window hung after an inverse solve on a 16² demo).
        left = self.plot.getAxis("left")
        left.setStyle(autoExpandTextSpace=False,
                      tickTextWidth=int(QFontMetricsF(left.font()).horizontalAdvance("-0.25")) + 2)
        self.image = self._make_image()
        self.plot.addItem(self.image)
        self.overlay = pg.ImageItem()
        self.overlay.setZValue(5)
        self.plot.addItem(self.overlay)
        self.points = pg.ScatterPlotItem(size=6, pen=pg.mkPen("w", width=1), brush=pg.mkBrush(230, 40, 40))
        self.points.setZValue(10)
        for item in (self.overlay, self.points):  # decoration only: clicks go to the image below
            item.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
            item.mouseClickEvent = _ignore
            item.mouseDragEvent = _ignore
        self.plot.addItem(self.points)
        self.cbar = pg.ColorBarItem(colorMap=pg.colormap.get(CMAPS.get(kind, "viridis")), interactive=False,
                                    width=12)
        self.cbar.setImageItem(self.image, insert_in=self.plot)
        # ColorBarItem fixes its axis at 45 px, which silently drops every tick label wider than that
        # ("0.0002"): the bar of a small error field showed only its 0. Let the axis grow to its labels.
        self.cbar.axis.setWidth(None)
        self.readout = OneLine(" ")
        self.readout.setMinimumWidth(10)
        # a line on how to read the view (``set_note``), hidden without one. One line, never wrapped: a
        # wrapped label's height-for-width squeezed the grid's other row of views to nothing
        self.note = OneLine()
        self.note.setMinimumWidth(10)  # (cut with “…” in a narrow cell rather than widening it)
        self.note.setVisible(False)
        self.log_box = QCheckBox("log scale") if log_option else None
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(2)
        lay.addWidget(self.graphics, 1)
        lay.addWidget(self.note)
        row = QHBoxLayout()
        row.addWidget(self.readout, 1)
        if self.log_box is not None:
            self.log_box.setChecked(True)
            self.log_box.toggled.connect(self._refresh)
            row.addWidget(self.log_box)
        lay.addLayout(row)
        self.graphics.scene().sigMouseMoved.connect(self._on_mouse_moved)
        self.graphics.scene().sigMouseClicked.connect(self._on_click)
        self.graphics.setToolTip("wheel: zoom, drag: pan, double-click: whole field")
        self.set_axes(("y", "x"))

    def _make_image(self) -> pg.ImageItem:
        return pg.ImageItem(axisOrder="row-major")

    # -- data ----------------------------------------------------------------------------------
    @property
    def log_scale(self) -> bool:
        return self.log_box is not None and self.log_box.isChecked()

    def set_axes(self, axes: tuple[str, str], periodic_columns: bool = False) -> None:
        """Name the vertical (rows) and horizontal (columns) axes: the PDE's ``axes``, burgers ("t", "x");
        ``periodic_columns``: columns sit at x_i = i/N on [0, 1) (burgers), not at i/(N−1) on [0, 1]."""
        self.axes, self.periodic_columns = axes, periodic_columns
        self.plot.setLabel("left", axes[0])
        self.plot.setLabel("bottom", axes[1])
        self._refresh()

    def _spacing(self, n: int) -> tuple[float, float]:
        """(row, column) distance between neighbouring nodes in the axes' units."""
        return 1.0 / (n - 1), 1.0 / n if self.periodic_columns else 1.0 / (n - 1)

    def set_title(self, title: str) -> None:
        self.title = title
        self._refresh()

    def set_subject(self, subject: str) -> None:
        """Name whose field this is (a method) in front of the title: "diffusionpde: u"."""
        self.subject = subject
        self._refresh()

    def set_note(self, text: str, tooltip: str = "") -> None:
        """A line under the view on how to read it ("" hides it)."""
        self.note.setText(text)
        self.note.setToolTip(tooltip)
        self.note.setVisible(bool(text))

    def share_scale_with(self, peers: list[np.ndarray]) -> None:
        """Span the colour scale over ``peers`` too: the same quantity in the other answers to the same
        observations, so that switching between answers changes a colour only where the value changes.
        The peers are raw data: a log-scale toggle takes them into the new units with this view's data."""
        self._peers = tuple(np.asarray(p, dtype=np.float64) for p in peers)
        self._refresh()

    def _show_title(self, text: str, short: str = "") -> None:
        """``text``, or ``short`` where it does not fit (FittingTitle)."""
        self.plot.titleLabel.short = short
        self.plot.setTitle(text)

    def set_field(self, data: np.ndarray | None, mask: np.ndarray | None = None) -> None:
        """Show ``data`` (N, N); ``mask`` (N, N) bool dims unobserved nodes and marks sparse ones."""
        self._data = None if data is None else np.asarray(data, dtype=np.float64)
        self._mask = None if mask is None else np.asarray(mask, dtype=bool)
        self._refresh()

    def data(self) -> np.ndarray | None:
        return self._data

    def reset_view(self) -> None:
        """Zoom and pan back to the whole field."""
        self.plot.setRange(xRange=(0, 1), yRange=(0, 1), padding=0.02)

    def _double_click_resets(self) -> bool:
        return True

    def _on_click(self, ev) -> None:
        if ev.double() and self._double_click_resets():
            self.reset_view()

    def _shown_of(self, d: np.ndarray) -> np.ndarray:
        return np.log10(np.abs(d) + 1e-12) if self.log_scale else d

    def natural_levels(self) -> tuple[float, float] | None:
        """The colour levels this view picks for its own data and its peers' (None without data)."""
        if self._data is None:
            return None
        shown = np.concatenate([self._shown_of(d).ravel() for d in (self._data, *self._peers)])
        finite = shown[np.isfinite(shown)]
        lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        if self.log_scale and finite.size:  # a robust window: exact zeros (boundary) would stretch it
            lo = max(lo, float(np.percentile(finite, 1.0)), hi - LOG_DECADES)
        return lo, hi

    def set_levels(self, levels: tuple[float, float] | None) -> None:
        """Fix the colour levels (in the shown units: log₁₀ on a log scale); None = the view's own."""
        self._levels = levels
        self._refresh()

    def _refresh(self) -> None:
        d = self._data
        self.cbar.setVisible(d is not None)  # an empty view has no scale to show
        if d is None:
            self.image.clear()
            self.overlay.clear()
            self.points.clear()
            # narrow: the bare title (an empty plot shows it is empty), the why in the tooltip
            self._show_title(self.empty_title or f"{self.title} (n/a)", self.title)
            self.reset_view()
            return
        title = f"log₁₀ {self.title}" if self.log_scale else self.title
        # narrow: the title without its method, which the summary and the "showing" box name
        self._show_title(f"{self.subject}: {title}" if self.subject else title, title)
        n = d.shape[-1]
        shown = self._shown = self._shown_of(d)
        lo, hi = self._levels or self.natural_levels()
        if hi - lo < 1e-12 or (not self.log_scale and hi - lo < 1e-4 * max(abs(lo), abs(hi))):
            mid = 0.5 * (lo + hi)  # (nearly) constant: a ±1 % bar the axis can label
            pad = 0.01 * abs(mid) if abs(mid) > 1e-12 else 0.5
            lo, hi = mid - pad, mid + pad
        hy, hx = self._spacing(n)
        rect = QRectF(-hx / 2, -hy / 2, n * hx, n * hy)  # pixel centres sit on the grid nodes
        self.image.setImage(shown.astype(np.float32), autoLevels=False)
        self.image.setRect(rect)
        self.cbar.setLevels((lo, hi))
        self._draw_mask(rect, n)

    def _draw_mask(self, rect: QRectF, n: int) -> None:
        m = self._mask
        if m is None or m.all():
            self.overlay.clear()
            self.points.clear()
            return
        rgba = np.zeros((n, n, 4), dtype=np.ubyte)
        rgba[~m] = _MASK_RGBA
        self.overlay.setImage(rgba, autoLevels=False, levels=(0, 255))
        self.overlay.setRect(rect)
        if m.mean() < 0.3:
            rows, cols = np.nonzero(m)
            hy, hx = self._spacing(n)
            self.points.setData(cols * hx, rows * hy)
        else:
            self.points.clear()

    # -- hover read-out ----------------------------------------------------------------------------
    def node_at(self, scene_pos: QPointF) -> tuple[int, int] | None:
        """(row, col) of the node under a scene position, or None outside the image."""
        if self._data is None:
            return None
        p = self.image.mapFromScene(scene_pos)
        n = self._data.shape[-1]
        col, row = int(np.floor(p.x())), int(np.floor(p.y()))
        if 0 <= row < n and 0 <= col < n:
            return row, col
        return None

    def _on_mouse_moved(self, scene_pos: QPointF) -> None:
        rc = self.node_at(scene_pos)
        if rc is None:
            return
        row, col = rc
        n = self._data.shape[-1]
        v = self._data[row, col]
        hy, hx = self._spacing(n)
        (y_name, x_name) = self.axes
        text = f"{x_name}={col * hx:.3f}  {y_name}={row * hy:.3f}  {self.title or 'value'}={v:.4g}"
        if self._mask is not None and not self._mask[row, col]:
            text += "  (unobserved)"
        self.readout.setText(text)
        self.hovered.emit(text)

    def export_png(self, path: str) -> None:
        """Write the view as a PNG atomically (encoded in memory first, like the engine's files);
        raises EngineError with the reason (a full disk, a missing folder)."""
        if not self.graphics.isVisible():
            # on a tab never shown the view is laid out at a thumbnail's size (208 px, ticks overlapping);
            # the tab's layout sizes it anew when it is shown
            self.graphics.resize(self.graphics.size().expandedTo(EXPORT_MIN_SIZE))
        data = QByteArray()
        buffer = QBuffer(data)
        buffer.open(QIODevice.OpenModeFlag.WriteOnly)
        if not self.graphics.grab().save(buffer, "PNG"):
            raise EngineError(f"cannot write {path}: the view could not be encoded as PNG")
        write_bytes(path, data.data())


def share_levels(views: list[FieldView]) -> None:
    """One colour scale for ``views`` (methods side by side): the span of their own levels. Toggling
    one's log box toggles the others' and shares the new scale."""
    spans = [lv for v in views if (lv := v.natural_levels()) is not None]
    levels = (min(lo for lo, _ in spans), max(hi for _, hi in spans)) if spans else None
    for v in views:
        v.set_levels(levels if v.data() is not None else None)
        if v.log_box is not None and not v.property("shares_levels"):
            v.setProperty("shares_levels", True)
            v.log_box.toggled.connect(lambda on, group=views: _toggle_all(group, on))


def _toggle_all(views: list[FieldView], on: bool) -> None:
    for v in views:
        if v.log_box is not None and v.log_box.isChecked() != on:
            v.log_box.blockSignals(True)
            v.log_box.setChecked(on)
            v.log_box.blockSignals(False)
    share_levels(views)
