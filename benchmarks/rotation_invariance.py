"""Rotation invariance of the serving path: the same galaxy turned by 0–180° through ``prediction_for_upload``.

Each image is put on a sky canvas as wide as its diagonal (so no corner is lost and every turn keeps the
same field), turned counter-clockwise by 0, 15, … 180°, encoded (PNG for synthetic images, JPEG q95 for
photographs) and sent through the real serving function twice: the current path (aligned by the measured
position angle about the measured centre) and, as the baseline in the same run, the old path (angle 0,
no alignment: ``angle_deg=0``). Reported per galaxy: the spread (max − min over the 13 turns) of the
ensemble median inclination and of the median rejection likelihood; then their median and maximum over
galaxies, per family (the training generator, the independent family when present, the real photographs
in ``../shared/real-photos``, whose credit is in their README: Stellarium's nebula textures, by the
Grasslands Observatory, Jim Misti, Herm Perez, Rob Vasey, NASA/ESA and others).

    .venv/bin/python -m benchmarks.rotation_invariance [--ensemble DIR] [--synthetic 8] [--independent 8] \
        [--real 24] [--out var/bench/rotation.json]

Without ``--ensemble`` the active ensemble (``MODEL_STORE/active.json``) is used. Predictions are not cached.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ANGLES = tuple(range(0, 181, 15))
REAL_PHOTOS = Path(__file__).resolve().parents[1].parent / "shared" / "real-photos"


def turned(image: np.ndarray, angle: float, *, fmt: str) -> bytes:
    """``image`` on a sky canvas as wide as its diagonal, turned counter-clockwise by ``angle``, encoded."""
    from PIL import Image

    from catalog.imaging import normalise_inversion, sky_level

    image, _ = normalise_inversion(image)
    fill = sky_level(image)
    side = math.ceil(math.hypot(*image.shape[:2])) + 2
    canvas = Image.new("RGB", (side, side), fill)
    canvas.paste(Image.fromarray(image), ((side - image.shape[1]) // 2, (side - image.shape[0]) // 2))
    rotated = canvas.rotate(angle, resample=Image.Resampling.BICUBIC, fillcolor=fill)
    buffer = io.BytesIO()
    rotated.save(buffer, format=fmt, **({"quality": 95} if fmt == "JPEG" else {}))
    return buffer.getvalue()


def synthetic_images(n: int, seed: int) -> list[tuple[str, np.ndarray]]:
    from core.synthetic import GeneratorConfig, generate

    return [(f"syn-{seed}-{g.truth['index']}", g.colour) for g in generate(GeneratorConfig(), n, seed=seed, workers=2)]


def independent_images(n: int, seed: int) -> list[tuple[str, np.ndarray]]:
    """Clean galaxies of the independent family (``benchmarks/independent_family``), if it is there."""
    try:
        from benchmarks.independent_family.render import draw_item, kinds_for, render_item
    except ImportError:
        return []
    from catalog.imaging import load_image

    out = []
    kinds = kinds_for(n, 0, seed)
    for index, kind in enumerate(kinds[:n]):
        rendered = render_item(draw_item(seed, index, kind))
        out.append((f"ind-{seed}-{index}", load_image(rendered["bytes"], max_bytes=1 << 26).pixels))
    return out


def real_images(n: int) -> list[tuple[str, np.ndarray]]:
    from catalog.imaging import load_image

    if not (REAL_PHOTOS / "truth.csv").exists():
        return []
    with (REAL_PHOTOS / "truth.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    # Spirals and lenticulars first (the galaxies IncliNET is for), in file order.
    rows.sort(key=lambda r: (not r["hubble"].startswith("S"), r["id"]))
    return [(r["id"], load_image((REAL_PHOTOS / r["file"]).read_bytes(), max_bytes=1 << 26).pixels) for r in rows[:n]]


def spread(values: list[float]) -> float:
    return float(max(values) - min(values))


def measure(name: str, image: np.ndarray, *, fmt: str) -> dict[str, Any]:
    from predictions.services import prediction_for_upload

    row: dict[str, Any] = {"galaxy": name}
    for path, kwargs in (("aligned", {}), ("old", {"angle_deg": 0.0})):
        medians, rejections, pas, seconds = [], [], [], []
        for angle in ANGLES:
            data = turned(image, angle, fmt=fmt)
            start = time.perf_counter()
            body = prediction_for_upload(data=data, **kwargs)
            seconds.append(time.perf_counter() - start)
            medians.append(body["inclinations"]["summary"]["median"])
            rejections.append(body["rejection_likelihood"]["summary"]["median"])
            pas.append(body.get("pa_measured"))
        row[path] = {"median_spread": spread(medians), "reject_spread": spread(rejections),
                     "median_at_0": medians[0], "reject_at_0": rejections[0], "seconds": statistics.mean(seconds)}
        if path == "aligned":
            row[path]["pa_measured"] = pas
    return row


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {"n": len(rows)}
    for path in ("aligned", "old"):
        for key in ("median_spread", "reject_spread"):
            values = [r[path][key] for r in rows]
            out[f"{path}_{key}_median"] = float(np.median(values)) if values else math.nan
            out[f"{path}_{key}_max"] = float(np.max(values)) if values else math.nan
        out[f"{path}_within_1deg_5pts"] = sum(r[path]["median_spread"] <= 1.0 and r[path]["reject_spread"] <= 5.0
                                              for r in rows)
        out[f"{path}_seconds"] = float(np.mean([r[path]["seconds"] for r in rows])) if rows else math.nan
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Rotation invariance of the serving path, old path as baseline.")
    parser.add_argument("--ensemble", type=Path, help="an ensemble folder (default: the active ensemble)")
    parser.add_argument("--synthetic", type=int, default=8, help="training-generator galaxies")
    parser.add_argument("--independent", type=int, default=8, help="independent-family galaxies (if present)")
    parser.add_argument("--real", type=int, default=24, help="real photographs from ../shared/real-photos")
    parser.add_argument("--seed", type=int, default=5151)
    parser.add_argument("--out", type=Path, default=Path("var/bench/rotation_invariance.json"))
    args = parser.parse_args(argv)

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "inclinet_site.settings")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import django

    django.setup()
    from django.conf import settings
    from django.test.utils import override_settings

    with tempfile.TemporaryDirectory() as tmp:
        overrides: dict[str, Any] = {
            "CACHES": {"default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}},
            "MEDIA_ROOT": str(Path(tmp) / "media"), "MAX_UPLOAD_BYTES": 1 << 26,
        }
        if args.ensemble:
            store = Path(tmp) / "store"
            store.mkdir()
            manifest = json.loads((args.ensemble / "manifest.json").read_text())
            (store / "active.json").write_text(json.dumps({"version": manifest["version"],
                                                           "folder": str(args.ensemble.resolve())}))
            overrides["MODEL_STORE"] = str(store)
        with override_settings(**overrides):
            from predictions.inference import active_ensemble

            ensemble = active_ensemble()
            print(f"ensemble {ensemble.version} ({ensemble.tta} views, {ensemble.precision}); model store "
                  f"{settings.MODEL_STORE}", file=sys.stderr)
            families = {
                "generator": (synthetic_images(args.synthetic, args.seed), "PNG"),
                "independent": (independent_images(args.independent, args.seed), "PNG"),
                "real photographs": (real_images(args.real), "JPEG"),
            }
            report: dict[str, Any] = {"ensemble": ensemble.version, "angles": list(ANGLES), "families": {}}
            for family, (images, fmt) in families.items():
                rows = []
                for name, image in images:
                    rows.append(measure(name, image, fmt=fmt))
                    print(f"{family:17s} {name:22s} aligned {rows[-1]['aligned']['median_spread']:5.1f}° "
                          f"{rows[-1]['aligned']['reject_spread']:5.1f} pts | old {rows[-1]['old']['median_spread']:5.1f}° "
                          f"{rows[-1]['old']['reject_spread']:5.1f} pts", file=sys.stderr)
                report["families"][family] = {"summary": summarise(rows), "galaxies": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    print("| family | n | path | median-inclination spread: median / max | rejection spread: median / max | "
          "within 1° and 5 pts | s per call |")
    print("|---|---|---|---|---|---|---|")
    for family, data in report["families"].items():
        s = data["summary"]
        for path in ("aligned", "old"):
            print(f"| {family} | {s['n']} | {path} | {s[f'{path}_median_spread_median']:.1f}° / "
                  f"{s[f'{path}_median_spread_max']:.1f}° | {s[f'{path}_reject_spread_median']:.1f} / "
                  f"{s[f'{path}_reject_spread_max']:.1f} | {s[f'{path}_within_1deg_5pts']}/{s['n']} | "
                  f"{s[f'{path}_seconds']:.2f} |")


if __name__ == "__main__":
    main()
