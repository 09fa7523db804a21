"""Each drawing / observation tool changes the canvas as expected; undo/redo restore it."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF
from qt_mouse import click, drag


def _setup(make_window):
    w = make_window(16)
    s, panel = w.state, w.inputs
    s.values[...] = 3.0
    s.mask[...] = False
    panel.history.clear()
    panel.redraw()
    return w, s, panel


def test_brush_points_eraser_fill_mask(make_window):
    w, s, panel = _setup(make_window)
    a = panel.canvases[0]
    panel.set_tool("brush")
    panel.value.setValue(12.0)
    panel.size.setValue(0)
    click(a, 5, 7)
    assert s.values[0, 5, 7] == 12.0 and s.mask[0, 5, 7]
    assert s.values[0].sum() == 3.0 * 255 + 12.0  # exactly one node painted

    # continuous stroke: two far-apart events still paint every node between them
    drag(a, [(10, 1), (10, 14)])
    assert np.all(s.values[0, 10, 1:15] == 12.0)

    panel.set_tool("eraser")
    click(a, 10, 5)
    assert not s.mask[0, 10, 5] and s.mask[0, 10, 8]

    panel.set_tool("fill")
    panel.value.setValue(7.0)
    click(a, 0, 0)  # the 3.0 region (everything not painted) becomes 7.0 and observed
    assert s.values[0, 0, 0] == 7.0 and s.values[0, 15, 15] == 7.0 and s.values[0, 5, 7] == 12.0
    assert s.mask[0, 0, 0]

    u = panel.canvases[1]
    panel.set_tool("points")
    click(u, 3, 4)
    click(u, 8, 9)
    assert s.mask[1].sum() == 2 and s.mask[1, 3, 4] and s.mask[1, 8, 9]
    before = s.values[1].copy()
    panel.set_tool("mask")
    panel.size.setValue(1)
    click(u, 12, 12)
    assert s.mask[1, 11:14, 11:14].all() and s.mask[1].sum() == 2 + 9  # radius 1: a 3x3 disk
    assert np.array_equal(s.values[1], before)  # the mask brush never changes values


def test_whole_channel_tools_and_undo_redo(make_window):
    w, s, panel = _setup(make_window)
    panel.channel_box.setCurrentIndex(0)
    panel.random_grf()
    assert s.values[0].std() > 0.1 and s.mask[0].all()
    panel.threshold()
    assert set(np.unique(s.values[0])) <= {3.0, 12.0}
    grf_thresholded = s.values[0].copy()
    panel.channel_box.setCurrentIndex(1)
    panel.random_points(k=10)
    assert s.mask[1].sum() == 10
    panel.random_points(k=0)  # 0 → 3 % of the nodes
    assert s.mask[1].sum() == round(0.03 * 256)
    panel.clear_mask()
    assert not s.mask[1].any()
    panel.undo()
    assert s.mask[1].sum() == round(0.03 * 256)
    panel.undo()
    panel.undo()
    assert s.mask[1].sum() == 0
    panel.undo()  # before threshold
    assert not set(np.unique(s.values[0])) <= {3.0, 12.0}
    panel.redo()
    assert np.array_equal(s.values[0], grf_thresholded)
    # the canvas shows the state's arrays (views, not copies)
    assert np.array_equal(panel.canvases[0].data(), s.values[0])


def test_load_npy_and_hover(make_window, tmp_path):
    w, s, panel = _setup(make_window)
    arr = np.arange(256, dtype=float).reshape(16, 16)
    np.save(tmp_path / "a.npy", arr)
    panel.channel_box.setCurrentIndex(0)
    w.import_npy(str(tmp_path / "a.npy"))
    assert np.array_equal(s.values[0], arr) and s.mask[0].all()
    np.save(tmp_path / "m.npy", arr > 200)
    w.import_npy(str(tmp_path / "m.npy"), as_mask=True)
    assert s.mask[0].sum() == 55
    gaps = np.where(arr % 3 == 0, np.nan, arr)  # readings with gaps: NaN nodes become unobserved
    np.save(tmp_path / "g.npy", gaps)
    w.import_npy(str(tmp_path / "g.npy"))
    assert np.array_equal(s.mask[0], arr % 3 != 0) and np.isfinite(s.values[0]).all()
    assert np.array_equal(s.values[0][s.mask[0]], arr[arr % 3 != 0])
    w.import_npy(str(tmp_path / "g.npy"), as_mask=True)  # as a mask NaN counts as 0
    assert np.array_equal(s.mask[0], (arr % 3 != 0) & (arr != 0))
    from qt_mouse import node_pos

    cv = panel.canvases[0]
    scene = cv.graphics.mapToScene(node_pos(cv, 2, 3))
    cv._on_mouse_moved(scene)
    assert "x=0.200" in cv.readout.text() and "y=0.133" in cv.readout.text() and "=35" in cv.readout.text()


def test_colour_bar_labels_small_values(qtbot):
    """A field of small values (an error map, ~1e-4) gets labelled colour-bar ticks, not just a bare bar.

    pyqtgraph's ColorBarItem fixes its axis at 45 px and drops every label wider than that, so the
    "|u − classical solve|" bar used to show no value but 0.
    """
    from PySide6.QtGui import QPainter, QPixmap

    from app.canvas.field_view import FieldView

    v = FieldView("error", "error")
    qtbot.addWidget(v)
    v.resize(400, 380)
    v.show()
    field = np.linspace(0.0, 3e-4, 16 * 16).reshape(16, 16)
    v.set_field(field)
    for _ in range(3):  # the axis widens to its labels on the next layout pass
        qtbot.wait(20)
        v.graphics.grab()
    axis = v.cbar.axis
    pix = QPixmap(10, 10)
    painter = QPainter(pix)
    try:
        labels = [spec[2] for spec in axis.generateDrawSpecs(painter)[2]]
    finally:
        painter.end()
    assert len(labels) >= 3, labels
    assert any(float(t) >= 1e-4 for t in labels), labels


def test_burgers_columns_sit_at_i_over_n_and_the_read_out_names_t(qtbot):
    """Burgers' x is periodic: column i is x = i/N on [0, 1), not i/(N − 1); its rows are time."""
    from app.canvas.field_view import FieldView
    from engine import pdes

    view = FieldView("u")
    qtbot.addWidget(view)
    burgers = pdes.get("burgers")
    view.set_axes(burgers.axes, periodic_columns=burgers.periodic_columns)
    n = 8
    view.set_field(np.arange(n * n, dtype=float).reshape(n, n))
    rect = view.image.mapRectToParent(view.image.boundingRect())
    assert np.isclose(rect.width(), 1.0) and np.isclose(rect.left(), -0.5 / n)  # nodes at 0, 1/8, …, 7/8
    assert np.isclose(rect.height(), n / (n - 1))  # rows: t = j/(N − 1) on [0, 1]
    view._on_mouse_moved(view.image.mapToScene(view.image.mapFromParent(QPointF(7 / n, 1.0))))
    assert view.readout.text().startswith("x=0.875  t=1.000  u=63")
    view.set_axes(("y", "x"))  # an elliptic PDE: both on [0, 1]
    view._on_mouse_moved(view.image.mapToScene(view.image.mapFromParent(QPointF(1.0, 0.0))))
    assert view.readout.text().startswith("x=1.000  y=0.000  u=7")


def test_a_view_never_shown_exports_at_a_readable_size(qtbot, tmp_path):
    """A view on a tab never opened was laid out at a thumbnail's size: its PNG came out 208 px wide
    with overlapping ticks."""
    from PySide6.QtGui import QImage

    from app.canvas.field_view import EXPORT_MIN_SIZE, FieldView

    view = FieldView("u")
    qtbot.addWidget(view)
    view.set_field(np.random.default_rng(0).random((16, 16)))
    view.export_png(str(tmp_path / "u.png"))
    image = QImage(str(tmp_path / "u.png"))
    assert image.width() >= EXPORT_MIN_SIZE.width() and image.height() >= EXPORT_MIN_SIZE.height()


def test_only_edits_that_change_something_are_undo_steps(make_window):
    """A click on a node observed already (points tool) changes nothing: no undo step. Undo and redo
    (tool bar and Edit menu) are enabled only with a step to undo or redo."""
    w, s, panel = _setup(make_window)
    u = panel.canvases[1]

    def enabled():
        return (panel.undo_act.isEnabled(), panel.redo_act.isEnabled(),
                w.undo_action.isEnabled(), w.redo_action.isEnabled())

    assert enabled() == (False, False, False, False)  # nothing to undo or redo yet
    panel.set_tool("points")
    click(u, 3, 4)
    assert s.mask[1, 3, 4] and enabled() == (True, False, True, False)
    click(u, 3, 4)  # observed already
    click(u, 3, 4)
    panel.clear_mask()
    panel.clear_mask()  # cleared already
    assert len(panel.history._undo) == 2
    panel.undo()
    assert s.mask[1, 3, 4]  # one undo brings the point back: no empty steps in between
    panel.undo()
    assert not s.mask[1].any() and enabled() == (False, True, False, True)
    w.redo_action.trigger()
    w.redo_action.trigger()
    assert not s.mask[1].any() and enabled() == (True, False, True, False)
    panel.set_tool("brush")
    panel.value.setValue(3.0)  # the value every node holds: painting it only observes
    click(u, 8, 8)
    assert len(panel.history._undo) == 3 and s.mask[1, 8, 8]
    click(u, 8, 8)
    assert len(panel.history._undo) == 3
