"""PDE and model panel: registry PDEs, bundled models and run directories, card metadata."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSizePolicy,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

log = logging.getLogger(__name__)

# the banner above the tabs says why none is open and what to do (MainWindow._banner_text)
NO_MODEL = "No model open.\nThe dataspace and classical methods work without one."


def bundled_models() -> list[Any]:
    from engine.models import bundled_models as _bundled

    try:
        return list(_bundled())
    except OSError:  # resources/models unreadable: start without bundled models, and say why in the log
        log.warning("the bundled models could not be listed", exc_info=True)
        return []


def find_runs(folder: str) -> list[Any]:
    from engine.models import find_runs as _find

    return list(_find(folder))


def is_bundled(path) -> bool:
    """A model shipped in resources/models (listed at every start), not a run of the user's."""
    from engine.models import bundled_root

    return Path(str(path)).resolve().is_relative_to(bundled_root().resolve())


def model_params(info: Any) -> dict[str, Any] | None:
    """The PDE parameters ``info``'s model was trained with (all of them, defaults filled in), read
    without loading it: its card's ``pde_params`` (a run's card takes them from its config.json, a
    student's from its teacher's: ``engine.models.read_card``), or, for a bundled model, the registry's
    defaults (packaging/make_models.py trains with them). None when nothing tells."""
    from engine import pdes

    params = dict(getattr(info, "card", None) or {}).get("pde_params")
    if not isinstance(params, dict):
        params = {} if is_bundled(Path(str(getattr(info, "path", "")))) else None
    if params is None:
        return None
    try:
        return pdes.params_of(pdes.get(str(getattr(info, "pde", "")), **params))
    except Exception:  # an unknown PDE or parameter: nothing that can be compared
        return None


def _num(v) -> str:
    if isinstance(v, float):
        return f"{v:.3g}"
    if isinstance(v, int) and abs(v) >= 10_000:
        return f"{v:,}"
    return str(v)


def _short_path(path) -> str:
    """Bundled models by their place in resources/models; others by their last two parts."""
    p = Path(str(path))
    parts = p.parts
    if "models" in parts and "resources" in parts:
        return "bundled: " + "/".join(parts[parts.index("models") + 1:])
    return "…/" + "/".join(parts[-2:]) if len(parts) > 2 else str(p)


def _bench_rows(bench: dict, name: str) -> list[tuple[str, dict]]:
    """This model's bench row (matched by folder name) and the held-out data row for scale."""
    rows = []
    for key, row in bench.items():
        if not isinstance(row, dict):
            continue
        label = key.split(" ")[0]
        if key.startswith("held-out") or label == name or (name == "teacher" and label == "teacher"):
            rows.append((key, row))
    return rows


def _mean(d) -> str:
    return _num(d.get("mean")) if isinstance(d, dict) else _num(d)


def describe(info: Any, model: Any = None) -> str:
    """HTML summary of a model card: what it is, how it was trained, its bench figures."""
    card = dict(getattr(info, "card", None) or getattr(model, "card", None) or {})
    name = getattr(info, "name", "?")
    kind = getattr(model, "kind", None) or card.get("kind") or getattr(info, "kind", "?")
    grid = getattr(getattr(model, "grid", None), "n", None) or card.get("grid", "?")
    rows = [("model", f"{getattr(info, 'pde', '?')} · {name} ({kind})"), ("grid", f"{grid}²")]
    if "parameters" in card:
        size = f" ({card['model_size']})" if "model_size" in card else ""
        rows.append(("size", f"{_num(card['parameters'])} parameters{size}"))
    if "lambda" in card:
        rows.append(("λ (physics)", _num(card["lambda"])))
    if model is not None and getattr(model, "kind", "") == "student":
        rows.append(("teacher", "loaded" if getattr(model, "teacher", None) is not None else "not found"))
    data = card.get("data")
    if isinstance(data, dict):
        rows.append(("data", f"{_num(data.get('n', '?'))} samples, seed {data.get('seed', '?')}"))
    for key, label in (("teacher_training", "teacher training"), ("training", "distillation")):
        t = card.get(key)
        if isinstance(t, dict) and (kind == "student" or key == "teacher_training"):
            before = t.get("continued_from")  # a teacher trained further (make_models.py --teacher-init)
            more = f" (trained on from {_num(before.get('steps', '?'))})" if isinstance(before, dict) else ""
            rows.append((label, f"{_num(t.get('steps', '?'))} steps, {_num(float(t.get('seconds', 0)))} s{more}"))
    learnt = card.get("teacher_at_distillation")
    if kind == "student" and isinstance(learnt, dict):  # the teacher has been trained on since
        rows.append(("distilled from", f"the teacher at {_num(learnt.get('steps', '?'))} steps"))
    screened = {kind: k for kind, k in (card.get("candidates") or {}).items() if int(k) > 1}
    if screened:  # engine.solve.api.default_candidates: why a solve's NFE includes K draws per member
        rows.append(("start screening", ", ".join(
            f"best of {k} draws ({'whole channel' if kind == 'full' else kind})" for kind, k in screened.items())))
    tuned = {k: v for k, v in (card.get("solve") or {}).items() if isinstance(v, dict)}
    if tuned:  # engine.solve.api.tuned_settings: what "auto" means for this student's latent solves
        rows.append(("latent solve", "<br>".join(
            f"{k.replace('/full', ', whole channel').replace('/points', ', points')}: "
            f"lr {_num(v.get('lr', '?'))}, λ {_num(v.get('lam', '?'))}" for k, v in sorted(tuned.items()))))
    if "hardware" in card:
        rows.append(("trained on", card["hardware"]))
    rows.append(("path", _short_path(getattr(info, "path", ""))))
    shown = {"pde", "grid", "kind", "name", "parameters", "model_size", "lambda", "data", "teacher_training",
             "teacher_at_distillation", "training", "hardware", "bench", "bench_generate", "recipe",
             "software_version", "candidates"}
    for k, v in card.items():
        if k not in shown and not isinstance(v, dict | list):
            rows.append((k, _num(v)))
    html = "<table cellspacing=2>" + "".join(
        f"<tr><td><b>{k}</b></td><td>{v}</td></tr>" for k, v in rows) + "</table>"
    bench = card.get("bench_generate") or card.get("bench")
    if isinstance(bench, dict) and bench:
        html += "<p><b>bench</b> (generation, held-out)</p><table cellspacing=2>"
        html += "<tr><td></td><td>residual_mse</td><td>mmse(coef)</td></tr>"
        for key, row in _bench_rows(bench, name):
            res = row.get("residual_mse", {})
            mm = next((v for k, v in row.items() if k.startswith("mmse_")), {})
            html += f"<tr><td>{key}</td><td>{_mean(res)}</td><td>{_mean(mm)}</td></tr>"
        html += "</table>"
        if card.get("recipe"):
            html += f"<p>recipe: {card['recipe']}</p>"
    return html


class _ParamBox(QDoubleSpinBox):
    """A parameter's box: its value as written ("12", "0.01"), not padded to a fixed count of decimals."""

    def textFromValue(self, value: float) -> str:  # noqa: N802
        return f"{value:.{self.decimals()}f}".rstrip("0").rstrip(".")


class ParamsEditor(QWidget):
    """One spin box per parameter of a PDE (its dataclass fields: darcy's forcing, a_low, a_high,
    helmholtz's k, burgers' nu, …), side by side, each named by its prefix: one row of the Model panel
    whatever the PDE. ``changed`` carries all of them once one was set (Return, the arrows, or leaving
    the box)."""

    changed = Signal(dict)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.row = QHBoxLayout(self)
        self.row.setContentsMargins(0, 0, 0, 0)
        self.row.setSpacing(4)
        self.boxes: dict[str, QDoubleSpinBox] = {}
        self._pde_name = ""

    def show_pde(self, pde, enabled: bool = True, tip: str = "") -> None:
        """Boxes for ``pde``'s parameters, holding its values (without signalling)."""
        from engine import pdes

        params = pdes.params_of(pde)
        if pde.name != self._pde_name or list(params) != list(self.boxes):
            for box in self.boxes.values():
                self.row.removeWidget(box)
                box.deleteLater()
            self.boxes = {}
            for name in params:
                box = _ParamBox()
                box.setDecimals(6)
                box.setRange(-1e6, 1e6)
                box.setPrefix(f"{name} ")
                box.setButtonSymbols(QDoubleSpinBox.ButtonSymbols.NoButtons)  # (the arrow keys and wheel step)
                box.setKeyboardTracking(False)  # one change per value typed, not per key
                # as wide as the row allows, not as the range's widest text ("-1000000"): the row
                # never widens the dock, and darcy's three values show whole in it
                box.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
                box.setMinimumWidth(box.fontMetrics().horizontalAdvance(f"{name} 0"))
                box.valueChanged.connect(self._emit)
                self.row.addWidget(box, 1)
                box.show()  # (now, not once the layout next runs)
                self.boxes[name] = box
            self._pde_name = pde.name
        for name, box in self.boxes.items():
            v = float(params[name])
            box.blockSignals(True)
            box.setValue(v)
            box.setSingleStep(_step(v))
            box.blockSignals(False)
            box.setEnabled(enabled)
            box.setToolTip(f"{name}: {tip}" if tip else name)

    def values(self) -> dict[str, float]:
        return {name: box.value() for name, box in self.boxes.items()}

    def _emit(self) -> None:
        self.changed.emit(self.values())


def _step(v: float) -> float:
    """An arrow step of about a tenth of ``v``'s size, as a power of ten (0.001 for nu = 0.01)."""
    import math

    return 10.0 ** math.floor(math.log10(abs(v))) / 10 if v else 0.1


class ModelPanel(QWidget):
    pde_changed = Signal(str)
    model_selected = Signal(object)  # ModelInfo or None
    grid_changed = Signal(int)
    params_changed = Signal(dict)  # the PDE parameters set in the editor (all of them)

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
        self.info.setMinimumHeight(48)  # two lines; it scrolls (the window must fit a 600-px screen)
        self.params = ParamsEditor()  # the PDE's parameters (MainWindow._show_params)
        self.params.changed.connect(self.params_changed)
        self.form = form = QFormLayout()
        form.addRow("PDE", self.pde_box)
        form.addRow("grid", self.grid_box)
        form.addRow(self.params)  # the whole row: each box names its parameter
        self.equation = QLabel()
        self.equation.setWordWrap(True)
        self.equation.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addWidget(self.equation)
        lay.addWidget(QLabel("Models"))
        self.models.setMaximumHeight(150)
        self.models.setMinimumHeight(56)  # three rows
        # the list and the card scroll themselves: they take the room the dock has rather than ask for
        # it, so that the panel asks for no more than it needs and the task panel below shows whole
        for view in (self.models, self.info):
            view.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Ignored)
        lay.addWidget(self.models, 1)
        row = QHBoxLayout()
        row.addWidget(self.open_btn)
        lay.addLayout(row)
        lay.addWidget(self.info, 2)
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
            # a run, or a further bundled set (darcy-32/), is told apart by its folder
            folder = Path(str(info.path)).parent.name
            bundled_main = _short_path(info.path).startswith("bundled") and folder == info.pde
            # a run of the user's says so: its chain folder may share a bundled set's name (darcy-32)
            where = "" if bundled_main else f"  ({folder})" if is_bundled(info.path) else f"  (run {folder})"
            it = QListWidgetItem(f"{info.pde} · {info.name}{where}")
            it.setToolTip(str(info.path))
            self.models.addItem(it)
        row = self._infos.index(select) if select in self._infos else 0
        self.models.setCurrentRow(row)
        self.models.blockSignals(False)

    def infos(self) -> list[Any]:
        return self._infos[1:]

    def show_info(self, info: Any, model: Any = None) -> None:
        self.info.setHtml(NO_MODEL.replace("\n", "<br>") if info is None else describe(info, model))

    def show_params(self, pde, enabled: bool = True, tip: str = "") -> None:
        """The parameter boxes of ``pde`` (ParamsEditor.show_pde); the row is hidden when it has none."""
        self.params.show_pde(pde, enabled, tip)
        self.form.setRowVisible(self.params, bool(self.params.boxes))

    def set_equation(self, pde) -> None:
        """The PDE's equation with its parameter values, and its channels in order with their units."""
        from engine.pdes import params_text

        params = params_text(pde)
        self.equation.setText(f"<i>{pde.title}</i>: {pde.equation}" + (f" ({params})" if params else "")
                              + f"<br>channels: {', '.join(pde.fields)} — {pde.units}")
        self.equation.setTextFormat(Qt.TextFormat.RichText)
        self._fit_equation()

    def _fit_equation(self) -> None:
        """The equation's wrapped lines as its minimum height: the panel's minimum did not count them
        (a word-wrapped label's height depends on its width), so a short dock squeezed the boxes above
        it and cut its last line, where it should scroll."""
        width = self.equation.width() if self.equation.width() > 1 else self.width()
        self.equation.setMinimumHeight(self.equation.heightForWidth(width))

    def resizeEvent(self, event) -> None:  # noqa: N802
        super().resizeEvent(event)
        self._fit_equation()

    def _on_row(self, row: int) -> None:
        if 0 <= row < len(self._infos):
            self.model_selected.emit(self._infos[row])

    def _open_run(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open run directory")
        if folder:
            self.open_folder(folder)

    def open_folder(self, folder: str) -> Any:
        """List and open the model ``list_folder`` picks. Returns its info, or None (a dialog said why)."""
        info = self.list_folder(folder)
        if info is not None:
            self.model_selected.emit(info)
        return info

    def list_folder(self, folder: str) -> Any:
        """Add the runs found under ``folder`` and select, without signalling, the first new one (or, when
        all of them are listed already, the first of them). Returns it; a dialog says when there is none."""
        # absolute: the listed paths are remembered for later sessions, and a bundled model given by a
        # relative path is the bundled entry, not a second one
        from app import dialogs

        if not Path(folder).is_dir():  # a mistyped or since removed path does not "hold no model"
            dialogs.show_error(self, "No such folder", f"{folder}: no such folder. Pick a run directory of "
                               "piddm train or piddm distill (with checkpoint.pt), or a folder of them.")
            return None
        runs = find_runs(str(Path(folder).resolve()))
        if not runs:
            dialogs.show_error(self, "No model found", f"{folder} holds no model: pick a run directory of "
                               "piddm train or piddm distill (with checkpoint.pt), or a folder of them.")
            return None
        listed = {str(j.path): j for j in self.infos()}
        found = [i for i in runs if str(i.path) not in listed]
        target = found[0] if found else listed[str(runs[0].path)]
        self.set_models(self.infos() + found, select=target)
        return target

    def add_run(self, run_dir: str) -> Any:
        """List the runs beside ``run_dir`` (a finished chain's student) and open ``run_dir``'s model,
        reloading it if it was listed before (a resumed run). Returns its info, or None."""
        found = find_runs(str(Path(run_dir).parent))
        target = next((i for i in found if Path(str(i.path)).resolve() == Path(run_dir).resolve()), None)
        if target is None:
            return None
        fresh = {str(i.path): i for i in found}
        infos = [fresh.pop(str(i.path), i) for i in self.infos()]
        self.set_models(infos + list(fresh.values()), select=target)
        self.model_selected.emit(target)
        return target

