"""The simulated crowd (30 volunteers with the original's biases) voting through the API.

The benchmark's default (``benchmarks/crowd_simulation.py``) is 500 galaxies; this test runs the full 30
volunteers on 500 galaxies too unless ZOO_CROWD_GALAXIES says otherwise.
"""
from __future__ import annotations

import math
import os

import pytest

from tests.crowd_simulation import simulate_crowd


@pytest.mark.django_db
def test_calibrated_consensus_matches_the_oracle(settings) -> None:  # noqa: ANN001
    settings.LABELING_CALIBRATION_MIN_N = 15
    n_galaxies = int(os.environ.get("ZOO_CROWD_GALAXIES", "500"))
    result = simulate_crowd(n_volunteers=30, n_galaxies=n_galaxies, seed=11)
    print("\n".join(result.lines()))
    assert result.retired == n_galaxies  # the crowd emptied the queue
    assert result.gold_votes > 0
    # Calibrated within 10% of the oracle and clearly below the uncalibrated median.
    assert result.rms_calibrated <= 1.10 * result.rms_oracle
    assert result.rms_calibrated < 0.8 * result.rms_uncalibrated
    # A/B: the difference of two independent group medians is √(e_A² + e_B²) ≈ √2 × the per-group error.
    assert result.ab_n > 50
    assert 0.8 < result.ab_rms / result.ab_expected < 1.25
    # Each group's consensus rests on about half the votes, so it must be noisier than the whole crowd's.
    assert result.ab_expected / math.sqrt(2) > result.rms_calibrated
