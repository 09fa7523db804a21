"""File ▸ Import .npy: gaps (NaN) neither observed nor on the colour scale, booleans refused as values,
a status line for every import; the drawing bar's tooltips say what each whole-channel tool does."""

from __future__ import annotations

import numpy as np


def test_nan_nodes_are_unobserved_and_keep_the_colour_scale(make_window, tmp_path, dialogs):
    w = make_window(16)
    s, panel = w.state, w.inputs
    panel.channel_box.setCurrentIndex(0)
    arr = np.linspace(3.0, 5.0, 256).reshape(16, 16)
    gaps = arr.copy()
    gaps[::4, ::4] = np.nan  # 16 sensors missing
    np.save(tmp_path / "gaps.npy", gaps)
    w.import_npy(str(tmp_path / "gaps.npy"))
    assert not dialogs
    known = np.isfinite(gaps)
    assert np.array_equal(s.mask[0], known) and np.array_equal(s.values[0][known], arr[known])
    # the gaps hold a value inside the readings' range (not 0): the colour bar spans the readings only
    assert s.values[0].min() >= 3.0 and s.values[0].max() <= 5.0
    lo, hi = panel.canvases[0].image.getLevels()
    assert lo >= 3.0 - 1e-9 and hi <= 5.0 + 1e-9
    msg = w.statusBar().currentMessage()
    assert msg.startswith("gaps.npy loaded into a") and "16 NaN nodes left unobserved" in msg


def test_a_whole_array_import_says_so(make_window, tmp_path, dialogs):
    w = make_window(16)
    w.inputs.channel_box.setCurrentIndex(1)
    np.save(tmp_path / "u.npy", np.ones((16, 16)))
    w.import_npy(str(tmp_path / "u.npy"))
    assert not dialogs and w.state.mask[1].all()
    assert w.statusBar().currentMessage() == "u.npy loaded into u (256 observed nodes)"


def test_a_boolean_array_is_a_mask_not_values(make_window, tmp_path, dialogs):
    w = make_window(16)
    s, panel = w.state, w.inputs
    panel.channel_box.setCurrentIndex(0)
    before = s.values.copy(), s.mask.copy()
    bools = np.zeros((16, 16), bool)
    bools[2:5, 2:5] = True
    np.save(tmp_path / "b.npy", bools)
    w.import_npy(str(tmp_path / "b.npy"))
    assert dialogs[-1]["title"] == "Import failed" and "\n" not in dialogs[-1]["text"]
    assert dialogs[-1]["text"].startswith("b.npy: array holds booleans")
    assert "mask" in dialogs[-1]["text"]
    assert np.array_equal(s.values, before[0]) and np.array_equal(s.mask, before[1])  # nothing changed
    w.import_npy(str(tmp_path / "b.npy"), as_mask=True)  # as a mask it loads
    assert len(dialogs) == 1 and np.array_equal(s.mask[0], bools)
    assert w.statusBar().currentMessage() == "b.npy loaded as the mask of a (9 observed nodes)"


def test_whole_channel_tools_say_what_they_do(make_window):
    w = make_window(16)
    panel = w.inputs
    tips = {a.text(): a.toolTip() for a in panel.channel_bar.actions() if a.text()}
    assert "whole channel" in tips["GRF"] and "observe" in tips["GRF"]
    assert "a (whatever the channel)" in tips["threshold"]  # it always acts on darcy's a
    assert tips["random points"].startswith("replace the channel's observation points")
    assert "un-observe" in tips["clear mask"]
    assert panel.value.toolTip() and panel.size.toolTip()
    assert all(len(t) < 80 for t in (*tips.values(), panel.value.toolTip(), panel.size.toolTip()))
