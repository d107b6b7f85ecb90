"""The axial-ratio alarm margin is calibrated on generator galaxies and stored in the ensemble manifest."""
from __future__ import annotations

import json
from pathlib import Path

from training.ml.axial_ratio import calibrate_margin
from training.ml.ensemble import EnsembleManifest
from tests.ensembles import write_tiny_ensemble


def test_calibration_is_written_into_the_manifest(tmp_path: Path) -> None:
    folder = tmp_path / "tiny"
    write_tiny_ensemble(folder, families=1, flavours=2)
    result = calibrate_margin(folder, n=6, workers=1, write=True)
    assert result["n"] + result["unmeasured"] == 6
    assert result["p50"] <= result["p95"] <= result["p99"] <= result["margin_deg"] < result["p99"] + 0.5 + 1e-9
    stored = EnsembleManifest.load(folder).metrics["axial_check"]
    assert stored == json.loads(json.dumps(result))
    assert len(EnsembleManifest.load(folder).members) == 3  # the rest of the manifest is untouched
