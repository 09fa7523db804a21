"""The task panel greys out the solve settings the chosen methods do not read (engine OPTIONS_READ)."""

from __future__ import annotations

from app.panels.task_panel import TaskPanel


def enabled(tp: TaskPanel) -> set[str]:
    return {name for name, box in tp.option_boxes.items() if box.isEnabled()}


def test_settings_a_method_does_not_read_are_greyed_out(qtbot, make_window):
    w = make_window(16)
    tp = w.task_panel
    tp.task_box.setCurrentText("forward")
    tp.method_box.setCurrentText("classical")
    assert enabled(tp) == set()
    assert tp.lam.toolTip() == "classical does not use this setting"
    assert not tp.form.labelForField(tp.lam).isEnabled()
    tp.compare_box.setChecked(True)
    tp.compare_method.setCurrentText("dataspace")  # a box is for either method
    assert enabled(tp) == {"steps", "residual_norm"}
    assert tp.ensemble.toolTip() == "classical and dataspace do not use this setting"
    tp.compare_box.setChecked(False)
    assert enabled(tp) == set()
    tp.task_box.setCurrentText("inverse")  # classical is not offered: dataspace is chosen
    # dataspace reads no λ: its observations are a hard constraint, so λ would weigh its only term
    assert tp.method_box.currentText() == "dataspace" and enabled(tp) == {"steps", "residual_norm"}
    assert tp.lam.toolTip() == "dataspace does not use this setting"


def test_model_methods_read_what_the_engine_says(qtbot):
    tp = TaskPanel()
    qtbot.addWidget(tp)
    tp.set_methods(["piddm", "teacher", "dataspace"], "teacher", "dataspace")
    assert enabled(tp) == {"ensemble", "steps"}
    assert tp.lam.toolTip() == "teacher does not use this setting"
    tp.set_methods(["piddm", "teacher", "dataspace"], "piddm", "dataspace")
    assert enabled(tp) == {"ensemble", "steps", "lam", "residual_norm"}
    assert "Weight of the PDE residual" in tp.lam.toolTip()  # its own tooltip back
