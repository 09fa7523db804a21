"""The window on small screens: it shrinks to a 1024 × 600 netbook, shows its whole tool bar on a
1366 × 768 laptop, and a geometry remembered from a bigger monitor is clamped to the screen."""

from __future__ import annotations

from PySide6.QtCore import QRect

from app.screen_fit import clamped, default_size

# a netbook's 1024 × 600 less a task bar (40 px) and the window's title bar (30 px)
NETBOOK = (1024, 600 - 40 - 30)
LAPTOP_FREE = QRect(0, 0, 1366, 768 - 32)  # a 1366 × 768 laptop's screen less its task bar


def test_the_window_shrinks_to_a_netbook_screen(qtbot, make_window):
    """With every tab, and with the log shown: the side panels scroll instead of setting the height."""
    w = make_window(16)
    for log in (False, True):
        w.docks["Log"].setVisible(log)
        for i in range(w.tabs.count()):
            w.tabs.setCurrentIndex(i)
            hint = w.minimumSizeHint()
            assert hint.width() <= NETBOOK[0] and hint.height() <= NETBOOK[1], (w.tabs.tabText(i), log, hint)


def test_solve_stays_in_view_when_the_task_settings_scroll(qtbot, make_window):
    from PySide6.QtWidgets import QScrollArea

    w = make_window(16)
    w.resize(*NETBOOK)
    qtbot.wait(50)
    assert w.height() <= NETBOOK[1]
    panel = w.task_panel
    assert panel.findChild(QScrollArea).verticalScrollBar().maximum() > 0  # the settings do not fit
    assert panel.visibleRegion().contains(panel.solve_btn.geometry().center())


def test_the_whole_tool_bar_shows_on_a_laptop(qtbot, make_window):
    """At the size the window opens with on 1366 × 768, no tool is in a tool bar's overflow (») menu."""
    from PySide6.QtWidgets import QToolBar

    w = make_window(16)
    w.resize(default_size(LAPTOP_FREE))
    w.tabs.setCurrentWidget(w.inputs)
    qtbot.wait(50)
    assert w.width() <= LAPTOP_FREE.width()
    for bar in w.inputs.findChildren(QToolBar):
        hidden = [a.text() or type(bar.widgetForAction(a)).__name__ for a in bar.actions()
                  if not bar.widgetForAction(a).isVisible()]
        assert not hidden, (bar.windowTitle(), bar.width(), hidden)


def test_default_size_fits_the_screen():
    assert default_size(QRect(0, 0, 2560, 1440)).toTuple() == (1500, 920)
    for free in (QRect(0, 0, 1024, 600 - 40), LAPTOP_FREE):
        size = default_size(free)
        assert size.width() <= free.width() and size.height() <= free.height()


def test_clamped_moves_and_shrinks_into_the_free_area():
    free = QRect(0, 24, 1366, 744)  # a top panel of 24 px
    assert clamped(QRect(100, 100, 800, 600), free) == QRect(100, 100, 800, 600)  # fits: left alone
    assert clamped(QRect(1000, 500, 800, 600), free) == QRect(566, 168, 800, 600)  # moved, not shrunk
    assert clamped(QRect(2000, 1300, 2400, 1400), free) == free  # a big monitor's window: the whole screen
    assert clamped(QRect(-3000, 0, 500, 400), free) == QRect(0, 24, 500, 400)  # a monitor to the left, gone


def test_a_geometry_saved_on_a_bigger_monitor_opens_on_this_screen(qtbot, settings, aloop, monkeypatch):
    import app.main_window as mw

    monkeypatch.setattr(mw, "bundled_models", lambda: [])
    big = mw.MainWindow(settings, startup=False)
    qtbot.addWidget(big)
    big.setGeometry(2200, 1300, 2400, 1400)  # on a 4K monitor right of this screen
    big.save_settings()
    big.close()
    w = mw.MainWindow(settings, startup=False)
    qtbot.addWidget(w)
    w.show()
    free = w.screen().availableGeometry()
    assert free.contains(w.geometry()), (free, w.geometry())
    w.close()


def _plus_one(model, pde, values, mask, opts, on_progress, cancel):
    from types import SimpleNamespace

    return SimpleNamespace(mean=(values + 1.0)[None], std=None, residual=None, nfe=1, settings={}, misfit=None)


def _drawn_inside(view) -> bool:
    """The view's title text lies inside the view (not cut at either side)."""
    title = view.plot.titleLabel
    drawn = view.graphics.mapFromScene(title.item.sceneBoundingRect()).boundingRect()
    return drawn.left() >= 0 and drawn.right() <= view.graphics.viewport().width()


def test_long_titles_and_notes_are_shortened_in_narrow_views_not_cut(qtbot, make_window):
    w = make_window(16)
    w.resize(*NETBOOK)
    w.task_panel.method_box.setCurrentText("dataspace")  # inverse: the residual's note shows
    w.controller.solve_fn = _plus_one
    with qtbot.waitSignal(w.controller.solve_done, timeout=10_000):
        w.task_panel.solve_btn.click()
    qtbot.wait(50)
    views = w.results.views()
    for name, view in views.items():
        assert _drawn_inside(view), (name, view.plot.titleLabel.shown_text())
    std = views["std"].plot.titleLabel
    assert std.text == "ensemble std (a): none, one answer" and std.shown_text() != std.text
    assert std.toolTip() == std.text  # the whole title on hover
    note = w.results.residual.note
    assert note.isVisible() and note.shown_text().endswith("…")
    assert note.fontMetrics().horizontalAdvance(note.shown_text()) <= note.contentsRect().width()


def test_the_log_takes_a_few_lines_not_the_result_views_room(qtbot, make_window):
    w = make_window(16)
    w.resize(*NETBOOK)
    w.tabs.setCurrentWidget(w.results)
    w.docks["Log"].show()
    qtbot.wait(50)
    assert w.log_view.height() <= 8 * w.log_view.fontMetrics().lineSpacing()
    assert min(v.graphics.height() for v in w.results.views().values()) >= 110


def test_the_training_plots_can_take_room_from_the_settings(qtbot, make_window):
    w = make_window(16)
    w.resize(*NETBOOK)
    w.tabs.setCurrentWidget(w.training)
    qtbot.wait(50)
    tp = w.training
    before = tp.preview.width()
    tp.splitter.setSizes([0, tp.splitter.width()])  # the line between them dragged to the left
    qtbot.wait(50)
    assert tp.preview.width() >= before + 30
    # the settings' rows put their boxes under their names; nothing is cut at the side
    for widget in (tp.start_btn, tp.cancel_btn, tp.folder, tp.grid):
        assert widget.visibleRegion().boundingRect().width() == widget.width(), widget
    for view in (tp.preview, tp.preview_res):
        assert _drawn_inside(view), view.plot.titleLabel.shown_text()
