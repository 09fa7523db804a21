"""One grid convention for every PDE.

The grid is vertex-centred on [0, length]^2 with the boundary nodes included:
n x n nodes, spacing h = length / (n - 1). Field tensors are (B, C, ny, nx) = (..., row = y,
col = x): axis -1 is x, axis -2 is y (``torch.meshgrid(y, x, indexing="ij")``), so a row-major
image shows x horizontally with no transposes. Burgers reinterprets rows as time and columns as
a periodic x (see ``engine.pdes.burgers``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Grid:
    """Uniform vertex-centred grid on [0, length]^2, boundary nodes included."""

    n: int = 64
    length: float = 1.0

    def __post_init__(self) -> None:
        if self.n < 4:
            raise ValueError(f"grid needs at least 4 nodes per side, got {self.n}")

    @property
    def h(self) -> float:
        return self.length / (self.n - 1)

    def coords(self, dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
        """(Y, X), each (n, n): node coordinates, row = y, col = x."""
        t = torch.linspace(0.0, self.length, self.n, dtype=dtype)
        y, x = torch.meshgrid(t, t, indexing="ij")
        return y, x

    def boundary_mask(self) -> torch.Tensor:
        """(n, n) bool, True on the boundary nodes."""
        m = torch.ones(self.n, self.n, dtype=torch.bool)
        m[1:-1, 1:-1] = False
        return m
