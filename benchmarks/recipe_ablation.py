"""Benchmark: what each part of the training recipe buys, one network at a time, against the old recipe.

Trains one compact network per variant on the quick profile's galaxies (flavour 0, the quick budget by
default) and prints its test figures beside the baseline, the recipe before 2026-12-01, trained in the
same run on the same galaxies:

- inclination variants: RMS / MAE over every band of the held-out accepted test galaxies, 0° and 180° views;
- reject variants: accuracy / recall / ROC AUC on the test galaxies' colour and r views, and the AUC for a
  star on the disk, a companion and a cut-off. The variants that start from an inclination network use the
  "recipe" one (trained first when only reject variants run). One thing no setting undoes: compact's binary
  head now pools by maximum as well as average, so "before" has it too.

    .venv/bin/python -m benchmarks.recipe_ablation                       # every variant, ≈ 20 min idle
    .venv/bin/python -m benchmarks.recipe_ablation --kind regression --variants before,recipe
    .venv/bin/python -m benchmarks.recipe_ablation --galaxies 200 --epochs 1   # a smoke run

``--robust`` scores whole ensembles instead, each a row of the domain-robust recipe (docs/ml.md), on the
independent family through the serving path (``benchmarks.independent_accuracy``), beside their in-family
figures. ``FOLDER:uncalibrated`` is the folder with its reject members' uncalibrated networks
(``runs/<name>/best.keras``) put back, on a temporary copy:

    .venv/bin/python -m benchmarks.recipe_ablation --robust baseline=var/bench/quick-baseline \
        "+ augmentation=var/bench/quick-aug" "+ generator=var/bench/robust:uncalibrated" \
        "+ reject calibration=var/bench/robust" --images var/independent
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REGRESSION_VARIANTS: dict[str, dict[str, Any]] = {
    "before": {},  # constant 1e-3, any-angle rotation
    "cosine 1e-3": {"lr_schedule": "cosine", "learning_rate": 1e-3},
    "cosine 2e-3": {"lr_schedule": "cosine", "learning_rate": 2e-3},
    "cosine 4e-3": {"lr_schedule": "cosine", "learning_rate": 4e-3},
    "cosine 8e-3": {"lr_schedule": "cosine", "learning_rate": 8e-3},
    "recipe": {"lr_schedule": "cosine", "learning_rate": 4e-3, "augment": {"rotation_max_deg": 25.0}},
}
# Reject variants: TrainConfig overrides, plus "reasons" (balance by reason), "extra" (add the reject-rich
# set) and "init" (start from the inclination network trained with the recipe).
REJECT_VARIANTS: dict[str, dict[str, Any]] = {
    "before": {"reasons": False},
    "reasons + init + cosine 2e-3": {"lr_schedule": "cosine", "learning_rate": 2e-3, "init": True},
    "+ reject-rich, cosine 4e-3": {"lr_schedule": "cosine", "learning_rate": 4e-3, "init": True, "extra": True},
    "no rotation, reject-rich": {"extra": True, "augment": {"rotate": False}},
    "recipe": {"lr_schedule": "cosine", "learning_rate": 4e-3, "init": True, "extra": True,
               "augment": {"rotation_max_deg": 25.0, "inverted_fraction_of_grey": 0.0}, "val_modes": ("colour", "r")},
}


def _data(n_galaxies: int, n_extra: int, workers: int) -> dict[str, Any]:
    from core.synthetic import GeneratorConfig, generate, reject_rich_config
    from training.ml.pipeline import PROFILES, reject_code, split_ids

    profile = PROFILES["quick"]
    galaxies = list(generate(GeneratorConfig(reject_fraction=profile.reject_fraction), n_galaxies,
                             seed=profile.seed, workers=workers))
    extra = list(generate(reject_rich_config(), n_extra, seed=profile.seed + 7, workers=workers)) if n_extra else []
    splits, test_ids, val_ids = split_ids(profile, len(galaxies))
    return {"galaxies": galaxies, "extra": extra, "train": np.setdiff1d(splits["flavour0"], val_ids),
            "val": val_ids, "test": test_ids, "code": reject_code}


def _images(galaxies: list, labels: np.ndarray):  # noqa: ANN202
    from training.ml.pipeline import images_from_galaxies

    return images_from_galaxies(galaxies, labels=labels)


def _regression_set(data: dict[str, Any], ids: np.ndarray):  # noqa: ANN202
    chosen = [data["galaxies"][k] for k in ids if data["galaxies"][k].truth["accepted"]]
    return _images(chosen, np.array([g.truth["inclination"] for g in chosen]))


def regression_run(data: dict[str, Any], overrides: dict[str, Any], *, folder: Path, epochs: int,
                   images_per_epoch: int) -> dict[str, Any]:
    import keras

    from training.ml.augment import evaluation_views
    from training.ml.scaling import target_to_inclination
    from training.ml.trainer import TrainConfig, train

    config = TrainConfig(architecture="compact", epochs=epochs, images_per_epoch=images_per_epoch, seed=2026,
                         output_dir=str(folder), **overrides)
    started = time.perf_counter()
    result = train(config, _regression_set(data, data["train"]), _regression_set(data, data["val"]))
    seconds = time.perf_counter() - started
    model = keras.saving.load_model(result.model_path)
    views, _, _, truth = evaluation_views(_regression_set(data, data["test"]))
    turned = np.rot90(views, 2, axes=(1, 2))
    outputs = [model.predict(v.astype(np.float32), batch_size=128, verbose=0)[:, 0] for v in (views, turned)]
    error = target_to_inclination((outputs[0] + outputs[1]) / 2, clip=True) - truth
    return {"rms": float(np.sqrt(np.mean(error**2))), "mae": float(np.mean(np.abs(error))), "seconds": seconds,
            "model_path": result.model_path}


def reject_run(data: dict[str, Any], variant: dict[str, Any], *, folder: Path, epochs: int, images_per_epoch: int,
               init_from: Path | None) -> dict[str, Any]:
    import keras

    from training.ml import evaluation as ev
    from training.ml.trainer import TrainConfig, train

    settings = dict(variant)
    by_reason, extra, init = settings.pop("reasons", True), settings.pop("extra", False), settings.pop("init", False)
    galaxies = [data["galaxies"][k] for k in data["train"]] + (data["extra"] if extra else [])
    codes = np.array([data["code"](g) for g in galaxies])
    labels = codes if by_reason else (codes > 0).astype(int)
    val = [data["galaxies"][k] for k in data["val"]]
    config = TrainConfig(architecture="compact", kind="reject", epochs=epochs, images_per_epoch=images_per_epoch,
                         seed=2526, output_dir=str(folder), init_weights=str(init_from) if init and init_from else None,
                         **settings)
    started = time.perf_counter()
    result = train(config, _images(galaxies, labels), _images(val, np.array([data["code"](g) for g in val])))
    seconds = time.perf_counter() - started
    model = keras.saving.load_model(result.model_path)
    test = [data["galaxies"][k] for k in data["test"]]
    views = np.concatenate([np.stack([g.colour for g in test]), np.repeat(np.stack([g.r for g in test])[..., None], 3, -1)])
    probability = model.predict(views.astype(np.float32), batch_size=128, verbose=0)[:, 1]
    truth = np.tile([0 if g.truth["accepted"] else 1 for g in test], 2)
    reasons = np.tile([g.truth["reason"] or "" for g in test], 2)
    metrics = ev.reject_metrics_by_reason(truth, probability, reasons)
    auc = {reason: metrics[reason]["roc_auc"] for reason in ("bright_star", "companion", "cut_off") if reason in metrics}
    return {**{k: metrics["all"][k] for k in ("accuracy", "recall", "roc_auc")}, "auc": auc, "seconds": seconds}


def uncalibrated_copy(folder: Path, out: Path) -> Path:
    """A copy of ``folder`` whose calibrated reject members are replaced by their uncalibrated networks."""
    import json
    import shutil

    shutil.copytree(folder, out, ignore=shutil.ignore_patterns("runs", "plots"))
    manifest = json.loads((folder / "manifest.json").read_text())
    for member in manifest["members"]:
        if member["kind"] == "reject" and member["metrics"].pop("calibration", None) is not None:
            shutil.copyfile(folder / "runs" / member["name"] / "best.keras", out / member["file"])
    manifest["version"] += "-uncalibrated"
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return out


def robust_rows(rows: list[str], images: Path, *, real_photos: bool = True) -> None:
    """One line per ensemble: in-family figures from its manifest, independent-family figures measured now."""
    import json

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "inclinet_site.settings")
    import django

    django.setup()
    from benchmarks.independent_accuracy import REAL_PHOTOS, evaluate_independent

    header = ("| row | in-family RMS / MAE | independent RMS / MAE | axial ratio RMS | ratio | clean rejected | "
              "reject recall (face-on / star / companion / low S/N / cut-off) | real photos rejected |")
    lines = [header, "|" + "---|" * 8]
    out_dir = Path("var/bench/independent")
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="robust-ablation-") as tmp:
        for index, spec in enumerate(rows):
            label, _, target = spec.partition("=")
            folder = Path(target.removesuffix(":uncalibrated"))
            if target.endswith(":uncalibrated"):
                folder = uncalibrated_copy(folder, Path(tmp) / f"row{index}")
            report = evaluate_independent(folder, images, real_photos=REAL_PHOTOS if real_photos else None)
            (out_dir / f"ablation-{index}.json").write_text(json.dumps({"row": label, **report}, indent=1, default=str))
            clean, rej = report["clean"], report["rejects"]
            fam = report.get("in_family") or {}
            reasons = " / ".join(f"{rej['by_reason'].get(r, {}).get('recall', float('nan')):.2f}"
                                 for r in ("face_on", "bright_star", "companion", "low_snr", "cut_off"))
            real = report.get("real_photos") or {}
            lines.append(f"| {label} | {fam.get('rms', float('nan')):.2f}° / {fam.get('mae', float('nan')):.2f}° | "
                         f"{clean['ensemble']['rms']:.2f}° / {clean['ensemble']['mae']:.2f}° | "
                         f"{clean['axial_ratio']['rms']:.2f}° | {clean['axial_over_ensemble_rms'] or float('nan'):.2f}× | "
                         f"{clean['rejected_fraction']:.1%} | {rej['recall']:.3f} ({reasons}) | "
                         f"{real.get('rejected_fraction', float('nan')):.0%} |")
            print(lines[-1], flush=True)
    print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--robust", nargs="+", metavar="LABEL=FOLDER", help="score ensembles on the independent family")
    parser.add_argument("--images", type=Path, default=Path("var/independent"), help="with --robust: the set")
    parser.add_argument("--no-real", action="store_true", help="with --robust: skip the real photographs")
    parser.add_argument("--kind", choices=("regression", "reject", "both"), default="both")
    parser.add_argument("--variants", help="comma-separated variant names (default: all of the kind)")
    parser.add_argument("--galaxies", type=int, default=2400)
    parser.add_argument("--extra", type=int, default=3000, help="reject-rich galaxies for the reject variants")
    parser.add_argument("--epochs", type=int, default=None, help="default: the quick profile's (10, reject 8)")
    parser.add_argument("--images-per-epoch", type=int, default=2048)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    if args.robust:
        robust_rows(args.robust, args.images, real_photos=not args.no_real)
        return
    wanted = set(args.variants.split(",")) if args.variants else None

    def chosen(variants: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        picked = {k: v for k, v in variants.items() if wanted is None or k in wanted}
        return {"before": variants["before"], **picked}  # the baseline always runs

    data = _data(args.galaxies, args.extra if args.kind != "regression" else 0, args.workers)
    print(f"{len(data['train'])} training / {len(data['val'])} validation / {len(data['test'])} test galaxies")
    with tempfile.TemporaryDirectory(prefix="ablation-") as tmp:
        def regression(name: str, index: int) -> dict[str, Any]:
            return regression_run(data, REGRESSION_VARIANTS[name], folder=Path(tmp) / f"r{index}",
                                  epochs=args.epochs or 10, images_per_epoch=args.images_per_epoch)

        recipe_model: Path | None = None
        if args.kind in ("regression", "both"):
            rows = {name: regression(name, index) for index, name in enumerate(chosen(REGRESSION_VARIANTS))}
            recipe_model = rows["recipe"]["model_path"] if "recipe" in rows else None
            base = rows["before"]
            print("\n| inclination network | test RMS | MAE | vs before | train s |\n|---|---|---|---|---|")
            for name, row in rows.items():
                print(f"| {name} | {row['rms']:.2f}° | {row['mae']:.2f}° | {row['rms'] / base['rms']:.2f}× | {row['seconds']:.0f} |")
        if args.kind in ("reject", "both"):
            variants = chosen(REJECT_VARIANTS)
            if recipe_model is None and any(v.get("init") for v in variants.values()):
                recipe_model = regression("recipe", 99)["model_path"]
            rows = {}
            for index, (name, variant) in enumerate(variants.items()):
                rows[name] = reject_run(data, variant, folder=Path(tmp) / f"j{index}", epochs=args.epochs or 8,
                                        images_per_epoch=args.images_per_epoch, init_from=recipe_model)
            print("\n| reject network | accuracy | recall | ROC AUC | AUC star / companion / cut-off | train s |")
            print("|---|---|---|---|---|---|")
            for name, row in rows.items():
                auc = " / ".join(f"{row['auc'].get(k, float('nan')):.2f}" for k in ("bright_star", "companion", "cut_off"))
                print(f"| {name} | {row['accuracy']:.3f} | {row['recall']:.3f} | {row['roc_auc']:.3f} | {auc} | {row['seconds']:.0f} |")


if __name__ == "__main__":
    main()
