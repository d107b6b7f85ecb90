"""The whole ensemble build on a tiny profile: generate, train every member, evaluate, write the folder."""
import json

from training.ml.ensemble import FusedEnsemble
from training.ml.pipeline import PROFILES, build_ensemble


def test_tiny_profile_builds_a_servable_evaluated_ensemble(tmp_path) -> None:
    manifest = build_ensemble(PROFILES["tiny"], tmp_path / "ens", version="tiny-test", workers=1, log=lambda _: None)
    assert [m.name for m in manifest.members] == ["compact", "compact1", "compact-binary"]
    written = json.loads((tmp_path / "ens" / "manifest.json").read_text())
    metrics = written["metrics"]
    assert metrics["test"]["ensemble_median"]["all"]["n"] > 0
    assert {"colour", "g", "r", "i", "inverted"} <= set(metrics["test"]["ensemble_median"])
    assert metrics["test"]["axial_ratio_baseline_r"]["n"] > 0
    assert {"precision", "recall", "accuracy", "roc_auc"} <= set(metrics["reject"]["ensemble"]["all"])
    assert "robustness" in metrics and metrics["alarm"]["threshold_deg"] >= 0
    assert (tmp_path / "ens" / "plots" / "ensemble_scatter.png").exists()
    ensemble = FusedEnsemble(tmp_path / "ens")
    assert ensemble.version == "tiny-test" and len(ensemble.manifest.regression) == 2
