"""PDE and model panel: registry PDEs, bundled models and run directories, card metadata."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

NO_MODEL = "No model yet — train one or open a run.\nThe dataspace and classical methods work without one."


def bundled_models() -> list[Any]:
    try:
        from engine.models import bundled_models as _bundled
    except ImportError:
        return []
    try:
        return list(_bundled())
    except Exception:
        return []


def find_runs(folder: str) -> list[Any]:
    from engine.models import find_runs as _find

    return list(_find(folder))


def describe(info: Any, model: Any = None) -> str:
    """HTML summary of a model card (PDE, grid, size, training, bench metrics)."""
    card = dict(getattr(info, "card", None) or {})
    rows = [("PDE", getattr(info, "pde", "?")), ("name", getattr(info, "name", "?")),
            ("path", str(getattr(info, "path", "")))]
    if model is not None:
        rows += [("kind", getattr(model, "kind", "?")), ("grid", getattr(getattr(model, "grid", None), "n", "?"))]
    bench = card.pop("bench", None)
    for k, v in card.items():
        rows.append((k, v if not isinstance(v, dict | list) else json.dumps(v)[:200]))
    html = "<table>" + "".join(f"<tr><td><b>{k}</b></td><td>{v}</td></tr>" for k, v in rows) + "</table>"
    if isinstance(bench, dict) and bench:
        html += "<p><b>bench</b></p><table>"
        for k, v in bench.items():
            val = f"{v:.4g}" if isinstance(v, float) else (json.dumps(v)[:120] if isinstance(v, dict) else v)
            html += f"<tr><td>{k}</td><td>{val}</td></tr>"
        html += "</table>"
    return html


class ModelPanel(QWidget):
    pde_changed = Signal(str)
    model_selected = Signal(object)  # ModelInfo or None
    grid_changed = Signal(int)

    def __init__(self, pde_names: list[str], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.pde_box = QComboBox()
        self.pde_box.addItems(pde_names)
        self.grid_box = QComboBox()
        self.grid_box.addItems(["16", "32", "64", "128"])
        self.grid_box.setCurrentText("32")
        self.grid_box.setToolTip("grid for model-free methods (a model fixes its own grid)")
        self.models = QListWidget()
        self.open_btn = QPushButton("Open run…")
        self.info = QTextBrowser()
        self.info.setOpenExternalLinks(False)
        self.info.setMinimumHeight(120)
        form = QFormLayout()
        form.addRow("PDE", self.pde_box)
        form.addRow("grid", self.grid_box)
        self.equation = QLabel()
        self.equation.setWordWrap(True)
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addWidget(self.equation)
        lay.addWidget(QLabel("Models"))
        lay.addWidget(self.models, 1)
        row = QHBoxLayout()
        row.addWidget(self.open_btn)
        lay.addLayout(row)
        lay.addWidget(self.info, 1)
        self._infos: list[Any] = []
        self.pde_box.currentTextChanged.connect(self.pde_changed)
        self.grid_box.currentTextChanged.connect(lambda t: self.grid_changed.emit(int(t)))
        self.models.currentRowChanged.connect(self._on_row)
        self.open_btn.clicked.connect(self._open_run)

    def set_models(self, infos: list[Any], select: Any = None) -> None:
        """List ``infos`` (plus a 'no model' entry) and select ``select`` without signalling."""
        self.models.blockSignals(True)
        self.models.clear()
        self._infos = [None, *infos]
        self.models.addItem(QListWidgetItem("(no model: dataspace / classical)"))
        for info in infos:
            it = QListWidgetItem(f"{info.pde} · {info.name}")
            it.setToolTip(str(info.path))
            self.models.addItem(it)
        row = self._infos.index(select) if select in self._infos else 0
        self.models.setCurrentRow(row)
        self.models.blockSignals(False)

    def infos(self) -> list[Any]:
        return self._infos[1:]

    def show_info(self, info: Any, model: Any = None) -> None:
        self.info.setHtml(NO_MODEL.replace("\n", "<br>") if info is None else describe(info, model))

    def set_equation(self, pde) -> None:
        self.equation.setText(f"<i>{pde.title}</i>: {pde.equation}<br>channels: {', '.join(pde.fields)}")
        self.equation.setTextFormat(Qt.TextFormat.RichText)

    def _on_row(self, row: int) -> None:
        if 0 <= row < len(self._infos):
            self.model_selected.emit(self._infos[row])

    def _open_run(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open run directory")
        if folder:
            self.open_folder(folder)

    def open_folder(self, folder: str) -> list[Any]:
        """Add the runs found under ``folder``; select the first new one."""
        found = [i for i in find_runs(folder) if str(i.path) not in {str(j.path) for j in self.infos()}]
        if found:
            self.set_models(self.infos() + found, select=found[0])
            self.model_selected.emit(found[0])
        return found

    def folder_of(self, info: Any) -> str:
        return str(Path(info.path).parent)
