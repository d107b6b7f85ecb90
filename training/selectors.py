"""Reads from the training domain: the active ensemble, consensus rows for snapshots, runs and jobs."""
from __future__ import annotations

from typing import Any

import numpy as np
from django.db.models import Q

from .models import DatasetSnapshot, Ensemble, RetrainJob, TrainingRun
from .store import active_pointer_read


def active_ensemble_summary() -> dict[str, Any] | None:
    """The manifest summary of the ensemble marked active in ``MODEL_STORE``, or None."""
    pointer = active_pointer_read()
    if pointer is None:
        return None
    return {"version": pointer.get("version"), "models": len(pointer.get("models", []))}


def _model_inputs(image_file: Any) -> np.ndarray:
    """A stored image as the networks' 128 × 128 uint8 RGB input."""
    from catalog.imaging import load_image, prepare_model_input

    with image_file.open("rb") as handle:
        data = handle.read()
    loaded = load_image(data, filename=image_file.name, max_bytes=max(len(data), 1), max_pixels=100_000_000)
    return prepare_model_input(loaded.pixels)


def galaxy_model_views(*, galaxy_ids: list[int]) -> dict[int, dict[str, np.ndarray]]:
    """Colour and g/r/i model inputs of each galaxy from its stored images.

    A galaxy with only a colour composite gets its bands from the composite's channels (Lupton RGB maps
    i, r, g to red, green, blue); one with only bands gets a composite stacked from them. Galaxies
    without any image are left out.
    """
    from catalog.models import GalaxyImage

    images: dict[int, dict[str, Any]] = {}
    for image in GalaxyImage.objects.filter(galaxy_id__in=galaxy_ids).order_by("galaxy_id", "kind", "source"):
        images.setdefault(image.galaxy_id, {}).setdefault(image.kind, image.file)
    views: dict[int, dict[str, np.ndarray]] = {}
    for galaxy_id, files in images.items():
        prepared = {kind: _model_inputs(file) for kind, file in files.items()}
        colour = prepared.get("colour")
        bands = {}
        for channel, band in ((2, "g"), (1, "r"), (0, "i")):
            if band in prepared:
                bands[band] = prepared[band][..., 0]  # grey inputs carry the band in all three channels
            elif colour is not None:
                bands[band] = colour[..., channel]
        if colour is None:
            fallback = next(iter(bands.values())) if bands else next(iter(prepared.values()))[..., 0]
            for band in ("g", "r", "i"):
                bands.setdefault(band, fallback)
            colour = np.stack([bands["i"], bands["r"], bands["g"]], axis=-1)
        views[galaxy_id] = {"colour": colour, **bands}
    return views


def consensus_training_rows(*, limit: int | None = None):  # noqa: ANN201 - SnapshotRows, imported lazily
    """Consensus labels with their images as snapshot rows: status A with an inclination, F and J as rejects."""
    from labeling.models import Consensus, ConsensusStatus, Standard
    from training.ml.snapshot import SnapshotRows

    labelled = (Consensus.objects.filter(Q(status=ConsensusStatus.ACCEPTED, inc__isnull=False)
                                         | Q(status__in=[ConsensusStatus.FACE_ON, ConsensusStatus.REJECTED]))
                .exclude(galaxy_id__in=Standard.objects.values("galaxy_id")).order_by("galaxy_id"))
    rows = list(labelled.values_list("galaxy_id", "status", "inc")[:limit] if limit else
                labelled.values_list("galaxy_id", "status", "inc"))
    views: dict[int, dict[str, np.ndarray]] = {}
    for start in range(0, len(rows), 500):
        views.update(galaxy_model_views(galaxy_ids=[r[0] for r in rows[start:start + 500]]))
    rows = [r for r in rows if r[0] in views]
    if not rows:
        return None
    ids = np.array([r[0] for r in rows], np.int64)
    accepted = np.array([r[1] == ConsensusStatus.ACCEPTED for r in rows])
    return SnapshotRows(
        id=ids, source=np.array(["consensus"] * len(rows)),
        inclination=np.array([r[2] if a else np.nan for r, a in zip(rows, accepted)], np.float32),
        rejected=(~accepted).astype(np.uint8), reason=np.array([r[1] for r in rows]),
        colour=np.stack([views[r[0]]["colour"] for r in rows]),
        g=np.stack([views[r[0]]["g"] for r in rows]), r=np.stack([views[r[0]]["r"] for r in rows]),
        i=np.stack([views[r[0]]["i"] for r in rows]),
    )


def consensus_labels_since(*, since: Any) -> int:
    """Consensus labels (A, F or J) decided after ``since`` (all of them when None)."""
    from labeling.models import Consensus, ConsensusStatus

    qs = Consensus.objects.filter(status__in=[ConsensusStatus.ACCEPTED, ConsensusStatus.FACE_ON,
                                              ConsensusStatus.REJECTED])
    return qs.filter(updated_at__gt=since).count() if since else qs.count()


def run_progress(*, run: TrainingRun) -> dict[str, Any]:
    """What the runs page polls: progress, ETA, the epoch curves and the live per-step loss."""
    return {
        "id": run.pk, "name": run.name or run.architecture, "architecture": run.architecture, "kind": run.kind,
        "flavour": run.flavour, "status": run.status, "epoch": run.epoch, "epochs": run.config.get("epochs"),
        "step": run.step, "total_steps": run.total_steps, "progress": round(run.progress, 4),
        "loss": run.loss, "eta_seconds": run.eta_seconds, "history": run.history,
        "live": run.metrics.get("live", []), "sessions": run.sessions, "error": run.error,
        "job": run.job_id,
    }


def job_summary(*, job: RetrainJob) -> dict[str, Any]:
    """A retrain job with its runs, or an ensemble build (kind "build") with its stage and progress."""
    runs = list(job.runs.order_by("pk"))
    if job.kind == RetrainJob.Kind.BUILD:
        progress = job.progress
    else:
        progress = sum(r.progress for r in runs) / len(runs) if runs else 0.0
    return {
        "id": job.pk, "kind": job.kind, "status": job.status, "queue": job.queue, "error": job.error,
        "stage": job.stage, "profile": job.params.get("profile"), "version": job.params.get("version"),
        "snapshot": job.snapshot.name if job.snapshot else None,
        "ensemble": job.ensemble.version if job.ensemble else None,
        "ensemble_id": job.ensemble_id, "created_at": job.created_at.isoformat(),
        "updated_at": job.updated_at.isoformat(), "progress": round(progress, 4),
        "runs": [run_progress(run=r) for r in runs],
    }


def job_list(*, limit: int = 20) -> list[RetrainJob]:
    return list(RetrainJob.objects.select_related("snapshot", "ensemble").order_by("-pk")[:limit])


def snapshot_list(*, limit: int = 50) -> list[DatasetSnapshot]:
    return list(DatasetSnapshot.objects.order_by("-pk")[:limit])


def ensemble_list() -> list[Ensemble]:
    return list(Ensemble.objects.select_related("snapshot").order_by("-created_at"))


def ensemble_active() -> Ensemble | None:
    return Ensemble.objects.filter(status=Ensemble.Status.ACTIVE).first()


def independent_row(*, ensemble: Ensemble, role: str) -> dict[str, Any]:
    """One ensemble's figures for the promotion comparison: in family (its own generator's test set, from the
    manifest) beside the independent family and the axial-ratio method on the same images."""
    metrics = ensemble.metrics or {}
    in_family = ((metrics.get("test") or {}).get("ensemble_median") or {}).get("all") or {}
    ev = ensemble.independent_evaluation or {}
    clean, rejects = ev.get("clean") or {}, ev.get("rejects") or {}
    ens, axial = clean.get("ensemble") or {}, clean.get("axial_ratio") or {}
    return {
        "role": role, "version": ensemble.version, "pk": ensemble.pk, "status": ensemble.status,
        "in_family_rms": in_family.get("rms"), "in_family_mae": in_family.get("mae"),
        "evaluated": bool(clean), "error": ev.get("error"), "evaluated_at": ev.get("evaluated_at"),
        "set": ev.get("set") or {}, "n_clean": clean.get("n"),
        "rms": ens.get("rms"), "mae": ens.get("mae"), "bias": ens.get("bias"),
        "axial_rms": axial.get("rms"), "axial_mae": axial.get("mae"),
        "axial_over_ensemble_rms": clean.get("axial_over_ensemble_rms"),
        "reject_recall": rejects.get("recall"),
        "recall_by_reason": {k: v.get("recall") for k, v in (rejects.get("by_reason") or {}).items()},
        "clean_flagged": clean.get("flagged_fraction"),
        "seconds": ev.get("seconds") or {},
    }


def independent_comparison(*, ensemble: Ensemble) -> list[dict[str, Any]]:
    """``ensemble`` and, when another one is active, the active one: the rows the staff page and
    ``build_ensemble --promote`` show before a promotion."""
    role = "active" if ensemble.status == Ensemble.Status.ACTIVE else "candidate"
    rows = [independent_row(ensemble=ensemble, role=role)]
    active = ensemble_active()
    if active is not None and active.pk != ensemble.pk:
        rows.append(independent_row(ensemble=active, role="active"))
    return rows


def _fmt(value: float | None, spec: str = ".2f", unit: str = "°") -> str:
    return "–" if value is None else f"{value:{spec}}{unit}"


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.0f}%"


def independent_comparison_lines(*, rows: list[dict[str, Any]]) -> list[str]:
    """The comparison as plain text (management commands)."""
    lines = ["independent family (never trained on; serving path, random PA), clean i 45–90°:",
             f"  {'':9} {'version':28} {'in-family RMS':>13} {'RMS':>7} {'MAE':>7} {'bias':>7} {'axial RMS':>9} "
             f"{'axial÷ens':>9} {'rejects caught':>14} {'clean flagged':>13}  set"]
    for row in rows:
        if not row["evaluated"]:
            why = f"check failed: {row['error']}" if row["error"] else "not evaluated (manage.py evaluate_independent)"
            lines.append(f"  {row['role']:9} {row['version']:28} {_fmt(row['in_family_rms']):>13}  {why}")
            continue
        s = row["set"]
        lines.append(
            f"  {row['role']:9} {row['version']:28} {_fmt(row['in_family_rms']):>13} {_fmt(row['rms']):>7} "
            f"{_fmt(row['mae']):>7} {_fmt(row['bias'], '+.2f'):>7} {_fmt(row['axial_rms']):>9} "
            f"{_fmt(row['axial_over_ensemble_rms'], '.2f', '×'):>9} {_pct(row['reject_recall']):>14} "
            f"{_pct(row['clean_flagged']):>13}  "
            f"seed {s.get('seed')}, {s.get('n_images')} images")
        if row["recall_by_reason"]:
            lines.append("  " + " " * 9 + " rejects caught per reason: "
                         + ", ".join(f"{k} {_pct(v)}"
                                     for k, v in row["recall_by_reason"].items()))
    return lines
