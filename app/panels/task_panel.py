"""Task controls: forward / inverse / reconstruct, method, ensemble, λ, residual norm, steps; Solve / Cancel."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.panels.results_panel import converged
from app.screen_fit import scrolled
from app.state import TASKS, AppState
from engine.solve.api import OPTIONS_READ

NO_THIRD = "— (two methods)"  # the third compare box's "none"
# the latent solve's physics term measured in H^-2σ (engine.solve.latent); "auto" lets the engine choose
RESIDUAL_NORMS = (("auto", None), ("plain (L²)", 0.0), ("H⁻¹", 0.5), ("H⁻²", 1.0))


class TaskPanel(QWidget):
    task_changed = Signal(str)
    solve_requested = Signal()
    cancel_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.task_box = QComboBox()
        self.task_box.addItems(TASKS)
        self.method_box = QComboBox()
        self.compare_box = QCheckBox("compare with")
        self.compare_method = QComboBox()
        self.compare_third = QComboBox()  # optional third method; its first entry is "none"
        self.ensemble = QSpinBox()
        self.ensemble.setRange(1, 64)
        self.lam = QDoubleSpinBox()
        self.lam.setDecimals(4)
        self.lam.setRange(0.0, 1e4)
        self.lam.setSingleStep(0.01)
        self.lam.setSpecialValueText("auto")  # 0 → None: the engine's default λ
        self.lam.setToolTip("Weight of the PDE residual in the solve. auto: the value the model card stores for "
                            "this task and observation kind (chosen on validation cases with the solve's rate), "
                            "else 1.")
        self.norm_box = QComboBox()
        for text, sigma in RESIDUAL_NORMS:
            self.norm_box.addItem(text, sigma)
        self.norm_box.setToolTip(
            "How the student methods measure the PDE residual. auto: in H⁻² / H⁻¹ when a whole field is "
            "given and the solve is for the other (every scale of the unknown field's error counts alike), "
            "plainly from scattered points.")
        self.steps = QSpinBox()
        self.steps.setRange(1, 100_000)
        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        self.solve_btn = QPushButton("Solve")
        self.solve_btn.setDefault(True)
        self.cancel_btn = QPushButton("Cancel")
        self.cancel_btn.setEnabled(False)
        self.bar = QProgressBar()
        self.bar.setTextVisible(True)
        self.status = QLabel(" ")
        self.status.setWordWrap(True)
        # room for a two-line summary from the start: the docks are sized once, and a status that grew
        # after a solve took its line from the settings above (they scrolled on a tall screen)
        self.status.setMinimumHeight(2 * self.status.fontMetrics().lineSpacing())
        # the boxes of the SolveOptions fields a method may not read (OPTIONS_READ); seed every method reads
        self.option_boxes = {"ensemble": self.ensemble, "lam": self.lam, "residual_norm": self.norm_box,
                             "steps": self.steps}
        self._tips = {name: box.toolTip() for name, box in self.option_boxes.items()}
        self.form = form = QFormLayout()
        form.addRow("task", self.task_box)
        form.addRow("method", self.method_box)
        cmp_row = QHBoxLayout()
        cmp_row.addWidget(self.compare_box)
        cmp_row.addWidget(self.compare_method, 1)
        form.addRow(cmp_row)
        form.addRow("and", self.compare_third)
        form.addRow("ensemble", self.ensemble)
        form.addRow("λ", self.lam)
        form.addRow("residual norm", self.norm_box)
        form.addRow("steps", self.steps)
        form.addRow("seed", self.seed)
        settings = QWidget()
        settings.setLayout(form)
        form.setContentsMargins(0, 0, 0, 0)
        lay = QVBoxLayout(self)
        # the settings scroll on a short screen; Solve, Cancel and the progress stay in view under them
        lay.addWidget(scrolled(settings, grow=False))
        btns = QHBoxLayout()
        btns.addWidget(self.solve_btn)
        btns.addWidget(self.cancel_btn)
        lay.addLayout(btns)
        lay.addWidget(self.bar)
        lay.addWidget(self.status)
        lay.addStretch(1)
        # no taller than all of it: a tall dock area gives the rest to the model panel's card
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Maximum)
        self.task_box.currentTextChanged.connect(self.task_changed)
        self.solve_btn.clicked.connect(self.solve_requested)
        self.cancel_btn.clicked.connect(self.cancel_requested)
        for box in (self.compare_method, self.compare_third):
            self.compare_box.toggled.connect(box.setEnabled)
            box.setEnabled(False)
        for box in (self.method_box, self.compare_method, self.compare_third):
            box.currentTextChanged.connect(self.grey_unread_options)
        self.compare_box.toggled.connect(self.grey_unread_options)

    def set_methods(self, methods: list[str], current: str, compare: str, third: str = "") -> None:
        current = current if current in methods else methods[0]
        if compare == current or compare not in methods:  # compare with another method where there is one
            compare = next((m for m in methods if m != current), current)
        if len(methods) < 2:  # one method (no model, not forward): nothing to compare it with
            self.compare_box.setChecked(False)
        self.compare_box.setEnabled(len(methods) > 1)
        for box, cur, items in ((self.method_box, current, methods), (self.compare_method, compare, methods),
                                (self.compare_third, third or NO_THIRD, [NO_THIRD, *methods])):
            box.blockSignals(True)
            box.clear()
            box.addItems(items)
            box.setCurrentText(cur if cur in items else items[0])
            box.blockSignals(False)
        self.grey_unread_options()

    def chosen_methods(self) -> list[str]:
        """The methods Solve runs: the method, and the compared ones when "compare with" is checked."""
        methods = [self.method_box.currentText()]
        if self.comparing:
            methods += [self.compare_method.currentText(), self.compare_third.currentText()]
        return [m for m in dict.fromkeys(methods) if m and m != NO_THIRD]

    def grey_unread_options(self) -> None:
        """Grey out the settings none of the chosen methods reads (the command line refuses them), and
        say why in the tooltip."""
        methods = self.chosen_methods()
        for name, box in self.option_boxes.items():
            used = any(name in OPTIONS_READ[m] for m in methods)
            box.setEnabled(used)
            self.form.labelForField(box).setEnabled(used)
            verb = "does" if len(methods) == 1 else "do"
            box.setToolTip(self._tips[name] if used else f"{' and '.join(methods)} {verb} not use this setting")

    def load(self, s: AppState) -> None:
        self.task_box.blockSignals(True)
        self.task_box.setCurrentText(s.task)
        self.task_box.blockSignals(False)
        self.ensemble.setValue(s.ensemble)
        self.lam.setValue(s.lam or 0.0)
        sigmas = [sigma for _, sigma in RESIDUAL_NORMS]
        self.norm_box.setCurrentIndex(sigmas.index(s.residual_norm) if s.residual_norm in sigmas else 0)
        self.steps.setValue(s.steps)
        self.seed.setValue(s.seed)
        self.offer_methods(s)

    def offer_methods(self, s: AppState) -> None:
        """The method boxes: what ``s`` offers now (its model and task), keeping its choices where offered."""
        self.set_methods(s.methods(), s.method, s.compare_method, s.compare_third)

    def store(self, s: AppState) -> None:
        s.task = self.task_box.currentText()
        s.method = self.method_box.currentText()
        s.compare_method = self.compare_method.currentText()
        s.compare_third = "" if self.compare_third.currentText() == NO_THIRD else self.compare_third.currentText()
        s.ensemble = self.ensemble.value()
        s.lam = self.lam.value() or None
        s.residual_norm = self.norm_box.currentData()
        s.steps = self.steps.value()
        s.seed = self.seed.value()

    @property
    def comparing(self) -> bool:
        return self.compare_box.isChecked()

    def set_busy(self, busy: bool, finished: bool = False) -> None:
        """Busy: an indeterminate bar until the first progress. Idle: full when the solve ``finished``,
        empty when it was cancelled or failed."""
        self.solve_btn.setEnabled(not busy)
        self.cancel_btn.setEnabled(busy)
        if busy:
            self.bar.setRange(0, 0)
        else:
            self.bar.setRange(0, 1)
            self.bar.setValue(1 if finished else 0)

    def show_progress(self, step: int, total: int, text: str) -> None:
        if total > 0:
            self.bar.setRange(0, total)
            self.bar.setValue(min(step, total))
        self.status.setText(text)

    def show_done(self, outcomes) -> None:
        """A solve finished: that it is done, how long each method took, where its figures are, and what
        to change when an answer did not fit its observations (the Results summary holds the figures)."""
        total = sum(r.seconds for r in outcomes)
        each = (", ".join(f"{r.method} {r.seconds:.2f} s" for r in outcomes) if len(outcomes) > 1
                else outcomes[0].method)
        where = "Compare" if len(outcomes) > 1 else "Results"
        text = f"Done in {total:.2f} s ({each}); the figures are on the {where} tab."
        if unfit := [r.method for r in outcomes if not converged(r.metrics)]:
            text += f" <b>{' and '.join(unfit)} did not converge</b>: try more steps."
        self.status.setText(text)
