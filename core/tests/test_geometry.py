"""The oblate-disk relation: the apparent axis ratio and the inclination read back from it agree."""
from __future__ import annotations

import math

import pytest

from core.geometry import HOLMBERG_Q0, apparent_axis_ratio, inclination_from_axial_ratio


@pytest.mark.parametrize("inclination", [0.0, 20.0, 45.0, 60.0, 75.0, 89.0])
def test_apparent_axis_ratio_inverts_the_inclination_formula(inclination: float) -> None:
    assert inclination_from_axial_ratio(apparent_axis_ratio(inclination)) == pytest.approx(inclination, abs=1e-6)


def test_an_edge_on_disk_shows_its_intrinsic_thickness() -> None:
    assert apparent_axis_ratio(90.0) == pytest.approx(HOLMBERG_Q0)
    assert apparent_axis_ratio(0.0) == 1.0
    assert apparent_axis_ratio(90.0, 0.7) == pytest.approx(0.7)
    assert math.isnan(inclination_from_axial_ratio(float("nan")))
