"""Observations: task masks, seeded random points, and refusal of bad observations."""

from __future__ import annotations

import numpy as np
import pytest
from solve_standins import make_case

from engine.errors import ConfigError
from engine.io.hdf5 import FieldsFile
from engine.solve import Observations


def test_task_masks_follow_the_pde():
    pde, grid, truth = make_case("darcy")
    fwd = Observations.from_task(pde, truth.numpy(), "forward", "full")
    inv = Observations.from_task(pde, truth.numpy(), "inverse", "full")
    assert fwd.mask[:, 0].all() and not fwd.mask[:, 1].any()
    assert inv.mask[:, 1].all() and not inv.mask[:, 0].any()
    pde, grid, truth = make_case("burgers")
    inv = Observations.from_task(pde, truth.numpy(), "inverse", "full")
    assert inv.mask[:, 0, -1].all() and inv.mask.sum() == 2 * grid.n  # the final row only


def test_random_points_are_seeded_per_case():
    pde, grid, truth = make_case("poisson", count=3)
    a = Observations.from_task(pde, truth.numpy(), "reconstruct", "points:12", seed=4)
    b = Observations.from_task(pde, truth.numpy(), "reconstruct", "points:12", seed=4)
    c = Observations.from_task(pde, truth.numpy(), "reconstruct", "points:12", seed=5)
    assert np.array_equal(a.mask, b.mask) and not np.array_equal(a.mask, c.mask)
    assert (a.mask.sum((1, 2, 3)) == 24).all()  # 12 nodes x both channels
    assert not np.array_equal(a.mask[0], a.mask[1])  # a different pattern for each case
    f = Observations.from_task(pde, truth.numpy(), "forward", "fraction:0.1", seed=0)
    assert (f.mask[:, 0].sum((1, 2)) == round(0.1 * grid.n**2)).all() and not f.mask[:, 1].any()


@pytest.mark.parametrize("change, message", [
    ("nothing", "observes nothing"),
    ("everything", "observes everything"),
    ("nan", "NaN"),
    ("shape", "expected"),
])
def test_bad_observations_are_refused(change, message):
    pde, grid, truth = make_case("darcy")
    obs = Observations.from_task(pde, truth.numpy(), "forward", "full")
    values, mask = obs.values.copy(), obs.mask.copy()
    if change == "nothing":
        mask[1] = False
    elif change == "everything":
        mask[0] = True
    elif change == "nan":
        values[0, 0, 3, 3] = np.nan
    else:
        values, mask = values[:, :, :-1, :-1], mask[:, :, :-1, :-1]
    with pytest.raises(ConfigError, match=message) as err:
        Observations(values, mask).validate(pde, grid)
    assert "\n" not in str(err.value)


def test_unobserved_nan_is_ignored_and_a_mask_is_required():
    pde, grid, truth = make_case("darcy")
    obs = Observations.from_task(pde, truth.numpy(), "forward", "full")
    values = obs.values.copy()
    values[:, 1] = np.nan
    Observations(values, obs.mask).validate(pde, grid)
    with pytest.raises(ConfigError, match="mask"):
        Observations.from_fields_file(FieldsFile(fields=obs.values, pde="darcy", channels=pde.fields))


def test_bad_specs_are_refused():
    pde, grid, truth = make_case("burgers")
    for task, spec in (("inverse", "points:99"), ("forward", "lines:3"), ("reconstruct", "full"), ("sideways", "full")):
        with pytest.raises(ConfigError):
            Observations.from_task(pde, truth.numpy(), task, spec)
    for spec in ("fraction:1.5", "fraction:-0.1"):
        with pytest.raises(ConfigError, match=r"the fraction F must be in \(0, 1\]"):
            Observations.from_task(pde, truth.numpy(), "reconstruct", spec)
