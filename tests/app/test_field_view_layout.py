"""FieldView's layout settles: in a narrow cell the aspect-locked plot is laid out once, not re-laid out
without end (the left axis, shrinking to its labels, widened the view box, whose new y range widened the
labels again; seen as a hung window after an inverse solve on a 16² demo)."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QElapsedTimer

from app.canvas.field_view import FieldView


def _spin(qapp, ms: int) -> None:
    clock = QElapsedTimer()
    clock.start()
    while clock.elapsed() < ms:
        qapp.processEvents()


def test_a_narrow_view_stops_laying_itself_out(qtbot, qapp):
    # an almost constant coefficient (colour-bar labels 7.4–7.5) in cells 164–172 px wide, 306 px tall:
    # the sizes at which it looped here (fonts elsewhere may loop at others; there the test passes)
    field = 7.45 + 0.05 * np.random.default_rng(0).standard_normal((16, 16))
    for width in (164, 168, 172):
        view = FieldView("a", "field")
        qtbot.addWidget(view)
        view.subject = "dataspace"
        view.set_field(field)
        view.resize(width, 306)
        view.show()
        _spin(qapp, 200)  # laid out
        box = view.plot.getViewBox()
        layouts = []
        box.sigResized.connect(lambda *_a, seen=layouts: seen.append(1))
        _spin(qapp, 200)
        assert not layouts, (width, len(layouts))


def test_the_x_labels_of_a_narrow_view_do_not_run_together(qtbot, qapp):
    from PySide6.QtGui import QImage, QPainter

    view = FieldView("u", "field")
    qtbot.addWidget(view)
    view.set_field(np.zeros((16, 16)))
    view.resize(200, 300)  # a view box about 70 px wide
    view.show()
    _spin(qapp, 100)
    axis = view.plot.getAxis("bottom")
    image = QImage(10, 10, QImage.Format.Format_ARGB32)
    painter = QPainter(image)
    try:
        _axis, _ticks, texts = axis.generateDrawSpecs(painter)
    finally:
        painter.end()
    rects = sorted((rect for rect, _flags, _text in texts), key=lambda r: r.left())
    assert rects  # still a scale
    assert all(a.right() <= b.left() for a, b in zip(rects, rects[1:])), [t for _r, _f, t in texts]
