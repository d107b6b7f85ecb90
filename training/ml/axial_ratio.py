"""The axial-ratio baseline (``core.axial_ratio``) measured against the networks and the truth.

Serving reports the axial-ratio inclination next to the ensemble's (``axial_ratio_inclination``) and raises the
alarm when they differ by more than a margin calibrated here on validation galaxies of the training
family: ``python -m training.ml.axial_ratio --calibrate ENSEMBLE_DIR [--write]`` measures the 95th and
99th percentiles of |ensemble median − axial-ratio inclination| and (with ``--write``) stores them in the
ensemble's manifest as ``metrics["axial_check"]`` (``margin_deg`` = the 99th percentile).
``python -m training.ml.axial_ratio --n 300`` prints the baseline's RMS per band on generated galaxies.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from core.axial_ratio import axial_ratio_inclination

__all__ = ["CALIBRATION_SEED", "calibrate_margin"]

CALIBRATION_SEED = 31337  # validation galaxies: a seed no training profile uses


def calibrate_margin(ensemble_folder: Path, *, n: int = 400, seed: int = CALIBRATION_SEED, workers: int = 2,
                     write: bool = False) -> dict[str, float]:
    """|ensemble median − axial-ratio inclination| on ``n`` accepted generator galaxies (colour images, as
    aligned in training): its 50th/95th/99th percentiles; ``margin_deg`` is the 99th, rounded up to 0.5°.

    ``write``: store the result in the ensemble's manifest as ``metrics["axial_check"]``.
    """
    from training.ml.ensemble import MANIFEST_NAME, EnsembleManifest, FusedEnsemble
    from core.synthetic import GeneratorConfig, generate

    galaxies = list(generate(GeneratorConfig(), n, seed=seed, workers=workers))
    images = np.stack([g.colour for g in galaxies])
    ensemble = FusedEnsemble(Path(ensemble_folder))
    medians = np.array([p.inclination_median for p in ensemble.predict(images)])
    axial = np.array([axial_ratio_inclination(image) for image in images])
    ok = np.isfinite(axial)
    gap = np.abs(medians[ok] - axial[ok])
    p95, p99 = (float(np.percentile(gap, q)) for q in (95, 99))
    result = {"margin_deg": math.ceil(p99 * 2) / 2, "p50": float(np.median(gap)), "p95": p95, "p99": p99,
              "n": int(ok.sum()), "unmeasured": int((~ok).sum()), "seed": seed,
              "false_alarm_rate": float(np.mean(gap > math.ceil(p99 * 2) / 2))}
    if write:
        manifest = EnsembleManifest.load(Path(ensemble_folder))
        metrics = {**(manifest.metrics or {}), "axial_check": result}
        updated = EnsembleManifest.from_dict({**json.loads(manifest.to_json()), "metrics": metrics})
        (Path(ensemble_folder) / MANIFEST_NAME).write_text(updated.to_json())
    return result


def main(argv: list[str] | None = None) -> None:
    """Measure the baseline on accepted synthetic galaxies: ``python -m training.ml.axial_ratio --n 300``."""
    import argparse

    from core.synthetic import GeneratorConfig, generate, robustness_config

    parser = argparse.ArgumentParser(description="Axial-ratio baseline RMS on accepted synthetic galaxies.")
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--robustness", action="store_true", help="use the robustness preset")
    parser.add_argument("--calibrate", type=Path, metavar="ENSEMBLE_DIR",
                        help="calibrate the serving alarm's margin for this ensemble instead (uses --n, --workers)")
    parser.add_argument("--write", action="store_true", help="with --calibrate: store the margin in the manifest")
    args = parser.parse_args(argv)
    if args.calibrate:
        print(json.dumps(calibrate_margin(args.calibrate, n=args.n, seed=CALIBRATION_SEED, workers=args.workers,
                                          write=args.write), indent=1))
        return
    config = robustness_config() if args.robustness else GeneratorConfig()
    galaxies = list(generate(config, args.n, seed=args.seed, workers=args.workers))
    truth = np.array([g.inclination for g in galaxies])
    report: dict[str, dict[str, float]] = {}
    for band in ("r", "g", "i", "colour"):
        est = np.array([axial_ratio_inclination(g.band(band)) for g in galaxies])
        ok = np.isfinite(est)
        d = est[ok] - truth[ok]
        per_bin = {f"{lo}-{lo + 15}": float(np.sqrt(np.mean(d[(truth[ok] >= lo) & (truth[ok] < lo + 15)] ** 2)))
                   for lo in (45, 60, 75)}
        report[band] = {"n": int(ok.sum()), "failed": int((~ok).sum()), "rms": float(np.sqrt(np.mean(d**2))),
                        "mae": float(np.mean(np.abs(d))), "bias": float(np.mean(d)), **per_bin}
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
