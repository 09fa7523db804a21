"""Entry point: parse arguments without Qt (silx), then main_qt builds the app on a qasync loop."""

from __future__ import annotations

import argparse
import gc
import sys

ORG, APP = "PIDDM", "PIDDM Studio"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="piddm-studio", description="PIDDM Studio: draw, solve, train, compare.")
    # one PATH, as a file manager passes it (packaging/piddm-studio.desktop: Exec=piddm-studio %f)
    p.add_argument("path", nargs="?", metavar="PATH",
                   help="a run directory to open (as --model) or a fields file (.h5) to import")
    p.add_argument("--model", metavar="RUN_DIR",
                   help="run directory to list beside the bundled models and open (instead of the bundled model)")
    p.add_argument("--screenshot-tour", metavar="DIR", help="capture the main states as PNGs into DIR, then quit")
    p.add_argument("--screenshot", metavar="FILE",
                   help="save a PNG of the screen once the window has started, then quit (a layout check)")
    p.add_argument("--no-startup", action="store_true", help="skip opening the bundled model and demo task")
    args = p.parse_args(argv)
    if args.path and args.model:
        p.error("give one run directory: PATH or --model, not both")
    if args.no_startup and (args.path or args.model):
        p.error("--no-startup opens nothing, so it does not go with PATH or --model")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    return main_qt(args)


_gui_thread_gc = None  # the GarbageCollector of setup_qt (its timer must live as long as the app)


def setup_qt():
    """QApplication with the project's global options; safe to call twice (tests)."""
    import pyqtgraph as pg
    from pyqtgraph.util.garbage_collector import GarbageCollector
    from PySide6.QtCore import QLocale
    from PySide6.QtWidgets import QApplication

    global _gui_thread_gc
    pg.setConfigOptions(imageAxisOrder="row-major", antialias=True)  # before any ImageItem exists
    app = QApplication.instance() or QApplication(sys.argv[:1])
    # Python's cyclic garbage collector runs on whichever thread allocates past its threshold: on a
    # job's worker thread it destroyed Qt objects of the GUI's (a closed window's menus) while the GUI
    # thread, holding the GIL, waited for the Qt lock that destruction held — both froze for good
    # (seen while a model loaded). Automatic collection off; the GUI thread collects on a timer.
    if _gui_thread_gc is None:
        _gui_thread_gc = GarbageCollector(interval=1.0)
    gc.disable()  # (again, for a second call: tests switch it back on between app tests)
    app.setOrganizationName(ORG)
    app.setApplicationName(APP)
    QLocale.setDefault(QLocale.c())  # '.' decimals in spin boxes
    return app


def make_settings(throwaway: bool = False):
    """The user's settings; ``throwaway``: a fresh file of defaults, deleted at exit (the screenshot
    tour neither depends on a user's window layout nor leaves its clicks in their settings)."""
    from PySide6.QtCore import QSettings

    if throwaway:
        import atexit
        import shutil
        import tempfile

        folder = tempfile.mkdtemp(prefix="piddm-settings-")
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        return QSettings(f"{folder}/settings.ini", QSettings.Format.IniFormat)
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, ORG, APP)


def make_window(args: argparse.Namespace, settings):
    """The main window the arguments ask for; its start-up runs once the event loop does."""
    from app.main_window import MainWindow

    return MainWindow(settings, startup=not args.no_startup, open_path=args.path or args.model)


def main_qt(args: argparse.Namespace) -> int:
    import asyncio
    import logging

    import qasync

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    app = setup_qt()
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    shooting = bool(args.screenshot_tour or args.screenshot)
    window = make_window(args, make_settings(throwaway=shooting))
    sys.excepthook = window.show_exception
    window.show()
    if shooting:
        from app.tour import run_tour, take_screenshot

        job = (run_tour(window, args.screenshot_tour) if args.screenshot_tour
               else take_screenshot(window, args.screenshot))
        task = asyncio.ensure_future(job)
        task.add_done_callback(lambda t: t.cancelled() or t.exception() is None
                               or window.show_exception(type(t.exception()), t.exception(), None))
    with loop:
        return int(loop.run_forever() or 0)
