"""End-to-end ensemble building on synthetic galaxies: generate, split, train every member, evaluate,
and write a servable ensemble folder (weights + ``manifest.json`` with metrics and plots).

Profiles:
- ``quick``: compact networks (4 regression flavours + 1 reject model), a few thousand galaxies; a usable
  ensemble in about 15 minutes on 2 CPU cores. ``make run`` trains it when no model exists.
- ``long``: the quick ensemble's compact networks trained on more galaxies for longer (about an hour on
  2 CPU cores): the best this machine can train in a working session.
- ``full``: the original 12 + 3 ensemble (model4/5/6 × flavours 0–3, plus model4/5/6 binary) on a large
  synthetic set; runs on CPU, a GPU is recommended.

Run: ``python -m training.ml.pipeline quick --out var/model_store/ensembles/quick-<date>`` (add ``--evaluate-only``
to evaluate a folder built with that profile again, on the same regenerated galaxies).
"""
from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from .augment import ImageSet, evaluation_views
from .ensemble import MANIFEST_NAME, EnsembleManifest, FusedEnsemble, MemberSpec
from .synthetic import REJECT_REASONS, GeneratorConfig, generate, reject_rich_config, robustness_config
from .trainer import Progress, TrainConfig, flavour_splits, train


@dataclass
class Profile:
    name: str
    families: tuple[str, ...]
    flavours: tuple[int, ...]
    reject_families: tuple[str, ...]
    n_galaxies: int
    n_robustness: int
    epochs: int
    images_per_epoch: int
    reject_epochs: int
    batch_size: int = 64
    tta: str = "aligned"  # test-time views (ensemble.TTA_VIEWS) that keep the major axis horizontal
    # AugmentConfig overrides. Served images are aligned, so rotations stay within ±25° (catalogue position
    # angles are rarely worse); measured: one quick member 3.24° → 2.87° RMS against any-angle rotation.
    augment: dict[str, Any] = field(default_factory=lambda: {"rotation_max_deg": 25.0})
    # Reject models are never shown inverted images when serving; without them the task is learnt faster.
    reject_augment: dict[str, Any] = field(default_factory=lambda: {"rotation_max_deg": 25.0,
                                                                    "inverted_fraction_of_grey": 0.0})
    reject_fraction: float = 0.35
    seed: int = 2026
    lr_schedule: str = "constant"  # or "cosine" (see TrainConfig)
    learning_rate: float = 1e-3
    patience: int = 4
    # Start each reject model from its family's flavour-0 inclination network (trained just before): the
    # convolutions already know galaxies, so the short reject run learns what to reject, not what a disk is.
    reject_from_regression: bool = False
    # Extra reject-rich galaxies (``synthetic.reject_rich_config``, their own seed) added to the reject
    # models' training set only; the test set keeps the ordinary mix.
    reject_extra_galaxies: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


PROFILES = {
    "quick": Profile("quick", families=("compact",), flavours=(0, 1, 2, 3), reject_families=("compact",),
                     n_galaxies=2400, n_robustness=300, epochs=10, images_per_epoch=2048, reject_epochs=8,
                     lr_schedule="cosine", learning_rate=4e-3, reject_from_regression=True,
                     reject_extra_galaxies=1500),
    "full": Profile("full", families=("model4", "model5", "model6"), flavours=(0, 1, 2, 3),
                    reject_families=("model4", "model5", "model6"), n_galaxies=20000, n_robustness=2000,
                    epochs=60, images_per_epoch=18000, reject_epochs=20, lr_schedule="cosine", patience=8,
                    reject_from_regression=True, reject_extra_galaxies=8000),
    # The best ensemble this 2-core CPU trains in under an hour: 2.5x the galaxies, 5x the images seen.
    "long": Profile("long", families=("compact",), flavours=(0, 1, 2, 3), reject_families=("compact",),
                    n_galaxies=6000, n_robustness=300, epochs=24, images_per_epoch=4096, reject_epochs=16,
                    lr_schedule="cosine", learning_rate=4e-3, patience=6, reject_from_regression=True,
                    reject_extra_galaxies=4000),
    # For tests and smoke checks only.
    "tiny": Profile("tiny", families=("compact",), flavours=(0, 1), reject_families=("compact",), n_galaxies=48,
                    n_robustness=12, epochs=1, images_per_epoch=64, reject_epochs=1, batch_size=32, tta="2",
                    lr_schedule="cosine", reject_from_regression=True, reject_extra_galaxies=8),
}


def member_name(family: str, flavour: int, *, reject: bool = False) -> str:
    if reject:
        return f"{family}-binary"
    return family if flavour == 0 else f"{family}{flavour}"


def images_from_galaxies(galaxies: list, *, labels: np.ndarray) -> ImageSet:
    return ImageSet(
        colour=np.stack([g.colour for g in galaxies]), g=np.stack([g.g for g in galaxies]),
        r=np.stack([g.r for g in galaxies]), i=np.stack([g.i for g in galaxies]), labels=labels,
    )


def build_ensemble(profile: Profile, out: Path, *, version: str | None = None, workers: int = 2,
                   log: Callable[[str], None] = print, progress: Callable[[str, Progress], None] | None = None) -> EnsembleManifest:
    started = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    version = version or f"{profile.name}-{datetime.now(timezone.utc):%Y%m%d-%H%M%S}"
    log(f"[{version}] generating {profile.n_galaxies} synthetic galaxies")
    galaxies = list(generate(GeneratorConfig(reject_fraction=profile.reject_fraction), profile.n_galaxies,
                             seed=profile.seed, workers=workers))
    inclination = np.array([g.truth["inclination"] for g in galaxies])
    # Reject-model labels: 0 = accepted, k = REJECT_REASONS[k - 1] (training balances the reasons).
    reject_codes = np.array([_reject_code(g) for g in galaxies])
    rejected = (reject_codes > 0).astype(int)
    reject_extra: list = []
    if profile.reject_extra_galaxies and profile.reject_families:
        log(f"[{version}] generating {profile.reject_extra_galaxies} reject-rich galaxies for the reject models")
        reject_extra = list(generate(reject_rich_config(), profile.reject_extra_galaxies, seed=profile.seed + 7,
                                     workers=workers))
    extra_codes = np.array([_reject_code(g) for g in reject_extra], dtype=int)

    generation_seconds = time.perf_counter() - started

    splits, test_ids, val_ids = _splits(profile, len(galaxies))
    accepted_mask = rejected == 0

    def subset(ids: np.ndarray, *, kind: str) -> ImageSet:
        ids = ids[accepted_mask[ids]] if kind == "regression" else ids
        labels = inclination[ids] if kind == "regression" else reject_codes[ids]
        return images_from_galaxies([galaxies[k] for k in ids], labels=labels)

    members: list[MemberSpec] = []
    timings: dict[str, float] = {}
    for group, family in enumerate(profile.families):
        for flavour in profile.flavours:
            name = member_name(family, flavour)
            train_ids = np.setdiff1d(splits[f"flavour{flavour}"], val_ids)
            config = TrainConfig(architecture=family, kind="regression", flavour=flavour, epochs=profile.epochs,
                                 images_per_epoch=profile.images_per_epoch, batch_size=profile.batch_size,
                                 seed=profile.seed + 10 * group + flavour, output_dir=str(out / "runs" / name),
                                 augment=dict(profile.augment), **_schedule(profile))
            log(f"[{version}] training {name} on {int(accepted_mask[train_ids].sum())} galaxies")
            t0 = time.perf_counter()
            result = train(config, subset(train_ids, kind="regression"), subset(val_ids, kind="regression"),
                           progress=(lambda p, n=name: progress(n, p)) if progress else None)
            timings[name] = time.perf_counter() - t0
            (out / f"{name}.keras").write_bytes(result.model_path.read_bytes())
            members.append(MemberSpec(name=name, architecture=family, flavour=flavour, kind="regression",
                                      file=f"{name}.keras", group=group, metrics={"history": result.history}))
    for group, family in enumerate(profile.reject_families):
        name = member_name(family, 0, reject=True)
        train_ids = np.setdiff1d(splits["flavour0"], val_ids)
        start = out / f"{member_name(family, 0)}.keras"
        config = TrainConfig(architecture=family, kind="reject", epochs=profile.reject_epochs,
                             images_per_epoch=profile.images_per_epoch, batch_size=profile.batch_size,
                             seed=profile.seed + 500 + group, output_dir=str(out / "runs" / name),
                             init_weights=str(start) if profile.reject_from_regression and start.exists() else None,
                             augment=dict(profile.reject_augment), val_modes=("colour", "r"), **_schedule(profile))
        reject_labels = np.concatenate([reject_codes[train_ids], extra_codes])
        log(f"[{version}] training {name} on {len(reject_labels)} galaxies ({int((reject_labels > 0).sum())} rejects)")
        train_set = images_from_galaxies([galaxies[k] for k in train_ids] + reject_extra, labels=reject_labels)
        t0 = time.perf_counter()
        result = train(config, train_set, subset(val_ids, kind="reject"),
                       progress=(lambda p, n=name: progress(n, p)) if progress else None)
        timings[name] = time.perf_counter() - t0
        (out / f"{name}.keras").write_bytes(result.model_path.read_bytes())
        members.append(MemberSpec(name=name, architecture=family, flavour=0, kind="reject", file=f"{name}.keras",
                                  group=group, metrics={"history": result.history}))

    manifest = EnsembleManifest(version=version, members=tuple(members), tta=profile.tta,
                                preprocessing={"input": "uint8 RGB 128x128", "scaling": "Rescaling(1/255) in each model"},
                                created=datetime.now(timezone.utc).isoformat())
    (out / MANIFEST_NAME).write_text(manifest.to_json())
    log(f"[{version}] evaluating on {len(test_ids)} test galaxies")
    metrics = _evaluate(profile, out, galaxies, test_ids, val_ids, workers=workers, log=log)
    metrics["timings"] = {"generation_s": generation_seconds, "training_s": timings,
                          "total_s": time.perf_counter() - started}
    manifest = _write_evaluated(out, manifest, metrics)
    log(f"[{version}] done in {metrics['timings']['total_s'] / 60:.1f} min: "
        f"test RMS {metrics['test']['ensemble_median']['all']['rms']:.2f}°, "
        f"MAE {metrics['test']['ensemble_median']['all']['mae']:.2f}°")
    return manifest


def evaluate_built(profile: Profile, out: Path, *, workers: int = 2, log: Callable[[str], None] = print) -> EnsembleManifest:
    """Evaluate an ensemble folder that ``build_ensemble(profile, out)`` wrote, again, on the very same test,
    validation and robustness galaxies (regenerated from the profile's seeds), e.g. after the evaluation
    changed. The training timings are kept; metrics, bias fits and the alarm threshold are replaced."""
    manifest = EnsembleManifest.load(out)
    # Evaluate the networks as trained, as build_ensemble did: stored bias fits would otherwise be applied
    # to the predictions and then fitted again on top of themselves.
    manifest = _with_bias(manifest, {})
    (out / MANIFEST_NAME).write_text(manifest.to_json())
    log(f"[{manifest.version}] regenerating {profile.n_galaxies} synthetic galaxies")
    galaxies = list(generate(GeneratorConfig(reject_fraction=profile.reject_fraction), profile.n_galaxies,
                             seed=profile.seed, workers=workers))
    _, test_ids, val_ids = _splits(profile, len(galaxies))
    log(f"[{manifest.version}] evaluating on {len(test_ids)} test galaxies")
    metrics = _evaluate(profile, out, galaxies, test_ids, val_ids, workers=workers, log=log)
    metrics["timings"] = manifest.metrics.get("timings", {})
    return _write_evaluated(out, manifest, metrics)


def _splits(profile: Profile, n_galaxies: int) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """The flavour splits, the test ids and the validation ids (taken out of the training set, by galaxy,
    for early stopping, the bias fits and the alarm)."""
    splits = flavour_splits(np.arange(n_galaxies), seed=profile.seed)
    rng = np.random.default_rng(profile.seed + 1)
    train_pool = splits["flavour0"]
    val_ids = np.sort(rng.choice(train_pool, size=max(4, len(train_pool) // 10), replace=False))
    return splits, splits["test"], val_ids


def _evaluate(profile: Profile, out: Path, galaxies: list, test_ids: np.ndarray, val_ids: np.ndarray, *,
              workers: int, log: Callable[[str], None]) -> dict[str, Any]:
    from .evaluate_ensemble import evaluate_ensemble

    robustness = list(generate(robustness_config(reject_fraction=profile.reject_fraction), profile.n_robustness,
                               seed=profile.seed + 99, workers=workers)) if profile.n_robustness else None
    metrics = evaluate_ensemble(out, test=(galaxies, test_ids), validation=(galaxies, val_ids),
                                robustness=robustness, log=log)
    metrics["profile"] = asdict(profile)
    return metrics


def _write_evaluated(out: Path, manifest: EnsembleManifest, metrics: dict[str, Any]) -> EnsembleManifest:
    manifest = EnsembleManifest.from_dict({**json.loads(manifest.to_json()), "metrics": metrics,
                                           "alarm_stdev_deg": metrics["alarm"]["threshold_deg"]})
    manifest = _with_bias(manifest, metrics)
    (out / MANIFEST_NAME).write_text(manifest.to_json())
    return manifest


def _reject_code(galaxy: Any) -> int:
    """0 = accepted, k = rejected for REJECT_REASONS[k - 1]."""
    return 0 if galaxy.truth["accepted"] else 1 + REJECT_REASONS.index(galaxy.truth["reason"])


def _schedule(profile: Profile) -> dict[str, Any]:
    return {"lr_schedule": profile.lr_schedule, "learning_rate": profile.learning_rate, "patience": profile.patience}


def _with_bias(manifest: EnsembleManifest, metrics: dict[str, Any]) -> EnsembleManifest:
    fits = metrics.get("bias_fits", {})
    members = []
    for member in manifest.members:
        fit = fits.get(member.name)
        members.append(MemberSpec(**{**asdict(member), "bias_m": fit["m"] if fit else None,
                                     "bias_b": fit["b"] if fit else None}))
    return EnsembleManifest.from_dict({**json.loads(manifest.to_json()), "members": [asdict(m) for m in members]})


def main() -> None:
    parser = argparse.ArgumentParser(description="Build an IncliNET ensemble on synthetic galaxies.")
    parser.add_argument("profile", choices=sorted(PROFILES))
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--evaluate-only", action="store_true",
                        help="evaluate the ensemble already in --out again (same galaxies), without training")
    args = parser.parse_args()
    if args.evaluate_only:
        evaluate_built(PROFILES[args.profile], args.out, workers=args.workers)
    else:
        build_ensemble(PROFILES[args.profile], args.out, workers=args.workers)


if __name__ == "__main__":
    main()
