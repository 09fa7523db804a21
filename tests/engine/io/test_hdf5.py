"""Fields files: round trip, on-disk layout read with plain h5py, atomic writes, validation."""

from __future__ import annotations

import dataclasses
import json

import h5py
import numpy as np
import pytest

from engine.errors import DatasetError, EngineError
from engine.io.atomic import atomic_path, write_text
from engine.io.hdf5 import FieldsFile, count_samples, read_fields, write_fields


def fields_file(n=3, N=8, **kw) -> FieldsFile:
    rng = np.random.default_rng(0)
    kw.setdefault("fields", rng.standard_normal((n, 2, N, N)).astype(np.float32))
    return FieldsFile(pde="helmholtz", channels=("f", "u"), pde_params={"k": 2.0}, method="teacher",
                      seed=42, **kw)


def test_round_trip_all_datasets_and_attributes(tmp_path):
    rng = np.random.default_rng(1)
    ff = fields_file(mask=rng.random((3, 2, 8, 8)) > 0.5, std=rng.random((3, 2, 8, 8)),
                     residual=rng.standard_normal((3, 8, 8)), extra={"note": "x", "cfg": {"a": 1}})
    path = write_fields(tmp_path / "f.h5", ff)
    back = read_fields(path)
    np.testing.assert_array_equal(back.fields, ff.fields)
    np.testing.assert_array_equal(back.mask, ff.mask)
    np.testing.assert_allclose(back.std, ff.std.astype(np.float32))
    np.testing.assert_allclose(back.residual, ff.residual.astype(np.float32))
    assert (back.pde, back.channels, back.pde_params, back.method, back.seed, back.grid, len(back)) == (
        "helmholtz", ("f", "u"), {"k": 2.0}, "teacher", 42, 8, 3)
    assert back.extra["note"] == "x" and json.loads(back.extra["cfg"]) == {"a": 1}

    # the same file through plain h5py: attributes, dtypes, filters, chunks
    with h5py.File(path, "r") as h:
        a = h.attrs
        assert a["format"] == "piddm-fields" and int(a["format_version"]) == 1
        assert a["pde"] == "helmholtz" and list(a["channels"]) == ["f", "u"]
        assert int(a["grid"]) == 8 and int(a["seed"]) == 42 and a["method"] == "teacher"
        assert json.loads(a["pde_params"]) == {"k": 2.0}
        assert a["created"].startswith("20") and "T" in a["created"] and a["software_version"]
        for name, dtype in (("fields", np.float32), ("mask", np.uint8), ("std", np.float32),
                            ("residual", np.float32)):
            ds = h[name]
            assert ds.dtype == dtype
            assert ds.compression == "gzip" and ds.shuffle, name
            assert "lzf" not in (ds.compression or "")
        assert h["fields"].chunks == (1, 2, 8, 8) and h["mask"].chunks == (1, 2, 8, 8)
        assert h["residual"].chunks == (1, 8, 8)
        assert h["fields"].shape == (3, 2, 8, 8)


def test_float64_storage(tmp_path):
    ff = fields_file(fields=np.random.default_rng(0).standard_normal((2, 2, 8, 8)))
    write_fields(tmp_path / "d.h5", ff, dtype="float64")
    back = read_fields(tmp_path / "d.h5")
    assert back.fields.dtype == np.float64
    np.testing.assert_array_equal(back.fields, ff.fields)


def test_writer_refuses_bad_data(tmp_path):
    bad = fields_file()
    bad.fields[1, 0, 2, 3] = np.nan
    with pytest.raises(DatasetError, match="NaN"):
        write_fields(tmp_path / "nan.h5", bad)
    with pytest.raises(DatasetError, match="NaN or inf"):  # finite in float64, inf in float32
        write_fields(tmp_path / "big.h5", fields_file(fields=np.full((1, 2, 8, 8), 1e300)))
    with pytest.raises(DatasetError, match="channels"):
        write_fields(tmp_path / "c.h5", fields_file(fields=np.zeros((1, 3, 8, 8))))
    with pytest.raises(DatasetError, match="mask has shape"):
        write_fields(tmp_path / "m.h5", fields_file(mask=np.ones((3, 2, 8, 7), bool)))
    with pytest.raises(DatasetError, match="replace standard"):
        write_fields(tmp_path / "e.h5", fields_file(extra={"format": "other"}))
    with pytest.raises(DatasetError, match="dtype"):
        write_fields(tmp_path / "t.h5", fields_file(), dtype="float16")
    assert list(tmp_path.iterdir()) == []


def test_write_is_atomic(tmp_path):
    final = tmp_path / "out.h5"
    # an attribute h5py cannot store fails after the datasets were written
    with pytest.raises(TypeError):
        write_fields(final, fields_file(extra={"bad": object()}))
    assert list(tmp_path.iterdir()) == []  # no final file, no temporary left behind
    # a failed rewrite leaves the previous complete file untouched
    write_fields(final, fields_file())
    before = final.read_bytes()
    with pytest.raises(TypeError):
        write_fields(final, fields_file(extra={"bad": object()}))
    assert final.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["out.h5"]


def test_a_full_disk_is_one_clear_error_and_keeps_the_previous_file(tmp_path, full_disk):
    final = tmp_path / "out.h5"
    final.write_text("the previous version")
    with pytest.raises(EngineError, match=r"cannot write .*out\.h5: No space left on device"):
        write_fields(final, fields_file())
    assert final.read_text() == "the previous version"
    assert [p.name for p in tmp_path.iterdir()] == ["out.h5"]  # the half-written temporary is gone


def test_a_large_file_is_written_directly_once_the_disk_has_room(tmp_path, monkeypatch):
    import shutil
    from collections import namedtuple

    from engine.io import atomic

    monkeypatch.setattr(atomic, "IN_MEMORY_BYTES", 0)  # every file counts as large here
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda _: usage(1 << 40, 0, 1 << 20))  # 1 MiB free
    with pytest.raises(EngineError, match=r"out\.h5: it needs up to 0\.0 GiB, and .* has 0\.0 GiB free"):
        write_fields(tmp_path / "out.h5", fields_file())
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setattr(shutil, "disk_usage", lambda _: usage(1 << 40, 0, 1 << 40))
    ff = fields_file()
    np.testing.assert_array_equal(read_fields(write_fields(tmp_path / "out.h5", ff)).fields, ff.fields)


def test_atomic_path(tmp_path):
    target = tmp_path / "t.txt"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        assert tmp.parent == tmp_path and tmp.name != "t.txt"
        tmp.write_text("half")
        assert not target.exists()
        raise RuntimeError("crash midway")
    assert list(tmp_path.iterdir()) == []
    write_text(target, "done")
    assert target.read_text() == "done" and [p.name for p in tmp_path.iterdir()] == ["t.txt"]
    with pytest.raises(EngineError, match="does not exist"):
        write_text(tmp_path / "no" / "x.txt", "x")


# --- the reader rejects each bad input with one line naming the file -------------------------


def _good(path, **attrs):
    write_fields(path, fields_file())
    with h5py.File(path, "a") as h:
        for k, v in attrs.items():
            h.attrs[k] = v
    return path


def _edit(fn):
    def make(path):
        _good(path)
        with h5py.File(path, "a") as h:
            fn(h)
        return path

    return make


def _with_fields(arr):
    return _edit(lambda h: (h.__delitem__("fields"), h.create_dataset("fields", data=arr)))


BAD = {
    "not HDF5": (lambda p: p.write_bytes(b"just text, no superblock") and p, "not an HDF5 file"),
    "wrong format": (lambda p: _good(p, format="other-format"), "not a fields file"),
    "no format": (_edit(lambda h: h.attrs.__delitem__("format")), "not a fields file"),
    "wrong version": (lambda p: _good(p, format_version=2), "unsupported format_version '2'"),
    "text version": (lambda p: _good(p, format_version="1"), "unsupported format_version"),
    "missing fields": (_edit(lambda h: h.__delitem__("fields")), "missing dataset 'fields'"),
    "fields is a group": (_edit(lambda h: (h.__delitem__("fields"), h.create_group("fields"))),
                          "not a numeric dataset"),
    "unknown PDE": (lambda p: _good(p, pde="navier"), "unknown PDE 'navier'"),
    "bad params": (lambda p: _good(p, pde_params='{"k": 99}'), "helmholtz k"),
    "params not JSON": (lambda p: _good(p, pde_params="{k"), "pde_params"),
    "params not object": (lambda p: _good(p, pde_params="[1, 2]"), "pde_params"),
    "channel names": (lambda p: _good(p, channels=["a", "u"]), "channels \\['a', 'u'\\] do not match"),
    "channel count": (_with_fields(np.zeros((3, 3, 8, 8), np.float32)), "has shape \\(3, 3, 8, 8\\)"),
    "not square": (_with_fields(np.zeros((3, 2, 8, 6), np.float32)), "has shape"),
    "3-d fields": (_with_fields(np.zeros((2, 8, 8), np.float32)), "has shape"),
    "grid attr": (lambda p: _good(p, grid=16), "8x8 but attribute grid = 16"),
    "grid text": (lambda p: _good(p, grid="thirty-two"), "attribute grid must be one whole number \\(N\\), got 'thirty-two'"),
    "a folder": (lambda p: p.mkdir() or p, "a folder, not a fields file"),
    "empty": (_with_fields(np.zeros((0, 2, 8, 8), np.float32)), "no samples"),
    "NaN values": (_edit(lambda h: h["fields"].__setitem__((2, 1, 3, 3), np.nan)), "non-finite values in 1 sample"),
    "inf values": (_edit(lambda h: h["fields"].__setitem__((0, 0, 0, 0), np.inf)), "non-finite"),
    "mask shape": (_edit(lambda h: h.create_dataset("mask", data=np.ones((3, 2, 4, 4), np.uint8))),
                   "'mask' has shape"),
    "residual shape": (_edit(lambda h: h.create_dataset("residual", data=np.ones((3, 2, 8, 8)))),
                       "'residual' has shape"),
    "mask of 2": (_edit(lambda h: h.create_dataset("mask", data=np.full((3, 2, 8, 8), 2, np.uint8))),
                  "0 \\(unobserved\\) and 1 \\(observed\\) only; it holds \\[2\\]"),
    "mask of halves": (_edit(lambda h: h.create_dataset("mask", data=np.full((3, 2, 8, 8), 0.5))), "holds \\[0.5\\]"),
    "mask of -1": (_edit(lambda h: h.create_dataset("mask", data=-np.ones((3, 2, 8, 8), np.int8))), "holds \\[-1\\]"),
    "mask of text": (_edit(lambda h: h.create_dataset("mask", data=np.full((3, 2, 8, 8), b"x"))), "mask"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_reader_rejects_bad_input(tmp_path, case):
    make, pattern = BAD[case]
    path = make(tmp_path / "bad.h5")
    with pytest.raises(DatasetError, match=pattern) as info:
        read_fields(path)
    msg = str(info.value)
    assert msg.startswith(str(path)) and "\n" not in msg, msg


def test_reader_expectations(tmp_path):
    path = _good(tmp_path / "g.h5")
    with pytest.raises(DatasetError, match="no such file"):
        read_fields(tmp_path / "missing.h5")
    with pytest.raises(DatasetError, match="model is for darcy"):
        read_fields(path, expect_pde="darcy")
    with pytest.raises(DatasetError, match="model is for 16x16"):
        read_fields(path, expect_grid=16)
    with pytest.raises(DatasetError, match="no 'mask'"):
        read_fields(path, require_mask=True)
    assert read_fields(path, expect_pde="helmholtz", expect_grid=8).pde == "helmholtz"


def test_nan_marks_unobserved_entries_of_an_observation_file(tmp_path):
    ff = fields_file()
    mask = np.zeros(ff.fields.shape, np.uint8)
    mask[:, 0] = 1  # f observed, u not: a forward task, whose u a user may well leave as NaN
    path = tmp_path / "obs.h5"
    write_fields(path, dataclasses.replace(ff, mask=mask))
    with h5py.File(path, "a") as h:  # written by another tool: NaN where nothing is known
        h["fields"][:, 1] = np.nan
    got = read_fields(path, require_mask=True, observations=True)
    np.testing.assert_array_equal(got.fields[:, 0], ff.fields[:, 0])
    assert (got.fields[:, 1] == 0).all() and got.fields.dtype == np.float32
    with pytest.raises(DatasetError, match="non-finite values in 3 sample"):
        read_fields(path)  # read as data (training, evaluate): every value must be there
    with h5py.File(path, "a") as h:
        h["fields"][0, 0, 2, 2] = np.nan  # an observed entry
    with pytest.raises(DatasetError, match="non-finite observed values in 1 sample"):
        read_fields(path, require_mask=True, observations=True)


def test_one_sample_is_read_alone(tmp_path):
    ff = fields_file(n=4)
    mask = np.random.default_rng(1).random(ff.fields.shape) < 0.5
    residual = np.ones((4, 8, 8), np.float32) * np.arange(4)[:, None, None]
    path = write_fields(tmp_path / "f.h5", FieldsFile(**{**ff.__dict__, "mask": mask, "residual": residual}))
    assert count_samples(path) == 4
    one = read_fields(path, sample=2)
    np.testing.assert_array_equal(one.fields, ff.fields[2:3])
    np.testing.assert_array_equal(one.mask, mask[2:3])
    assert (one.residual == 2).all() and one.residual.shape == (1, 8, 8)
    with pytest.raises(DatasetError, match="sample 4 out of range"):
        read_fields(path, sample=4)
    with h5py.File(path, "a") as h:  # NaN in another sample does not stop this one
        h["fields"][0, 0, 0, 0] = np.nan
    assert np.isfinite(read_fields(path, sample=3).fields).all()
    with pytest.raises(DatasetError, match="no such file"):
        count_samples(tmp_path / "missing.h5")
    (tmp_path / "t.h5").write_text("text")
    with pytest.raises(DatasetError, match="not an HDF5 file"):
        count_samples(tmp_path / "t.h5")


def test_written_files_get_the_mode_of_a_plain_open(tmp_path):
    """The temporary file is private (mkstemp); the final file must not be: colleagues read results."""
    import os
    import stat

    old = os.umask(0o022)
    try:
        write_text(tmp_path / "plain.txt", "x")  # a file written with a plain open(), for reference
        (tmp_path / "open.txt").write_text("x")
        write_fields(tmp_path / "f.h5", fields_file())
        want = stat.S_IMODE((tmp_path / "open.txt").stat().st_mode)
        assert want == 0o644
        for name in ("plain.txt", "f.h5"):
            assert stat.S_IMODE((tmp_path / name).stat().st_mode) == want, name
    finally:
        os.umask(old)


def test_a_run_directory_where_a_file_is_is_refused_by_name(tmp_path):
    from engine.io.rundir import RunDir

    (tmp_path / "td.h5").write_bytes(b"data")
    with pytest.raises(EngineError, match="cannot create run directory .*td.h5: it is a file"):
        RunDir(tmp_path / "td.h5", create=True)
    assert (tmp_path / "td.h5").read_bytes() == b"data"


def test_an_observation_file_may_hold_nan_where_nothing_is_observed_only(tmp_path):
    ff = fields_file()
    mask = np.zeros(ff.fields.shape, bool)
    mask[:, 0] = True  # the first channel observed
    ff.fields[:, 1] = np.nan  # the other unknown
    with pytest.raises(DatasetError, match="NaN or inf"):  # a solve's answer or export: NaN is a failure
        write_fields(tmp_path / "answer.h5", dataclasses.replace(ff, mask=mask))
    write_fields(tmp_path / "obs.h5", dataclasses.replace(ff, mask=mask), unobserved_nan=True)
    with h5py.File(tmp_path / "obs.h5", "r") as h:
        assert np.isnan(h["fields"][:, 1]).all() and np.isfinite(h["fields"][:, 0]).all()
    mask[0, 1, 2, 3] = True  # NaN at an observed entry
    with pytest.raises(DatasetError, match="NaN or inf .* at observed entries"):
        write_fields(tmp_path / "bad.h5", dataclasses.replace(ff, mask=mask), unobserved_nan=True)
    inf = fields_file()
    inf.fields[0, 1, 0, 0] = np.inf  # inf is never "unknown", observed or not
    with pytest.raises(DatasetError, match="NaN or inf"):
        write_fields(tmp_path / "inf.h5", dataclasses.replace(inf, mask=np.zeros(inf.fields.shape, bool)),
                     unobserved_nan=True)
    assert not (tmp_path / "bad.h5").exists() and not (tmp_path / "inf.h5").exists()
