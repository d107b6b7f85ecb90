"""End-to-end ensemble building on synthetic galaxies: generate, split, train every member, evaluate,
and write a servable ensemble folder (weights + ``manifest.json`` with metrics and plots).

Profiles:
- ``quick``: compact networks (4 regression flavours + 1 reject model), a few thousand galaxies; a usable
  ensemble in about 15 minutes on 2 CPU cores. ``make run`` trains it when no model exists.
- ``long``: the quick ensemble's compact networks trained on more galaxies for longer (about an hour on
  2 CPU cores): the best this machine can train in a working session.
- ``full``: the original 12 + 3 ensemble (model4/5/6 × flavours 0–3, plus model4/5/6 binary) on a large
  synthetic set; runs on CPU, a GPU is recommended.
- ``robust``: the quick ensemble's networks trained on a domain-randomised world (``Profile.domain_augment``:
  domain_randomisation.DomainConfig; ``Profile.domain_generator``: synthetic.domain_randomised_config) with a reject model
  calibrated on the training family's validation galaxies (``reject_calibration``); about 25 minutes on
  2 CPU cores. ``quick-aug`` is the quick profile with the augmentation stage only (an ablation row).

Run: ``python -m training.ml.pipeline quick --out var/model_store/ensembles/quick-<date>`` (add ``--evaluate-only``
to evaluate a folder built with that profile again, on the same regenerated galaxies; ``--calibrate-only 0.02`` to
calibrate the reject members of a folder built without calibration, then evaluate it).
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

from core.synthetic import (REJECT_REASONS, GeneratorConfig, domain_randomised_config, domain_reject_rich_config, generate,
                            reject_rich_config, robustness_config)

from .augment import ImageSet
from .domain_randomisation import DomainConfig
from .ensemble import MANIFEST_NAME, EnsembleManifest, MemberSpec
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
    # Domain randomisation (docs/ml.md, "Domain-robust training"). ``domain_augment``: every network's training
    # views also go through domain_randomisation.DomainConfig (display stretch, sky, PSF, pixel size, noise, JPEG, colour,
    # field stars); ``domain_generator``: galaxies come from synthetic.domain_randomised_config (all six
    # morphologies with widened ranges, more varied PSF, noise, stars, stretch laws, JPEG) instead of the
    # training preset. Both False: the recipe as before, for ablations.
    domain_augment: bool = False
    domain_generator: bool = False
    # Reject calibration (reject_calibration.py): Platt scaling on domain-augmented validation views of the
    # training family, shifted towards accepting until at most this share of clean views is rejected; baked
    # into the reject head. None: no calibration.
    reject_max_clean_flagged: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def domain_randomisation(self) -> bool:
        return self.domain_augment or self.domain_generator


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
    # Domain-robust training (issue 12): the quick networks on a domain-randomised world, trained longer because
    # the task is harder; the reject model calibrated on the training family's validation galaxies. ≈ 25 min.
    "robust": Profile("robust", families=("compact",), flavours=(0, 1, 2, 3), reject_families=("compact",),
                      n_galaxies=2800, n_robustness=300, epochs=14, images_per_epoch=3072, reject_epochs=12,
                      lr_schedule="cosine", learning_rate=4e-3, patience=6, reject_from_regression=True,
                      reject_extra_galaxies=1500, domain_augment=True, domain_generator=True,
                      reject_max_clean_flagged=0.02),
    # The robust recipe at about twice the budget (1.8x the galaxies, 1.9x the views per network, longer reject
    # run), sized to train in under an hour on 2 CPU cores: the "+ budget" row of the ablation. ≈ 50 min.
    "robust-long": Profile("robust-long", families=("compact",), flavours=(0, 1, 2, 3), reject_families=("compact",),
                           n_galaxies=5000, n_robustness=300, epochs=20, images_per_epoch=4096, reject_epochs=16,
                           lr_schedule="cosine", learning_rate=4e-3, patience=6, reject_from_regression=True,
                           reject_extra_galaxies=2500, domain_augment=True, domain_generator=True,
                           reject_max_clean_flagged=0.02),
    # Ablation rows for the robust recipe, each one change on top of the previous (benchmarks/recipe_ablation.py
    # --robust): the quick budget with domain-randomised augmentation only, then with the widened generator too.
    "quick-aug": Profile("quick-aug", families=("compact",), flavours=(0, 1, 2, 3), reject_families=("compact",),
                         n_galaxies=2400, n_robustness=300, epochs=10, images_per_epoch=2048, reject_epochs=8,
                         lr_schedule="cosine", learning_rate=4e-3, reject_from_regression=True,
                         reject_extra_galaxies=1500, domain_augment=True),
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


# The domain-randomisation stage's settings per kind of network. Reject models get only faint added stars
# (a bright star on the disk is itself a reason to reject) and keep the mild scale range (a cut-off is one too).
DOMAIN_REGRESSION = DomainConfig()
DOMAIN_REJECT = DomainConfig(star_count_max=3, star_peak_max=0.12)


def generator_config(profile: Profile, *, reject_rich: bool = False) -> GeneratorConfig:
    """The galaxies a profile trains and tests on: the training preset, or the domain-randomised one."""
    if reject_rich:
        return domain_reject_rich_config() if profile.domain_generator else reject_rich_config()
    config = domain_randomised_config if profile.domain_generator else GeneratorConfig
    return config(reject_fraction=profile.reject_fraction)


def augment_overrides(profile: Profile, kind: str) -> dict[str, Any]:
    """AugmentConfig overrides for a network of ``kind`` in ``profile`` (domain stage included if asked)."""
    base = dict(profile.augment if kind == "regression" else profile.reject_augment)
    if profile.domain_augment:
        base["domain"] = asdict(DOMAIN_REGRESSION if kind == "regression" else DOMAIN_REJECT)
        if kind == "regression":
            base.setdefault("scale_range", (0.85, 1.12))
            base.setdefault("translate_fraction", 0.08)
    return base


def build_ensemble(profile: Profile, out: Path, *, version: str | None = None, workers: int = 2,
                   log: Callable[[str], None] = print, progress: Callable[[str, Progress], None] | None = None) -> EnsembleManifest:
    started = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    version = version or f"{profile.name}-{datetime.now(timezone.utc):%Y%m%d-%H%M%S}"
    log(f"[{version}] generating {profile.n_galaxies} synthetic galaxies")
    galaxies = list(generate(generator_config(profile), profile.n_galaxies, seed=profile.seed, workers=workers))
    inclination = np.array([g.truth["inclination"] for g in galaxies])
    # Reject-model labels: 0 = accepted, k = REJECT_REASONS[k - 1] (training balances the reasons).
    reject_codes = np.array([reject_code(g) for g in galaxies])
    rejected = (reject_codes > 0).astype(int)
    reject_extra: list = []
    if profile.reject_extra_galaxies and profile.reject_families:
        log(f"[{version}] generating {profile.reject_extra_galaxies} reject-rich galaxies for the reject models")
        reject_extra = list(generate(generator_config(profile, reject_rich=True), profile.reject_extra_galaxies,
                                     seed=profile.seed + 7, workers=workers))
    extra_codes = np.array([reject_code(g) for g in reject_extra], dtype=int)

    generation_seconds = time.perf_counter() - started

    splits, test_ids, val_ids = split_ids(profile, len(galaxies))
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
                                 augment=augment_overrides(profile, "regression"), **_schedule(profile))
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
        reject_labels = np.concatenate([reject_codes[train_ids], extra_codes])
        log(f"[{version}] training {name} on {len(reject_labels)} galaxies ({int((reject_labels > 0).sum())} rejects)")
        train_set = images_from_galaxies([galaxies[k] for k in train_ids] + reject_extra, labels=reject_labels)
        t0 = time.perf_counter()
        members.append(_train_reject_member(profile, out, family, group, train_set, subset(val_ids, kind="reject"),
                                            version=version, log=log, progress=progress))
        timings[name] = time.perf_counter() - t0

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


def _train_reject_member(profile: Profile, out: Path, family: str, group: int, train_set: ImageSet,
                         validation: ImageSet, *, version: str, log: Callable[[str], None],
                         progress: Callable[[str, Progress], None] | None) -> MemberSpec:
    """Train (and, if the profile asks, calibrate) the reject network of ``family``, started from the family's
    flavour-0 regression weights when the profile says so; written as ``out/<name>.keras``."""
    name = member_name(family, 0, reject=True)
    start = out / f"{member_name(family, 0)}.keras"
    config = TrainConfig(architecture=family, kind="reject", epochs=profile.reject_epochs,
                         images_per_epoch=profile.images_per_epoch, batch_size=profile.batch_size,
                         seed=profile.seed + 500 + group, output_dir=str(out / "runs" / name),
                         init_weights=str(start) if profile.reject_from_regression and start.exists() else None,
                         augment=augment_overrides(profile, "reject"), val_modes=("colour", "r"), **_schedule(profile))
    result = train(config, train_set, validation, progress=(lambda p, n=name: progress(n, p)) if progress else None)
    (out / f"{name}.keras").write_bytes(result.model_path.read_bytes())
    member_metrics: dict[str, Any] = {"history": result.history}
    if profile.reject_max_clean_flagged is not None:
        calibration = calibrate_reject(profile, out / f"{name}.keras", validation, seed=profile.seed + 900 + group)
        member_metrics["calibration"] = calibration
        log(f"[{version}] calibrated {name}: {calibration}")
    return MemberSpec(name=name, architecture=family, flavour=0, kind="reject", file=f"{name}.keras", group=group,
                      metrics=member_metrics)


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
    galaxies = list(generate(generator_config(profile), profile.n_galaxies, seed=profile.seed, workers=workers))
    _, test_ids, val_ids = split_ids(profile, len(galaxies))
    log(f"[{manifest.version}] evaluating on {len(test_ids)} test galaxies")
    metrics = _evaluate(profile, out, galaxies, test_ids, val_ids, workers=workers, log=log)
    metrics["timings"] = manifest.metrics.get("timings", {})
    return _write_evaluated(out, manifest, metrics)


def calibrate_reject(profile: Profile, path: Path, validation: ImageSet, *, seed: int) -> dict[str, Any]:
    """Calibrate one reject network in place on the profile's validation galaxies (see reject_calibration)."""
    from .reject_calibration import calibrate_member

    calibration = calibrate_member(path, validation, augment=augment_overrides(profile, "reject"), seed=seed,
                                   max_clean_flagged=float(profile.reject_max_clean_flagged or 0.02), tta=profile.tta)
    return calibration.to_dict()


def calibrate_built(profile: Profile, out: Path, *, max_clean_flagged: float, workers: int = 2,
                    log: Callable[[str], None] = print) -> EnsembleManifest:
    """Calibrate the reject members of an ensemble folder built with ``profile`` (no calibration yet), on the
    very validation galaxies it was built with, and re-evaluate it. For the ablation row "+ reject calibration"."""
    from dataclasses import replace

    manifest = EnsembleManifest.load(out)
    profile = replace(profile, reject_max_clean_flagged=max_clean_flagged)
    galaxies = list(generate(generator_config(profile), profile.n_galaxies, seed=profile.seed, workers=workers))
    _, _, val_ids = split_ids(profile, len(galaxies))
    codes = np.array([reject_code(g) for g in galaxies])
    validation = images_from_galaxies([galaxies[k] for k in val_ids], labels=codes[val_ids])
    members = []
    for group, member in enumerate(manifest.members):
        if member.kind == "reject":
            if "calibration" in member.metrics:
                raise ValueError(f"{member.name} is calibrated already.")
            calibration = calibrate_reject(profile, out / member.file, validation, seed=profile.seed + 900 + member.group)
            log(f"[{manifest.version}] calibrated {member.name}: {calibration}")
            member = MemberSpec(**{**asdict(member), "metrics": {**member.metrics, "calibration": calibration}})
        members.append(member)
    manifest = EnsembleManifest.from_dict({**json.loads(manifest.to_json()), "members": [asdict(m) for m in members]})
    (out / MANIFEST_NAME).write_text(manifest.to_json())
    return evaluate_built(profile, out, workers=workers, log=log)


def split_ids(profile: Profile, n_galaxies: int) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
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


def reject_code(galaxy: Any) -> int:
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
    parser.add_argument("--calibrate-only", type=float, default=None, metavar="MAX_CLEAN_FLAGGED",
                        help="calibrate the reject members of the ensemble already in --out, then re-evaluate it")
    args = parser.parse_args()
    if args.calibrate_only is not None:
        calibrate_built(PROFILES[args.profile], args.out, max_clean_flagged=args.calibrate_only, workers=args.workers)
    elif args.evaluate_only:
        evaluate_built(PROFILES[args.profile], args.out, workers=args.workers)
    else:
        build_ensemble(PROFILES[args.profile], args.out, workers=args.workers)


if __name__ == "__main__":
    main()
