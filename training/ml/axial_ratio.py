"""The axial-ratio baseline: a galaxy's inclination from the shape of its outer isophote.

The classical method that IncliNET must beat. The region above an outer isophote is found on a
lightly smoothed image; the connected component containing the centre (holes such as dust lanes
filled) is measured with *uniform-weight* second moments, which for a filled ellipse give exactly
b/a. Light-weighted or adaptive moments are dominated by the bulge and fail badly (about 20° RMS),
so they are not used. The axial ratio q becomes an inclination with Hubble's oblate-disk formula

    cos² i = (q² − q0²) / (1 − q0²),   q0 = 0.2 (Holmberg), clipped to [0°, 90°].

Works on uint8 grey images (asinh stretched, as the cut-outs are) or on linear images; a colour
image is averaged over its channels. Django-free.

Serving reports this inclination next to the ensemble's (``axial_ratio_inclination``) and raises the
alarm when they differ by more than a margin calibrated here on validation galaxies of the training
family: ``python -m training.ml.axial_ratio --calibrate ENSEMBLE_DIR [--write]`` measures the 95th and
99th percentiles of |ensemble median − axial-ratio inclination| and (with ``--write``) stores them in the
ensemble's manifest as ``metrics["axial_check"]`` (``margin_deg`` = the 99th percentile).
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

__all__ = ["HOLMBERG_Q0", "DEFAULT_ISOPHOTE_FRACTION", "isophote_mask", "axial_ratio", "inclination_from_axial_ratio",
           "axial_ratio_inclination", "calibrate_margin", "CALIBRATION_SEED"]

CALIBRATION_SEED = 31337  # validation galaxies: a seed no training profile uses

HOLMBERG_Q0 = 0.2
# The isophote sits this fraction of the way from the sky to the central level. On the asinh
# stretched cut-outs (D25 near the noise) 0.2 lands close to the D25 isophote.
DEFAULT_ISOPHOTE_FRACTION = 0.2


def _border(a: np.ndarray, width: int) -> np.ndarray:
    return np.concatenate([a[:width].ravel(), a[-width:].ravel(), a[width:-width, :width].ravel(),
                           a[width:-width, -width:].ravel()])


def isophote_mask(image: np.ndarray, *, isophote_fraction: float = DEFAULT_ISOPHOTE_FRACTION, smooth: float = 1.0,
                  min_sigma: float = 3.0) -> np.ndarray:
    """Boolean mask of the connected region above the outer isophote that contains the centre.

    The isophote is ``isophote_fraction`` of the way from the sky (median of the border) to the
    central level (the brightest smoothed pixel near the centre), and at least ``min_sigma`` sky
    standard deviations (of the smoothed image) above the sky. The region is found on the image
    smoothed by a Gaussian of ``smooth`` pixels and trimmed to the unsmoothed pixels above the
    level; holes are filled.
    """
    from scipy import ndimage

    raw = np.asarray(image, dtype=np.float64)
    if raw.ndim == 3:
        raw = raw.mean(axis=2)
    grey = ndimage.gaussian_filter(raw, smooth) if smooth > 0 else raw
    h, w = grey.shape
    edge = _border(grey, max(2, min(h, w) // 20))
    sky = float(np.median(edge))
    sigma = 1.4826 * float(np.median(np.abs(edge - sky)))
    cy, cx = h // 2, w // 2
    box = max(2, min(h, w) // 16)
    centre_level = float(grey[cy - box: cy + box + 1, cx - box: cx + box + 1].max())
    level = sky + max(isophote_fraction * (centre_level - sky), min_sigma * sigma)
    above = grey > level
    labels, n = ndimage.label(above)
    if n == 0:
        return np.zeros_like(above)
    # The component(s) touching the central box (a dust lane can split the centre).
    central = np.unique(labels[cy - box: cy + box + 1, cx - box: cx + box + 1])
    central = central[central > 0]
    if central.size == 0:
        return np.zeros_like(above)
    mask = np.isin(labels, central)
    if central.size > 1:
        mask = ndimage.binary_closing(mask, structure=np.ones((3, 3)), iterations=2) | mask
    # Smoothing finds the region; the unsmoothed pixels draw its edge (smoothing would grow both
    # axes by about one kernel width and round thin disks). Holes (noise, dust lanes) are filled.
    return ndimage.binary_fill_holes(ndimage.binary_fill_holes(mask) & (raw > level))


def axial_ratio(image: np.ndarray, *, isophote_fraction: float = DEFAULT_ISOPHOTE_FRACTION, smooth: float = 1.0) -> float:
    """b/a from uniform-weight second moments of the outer isophote's region (nan if none)."""
    mask = isophote_mask(image, isophote_fraction=isophote_fraction, smooth=smooth)
    ys, xs = np.nonzero(mask)
    if xs.size < 6:
        return float("nan")
    cov = np.cov(np.vstack([xs, ys]).astype(np.float64))
    minor, major = np.linalg.eigvalsh(cov)
    if major <= 0:
        return float("nan")
    return float(math.sqrt(max(minor, 0.0) / major))


def inclination_from_axial_ratio(q: float, q0: float = HOLMBERG_Q0) -> float:
    """Inclination in degrees (0 = face-on) from b/a: cos²i = (q² − q0²)/(1 − q0²), clipped.

    q ≤ q0 gives 90°, q ≥ 1 gives 0°; nan stays nan.
    """
    q = float(q)
    if not math.isfinite(q):
        return float("nan")
    cos2 = (q * q - q0 * q0) / (1.0 - q0 * q0)
    return float(math.degrees(math.acos(math.sqrt(min(max(cos2, 0.0), 1.0)))))


def axial_ratio_inclination(image: np.ndarray, *, q0: float = HOLMBERG_Q0,
                            isophote_fraction: float = DEFAULT_ISOPHOTE_FRACTION) -> float:
    """The baseline in one call: inclination (degrees) from the image's outer isophote."""
    return inclination_from_axial_ratio(axial_ratio(image, isophote_fraction=isophote_fraction), q0)


def calibrate_margin(ensemble_folder: Path, *, n: int = 400, seed: int = CALIBRATION_SEED, workers: int = 2,
                     write: bool = False) -> dict[str, float]:
    """|ensemble median − axial-ratio inclination| on ``n`` accepted generator galaxies (colour images, as
    aligned in training): its 50th/95th/99th percentiles; ``margin_deg`` is the 99th, rounded up to 0.5°.

    ``write``: store the result in the ensemble's manifest as ``metrics["axial_check"]``.
    """
    from training.ml.ensemble import MANIFEST_NAME, EnsembleManifest, FusedEnsemble
    from training.ml.synthetic import GeneratorConfig, generate

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

    from training.ml.synthetic import GeneratorConfig, generate, robustness_config

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
