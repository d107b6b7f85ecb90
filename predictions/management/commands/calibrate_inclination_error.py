"""Calibrate an ensemble's ``inclination_error`` (issue 15; model and fit in ``training.ml.error_calibration``).

    manage.py calibrate_inclination_error models/robust-20261202-130853.tar.gz --shipped   # models/error_calibration/
    manage.py calibrate_inclination_error active --write                                   # the active ensemble's folder

1. The validation galaxies the ensemble was built with (its profile's generator, seed and split, as
   ``training.ml.pipeline`` drew them; the accepted ones, truth 45–90°), each sent as a PNG through the
   serving path (``prediction_for_upload``: measured-PA alignment, the fused ensemble, the axial check):
   a, b, c fitted on (median − truth, stdev, |median − axial|).
2. A held-out slice of the same family with random orientations, seed ``HELD_OUT_SEED``: the inflation that
   gives it 68 % coverage (never below 1). ``--held-out-preset robustness`` (the default):
   ``synthetic.robustness_config``, the training generator pushed to ranges the training preset does not
   use, with PA anywhere; ``domain``: ``domain_randomised_config`` with PA anywhere (the robust profile's
   own ranges, which gave 52 % on the independent family for the shipped ensemble: too narrow).

The independent family is never used here; ``benchmarks.independent_accuracy`` measures the result on it.
"""
from __future__ import annotations

import io
import json
import math
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

HELD_OUT_SEED = 31337  # training.ml.axial_ratio.CALIBRATION_SEED: a seed no training profile uses
HELD_OUT_N = 300


def _render(args: tuple[Any, int, int]) -> Any:
    from core.synthetic import draw_params, render_galaxy

    config, seed, index = args
    return render_galaxy(draw_params(config, seed=seed, index=index))


def _render_all(config: Any, seed: int, indices: list[int], workers: int) -> list[Any]:
    jobs = [(config, seed, int(i)) for i in indices]
    if workers <= 1:
        return [_render(job) for job in jobs]
    with get_context("spawn").Pool(workers) as pool:
        return pool.map(_render, jobs, chunksize=8)


def _png(pixels: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def _served(galaxies: list[Any]) -> dict[str, np.ndarray]:
    """Median − truth, stdev and axial gap of each accepted galaxy (truth 45–90°) through the serving path."""
    from predictions.services import prediction_for_upload

    rows = []
    for galaxy in galaxies:
        if not galaxy.accepted or not 45.0 <= galaxy.inclination <= 90.0:
            continue
        body = prediction_for_upload(data=_png(galaxy.colour))
        median = body["inclinations"]["summary"]["median"]
        axial = body.get("axial_ratio_inclination")
        rows.append((median - galaxy.inclination, body["inclinations"]["summary"]["stdev"],
                     abs(median - axial) if axial is not None else math.nan))
    data = np.array(rows, dtype=float).reshape(-1, 3)
    return {"residual": data[:, 0], "stdev": data[:, 1], "gap": data[:, 2]}


class Command(BaseCommand):
    help = "Fit the ensemble's inclination_error on its validation galaxies and store it."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("ensemble", help="'active', an ensemble folder, or a .tar.gz archive of one")
        parser.add_argument("--write", action="store_true", help="store error_calibration.json in the ensemble folder")
        parser.add_argument("--shipped", action="store_true",
                            help="store models/error_calibration/<version>.json (for the ensemble shipped in models/)")
        parser.add_argument("--workers", type=int, default=2)
        parser.add_argument("--held-out", type=int, default=HELD_OUT_N, help="galaxies in the held-out slice")
        parser.add_argument("--limit", type=int, default=None, help="only the first N validation galaxies (a smoke run)")
        parser.add_argument("--held-out-preset", choices=["robustness", "domain"], default="robustness",
                            help="generator preset of the held-out slice that sets the inflation")

    def handle(self, *args: Any, ensemble: str, write: bool, shipped: bool, workers: int, held_out: int,
               limit: int | None, held_out_preset: str, **options: Any) -> None:
        from benchmarks.independent_accuracy import serving
        from core.synthetic import domain_randomised_config, robustness_config
        from training.ml.error_calibration import CALIBRATION_FILE, choose_inflation, fit_error_model, save
        from training.ml.pipeline import PROFILES, generator_config, split_ids

        with serving(None if ensemble == "active" else ensemble) as info:
            manifest = info["manifest"]
            profile_name = ((manifest.get("metrics") or {}).get("profile") or {}).get("name")
            if profile_name not in PROFILES:
                raise CommandError(f"The manifest names no known build profile ({profile_name!r}): its validation "
                                   "galaxies cannot be drawn again.")
            profile = PROFILES[profile_name]
            _, _, val_ids = split_ids(profile, profile.n_galaxies)
            val_ids = val_ids[:limit] if limit else val_ids
            self.stdout.write(f"{manifest['version']}: {len(val_ids)} validation galaxies of profile {profile_name}")
            validation = _served(_render_all(generator_config(profile), profile.seed, list(val_ids), workers))
            model = fit_error_model(validation["residual"], validation["stdev"], validation["gap"],
                                    version=manifest["version"])
            self.stdout.write(f"validation: n = {model.fit['n']}, coverage {model.fit['coverage']:.3f}, "
                              f"a = {model.a:.2f}, b = {model.b:.2f}, c = {model.c:.2f}")
            preset = robustness_config if held_out_preset == "robustness" else domain_randomised_config
            config = preset(pa_range=(-90.0, 90.0))
            slice_ = _served(_render_all(config, HELD_OUT_SEED, list(range(held_out)), workers))
            model = choose_inflation(model, slice_["residual"], slice_["stdev"], slice_["gap"],
                                     what=f"{preset.__name__}, PA anywhere, seed {HELD_OUT_SEED}, {held_out} drawn")
            held = model.fit["held_out"]
            self.stdout.write(f"held-out slice: n = {held['n']}, coverage {held['coverage_before']:.3f} → "
                              f"{held['coverage_after']:.3f} (inflation {model.inflation:.3f})")
            model = type(model)(**{**model.to_dict(), "fit": {**model.fit, "profile": profile_name,
                                                               "validation_ids": len(val_ids)}})
            targets = []
            if write:
                targets.append(Path(info["folder"]) / CALIBRATION_FILE)
            if shipped:
                targets.append(Path(settings.BASE_DIR) / "models" / "error_calibration" / f"{manifest['version']}.json")
            for path in targets:
                save(model, path)
                self.stdout.write(f"wrote {path}")
            self.stdout.write(json.dumps(model.to_dict(), indent=1))
