"""A PDE's parameters are checked where the PDE is built: one ConfigError line, not a solver traceback."""

from __future__ import annotations

import math
import re

import pytest

from engine import pdes
from engine.errors import ConfigError
from engine.grid import Grid


@pytest.mark.parametrize("bad, message", [
    ({"a_low": 0.0}, "darcy a_low must be a number > 0, got 0"),  # was "Factor is exactly singular"
    ({"a_low": -3.0}, "darcy a_low must be a number > 0"),
    ({"a_high": math.inf}, "darcy a_high must be a finite number > 0, got inf"),
    ({"a_low": math.nan}, "darcy a_low must be a finite number"),
    ({"a_low": 20.0}, "darcy needs a_low < a_high, got a_low 20.0, a_high 12.0"),
    ({"a_low": 5.0, "a_high": 5.0}, "darcy needs a_low < a_high"),
    ({"forcing": math.nan}, "darcy forcing must be a finite number, got nan"),
    ({"forcing": -math.inf}, "darcy forcing must be a finite number"),
    ({"forcing": 0.0}, "darcy forcing must not be 0: every solution would be u = 0"),
])
def test_darcy_refuses_bad_parameters(bad, message):
    with pytest.raises(ConfigError) as info:
        pdes.get("darcy", **bad)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_darcy_takes_other_good_parameters():
    pde = pdes.get("darcy", a_low=0.5, a_high=2.0, forcing=-1.0)  # a negative source is a sink
    grid = Grid(16)
    x = pde.solve(pde.sample_inputs([0], grid), grid)
    assert math.isfinite(float(x.abs().max())) and set(x[0, 0].unique().tolist()) <= {0.5, 2.0}


@pytest.mark.parametrize("k", [math.nan, math.inf, -1.0])
def test_helmholtz_refuses_a_bad_wavenumber(k):
    with pytest.raises(ConfigError, match="helmholtz k"):
        pdes.get("helmholtz", k=k)


@pytest.mark.parametrize("bad, message", [
    ({"nu": 0.0}, "burgers nu must be a number > 0, got 0"),
    ({"ic_scale": 0.0}, "burgers ic_scale must not be 0"),
    ({"nu": math.nan}, "burgers nu must be a finite number > 0, got nan"),
    ({"ic_scale": math.inf}, "burgers ic_scale must be a finite number, got inf"),
])
def test_burgers_refuses_bad_parameters(bad, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        pdes.get("burgers", **bad)
