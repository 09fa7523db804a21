"""Entry point: parse arguments without Qt, then build the QApplication and the main window."""

from __future__ import annotations

import argparse
import sys


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="piddm-studio", description="PIDDM Studio")
    p.add_argument("--model", help="run directory or bundled model to open")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    return main_qt(args)


def main_qt(args: argparse.Namespace) -> int:
    from PySide6.QtWidgets import QApplication, QLabel, QMainWindow

    app = QApplication.instance() or QApplication(sys.argv)
    window = QMainWindow()
    window.setWindowTitle("PIDDM Studio")
    window.setCentralWidget(QLabel("No model yet — train one or open a run."))
    window.resize(1200, 800)
    window.show()
    return app.exec()
