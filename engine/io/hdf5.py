"""The fields file (SPEC "Files"): what generate, sample and solve write and every reader accepts.

Layout: dataset ``fields`` float32 (n, c, N, N) in physical units, gzip + shuffle, one chunk per
sample; optional ``mask`` uint8 (1 = observed), ``std`` float32 like fields, ``residual`` float32
(n, N, N). Root attributes: format = "piddm-fields", format_version = 1, pde, channels, grid,
pde_params (JSON), method, created (ISO time), software_version, seed. Never LZF.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from engine import __version__
from engine.errors import DatasetError, EngineError
from engine.io.atomic import atomic_hdf5

FORMAT = "piddm-fields"
FORMAT_VERSION = 1


@dataclass
class FieldsFile:
    """A fields file in memory. Arrays are NumPy; ``fields`` is (n, c, N, N) physical units."""

    fields: np.ndarray
    pde: str
    channels: tuple[str, ...]
    pde_params: dict[str, Any] = field(default_factory=dict)
    method: str = "data"
    seed: int = 0
    mask: np.ndarray | None = None  # (n, c, N, N) bool, True = observed
    std: np.ndarray | None = None  # (n, c, N, N)
    residual: np.ndarray | None = None  # (n, N, N)
    created: str = ""
    software_version: str = __version__
    extra: dict[str, Any] = field(default_factory=dict)  # other root attributes, kept on round trip

    @property
    def grid(self) -> int:
        return int(self.fields.shape[-1])

    def __len__(self) -> int:
        return int(self.fields.shape[0])


def write_fields(path: str | os.PathLike[str], ff: FieldsFile, *, dtype: str = "float32",
                 unobserved_nan: bool = False) -> Path:
    """Write ``ff`` atomically (temporary name, then rename). Returns the final path.

    Values must be finite, except with ``unobserved_nan`` (an observation file, ``piddm observe``):
    NaN where ``mask`` is 0 says "unknown". Only there: a solve's answer or an export with a NaN
    (a diverged solve) is refused, as any data file is.
    """
    if dtype not in ("float32", "float64"):
        raise DatasetError(f"unsupported dtype {dtype!r}; use float32 or float64")
    fields = np.asarray(ff.fields)
    if fields.ndim != 4 or fields.shape[2] != fields.shape[3]:
        raise DatasetError(f"fields must be (n, c, N, N), got shape {fields.shape}")
    if fields.shape[1] != len(ff.channels):
        raise DatasetError(f"fields have {fields.shape[1]} channels but {len(ff.channels)} names {ff.channels}")
    if fields.dtype.kind not in "fiub":
        raise DatasetError(f"refusing to write {path}: fields have non-numeric dtype {fields.dtype}")
    for name, arr, shape in (("mask", ff.mask, fields.shape), ("std", ff.std, fields.shape),
                             ("residual", ff.residual, fields.shape[:1] + fields.shape[2:])):
        if arr is not None and np.shape(arr) != shape:
            raise DatasetError(f"refusing to write {path}: {name} has shape {np.shape(arr)}, expected {shape}")
    with np.errstate(over="ignore"):  # a float64 value beyond float32's range becomes inf: refused
        stored = fields.astype(dtype)
    ok = np.isfinite(stored)
    if unobserved_nan and ff.mask is not None:
        ok |= np.isnan(stored) & ~np.asarray(ff.mask, dtype=bool)
    if not ok.all():
        raise DatasetError(f"refusing to write {path}: fields contain NaN or inf (or overflow {dtype})"
                           + (" at observed entries" if unobserved_nan and ff.mask is not None else ""))
    if clash := sorted(set(ff.extra) & _KNOWN_ATTRS):
        raise DatasetError(f"refusing to write {path}: extra attributes {clash} would replace standard ones")
    n, c, N, _ = fields.shape
    chunks = (1, c, N, N) if n else None
    opts = dict(compression="gzip", compression_opts=4, shuffle=True)
    final = Path(path)
    size = stored.nbytes * (1 + (ff.std is not None)) + (fields.size if ff.mask is not None else 0)
    size += 0 if ff.residual is None else stored.nbytes // fields.shape[1]
    with atomic_hdf5(final, size) as h:
        h.create_dataset("fields", data=stored, chunks=chunks, **opts)
        if ff.mask is not None:
            h.create_dataset("mask", data=np.asarray(ff.mask).astype(np.uint8), chunks=chunks, **opts)
        if ff.std is not None:
            h.create_dataset("std", data=np.asarray(ff.std).astype(dtype), chunks=chunks, **opts)
        if ff.residual is not None:
            rc = (1, N, N) if n else None
            h.create_dataset("residual", data=np.asarray(ff.residual).astype(dtype), chunks=rc, **opts)
        a = h.attrs
        a["format"] = FORMAT
        a["format_version"] = FORMAT_VERSION
        a["pde"] = ff.pde
        a["channels"] = list(ff.channels)
        a["grid"] = N
        a["pde_params"] = json.dumps(ff.pde_params, sort_keys=True)
        a["method"] = ff.method
        a["created"] = ff.created or _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        a["software_version"] = __version__
        a["seed"] = int(ff.seed)
        for k, v in ff.extra.items():
            a[k] = v if not isinstance(v, dict | list) else json.dumps(v)
    return final


_KNOWN_ATTRS = {"format", "format_version", "pde", "channels", "grid", "pde_params", "method",
                "created", "software_version", "seed"}


def _open(p: Path) -> h5py.File:
    """``p`` opened for reading; DatasetError naming it when it is missing or not HDF5."""
    if p.is_dir():
        raise DatasetError(f"{p}: a folder, not a fields file")
    if not p.is_file():
        raise DatasetError(f"{p}: no such file")
    try:
        return h5py.File(p, "r")
    except OSError:
        raise DatasetError(f"{p}: not an HDF5 file (or it is damaged)") from None


def count_samples(path: str | os.PathLike[str]) -> int:
    """How many samples a fields file holds (its 'fields' dataset's first axis), read from the header
    alone; DatasetError if there is no such dataset. ``read_fields`` validates the rest."""
    with _open(Path(path)) as h:
        ds = h.get("fields")
        if isinstance(ds, h5py.Dataset) and ds.ndim >= 1:
            return int(ds.shape[0])
    raise DatasetError(f"{path}: missing dataset 'fields'")


def _attr_str(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def _attr_int(v: Any) -> int | None:
    """An integer attribute, or None when it is missing or not a single integer."""
    try:
        arr = np.asarray(v)
        return int(arr.reshape(-1)[0]) if arr.size == 1 and arr.dtype.kind in "iu" else None
    except (TypeError, ValueError):
        return None


def read_fields(path: str | os.PathLike[str], *, expect_pde: str | None = None,
                expect_grid: int | None = None, require_mask: bool = False,
                observations: bool = False, sample: int | None = None,
                expected_by: str = "the model") -> FieldsFile:
    """Read and validate a fields file. Every problem raises DatasetError naming the file.

    sample: read only this sample (the app's import: one case of a large file, without decompressing
    the others). expected_by: what asks for ``expect_pde`` / ``expect_grid``, named in the error.

    observations: the file is read for its observed entries (``solve``, the app's import), so NaN
    may mark the entries its mask leaves unobserved (read as 0: their values are ignored). Anywhere
    else, as for training data, every value must be finite.
    """
    from engine import pdes  # late: keeps this module importable without the registry

    p = Path(path)

    def bad(msg: str) -> DatasetError:
        return DatasetError(f"{p}: {msg}")

    with _open(p) as h:
        a = h.attrs
        if _attr_str(a.get("format", "")) != FORMAT:
            raise bad(f"not a fields file (format attribute {a.get('format')!r}, expected {FORMAT!r})")
        if _attr_int(a.get("format_version")) != FORMAT_VERSION:
            raise bad(f"unsupported format_version {_attr_str(a.get('format_version'))!r} "
                      f"(this reader: {FORMAT_VERSION})")
        if "fields" not in h:
            raise bad("missing dataset 'fields'")
        pde_name = _attr_str(a.get("pde", ""))
        try:
            pde_params = json.loads(_attr_str(a.get("pde_params", "{}")))
            pde = pdes.get(pde_name, **pde_params)
        except EngineError as exc:
            raise bad(str(exc)) from None
        except (json.JSONDecodeError, TypeError):
            raise bad(f"attribute pde_params {a.get('pde_params')!r} is not a JSON object of "
                      f"{pde_name or 'PDE'} parameters") from None
        channels = tuple(_attr_str(c) for c in np.atleast_1d(a.get("channels", [])))
        if channels != pde.fields:
            raise bad(f"channels {list(channels)} do not match {pde_name}'s {list(pde.fields)}")
        ds = h["fields"]
        if not isinstance(ds, h5py.Dataset) or ds.dtype.kind not in "fiu":
            raise bad("'fields' is not a numeric dataset")
        if ds.ndim != 4 or ds.shape[1] != len(channels) or ds.shape[2] != ds.shape[3]:
            raise bad(f"dataset 'fields' has shape {ds.shape}, expected (n, {len(channels)}, N, N)")
        grid = _attr_int(a.get("grid"))
        if grid is None:
            raise bad(f"attribute grid must be one whole number (N), got {_attr_str(a.get('grid', '(none)'))!r}")
        if ds.shape[-1] != grid:
            raise bad(f"dataset 'fields' is {ds.shape[-1]}x{ds.shape[-1]} but attribute grid = {grid}")
        if ds.shape[0] == 0:
            raise bad("dataset 'fields' holds no samples")
        if sample is not None and not 0 <= sample < ds.shape[0]:
            raise bad(f"sample {sample} out of range (the file holds {ds.shape[0]})")
        which = slice(None) if sample is None else slice(sample, sample + 1)
        fields = ds[which]
        extras: dict[str, np.ndarray] = {}
        for name, shape in (("mask", ds.shape), ("std", ds.shape), ("residual", ds.shape[:1] + ds.shape[2:])):
            if name in h:
                if h[name].shape != shape:
                    raise bad(f"dataset {name!r} has shape {h[name].shape}, expected {shape}")
                extras[name] = h[name][which]
        if "mask" in extras:  # 1 = observed, 0 = not (SPEC "Files"): a 2, 0.5 or −1 is a broken mask
            m = extras["mask"]
            if m.dtype.kind not in "biuf" or not np.isin(m, (0, 1)).all():
                odd = np.unique(m[~np.isin(m, (0, 1))])[:3] if m.dtype.kind in "biuf" else m.dtype
                raise bad(f"dataset 'mask' must hold 0 (unobserved) and 1 (observed) only; it holds {odd}")
        if not (finite := np.isfinite(fields)).all():
            masked = observations and "mask" in extras  # unobserved values are ignored (SPEC "Files")
            where = ~finite & extras["mask"].astype(bool) if masked else ~finite
            if where.any():
                n_bad = int(where.any(axis=(1, 2, 3)).sum())
                what = "observed values" if masked else "values"
                raise bad(f"dataset 'fields' has non-finite {what} in {n_bad} sample(s)")
            fields = np.where(finite, fields, 0).astype(fields.dtype)
        if require_mask and "mask" not in extras:
            raise bad("no 'mask' dataset: an observation file must say which values are observed")
        if expect_pde is not None and pde_name != expect_pde:
            raise bad(f"holds {pde_name} fields, but {expected_by} is for {expect_pde}")
        if expect_grid is not None and grid != expect_grid:
            raise bad(f"grid is {grid}x{grid}, but {expected_by} is for {expect_grid}x{expect_grid}")
        extra = {k: a[k] for k in a if k not in _KNOWN_ATTRS}
        return FieldsFile(
            fields=fields,
            pde=pde_name,
            channels=channels,
            pde_params=pde_params,
            method=_attr_str(a.get("method", "")),
            seed=_attr_int(a.get("seed", 0)) or 0,
            mask=extras["mask"].astype(bool) if "mask" in extras else None,
            std=extras.get("std"),
            residual=extras.get("residual"),
            created=_attr_str(a.get("created", "")),
            software_version=_attr_str(a.get("software_version", "")),
            extra=extra,
        )
