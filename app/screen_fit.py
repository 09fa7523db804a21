"""Fitting the window to small screens (a 1024 × 600 netbook, a 1366 × 768 laptop).

The window opens no larger than the screen's free area, a geometry remembered from a bigger monitor is
clamped to the screen it opens on, and tall panels scroll instead of raising the window's minimum height.
"""

from __future__ import annotations

from PySide6.QtCore import QRect, QSize, Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QFrame, QScrollArea, QSizePolicy, QWidget

DEFAULT_SIZE = QSize(1500, 920)


def default_size(free: QRect) -> QSize:
    """1500 × 920, or 95 % of a smaller screen's free area ``free`` (the rest leaves room for the
    window manager's title bar and borders)."""
    return DEFAULT_SIZE.boundedTo(QSize(int(0.95 * free.width()), int(0.95 * free.height())))


def clamped(rect: QRect, free: QRect) -> QRect:
    """``rect`` shrunk to fit ``free`` and moved inside it (the least move)."""
    size = rect.size().boundedTo(free.size())
    x = min(max(rect.x(), free.x()), free.x() + free.width() - size.width())
    y = min(max(rect.y(), free.y()), free.y() + free.height() - size.height())
    return QRect(x, y, size.width(), size.height())


def fit_to_screen(window: QWidget) -> None:
    """Move and shrink ``window`` into the free area of the screen under its centre (else the primary).

    For a remembered geometry: one saved on a big monitor, or on one unplugged since, must open on this
    screen and no larger than it. Qt's restoreGeometry sees to that itself where tried (Qt 6.11: xcb
    refuses a geometry larger than the screen, offscreen shrinks it); this states the rule once, the
    same on every platform and version."""
    if window.isMaximized() or window.isFullScreen():
        return
    geometry = window.geometry()
    screen = QGuiApplication.screenAt(geometry.center()) or QGuiApplication.primaryScreen()
    if screen is not None:
        window.setGeometry(clamped(geometry, screen.availableGeometry()))


class _PanelScroll(QScrollArea):
    def sizeHint(self) -> QSize:  # noqa: N802
        """The whole panel and the scroll bar (QScrollArea caps its hint at 24 lines of text, which
        made a form scroll on a screen with room for all of it)."""
        return self.widget().sizeHint() + QSize(self.verticalScrollBar().sizeHint().width(), 0)


def scrolled(panel: QWidget, *, grow: bool = True) -> QScrollArea:
    """``panel`` in a vertical scroll area: on a short screen it scrolls instead of making the window
    taller than the screen. As wide as the panel and its scroll bar, so that nothing is cut at the side.
    ``grow=False``: never taller than the panel, so that what follows it stays right under it."""
    area = _PanelScroll()
    area.setWidget(panel)
    area.setWidgetResizable(True)
    area.setFrameShape(QFrame.Shape.NoFrame)
    area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    area.setMinimumWidth(panel.minimumSizeHint().width() + area.verticalScrollBar().sizeHint().width())
    if not grow:
        area.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Maximum)
    return area
