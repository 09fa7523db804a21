"""Simulated mouse input on a pyqtgraph canvas, addressed by grid node (row, col)."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QPoint, QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication

LEFT, NONE = Qt.MouseButton.LeftButton, Qt.MouseButton.NoButton


def node_pos(canvas, row: int, col: int) -> QPoint:
    """Viewport pixel position of node (row, col) of a FieldView's image."""
    scene = canvas.image.mapToScene(QPointF(col + 0.5, row + 0.5))
    return canvas.graphics.mapFromScene(scene)


def _send(widget, kind, pos: QPoint, button, buttons, mods=Qt.KeyboardModifier.NoModifier) -> None:
    p = QPointF(pos)
    ev = QMouseEvent(kind, p, QPointF(widget.mapToGlobal(pos)), button, buttons, mods)
    QApplication.sendEvent(widget, ev)


def click(canvas, row: int, col: int, mods=Qt.KeyboardModifier.NoModifier) -> None:
    vp = canvas.graphics.viewport()
    pos = node_pos(canvas, row, col)
    _send(vp, QEvent.Type.MouseButtonPress, pos, LEFT, LEFT, mods)
    _send(vp, QEvent.Type.MouseButtonRelease, pos, LEFT, NONE, mods)
    QApplication.processEvents()


def drag(canvas, nodes: list[tuple[int, int]]) -> None:
    """Press at nodes[0], move through the rest (few events: the canvas interpolates), release."""
    vp = canvas.graphics.viewport()
    pts = [node_pos(canvas, r, c) for r, c in nodes]
    _send(vp, QEvent.Type.MouseButtonPress, pts[0], LEFT, LEFT)
    for p in pts[1:]:
        _send(vp, QEvent.Type.MouseMove, p, NONE, LEFT)
    _send(vp, QEvent.Type.MouseButtonRelease, pts[-1], LEFT, NONE)
    QApplication.processEvents()
