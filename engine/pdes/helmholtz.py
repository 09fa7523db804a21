"""Helmholtz: -Δu - k²u = f on (0,1)^2, u = 0 on ∂Ω.

Channels (f, u): source f and solution u (units of f·L²). 5-point Laplacian minus k² on interior
nodes, boundary residual u. Source prior: f = GRF(α=2, τ=3).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from engine.errors import ConfigError
from engine.pdes.elliptic import SourceProblem


@dataclass(frozen=True)
class Helmholtz(SourceProblem):
    name: ClassVar[str] = "helmholtz"
    title: ClassVar[str] = "Helmholtz equation"
    equation: ClassVar[str] = "-Δu - k²u = f, u = 0 on the boundary"

    k: float = 1.0  # wavenumber (1/L); k² must stay off the Dirichlet eigenvalues (first 2π² ≈ 19.7)

    def __post_init__(self) -> None:
        if not 0.0 <= self.k < 4.4:
            raise ConfigError(f"helmholtz k must be in [0, 4.4) (below the first resonance), got {self.k}")

    @property
    def k2(self) -> float:
        return self.k**2
