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
