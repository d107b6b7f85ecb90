"""Reads from the training domain: the active ensemble, consensus rows for snapshots, runs and jobs."""
from __future__ import annotations

import json
from typing import Any

import numpy as np
from django.conf import settings
from django.db.models import Q

from .models import DatasetSnapshot, Ensemble, RetrainJob, TrainingRun


def active_ensemble_summary() -> dict[str, Any] | None:
    """The manifest summary of the ensemble marked active in ``MODEL_STORE``, or None."""
    pointer = settings.MODEL_STORE / "active.json"
    if not pointer.exists():
        return None
    manifest = json.loads(pointer.read_text())
    return {"version": manifest.get("version"), "models": len(manifest.get("models", []))}


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
