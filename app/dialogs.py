"""Error dialogs (non-blocking, details = traceback) and a logging handler for the log dock."""

from __future__ import annotations

import contextlib
import logging

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QMessageBox, QWidget

log = logging.getLogger("app")


def show_error(parent: QWidget | None, title: str, message: str, details: str = "") -> QMessageBox:
    """Log the error and open a message box with the traceback under "Show Details…"."""
    log.error("%s: %s%s", title, message, f"\n{details}" if details else "")
    box = QMessageBox(QMessageBox.Icon.Critical, title, message, QMessageBox.StandardButton.Ok, parent)
    if details:
        box.setDetailedText(details)
    box.open()  # window-modal but non-blocking: no nested event loop inside async workflows
    return box


class LogEmitter(QObject):
    line = Signal(str)


class QtLogHandler(logging.Handler):
    """Forwards records as a signal; emitted from any thread, delivered in the GUI thread."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.emitter = LogEmitter()
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S"))

    def emit(self, record: logging.LogRecord) -> None:
        with contextlib.suppress(RuntimeError):  # emitter already deleted at shutdown
            self.emitter.line.emit(self.format(record))
