"""A model that fails to load leaves the Models list on the model still open (and starts no load)."""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

from fake_runs import fake_run

BUNDLED = Path(__file__).resolve().parents[2] / "resources" / "models" / "darcy-32" / "piddm"


def test_a_failed_load_puts_the_selection_back_on_the_open_model(qtbot, make_window, dialogs, monkeypatch, tmp_path):
    import app.controller as ctl
    from engine import pdes

    real_load, loaded = ctl.load_model, []

    def load(path, *, on_progress, cancel):
        loaded.append(Path(path).name)
        if Path(path).name == "good":  # a stand-in student (listing and loading a run reads its card only)
            return SimpleNamespace(kind="student", pde=pdes.get("darcy"), grid=SimpleNamespace(n=16), card={},
                                   teacher=None)
        return real_load(path, on_progress=on_progress, cancel=cancel)

    monkeypatch.setattr(ctl, "load_model", load)
    w = make_window(16)
    good = fake_run(tmp_path / "runs" / "good")
    broken = tmp_path / "runs" / "broken"
    broken.mkdir()
    shutil.copy(BUNDLED / "card.json", broken / "card.json")
    (broken / "checkpoint.pt").write_bytes((BUNDLED / "checkpoint.pt").read_bytes()[:4096])  # truncated

    w.model_panel.open_folder(str(good))
    qtbot.waitUntil(lambda: w.state.model is not None and not w.jobs.running(), timeout=10_000)
    opened = w.state.model_info
    w.model_panel.open_folder(str(broken))
    qtbot.waitUntil(lambda: bool(dialogs), timeout=30_000)
    qtbot.wait(50)
    assert dialogs[-1]["title"] == "Could not open the model"
    listed = w.model_panel.infos()
    assert w.state.model_info is opened
    assert w.model_panel.models.currentRow() == listed.index(opened) + 1  # row 0: "no model"
    assert "broken" not in w.model_panel.models.currentItem().text()
    assert loaded == ["good", "broken"]  # putting the selection back loaded nothing
