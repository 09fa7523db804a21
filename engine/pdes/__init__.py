"""The PDE registry. Add a PDE by writing pdes/<name>.py and listing its class here."""

from __future__ import annotations

import dataclasses
from typing import Any

from engine.errors import ConfigError
from engine.pdes.base import PDE
from engine.pdes.burgers import Burgers
from engine.pdes.darcy import Darcy
from engine.pdes.helmholtz import Helmholtz
from engine.pdes.poisson import Poisson

PDES: dict[str, type] = {cls.name: cls for cls in (Darcy, Poisson, Helmholtz, Burgers)}


def names() -> list[str]:
    return list(PDES)  # GUI menu order = tuple order above


def get(name: str, **params: Any) -> PDE:
    """The PDE ``name`` with parameters ``params`` (dataclass fields); ConfigError if unknown."""
    try:
        cls = PDES[name]
    except KeyError:
        raise ConfigError(f"unknown PDE {name!r}; known: {', '.join(PDES)}") from None
    known = {f.name for f in dataclasses.fields(cls)}
    if unknown := set(params) - known:
        raise ConfigError(f"{name}: unknown parameters {sorted(unknown)}; known: {sorted(known)}")
    return cls(**params)


def params_of(pde: PDE) -> dict[str, Any]:
    return dataclasses.asdict(pde)  # type: ignore[call-overload]


def params_text(pde: PDE) -> str:
    """``pde``'s parameters as people read them ("nu = 0.01, ic_scale = 1"); "" when it has none."""
    return ", ".join(f"{k} = {v:g}" for k, v in params_of(pde).items())


__all__ = ["PDE", "PDES", "get", "names", "params_of", "params_text"]
