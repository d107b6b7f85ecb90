"""Retraining from a dataset snapshot, one step at a time, so a task queue can run and resume each step:
plan the members, train one member, assemble the ensemble folder, evaluate it, and compare ensembles
on the same test set. Django-free; ``training.jobs`` and ``training.runs`` drive it and records progress.

The members and epochs follow the pipeline's profiles (``pipeline.PROFILES``): ``tiny`` for tests,
``quick`` (compact × 4 flavours + a compact reject model) and ``full`` (the original 12 + 3).
"""
from __future__ import annotations

import json
import math
import shutil
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from . import evaluation as ev
from .augment import evaluation_views
from .ensemble import MANIFEST_NAME, EnsembleManifest, FusedEnsemble, MemberSpec
from .pipeline import PROFILES, augment_overrides, member_name
from .snapshot import SnapshotRows, eval_galaxies, flavour_rows
from .trainer import Progress, TrainConfig, TrainResult, train


@dataclass(frozen=True)
class MemberPlan:
    """One training run of a retrain: which network, on which rows, for how long."""

    name: str
    architecture: str
    kind: str  # "regression" or "reject"
    flavour: int
    group: int
    epochs: int
    batch_size: int
    seed: int
    images_per_epoch: int
    steps_per_epoch: int | None = None
    lr_schedule: str = "constant"
    learning_rate: float = 1e-3
    patience: int = 4
    augment: dict[str, Any] = field(default_factory=dict)  # AugmentConfig overrides

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> MemberPlan:
        """Back from a stored run config; keys a plan did not have yet keep their defaults."""
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


def plan_members(*, profile: str = "quick", architectures: Sequence[str] | None = None,
                 flavours: Sequence[int] | None = None, reject_architectures: Sequence[str] | None = None,
                 epochs: int | None = None, reject_epochs: int | None = None, steps_per_epoch: int | None = None,
                 batch_size: int | None = None, seed: int = 2026) -> list[MemberPlan]:
    """The runs of one ensemble: every architecture × flavour as regression, plus the reject models.

    Unset arguments come from the profile. Seeds differ per member, as in the pipeline.
    """
    if profile not in PROFILES:
        raise ValueError(f"Unknown profile {profile!r}; choose from {', '.join(sorted(PROFILES))}.")
    base = PROFILES[profile]
    families = tuple(architectures) if architectures is not None else base.families
    chosen_flavours = tuple(flavours) if flavours is not None else base.flavours
    rejects = tuple(reject_architectures) if reject_architectures is not None else base.reject_families
    if not families:
        raise ValueError("Choose at least one architecture for the inclination models.")
    if any(f not in (0, 1, 2, 3) for f in chosen_flavours) or not chosen_flavours:
        raise ValueError("Flavours are 0 (all training galaxies) to 3 (2/3 subsets); choose at least one.")
    for value, label in ((epochs, "epochs"), (reject_epochs, "reject epochs"), (steps_per_epoch, "steps per epoch"),
                         (batch_size, "batch size")):
        if value is not None and value < 1:
            raise ValueError(f"{label} must be at least 1.")
    batch = batch_size or base.batch_size
    profile_families = set(base.families) | set(base.reject_families)

    def schedule(family: str) -> dict[str, Any]:
        # The profile's rate was measured for its own networks (compact: 4e-3); another architecture chosen
        # on the staff page gets the original's 1e-3 rather than an untested rate.
        rate = base.learning_rate if family in profile_families else 1e-3
        return {"lr_schedule": base.lr_schedule, "learning_rate": rate, "patience": base.patience}

    plans = []
    for group, family in enumerate(families):
        for flavour in chosen_flavours:
            plans.append(MemberPlan(name=member_name(family, flavour), architecture=family, kind="regression",
                                    flavour=flavour, group=group, epochs=epochs or base.epochs, batch_size=batch,
                                    seed=seed + 10 * group + flavour, images_per_epoch=base.images_per_epoch,
                                    steps_per_epoch=steps_per_epoch, augment=augment_overrides(base, "regression"),
                                    **schedule(family)))
    for group, family in enumerate(rejects):
        plans.append(MemberPlan(name=member_name(family, 0, reject=True), architecture=family, kind="reject",
                                flavour=0, group=group, epochs=reject_epochs or epochs or base.reject_epochs,
                                batch_size=batch, seed=seed + 500 + group, images_per_epoch=base.images_per_epoch,
                                steps_per_epoch=steps_per_epoch, augment=augment_overrides(base, "reject"),
                                **schedule(family)))
    if len(plans) < 2:
        # The ensemble's spread steers labeling and its alarm; one network has none.
        raise ValueError("An ensemble needs at least two networks: add a flavour or a reject model.")
    names = [p.name for p in plans]
    if len(set(names)) != len(names):
        raise ValueError("Two members would share a name; choose each architecture and flavour once.")
    return plans


def train_config(plan: MemberPlan, *, output_dir: Path) -> TrainConfig:
    return TrainConfig(architecture=plan.architecture, kind=plan.kind, flavour=plan.flavour, epochs=plan.epochs,
                       batch_size=plan.batch_size, seed=plan.seed, images_per_epoch=plan.images_per_epoch,
                       steps_per_epoch=plan.steps_per_epoch, output_dir=str(output_dir), lr_schedule=plan.lr_schedule,
                       learning_rate=plan.learning_rate, patience=plan.patience, augment=dict(plan.augment),
                       val_modes=("colour", "r", "inverted") if plan.kind == "regression" else ("colour", "r"))


def train_member(rows: SnapshotRows, plan: MemberPlan, *, output_dir: Path, snapshot_seed: int,
                 progress: Callable[[Progress], None] | None = None) -> TrainResult:
    """Fit one member on its flavour's training rows, validating on the snapshot's validation rows.

    Resumes from ``output_dir`` when an earlier session left a checkpoint there (see ``trainer``).
    """
    train_rows = flavour_rows(rows.rows_of("train"), flavour=plan.flavour, seed=snapshot_seed)
    train_set = rows.image_set(train_rows, kind=plan.kind)
    val_set = rows.image_set(rows.rows_of("val"), kind=plan.kind)
    if len(train_set) == 0 or len(val_set) == 0:
        what = "accepted galaxies with an inclination" if plan.kind == "regression" else "galaxies"
        raise ValueError(f"The snapshot has no {what} for {plan.name} to train or validate on.")
    return train(train_config(plan, output_dir=output_dir), train_set, val_set, progress=progress)


def assemble_ensemble(folder: Path, *, version: str, members: Sequence[dict[str, Any]], tta: str,
                      snapshot: dict[str, Any]) -> EnsembleManifest:
    """Copy each member's ``best.keras`` into ``folder`` and write a first manifest (metrics come later).

    ``members``: dicts with name, architecture, flavour, kind, group, model_path and history.
    """
    folder.mkdir(parents=True, exist_ok=True)
    specs = []
    for member in members:
        target = folder / f"{member['name']}.keras"
        shutil.copyfile(member["model_path"], target)
        specs.append(MemberSpec(name=member["name"], architecture=member["architecture"], flavour=member["flavour"],
                                kind=member["kind"], file=target.name, group=member["group"],
                                metrics={"history": member.get("history", {})}))
    manifest = EnsembleManifest(
        version=version, members=tuple(specs), tta=tta, created=datetime.now(timezone.utc).isoformat(),
        preprocessing={"input": "uint8 RGB 128x128", "scaling": "Rescaling(1/255) in each model",
                       "snapshot": snapshot},
    )
    (folder / MANIFEST_NAME).write_text(manifest.to_json())
    return manifest


def evaluate_folder(folder: Path, rows: SnapshotRows, *, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Evaluate the ensemble on the snapshot's test rows (bias fits and alarm chosen on its validation rows),
    write the plots into ``folder/plots`` and the metrics, bias fits and alarm threshold into the manifest."""
    from .evaluate_ensemble import evaluate_ensemble

    galaxies = eval_galaxies(rows)
    metrics = evaluate_ensemble(folder, test=(galaxies, rows.rows_of("test")), validation=(galaxies, rows.rows_of("val")),
                                robustness=None, log=log)
    raw = json.loads((folder / MANIFEST_NAME).read_text())
    fits = metrics.get("bias_fits", {})
    for member in raw["members"]:
        fit = fits.get(member["name"])
        member["bias_m"], member["bias_b"] = (fit["m"], fit["b"]) if fit else (None, None)
    raw["metrics"] = json_safe(metrics)
    raw["alarm_stdev_deg"] = float(metrics["alarm"]["threshold_deg"])
    manifest = EnsembleManifest.from_dict(raw)
    (folder / MANIFEST_NAME).write_text(manifest.to_json())
    return raw["metrics"]


def compare_on_test(folders: dict[str, Path], rows: SnapshotRows) -> dict[str, Any]:
    """Each ensemble's median inclination and reject accuracy on the same test rows of one snapshot."""
    test = rows.rows_of("test")
    accepted = test[rows.rejected[test] == 0]
    views, _, modes, truth = evaluation_views(rows.image_set(accepted, kind="regression"))
    reject_images = rows.image_set(test, kind="reject")
    reject_views = np.concatenate([reject_images.colour, np.repeat(reject_images.r[..., None], 3, -1)])
    reject_labels = np.tile(rows.rejected[test].astype(int), 2)
    result: dict[str, Any] = {"n_galaxies": int(test.size), "n_images": int(len(views))}
    for label, folder in folders.items():
        ensemble = FusedEnsemble(folder)
        medians = np.array([p.inclination_median for start in range(0, len(views), 64)
                            for p in ensemble.predict(views[start:start + 64])])
        entry: dict[str, Any] = {"version": ensemble.version, "regression": {
            k: m.to_dict() for k, m in ev.metrics_by_group(truth, medians, modes).items()}}
        if ensemble.manifest.reject and len(reject_views):
            probability = np.array([p.reject_median for start in range(0, len(reject_views), 64)
                                    for p in ensemble.predict(reject_views[start:start + 64])]) / 100.0
            entry["reject"] = ev.reject_metrics(reject_labels, probability)
        result[label] = entry
    return json_safe(result)


def json_safe(value: Any) -> Any:
    """NaN and infinities become None (PostgreSQL's jsonb and browsers' JSON.parse refuse them)."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.ndarray):
        return json_safe(value.tolist())
    return value
