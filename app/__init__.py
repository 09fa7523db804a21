"""PIDDM Studio desktop app (PySide6 + pyqtgraph) over the Qt-free engine."""

from app.compat import make_singletons_immortal

make_singletons_immortal()  # before any Qt call: see app.compat
