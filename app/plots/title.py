"""Plot titles that fit their cell: on a small screen a long title is shortened, never cut at both ends.

pyqtgraph makes a title's text width the plot's minimum width (a title wider than its cell pushed the
colour bar out of the view, its numbers cut off), and a title that asks for no width is drawn centred and
cut at both sides ("ataspace: |u − classical solve|" at 1024 × 600). A ``FittingTitle`` asks for no width and,
when its cell is narrower than its text, shows its ``short`` form (a result view's title without the
method, which the summary names) or the text cut with "…"; the whole title is then its tooltip.

The size it asks for is always the whole text's: the shortened text is drawn only, so that what is drawn
never changes the layout that chose the cell's width (a layout fed back from the drawn text can re-lay
itself out without end).
"""

from __future__ import annotations

import html

import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QFont, QFontMetricsF

MARGIN = 10.0  # px: QGraphicsTextItem's document margins (4 + 4) and a little air


class FittingTitle(pg.LabelItem):
    """A plot title (``use_title``) that asks for no width and shortens itself to fit."""

    # the title to show when the text does not fit ("" = cut the text); set it before setText/setTitle
    short = ""

    def sizeHint(self, hint, constraint):  # noqa: N802
        size = super().sizeHint(hint, constraint)
        if hint == Qt.SizeHint.MinimumSize:
            size.setWidth(0)
        return size

    def updateMin(self) -> None:  # noqa: N802
        super().updateMin()
        self.setMinimumWidth(0)

    def resizeEvent(self, ev) -> None:  # noqa: N802
        self.item.setHtml(self._html(self.text))  # the whole text: the size hints (updateMin) are its own
        super().resizeEvent(ev)
        room = self._room() - MARGIN
        font = self._font()
        metrics = QFontMetricsF(font)
        fits = metrics.horizontalAdvance(self.text) <= room
        if not fits:
            shown = self.short or self.text
            if metrics.horizontalAdvance(shown) > room:
                shown = metrics.elidedText(shown, Qt.TextElideMode.ElideRight, max(room, 0.0))
            self.item.setHtml(self._html(html.escape(shown, quote=False)))
            self._centre()
        self.setToolTip("" if fits else self.text)

    def _room(self) -> float:
        """The width the centred text may take: its cell spans only the plot's view box, but the text may
        reach over the axes and the colour bar beside it, as far as the plot's nearer side."""
        plot = self.parentItem()
        if plot is None:
            return self.rect().width()
        centre = self.mapRectToParent(self.rect()).center().x()
        whole = plot.boundingRect()
        return max(self.rect().width(), 2 * min(centre - whole.left(), whole.right() - centre))

    def shown_text(self) -> str:
        """The text drawn now (the title, its short form, or either cut with "…")."""
        return self.item.toPlainText()

    def _font(self) -> QFont:
        font = QFont(self.item.font())
        size = str(self.opts.get("size", ""))
        if size.endswith("pt"):
            font.setPointSizeF(float(size[:-2]))
        return font

    def _html(self, text: str) -> str:
        """``text`` styled as LabelItem.setText styles it (colour, size)."""
        color = pg.mkColor(self.opts["color"] or pg.getConfigOption("foreground"))
        style = [f"color: {color.name(QColor.NameFormat.HexArgb)}"]
        if "size" in self.opts:
            style.append(f"font-size: {self.opts['size']}")
        return f"<span style='{'; '.join(style)}'>{text}</span>"

    def _centre(self) -> None:
        self.item.setPos(0, 0)
        bounds = self.itemRect()
        bounds.moveCenter(self.rect().center())
        self.item.setPos(bounds.topLeft() - self.itemRect().topLeft())


def use_title(plot: pg.PlotItem, label: pg.LabelItem | None = None) -> FittingTitle:
    """Put ``label`` (a new FittingTitle) where PlotItem keeps its title (row 0 above the plot;
    PlotItem.setTitle uses it)."""
    label = label or FittingTitle(size="11pt")
    old = plot.titleLabel
    plot.layout.removeItem(old)
    old.scene().removeItem(old)
    plot.layout.addItem(label, 0, 1)
    plot.titleLabel = label
    return label
