"""Result views: every channel, |residual| (log option), ensemble std, error vs classical; compare mode."""

from __future__ import annotations

import numpy as np
from PySide6.QtWidgets import (
    QComboBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QSizePolicy,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.canvas.field_view import FieldView, share_levels
from app.state import SolveOutcome


def _unknown_channel(mask: np.ndarray | None, c: int) -> int:
    """The channel to show std/error for: the least observed one (the last on ties)."""
    if mask is None:
        return c - 1
    frac = mask.reshape(c, -1).mean(1)
    return int(np.flatnonzero(frac == frac.min())[-1])


NO_RESULT = "No result yet: set up a task and press Solve."
LIVE = "solving: the fields show its current answer; residual, std and error come when it finishes."
# A latent solve whose final misfit (normalised units, engine.solve.common.misfit) is above this has not
# fitted its observations. Bundled darcy-32 and helmholtz students, ensemble 4, inverse / forward /
# reconstruct demos, two each: every 200-step solve ended at 0.0028–0.047; the 50-step ones above it were
# the ones more steps improved (helmholtz reconstruct 0.10 and 0.16, rel_l2 0.6–1.7 → 0.15–0.6 at 200
# steps; darcy forward 0.058 and 0.16, rel_l2 u halved), those below it were fitted (darcy inverse 0.001).
MISFIT_FITTED = 0.05


RESIDUAL_TIP = (
    "|residual| of the PDE at every node of the answer (log₁₀ with “log scale”).\n"
    "An answer keeps its observed values exactly as given. Where a generated field does not meet them\n"
    "smoothly, the residual jumps at the observed nodes and at their stencil neighbours: a “+” at each\n"
    "observation point is that seam between data and generated field, not the physics failing there.\n"
    "The summary's residual_mse counts them; the number “away from observed nodes” leaves them out.")
SEAM_NOTE = "“+” at observed nodes: values kept as given (hover)"


def near_observed(mask: np.ndarray | None) -> np.ndarray | None:
    """(N, N) bool: the nodes of the partly observed channels' observations and their neighbours (3×3),
    where copying observed values into a generated field breaks the stencil; None when no channel is partly
    observed (a forward task observes its coefficient whole: there is no seam)."""
    if mask is None:
        return None
    partial = [m for m in mask if 0 < m.mean() < 1]
    if not partial:
        return None
    obs = np.any(partial, axis=0)
    padded = np.pad(obs, 1)
    n0, n1 = obs.shape
    return np.any([padded[i:i + n0, j:j + n1] for i in range(3) for j in range(3)], axis=0)


def residual_mse_away(residual: np.ndarray, near: np.ndarray, interior: np.ndarray | None) -> float | None:
    """Mean r² over the interior nodes away from the observations (``near_observed``): the residual_mse a
    reader would take for the physics of the generated field. None when too few nodes are left (< 10%)."""
    away = ~near if interior is None else interior & ~near
    if away.sum() < 0.1 * (near.size if interior is None else interior.sum()):
        return None
    return float((residual[away].astype(np.float64) ** 2).mean())


def fmt(v) -> str:
    return f"{v:.3g}" if isinstance(v, float) else ("—" if v is None else str(v))


def score_text(m: dict) -> str:
    """The answer's errors per unknown channel, "rel_l2 a 0.299 · u 0.095, a error rate 6.0%";
    "reference" for the solve the others are scored against; "" when there is nothing to score against."""
    if m.get("rel_l2_vs") == "reference":
        return "reference"
    per_channel = [f"{k.removeprefix('rel_l2_')} {fmt(v)}" for k, v in m.items()
                   if k.startswith("rel_l2_") and k != "rel_l2_vs"]
    text = "rel_l2 " + " · ".join(per_channel) if per_channel else ""
    if "error_rate" in m:  # darcy: nodes where the coefficient is on the wrong side of a's threshold
        text += f", a error rate {m['error_rate']:.1%}"
    return text


def converged(m: dict) -> bool:
    """False when a latent solve ended without fitting its observations (``MISFIT_FITTED``)."""
    return m.get("misfit", 0.0) <= MISFIT_FITTED


class ResultsPanel(QWidget):
    """One answer at a time. After a compare the "showing" box picks which; every view's title names its
    method, and each view's colour scale spans that quantity in all the compared answers (as the Compare
    tab's rows do), so that flipping the box changes a colour only where a value changes."""


    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.grid = QGridLayout()
        self.channel_views: list[FieldView] = []
        self.residual = FieldView("|residual|", "residual", log_option=True)
        self.residual.graphics.setToolTip(f"{RESIDUAL_TIP}\n\n{self.residual.graphics.toolTip()}")
        self.std = FieldView("ensemble std", "std")
        self.error = FieldView("|error| vs classical", "error")
        self.summary = QLabel(NO_RESULT)
        self.summary.setWordWrap(True)
        # after a compare: which method's answer the views show (the chosen method's first)
        self.method_box = QComboBox()
        self.method_box.setToolTip("the compared method whose answer, std and error the views show")
        self.method_label = QLabel("showing")
        self._outcomes: tuple[list[SolveOutcome], np.ndarray | None, tuple[str, ...]] = ([], None, ())
        self._interior: np.ndarray | None = None  # (N, N) nodes where the PDE holds (``show_outcomes``)
        self._live = False  # the field views show a running solve's preview (the others are blank)
        row = QHBoxLayout()
        row.addWidget(self.summary, 1)
        row.addWidget(self.method_label)
        row.addWidget(self.method_box)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        lay.addLayout(self.grid, 1)
        lay.addLayout(row)
        self._show_method_choice(False)
        self.method_box.currentIndexChanged.connect(self._show_chosen)

    def set_channels(self, names: tuple[str, ...]) -> None:
        for v in self.channel_views:
            self.grid.removeWidget(v)
            v.deleteLater()
        self.channel_views = [FieldView(n, "field") for n in names]
        views = [*self.channel_views, self.residual, self.std, self.error]
        cols = 3 if len(views) > 4 else 2
        for i, v in enumerate(views):
            self.grid.addWidget(v, i // cols, i % cols)
        self.clear()

    def views(self) -> dict[str, FieldView]:
        out = {v.title: v for v in self.channel_views}
        out.update(residual=self.residual, std=self.std, error=self.error)
        return out

    def clear(self) -> None:
        self._live = False
        for v in [*self.channel_views, self.residual, self.std, self.error]:
            v.empty_title = None
            v.subject = ""
            v.share_scale_with([])
            v.set_field(None)
        self.residual.set_note("")
        self.std.set_title("ensemble std")
        self.summary.setText(NO_RESULT)
        self._outcomes, self._interior = ([], None, ()), None
        self._show_method_choice(False)

    def _show_method_choice(self, visible: bool) -> None:
        self.method_box.setVisible(visible)
        self.method_label.setVisible(visible)

    def show_outcomes(self, outcomes: list[SolveOutcome], mask: np.ndarray | None,
                      pde_fields: tuple[str, ...], interior: np.ndarray | None = None) -> None:
        """A finished solve's answers (several after a compare): the first is shown, the others chosen.
        ``interior``: the PDE's interior nodes, for the residual away from the observations."""
        self._outcomes = (list(outcomes), mask, tuple(pde_fields))
        self._interior = interior
        self.method_box.blockSignals(True)
        self.method_box.clear()
        self.method_box.addItems([r.method for r in outcomes])
        self.method_box.setCurrentIndex(0)
        self.method_box.blockSignals(False)
        self._show_method_choice(len(outcomes) > 1)
        self._show(outcomes[0], mask, pde_fields, outcomes[1:])

    def _show_chosen(self, i: int) -> None:
        outcomes, mask, pde_fields = self._outcomes
        if 0 <= i < len(outcomes):
            self._show(outcomes[i], mask, pde_fields, [o for o in outcomes if o is not outcomes[i]])

    def show_preview(self, mean: np.ndarray, method: str = "") -> None:
        """Live update while ``method`` solves: (C, N, N) current mean. The views a preview does not
        update (residual, std, error, the summary) are blanked by the first one: next to the running
        solve's fields they would show the previous solve's."""
        if not self._live:
            self._live = True
            self._show_method_choice(False)  # the previous compare's answers are not on screen
            for v in (self.residual, self.std, self.error):
                v.empty_title = f"{v.title} (after the solve)"  # short: a title wider than its cell is cut
                v.subject = ""
                v.set_field(None)
            self.residual.set_note("")
            for v in self.channel_views:
                v.subject = method
                v.share_scale_with([])
            self.summary.setText(f"<b>{method}</b>: {LIVE}")
        self._show_fields(mean)

    def _show_fields(self, mean: np.ndarray) -> None:
        for c, v in enumerate(self.channel_views):
            v.set_field(mean[c])

    def restore(self) -> None:
        """A solve stopped (cancelled or failed): back to the last finished solve's answers, or to no
        result, so that every view shows the same solve as the summary and the export."""
        outcomes, mask, pde_fields = self._outcomes
        if not outcomes:
            self.clear()
            return
        self._show_method_choice(len(outcomes) > 1)
        self._show_chosen(max(0, self.method_box.currentIndex()))

    def show_result(self, r: SolveOutcome, mask: np.ndarray | None, pde_fields: tuple[str, ...],
                    interior: np.ndarray | None = None) -> None:
        """One answer alone (a compare's answers come with ``show_outcomes``)."""
        self._interior = interior
        self._show(r, mask, pde_fields, [])

    @staticmethod
    def _arrays(r: SolveOutcome, mask: np.ndarray | None, pde_fields: tuple[str, ...]) -> dict[str, np.ndarray | None]:
        """What each view shows of answer ``r``, by view: the channels, residual, std, error."""
        c = _unknown_channel(mask, r.mean.shape[0])
        # a deterministic answer (dataspace, classical, S(c) of a whole coefficient) has no spread to map
        spread = r.std is not None and bool(np.any(r.std[c]))
        # the solution channel against the reference solve of the (observed or predicted) coefficient
        sol = len(pde_fields) - 1
        out: dict[str, np.ndarray | None] = {f"channel {i}": r.mean[i] for i in range(r.mean.shape[0])}
        out.update(residual=np.abs(r.residual), std=r.std[c] if spread else None,
                   error=None if r.classical is None else np.abs(r.mean[sol] - r.classical[sol]))
        return out

    def _show(self, r: SolveOutcome, mask: np.ndarray | None, pde_fields: tuple[str, ...],
              others: list[SolveOutcome]) -> None:
        """Answer ``r``; ``others``: the answers compared with it, whose values its colour scales span."""
        self._live = False
        mine, theirs = self._arrays(r, mask, pde_fields), [self._arrays(o, mask, pde_fields) for o in others]
        views = {f"channel {i}": v for i, v in enumerate(self.channel_views)}
        views.update(residual=self.residual, std=self.std, error=self.error)
        name = pde_fields[_unknown_channel(mask, r.mean.shape[0])]
        self.std.set_title(f"ensemble std ({name})")
        self.std.empty_title = f"ensemble std ({name}): none, one answer"
        self.residual.empty_title = self.error.empty_title = None
        self.error.set_title(f"|{pde_fields[-1]} − classical solve|")
        for key, view in views.items():
            view.subject = r.method
            view.share_scale_with([t[key] for t in theirs if t.get(key) is not None])
            view.set_field(mine.get(key))
        near = near_observed(r.mask if r.mask is not None else mask)
        interior = self._interior if self._interior is not None and self._interior.shape == r.residual.shape else None
        away = None if near is None else residual_mse_away(r.residual, near, interior)
        self.residual.set_note(SEAM_NOTE if near is not None else "", RESIDUAL_TIP)
        m = r.metrics
        score = score_text(m)
        if score == "reference":
            score = "the reference solve (the others are scored against it)"
        elif score:
            score += f" (vs {m['rel_l2_vs']})"
        residual = f"residual_mse {fmt(m.get('residual_mse'))}"
        if away is not None:
            residual += f" ({fmt(away)} away from observed nodes)"
        parts = [score, f"misfit {fmt(m['misfit'])}" if "misfit" in m else "",
                 residual, f"{r.seconds:.2f} s", f"NFE {r.nfe}"]
        verdict = "" if converged(m) else (
            " — <b>not converged</b>: the answer does not fit its observations "
            f"(misfit above {MISFIT_FITTED}); try more steps")
        self.summary.setText(f"<b>{r.method}</b>: " + ", ".join(p for p in parts if p) + verdict)


class ComparePanel(QWidget):
    """Two or three methods side by side on the same observations, with their numbers."""

    COLUMNS = ("method", "error", "vs", "misfit", "residual_mse", "time [s]", "NFE")

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.sides: list[tuple[FieldView, FieldView]] = []
        self.columns: list[QWidget] = []  # one per side; the third shows only with a third method
        row = QHBoxLayout()
        for i in range(3):
            pair = (FieldView("—", "field"), FieldView("|residual|", "residual", log_option=True))
            column = QWidget()
            col = QVBoxLayout(column)
            col.setContentsMargins(0, 0, 0, 0)
            col.addWidget(pair[0], 1)
            col.addWidget(pair[1], 1)
            column.setVisible(i < 2)
            row.addWidget(column, 1)
            self.sides.append(pair)
            self.columns.append(column)
        self.table = QTableWidget(0, len(self.COLUMNS))
        self.table.setHorizontalHeaderLabels(self.COLUMNS)
        self.table.setMaximumHeight(140)  # the header and three rows
        # no taller than its rows: on a short screen the room goes to the fields
        self.table.setSizeAdjustPolicy(QTableWidget.SizeAdjustPolicy.AdjustToContents)
        self.table.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Maximum)
        self.table.horizontalHeader().setStretchLastSection(True)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        self.hint = QLabel("Tick “compare with” in the task panel to solve with two methods (or three: “and”).")
        lay.addLayout(row, 1)
        lay.addWidget(self.hint)
        lay.addWidget(self.table)
        # each row of views shares one colour scale, so that the methods compare at a glance
        self.rows = ([f for f, _ in self.sides], [r for _, r in self.sides])
        share_levels(self.rows[1])  # and one log-scale choice, from the start (kept across sessions as one)

    def clear(self) -> None:
        """No compare (a new PDE, grid or model): blank views, empty table, the hint."""
        for i, (field, res) in enumerate(self.sides):
            field.set_title("—")
            field.set_field(None)
            res.set_subject("")
            res.set_field(None)
            self.columns[i].setVisible(i < 2)
        self.table.setRowCount(0)
        self.hint.setVisible(True)

    def show_results(self, results: list[SolveOutcome], mask: np.ndarray | None, pde_fields) -> None:
        self.table.setRowCount(len(results))
        for i, column in enumerate(self.columns):
            column.setVisible(i < max(2, len(results)))
        for i, r in enumerate(results[: len(self.sides)]):
            c = _unknown_channel(mask, r.mean.shape[0])
            field, res = self.sides[i]
            field.set_title(f"{r.method}: {pde_fields[c]}")
            field.set_field(r.mean[c])
            res.set_subject(r.method)  # "piddm: log₁₀ |residual|", as the field view above names its method
            res.set_field(np.abs(r.residual))
        for i in range(len(results), len(self.sides)):  # a third column left from an earlier compare
            self.sides[i][0].set_field(None)
            self.sides[i][1].set_field(None)
        for row in self.rows:
            share_levels(row)
        self.hint.setVisible(False)
        for i, r in enumerate(results):
            m = r.metrics
            score = score_text(m)
            misfit = fmt(m.get("misfit")) + ("" if converged(m) else " not converged")
            error = "—" if score in ("", "reference") else score
            vals = (r.method, error, m.get("rel_l2_vs", "—"), misfit, fmt(m.get("residual_mse")),
                    f"{r.seconds:.2f}", str(r.nfe))
            for j, v in enumerate(vals):
                self.table.setItem(i, j, QTableWidgetItem(v))
        self.table.resizeColumnsToContents()  # the per-channel errors are wider than a default column
