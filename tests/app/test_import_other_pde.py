"""File ▸ Import and PATH of a fields file of another PDE or grid than the canvases or the open model;
opening a folder that is not there."""

from __future__ import annotations

import asyncio

import numpy as np
from fake_runs import fake_run

from engine import pdes


def fields_file(path, pde_name: str, grid: int, n: int = 1):
    """A fields file of ``n`` random ``pde_name`` samples on ``grid``²."""
    from engine.io.hdf5 import FieldsFile, write_fields

    pde = pdes.get(pde_name)
    fields = np.random.default_rng(0).normal(size=(n, len(pde.fields), grid, grid)).astype(np.float32)
    return write_fields(path, FieldsFile(fields=fields, pde=pde_name, channels=pde.fields))


def test_a_file_of_another_pde_brings_its_channels_tools_and_brush(make_window, tmp_path, dialogs):
    """Without a model, on darcy: a poisson file of the same grid gives poisson's canvases, not darcy's
    relabelled (the canvases were rebuilt only for another channel count or grid)."""
    w = make_window(16)
    assert w.inputs.threshold_act.isEnabled() and w.inputs.value.value() == 12.0  # darcy's a_high
    assert w.import_fields(str(fields_file(tmp_path / "p.h5", "poisson", 16)))
    assert not dialogs and (w.state.pde_name, w.state.grid_n) == ("poisson", 16)
    assert [c.title for c in w.inputs.canvases] == ["f", "u"]
    assert [w.inputs.channel_box.itemText(i) for i in range(w.inputs.channel_box.count())] == ["f", "u"]
    assert not w.inputs.threshold_act.isEnabled() and w.inputs.value.value() == 1.0
    assert all(cv.brush_value == 1.0 for cv in w.inputs.canvases)
    assert "(poisson 16², 1 sample;" in w.statusBar().currentMessage()  # one sample: singular


def _open(qtbot, w, info):
    w.model_panel.set_models(w.model_panel.infos(), info)
    with qtbot.waitSignal(w.controller.model_changed, timeout=10_000):
        asyncio.ensure_future(w.controller.load_model_info(info))


def test_a_file_of_another_pde_opens_the_listed_model_of_its_pde_and_grid(
        qtbot, make_window, loads, tmp_path, dialogs):
    from engine.io.hdf5 import read_fields
    from engine.models import find_runs

    fake_run(tmp_path / "runs-d" / "student", "darcy", 16)
    fake_run(tmp_path / "runs-p" / "student", "poisson", 16)
    fake_run(tmp_path / "runs-p32" / "student", "poisson", 32)
    w = make_window(16)
    infos = [i for d in ("runs-d", "runs-p32", "runs-p") for i in find_runs(str(tmp_path / d))]
    darcy, poisson32, poisson16 = infos
    w.model_panel.set_models(infos)
    _open(qtbot, w, darcy)
    path = fields_file(tmp_path / "p.h5", "poisson", 16)
    stored = read_fields(path).fields[0]
    with qtbot.waitSignal(w.controller.model_changed, timeout=10_000):
        assert w.import_fields(str(path))  # was: "holds poisson fields, but the model is for darcy"
    s = w.state
    assert not dialogs and s.model_info is poisson16 and s.model.pde.name == "poisson"
    assert loads[-1] == poisson16.path
    assert w.model_panel.models.currentRow() == 1 + infos.index(poisson16)
    np.testing.assert_array_equal(s.values, stored)  # no demo over the file's fields
    assert [c.title for c in w.inputs.canvases] == ["f", "u"] and not w.banner.isVisibleTo(w)
    assert w.statusBar().currentMessage().endswith("; opening poisson · student (16²)")


def test_a_file_no_listed_model_fits_goes_model_free_and_says_why(qtbot, make_window, loads, tmp_path, dialogs):
    from engine.models import find_runs

    fake_run(tmp_path / "runs-d" / "student", "darcy", 16)
    fake_run(tmp_path / "runs-p" / "student", "poisson", 16)
    w = make_window(16)
    infos = [i for d in ("runs-d", "runs-p") for i in find_runs(str(tmp_path / d))]
    w.model_panel.set_models(infos)
    _open(qtbot, w, infos[0])
    assert w.import_fields(str(fields_file(tmp_path / "p32.h5", "poisson", 32)))
    s = w.state
    assert not dialogs and s.model is None and s.model_info is None and (s.pde_name, s.grid_n) == ("poisson", 32)
    assert w.model_panel.models.currentRow() == 0 and w.model_panel.grid_box.isEnabled()
    assert w.task_panel.method_box.currentText() == "dataspace"
    why = "no model for poisson 32² (the listed poisson models are for 16²)"
    assert w.statusBar().currentMessage().endswith(f"; {why}, so none is open")
    assert w.banner.isVisibleTo(w) and w.banner.text().startswith("No model for poisson 32² (the listed")
    assert "No model yet" not in w.banner.text()
    qtbot.wait(100)
    assert loads == [infos[0].path]  # nothing else was opened


def test_a_fields_file_path_with_no_model_of_its_grid_says_so(qtbot, settings, aloop, tmp_path, dialogs):
    from app.main import make_window, parse_args

    path = fields_file(tmp_path / "p32.h5", "poisson", 32)
    w = make_window(parse_args([str(path)]), settings)  # the bundled models: poisson's are 64²
    qtbot.addWidget(w)
    w.show()
    qtbot.waitUntil(lambda: w.has_started, timeout=60_000)
    assert not dialogs and w.state.model is None and (w.state.pde_name, w.state.grid_n) == ("poisson", 32)
    if any(i.pde == "poisson" for i in w.model_panel.infos()):
        assert "no model for poisson 32² (the listed poisson models are for " in w.statusBar().currentMessage()
        assert w.banner.text().startswith("No model for poisson 32²")
    w.close()


def test_the_screenshot_tour_takes_sample_0_of_a_file_without_waiting_for_an_answer(
        qtbot, settings, aloop, monkeypatch, tmp_path, tiny_dataset):
    """--screenshot FILE.h5 of a file of several samples: start-up asks which one in a modal dialog;
    the tour answers it (sample 0) rather than waiting for a user who is not there."""
    import h5py
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    import app.main_window as mw
    from app.main import make_window, parse_args
    from app.tour import wait_for_start_up

    monkeypatch.setattr(mw, "bundled_models", lambda: [])
    with h5py.File(tiny_dataset) as h:
        first = h["fields"][0]
    w = make_window(parse_args([str(tiny_dataset), "--screenshot", str(tmp_path / "s.png")]), settings)
    qtbot.addWidget(w)
    w.show()

    def give_up():  # without the tour's answer: cancel the question after a while, so that the test fails
        if (dialog := QApplication.activeModalWidget()) is not None:
            dialog.reject()

    QTimer.singleShot(5_000, give_up)
    tour = asyncio.ensure_future(wait_for_start_up(w))
    qtbot.waitUntil(tour.done, timeout=30_000)
    np.testing.assert_array_equal(w.state.values, first)
    assert w.statusBar().currentMessage().startswith("sample 0 of tiny.h5")
    w.close()


def test_a_folder_that_is_not_there_is_no_such_folder(make_window, tmp_path, dialogs):
    w = make_window(16)
    assert w.model_panel.open_folder(str(tmp_path / "gone")) is None
    assert dialogs[-1]["title"] == "No such folder"
    assert dialogs[-1]["text"].startswith(f"{tmp_path / 'gone'}: no such folder")


def _helmholtz_file(path, grid: int, k: float):
    """A one-sample helmholtz fields file made with wavenumber ``k``."""
    from engine.io.hdf5 import FieldsFile, write_fields

    pde = pdes.get("helmholtz", k=k)
    fields = np.random.default_rng(0).normal(size=(1, 2, grid, grid)).astype(np.float32)
    return write_fields(path, FieldsFile(fields=fields, pde="helmholtz", channels=pde.fields,
                                         pde_params=pdes.params_of(pde)))


def _run_with_params(folder, pde_name: str, grid: int, params: dict):
    import json

    from engine import models

    fake_run(folder, pde_name, grid)
    card = json.loads((folder / models.CARD).read_text())
    (folder / models.CARD).write_text(json.dumps({**card, "pde_params": params}))
    return folder


def test_a_file_of_other_pde_parameters_opens_no_model_that_would_refuse_it(
        qtbot, make_window, loads, tmp_path, dialogs):
    """A helmholtz k = 3 file with only k = 1 models listed: none opens (its solve would fail with "the
    model is for helmholtz {'k': 1.0}, the observations for helmholtz {'k': 3.0}"); the banner and the
    status line say why, and k = 3 stands in the Model panel's parameter box for the model-free methods."""
    from engine.models import find_runs

    _run_with_params(tmp_path / "runs-d" / "student", "darcy", 16, {})
    _run_with_params(tmp_path / "runs-h" / "student", "helmholtz", 16, {"k": 1.0})
    w = make_window(16)
    infos = [i for d in ("runs-d", "runs-h") for i in find_runs(str(tmp_path / d))]
    w.model_panel.set_models(infos)
    _open(qtbot, w, infos[0])
    assert w.import_fields(str(_helmholtz_file(tmp_path / "k3.h5", 16, 3.0)))
    s = w.state
    assert not dialogs and s.model is None and s.pde.k == 3.0 and s.methods() == ["dataspace"]
    why = "no model for helmholtz k = 3 on 16² (the listed helmholtz 16² models are for k = 1)"
    assert w.statusBar().currentMessage().endswith(f"; {why}, so none is open")
    assert w.banner.isVisibleTo(w) and w.banner.text().startswith("No model for helmholtz k = 3 on 16²")
    assert "dataspace and classical methods work without one" in w.banner.text()
    k = w.model_panel.params.boxes["k"]
    assert k.value() == 3.0 and k.isEnabled() and k.isVisibleTo(w.model_panel)
    qtbot.wait(100)
    assert loads == [infos[0].path]  # the k = 1 model was not opened
    _open(qtbot, w, infos[0])  # darcy again; then a k = 1 file brings the k = 1 model
    with qtbot.waitSignal(w.controller.model_changed, timeout=10_000):
        assert w.import_fields(str(_helmholtz_file(tmp_path / "k1.h5", 16, 1.0)))
    assert s.model_info is infos[1] and s.model_fits() and "piddm" in s.methods()
    k = w.model_panel.params.boxes["k"]  # (made anew: darcy's parameters stood in between)
    assert not w.banner.isVisibleTo(w) and not k.isEnabled() and k.value() == 1.0  # the open model fixes k


def test_a_model_opened_on_canvases_of_other_parameters_offers_no_method_of_its_own(
        qtbot, make_window, loads, tmp_path, dialogs):
    """Picked from the list over a k = 3 file: the k = 1 model opens, but only the model-free methods
    are offered, and the banner says why and what to set."""
    from engine.models import find_runs

    _run_with_params(tmp_path / "runs-h" / "student", "helmholtz", 16, {"k": 1.0})
    w = make_window(16)
    (info,) = find_runs(str(tmp_path / "runs-h"))
    w.model_panel.set_models([info])
    assert w.import_fields(str(_helmholtz_file(tmp_path / "k3.h5", 16, 3.0)))
    _open(qtbot, w, info)
    s = w.state
    assert s.model is not None and not s.model_fits() and s.pde.k == 3.0  # the file's fields stay
    methods = [w.task_panel.method_box.itemText(i) for i in range(w.task_panel.method_box.count())]
    assert methods == ["dataspace"]
    assert w.banner.isVisibleTo(w) and w.banner.text().startswith(
        "helmholtz · student was made for k = 1, the canvases are for k = 3: its methods are not offered.")
    k = w.model_panel.params.boxes["k"]
    assert k.isEnabled()
    k.setValue(1.0)  # back to the model's: its methods come back
    assert s.model_fits() and "piddm" in [w.task_panel.method_box.itemText(i)
                                          for i in range(w.task_panel.method_box.count())]
    assert not w.banner.isVisibleTo(w) and not k.isEnabled()
