"""Benchmark: how accurate is an ensemble on synthetic galaxies it never saw, against the baselines?

Builds an ensemble with a pipeline profile (or reads one already built) and prints, from its manifest:

- inclination RMS / MAE / bias of the ensemble median on the held-out test galaxies (every band), and on
  the robustness set (PSF, noise, size, morphology and JPEG quality outside the training ranges);
- the axial-ratio baseline measured on the same r-band test images, and the ensemble on those images;
- the reject ensemble's precision, recall, accuracy and ROC AUC;
- the original system's figures (3.09° RMS / 2.12° MAE; reject ≈ 0.88 accuracy / 0.90 recall) and the
  issue's targets (≤ 2.5° / ≤ 1.8°, ≥ 2× better than the axial ratio, reject ≥ 0.92 / ≥ 0.92);
- wall time per stage.

    .venv/bin/python -m benchmarks.ensemble_accuracy --profile quick --out var/bench/quick
    .venv/bin/python -m benchmarks.ensemble_accuracy --manifest var/bench/quick/manifest.json
    .venv/bin/python -m benchmarks.ensemble_accuracy --profile quick --out var/bench/quick --evaluate-only
    .venv/bin/python -m benchmarks.ensemble_accuracy --manifest var/bench/robust/manifest.json --family quick
        # another profile's held-out galaxies (e.g. the robust ensemble on the quick profile's test set);
        # evaluated on a copy of the folder, the manifest is left as it is
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ORIGINAL = {"rms": 3.09, "mae": 2.12, "reject_accuracy": 0.88, "reject_recall": 0.90}
TARGET = {"rms": 2.5, "mae": 1.8, "axial_ratio_factor": 2.0, "reject_accuracy": 0.92, "reject_recall": 0.92}


def _verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def report(metrics: dict[str, Any]) -> list[str]:
    """Lines of the report, from the ``metrics`` block of an ensemble manifest."""
    test = metrics["test"]
    overall = test["ensemble_median"]["all"]
    on_r, axial = test["ensemble_median_r"], test["axial_ratio_baseline_r"]
    reject = metrics["reject"]["ensemble"]["all"]
    robust = metrics.get("robustness") or {}
    factor = axial["rms"] / on_r["rms"]
    lines = [
        f"test set: {test['n_galaxies']} galaxies, {test['n_images']} images (colour, g, r, i, inverted); "
        f"TTA {metrics.get('tta')} views",
        "",
        "| measure | this ensemble | original | target | |",
        "|---|---|---|---|---|",
        f"| inclination RMS, all bands | {overall['rms']:.2f}° | {ORIGINAL['rms']}° | ≤ {TARGET['rms']}° "
        f"| {_verdict(overall['rms'] <= TARGET['rms'])} |",
        f"| inclination MAE, all bands | {overall['mae']:.2f}° | {ORIGINAL['mae']}° | ≤ {TARGET['mae']}° "
        f"| {_verdict(overall['mae'] <= TARGET['mae'])} |",
        f"| bias (predicted − true) | {overall['bias']:+.2f}° | | | |",
        f"| r band: ensemble RMS vs axial ratio (q0 = 0.2) | {on_r['rms']:.2f}° vs {axial['rms']:.2f}° "
        f"({factor:.2f}× better) | | ≥ {TARGET['axial_ratio_factor']}× | "
        f"{_verdict(factor >= TARGET['axial_ratio_factor'])} |",
        f"| reject accuracy | {reject['accuracy']:.3f} | {ORIGINAL['reject_accuracy']} | ≥ {TARGET['reject_accuracy']} "
        f"| {_verdict(reject['accuracy'] >= TARGET['reject_accuracy'])} |",
        f"| reject recall | {reject['recall']:.3f} | {ORIGINAL['reject_recall']} | ≥ {TARGET['reject_recall']} "
        f"| {_verdict(reject['recall'] >= TARGET['reject_recall'])} |",
        f"| reject precision / ROC AUC | {reject['precision']:.3f} / {reject['roc_auc']:.3f} | | | |",
    ]
    alarm = metrics.get("alarm")
    if alarm and "test_flagged_fraction" in alarm:
        lines.append(f"| disagreement alarm (stdev > {alarm['threshold_deg']:.2f}°): test images flagged / "
                     f"errors > 5° caught | {alarm['test_flagged_fraction']:.1%} / "
                     f"{alarm['test_large_errors_caught_fraction']:.0%} | | | |")
    by_reason = {k: v for k, v in metrics["reject"]["ensemble"].items() if k != "all"}
    if by_reason:
        lines.append("| reject recall per reason | " + ", ".join(f"{k} {v['recall']:.2f}" for k, v in sorted(by_reason.items()))
                     + " | | | |")
    if robust:
        rob, rob_axial = robust["ensemble_median"].get("all", robust["ensemble_median"]), robust.get("axial_ratio_baseline_r", {})
        lines.append(f"| robustness set: ensemble RMS / MAE | {rob['rms']:.2f}° / {rob['mae']:.2f}° | | | |")
        if rob_axial:
            lines.append(f"| robustness set: axial ratio RMS (r) | {rob_axial['rms']:.2f}° | | | |")
    timings = metrics.get("timings", {})
    if timings:
        training = timings.get("training_s", {})
        lines += ["", f"wall time: {timings.get('total_s', 0) / 60:.1f} min (generation {timings.get('generation_s', 0):.0f} s; "
                  + ", ".join(f"{name} {seconds:.0f} s" for name, seconds in training.items()) + ")"]
    return lines


def cross_family(folder: Path, profile_name: str, *, workers: int) -> dict[str, Any]:
    """Metrics of the ensemble in ``folder`` on the test and validation galaxies of profile ``profile_name``
    (regenerated from its seeds), computed on a temporary copy so the folder's manifest and plots stay."""
    import shutil
    import tempfile

    from training.ml.evaluate_ensemble import evaluate_ensemble
    from core.synthetic import generate
    from training.ml.pipeline import PROFILES, generator_config, split_ids

    profile = PROFILES[profile_name]
    galaxies = list(generate(generator_config(profile), profile.n_galaxies, seed=profile.seed, workers=workers))
    _, test_ids, val_ids = split_ids(profile, len(galaxies))
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "ensemble"
        shutil.copytree(folder, copy, ignore=shutil.ignore_patterns("runs", "plots"))
        metrics = evaluate_ensemble(copy, test=(galaxies, test_ids), validation=(galaxies, val_ids), log=print)
    metrics["family"] = profile_name
    return metrics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--profile", help="build an ensemble with this pipeline profile (quick, full, tiny)")
    source.add_argument("--manifest", type=Path, help="report an ensemble already built")
    parser.add_argument("--out", type=Path, default=Path("var/bench/ensemble"), help="folder for --profile")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--evaluate-only", action="store_true",
                        help="with --profile: evaluate the ensemble already in --out again, without training")
    parser.add_argument("--family", help="with --manifest: evaluate that ensemble on this profile's held-out galaxies")
    parser.add_argument("--json", type=Path, help="also write the metrics here")
    args = parser.parse_args()
    if args.profile:
        from training.ml.pipeline import PROFILES, build_ensemble, evaluate_built

        if args.evaluate_only:
            manifest = evaluate_built(PROFILES[args.profile], args.out, workers=args.workers)
        else:
            manifest = build_ensemble(PROFILES[args.profile], args.out, workers=args.workers)
        metrics = manifest.metrics
    elif args.family:
        metrics = cross_family(args.manifest.parent, args.family, workers=args.workers)
        print(f"{args.manifest.parent} on the {args.family!r} profile's held-out galaxies:")
    else:
        metrics = json.loads(args.manifest.read_text())["metrics"]
    if args.json:
        args.json.write_text(json.dumps(metrics, indent=2, default=float))
    print("\n".join(report(metrics)))


if __name__ == "__main__":
    main()
