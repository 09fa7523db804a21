"""Poisson: -Δu = f on (0,1)^2, u = 0 on ∂Ω.

Channels (f, u): source f and solution u (units of f·L²). 5-point Laplacian on interior nodes,
boundary residual u. Source prior: f = GRF(α=2, τ=3).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from engine.pdes.elliptic import SourceProblem


@dataclass(frozen=True)
class Poisson(SourceProblem):
    name: ClassVar[str] = "poisson"
    title: ClassVar[str] = "Poisson equation"
    equation: ClassVar[str] = "-Δu = f, u = 0 on the boundary"
