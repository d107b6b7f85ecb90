"""The whole ensemble build on a tiny profile: generate, train every member, evaluate, write the folder."""
import json

from training.ml.ensemble import FusedEnsemble
from training.ml.pipeline import PROFILES, build_ensemble, evaluate_built


def test_tiny_profile_builds_a_servable_evaluated_ensemble(tmp_path) -> None:
    lines: list[str] = []
    manifest = build_ensemble(PROFILES["tiny"], tmp_path / "ens", version="tiny-test", workers=1, log=lines.append)
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

    # The reject model started from the flavour-0 network and trained on the extra reject-rich galaxies too.
    reject_run = json.loads((tmp_path / "ens" / "runs" / "compact-binary" / "state.json").read_text())["config"]
    assert reject_run["init_weights"] == str(tmp_path / "ens" / "compact.keras")
    assert reject_run["augment"] == {"rotation_max_deg": 25.0, "inverted_fraction_of_grey": 0.0}
    assert any("8 reject-rich galaxies" in line for line in lines)
    assert any("training compact-binary on" in line for line in lines)
    regression_run = json.loads((tmp_path / "ens" / "runs" / "compact" / "state.json").read_text())["config"]
    assert regression_run["lr_schedule"] == "cosine" and regression_run["augment"] == {"rotation_max_deg": 25.0}

    # Evaluating the folder again regenerates the same galaxies: the same figures, the timings kept.
    again = evaluate_built(PROFILES["tiny"], tmp_path / "ens", workers=1, log=lambda _: None)
    assert again.metrics["test"]["ensemble_median"]["all"]["rms"] == metrics["test"]["ensemble_median"]["all"]["rms"]
    assert again.metrics["test"]["n_images"] == metrics["test"]["n_images"]
    assert again.metrics["timings"] == metrics["timings"] and again.version == "tiny-test"
