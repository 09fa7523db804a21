"""Live loss curves: one NumPy ring buffer per (stage, metric), redrawn with curve.setData."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt

from app.plots.title import use_title

_COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"]
# Legend wording: the job's stages and metrics as a user knows them ("distill" trains the student;
# "residual" is the PDE term of the student's loss on its training batch, "preview_residual_mse" that
# of the preview samples drawn every few steps).
_STAGE_NAMES = {"teacher": "teacher", "distill": "student"}
_METRIC_NAMES = {"loss": "", "residual": "training batch", "preview_residual_mse": "samples"}


def legend_name(stage: str, metric: str) -> str:
    """'student samples' for ("distill", "preview_residual_mse"); unknown names pass through."""
    return " ".join(filter(None, (_STAGE_NAMES.get(stage, stage), _METRIC_NAMES.get(metric, metric))))


class RingBuffer:
    def __init__(self, size: int = 5000) -> None:
        self._x = np.zeros(size)
        self._y = np.zeros(size)
        self._n = 0

    def append(self, x: float, y: float) -> None:
        i = self._n % len(self._x)
        self._x[i], self._y[i] = x, y
        self._n += 1

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        size = len(self._x)
        if self._n <= size:
            return self._x[: self._n], self._y[: self._n]
        i = self._n % size
        return np.roll(self._x, -i), np.roll(self._y, -i)

    def __len__(self) -> int:
        return min(self._n, len(self._x))


class LossPlot(pg.PlotWidget):
    """Curves keyed "stage/metric" (the legend says ``legend_name``), log-scaled y. x is the step of the
    whole chain: a stage after the first starts where the ones before it ended (its own step plus that
    offset), at a dashed line named after it, so the student's curves follow the teacher's."""

    def __init__(self, keys: tuple[str, ...] = ("loss", "residual"), parent=None) -> None:
        super().__init__(parent=parent, background="w")
        self.keys = keys
        self.setLogMode(y=True)
        self.showGrid(x=True, y=True, alpha=0.3)
        use_title(self.plotItem)  # a long title is shortened to a narrow plot, never cut at both ends
        # "step" alone: a longer axis label is cut at both ends in a narrow plot (it has no room to wrap);
        # the dashed line named "student" marks where the student's steps follow the teacher's
        self.setLabel("bottom", "step")
        self.setToolTip("x: the chain's steps, the teacher's and then (after the dashed line) the student's")
        # bottom left: falling curves leave it empty; translucent, so a curve there still shows
        self.addLegend(offset=(10, -10), brush=pg.mkBrush(255, 255, 255, 190), labelTextSize="8pt")
        self.buffers: dict[str, RingBuffer] = {}
        self.curves: dict[str, pg.PlotDataItem] = {}
        self.offsets: dict[str, float] = {}  # stage -> where its steps start on the chain's axis
        self.stage_lines: list[pg.InfiniteLine] = []

    def _offset(self, stage: str) -> float:
        if stage not in self.offsets:
            end = max((b.arrays()[0].max() for b in self.buffers.values() if len(b)), default=0.0)
            self.offsets[stage] = float(end)
            if self.buffers:  # a later stage: mark where it starts
                line = pg.InfiniteLine(end, pen=pg.mkPen("#888", style=Qt.PenStyle.DashLine),
                                       label=_STAGE_NAMES.get(stage, stage), labelOpts={"position": 0.95})
                self.addItem(line)
                self.stage_lines.append(line)
        return self.offsets[stage]

    def add(self, stage: str, step: int, metrics: dict) -> None:
        for k in self.keys:
            v = metrics.get(k)
            if v is None or not np.isfinite(v) or v <= 0:
                continue
            x = step + self._offset(stage)
            name = f"{stage}/{k}"
            if name not in self.buffers:
                self.buffers[name] = RingBuffer()
                colour = _COLOURS[len(self.curves) % len(_COLOURS)]
                # previews come every preview_every steps: a marker on each, or a stage's first (and
                # only) preview point is drawn as a line of one point, i.e. not at all
                marks = {"symbol": "o", "symbolSize": 6, "symbolBrush": colour, "symbolPen": None} \
                    if k.startswith("preview") else {}
                self.curves[name] = self.plot([], [], pen=pg.mkPen(colour, width=2), name=legend_name(stage, k),
                                              **marks)
            self.buffers[name].append(x, float(v))
            self.curves[name].setData(*self.buffers[name].arrays())

    def clear_curves(self) -> None:
        for c in [*self.curves.values(), *self.stage_lines]:
            self.removeItem(c)
        self.buffers.clear()
        self.curves.clear()
        self.offsets.clear()
        self.stage_lines.clear()
        if self.plotItem.legend is not None:
            self.plotItem.legend.clear()
