"""Writes to the training domain: dataset snapshots, retrain jobs and their training runs, scoring the
catalogue, and the model registry (register, promote, roll back, export and import).

Promotion is atomic: the database row flips inside one transaction and, once that has committed,
``MODEL_STORE/active.json`` is replaced with ``os.replace`` (atomic on POSIX), which every prediction process
reads on each request. A pointer that disagrees with the database anyway (a crash between the two) is put
right at start-up by ``ensemble_pointer_reconcile``: the database's active ensemble wins.

Training runs are leased, not trusted to Celery alone: a run records which process trains it and when it
last reported. A redelivered or duplicated message for a run that another live process trains, or that
has finished, does nothing; a run whose owner died (a dead pid on this host, or no report for
``TRAINING_STALE_S``) is claimed again and resumes from its last per-epoch checkpoint.
"""
from __future__ import annotations

import io
import json
import logging
import os
import shutil
import socket
import tarfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from training.ml.ensemble import MANIFEST_NAME, EnsembleManifest
from training.ml.ship import SHIPPED_MANIFEST, sha256_of

from .conf import training_setting
from .models import DatasetSnapshot, Ensemble, ModelVersion, RetrainJob, TrainingRun

logger = logging.getLogger(__name__)


class RegistryError(RuntimeError):
    """A registry operation that cannot proceed; the message says why."""


def _pointer_body(ensemble: Ensemble) -> dict[str, Any]:
    return {"version": ensemble.version, "folder": ensemble.folder,
            "models": [member["name"] for member in ensemble.manifest.get("members", [])]}


def _write_active_pointer(ensemble: Ensemble | None) -> None:
    store = Path(settings.MODEL_STORE)
    store.mkdir(parents=True, exist_ok=True)
    pointer = store / "active.json"
    if ensemble is None:
        pointer.unlink(missing_ok=True)
        return
    tmp = store / f".active.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(_pointer_body(ensemble)))
    os.replace(tmp, pointer)


def _after_commit(func: Callable[[], None]) -> None:
    """``func`` once the enclosing transaction commits, at once when there is none. A test case's wrapping
    transaction (pytest-django's ``db``) never commits and does not count, as for Django's durable blocks."""
    connection = transaction.get_connection()
    if connection.in_atomic_block and not all(getattr(block, "_from_testcase", False)
                                              for block in connection.atomic_blocks):
        transaction.on_commit(func)
    else:
        func()


def ensemble_register(*, folder: Path) -> Ensemble:
    """Register an ensemble folder (``manifest.json`` plus weights) under MODEL_STORE as a candidate."""
    store = Path(settings.MODEL_STORE).resolve()
    folder = folder.resolve()
    if store not in folder.parents:
        raise RegistryError(f"{folder} is not inside the model store {store}.")
    manifest = EnsembleManifest.load(folder)
    missing = [m.file for m in manifest.members if not (folder / m.file).exists()]
    if missing:
        raise RegistryError(f"The ensemble {manifest.version} lacks weight files: {', '.join(missing)}.")
    raw = json.loads((folder / "manifest.json").read_text())
    with transaction.atomic():
        ensemble, _ = Ensemble.objects.update_or_create(
            version=manifest.version,
            defaults={"folder": str(folder.relative_to(store)), "manifest": raw, "metrics": manifest.metrics},
        )
        ensemble.members.all().delete()
        ModelVersion.objects.bulk_create([
            ModelVersion(ensemble=ensemble, name=m.name, architecture=m.architecture, flavour=m.flavour, kind=m.kind,
                         weights=m.file, metrics=m.metrics)
            for m in manifest.members
        ])
    return ensemble


def ensemble_promote(*, ensemble: Ensemble) -> Ensemble:
    """Make ``ensemble`` the active one (atomically); the old one retires. ``active.json`` follows once the
    change has committed: a transaction that rolls back leaves it as it was. See ``ensemble_activate``."""
    with transaction.atomic():
        current = Ensemble.objects.select_for_update().filter(status=Ensemble.Status.ACTIVE).first()
        if current and current.pk == ensemble.pk:
            _after_commit(lambda: _write_active_pointer(ensemble))  # put right a pointer that lags behind
            return ensemble
        if current:
            current.status = Ensemble.Status.RETIRED
            current.save(update_fields=["status"])
            current.members.update(status=ModelVersion.Status.RETIRED)
        ensemble.status = Ensemble.Status.ACTIVE
        ensemble.previous = current
        ensemble.promoted_at = timezone.now()
        ensemble.save(update_fields=["status", "previous", "promoted_at"])
        ensemble.members.update(status=ModelVersion.Status.ACTIVE)
    # Only a committed promotion moves the pointer that every prediction process follows.
    _after_commit(lambda: _write_active_pointer(ensemble))
    return ensemble


def ensemble_pointer_reconcile() -> str | None:
    """Make ``active.json`` name the database's active ensemble (or remove it when none is active); run at
    start-up. Returns what was put right, or None when the two agreed."""
    pointer = Path(settings.MODEL_STORE) / "active.json"
    active = Ensemble.objects.filter(status=Ensemble.Status.ACTIVE).first()
    try:
        current = json.loads(pointer.read_text())
    except FileNotFoundError:
        current = None
    except ValueError:
        current = {"version": "(unreadable)"}
    if active is None:
        if current is None:
            return None
        _write_active_pointer(None)
        fixed = f"active.json named {current.get('version')!r} but no ensemble is active in the database: removed"
    else:
        wanted = _pointer_body(active)
        if current is not None and all(current.get(key) == wanted[key] for key in ("version", "folder")):
            return None
        _write_active_pointer(active)
        before = "was missing" if current is None else f"named {current.get('version')!r}"
        fixed = f"active.json {before}; the database's active ensemble is {active.version}: rewritten"
    logger.warning("model pointer reconciled: %s", fixed)
    return fixed


def ensemble_rollback() -> Ensemble:
    """Make the previously active ensemble active again."""
    current = Ensemble.objects.filter(status=Ensemble.Status.ACTIVE).first()
    if current is None or current.previous is None:
        raise RegistryError("There is no previous ensemble to roll back to.")
    previous = current.previous
    promoted = ensemble_promote(ensemble=previous)
    promoted.previous = None  # rolling back again should not bounce between the two
    promoted.save(update_fields=["previous"])
    return promoted


# --------------------------------------------------------------------------------------------------
# Promotion entry points: every promotion re-scores the catalogue to re-prioritise labeling
# --------------------------------------------------------------------------------------------------


def _queue_predict_catalogue() -> None:
    from .tasks import predict_catalogue

    predict_catalogue.apply_async(queue="predict")


def ensemble_activate(*, ensemble: Ensemble) -> Ensemble:
    """Promote ``ensemble`` and, once committed, queue ``predict_catalogue`` so labeling follows the new model.
    (No transaction of its own: the promotion commits, or joins the caller's transaction, and the pointer and
    the re-scoring follow that commit.)"""
    promoted = ensemble_promote(ensemble=ensemble)
    transaction.on_commit(_queue_predict_catalogue)
    return promoted


def ensemble_rollback_and_rescore() -> Ensemble:
    """Roll back to the previous ensemble and re-score the catalogue with it."""
    with transaction.atomic():
        restored = ensemble_rollback()
        transaction.on_commit(_queue_predict_catalogue)
    return restored


# --------------------------------------------------------------------------------------------------
# Dataset snapshots
# --------------------------------------------------------------------------------------------------


class SnapshotError(ValueError):
    """A snapshot cannot be built (e.g. no consensus labels with images); the message says why."""


def snapshot_build(*, synthetic: int = 0, seed: int = 2026, user: Any = None, test_fraction: float = 0.15,
                   val_fraction: float = 0.1) -> DatasetSnapshot:
    """Freeze the current consensus (plus ``synthetic`` generated galaxies) into a snapshot.

    The same content (labels, split and pixels) gives the same hash: an existing snapshot with that
    hash is returned instead of writing a copy.
    """
    from training.ml.snapshot import SnapshotRows, content_hash, stratified_split, synthetic_rows, write_snapshot

    from .selectors import consensus_training_rows

    if synthetic < 0:
        raise SnapshotError("The number of synthetic galaxies cannot be negative.")
    parts = [p for p in (consensus_training_rows(), synthetic_rows(synthetic, seed=seed) if synthetic else None) if p]
    if not parts:
        raise SnapshotError("There are no consensus labels with images yet, and no synthetic galaxies were asked for.")
    rows = SnapshotRows.concatenate(parts)
    rows.split = stratified_split(ids=rows.id, inclination=rows.inclination, rejected=rows.rejected, seed=seed,
                                  test_fraction=test_fraction, val_fraction=val_fraction)
    import numpy as np

    rows = rows.take(np.argsort(rows.id, kind="stable"))
    digest = content_hash(rows)
    existing = DatasetSnapshot.objects.filter(content_hash=digest).first()
    if existing and (Path(settings.MODEL_STORE) / existing.path / "index.json").exists():
        return existing
    name = f"snap-{digest[:12]}"
    relative = Path("datasets") / name
    description = {"seed": seed, "synthetic": synthetic, "test_fraction": test_fraction, "val_fraction": val_fraction}
    index = write_snapshot(Path(settings.MODEL_STORE) / relative, rows,
                           shard_rows=int(training_setting("SNAPSHOT_SHARD_ROWS")), description=description)
    counts = index["counts"]
    snapshot, _ = DatasetSnapshot.objects.update_or_create(name=name, defaults={
        "content_hash": digest, "path": str(relative), "n_train": counts["train"]["galaxies"],
        "n_val": counts["val"]["galaxies"], "n_test": counts["test"]["galaxies"],
        "description": {**description, "counts": counts, "shards": len(index["shards"])}, "created_by": user})
    return snapshot


def snapshot_folder(*, snapshot: DatasetSnapshot) -> Path:
    return Path(settings.MODEL_STORE) / snapshot.path


# --------------------------------------------------------------------------------------------------
# Retrain jobs: snapshot → member runs (the chord's header) → evaluation and registration
# --------------------------------------------------------------------------------------------------


class RetrainError(ValueError):
    """Bad retrain parameters; the message is shown to staff."""


def _queues() -> tuple[str, ...]:
    return tuple(settings.CELERY_TASK_QUEUES_NAMES)


def _mark(job: RetrainJob, phase: str) -> None:
    job.timings[phase] = timezone.now().isoformat()


def retrain_job_create(*, user: Any = None, snapshot_id: int | None = None, synthetic: int = 0,
                       profile: str = "quick", architectures: list[str] | None = None,
                       flavours: list[int] | None = None, reject_architectures: list[str] | None = None,
                       epochs: int | None = None, reject_epochs: int | None = None,
                       steps_per_epoch: int | None = None, batch_size: int | None = None, queue: str = "train",
                       promote: bool = False) -> RetrainJob:
    """Validate the request, record the job and queue its first task (snapshot, or training directly)."""
    from training.ml.architectures import ARCHITECTURES
    from training.ml.retrain import plan_members

    unknown = sorted((set(architectures or []) | set(reject_architectures or [])) - set(ARCHITECTURES))
    if unknown:
        raise RetrainError(f"Unknown architecture {', '.join(unknown)}; choose from {', '.join(ARCHITECTURES)}.")
    if queue not in _queues():
        raise RetrainError(f"Unknown queue {queue!r}; choose from {', '.join(_queues())}.")
    try:
        plans = plan_members(profile=profile, architectures=architectures, flavours=flavours,
                             reject_architectures=reject_architectures, epochs=epochs, reject_epochs=reject_epochs,
                             steps_per_epoch=steps_per_epoch, batch_size=batch_size)
    except ValueError as exc:
        raise RetrainError(str(exc)) from None
    snapshot = None
    if snapshot_id is not None:
        snapshot = DatasetSnapshot.objects.filter(pk=snapshot_id).first()
        if snapshot is None:
            raise RetrainError(f"There is no snapshot {snapshot_id}.")
    params = {"profile": profile, "synthetic": synthetic, "members": [p.to_json() for p in plans]}
    with transaction.atomic():
        job = RetrainJob.objects.create(
            status=RetrainJob.Status.TRAINING if snapshot else RetrainJob.Status.SNAPSHOT, snapshot=snapshot,
            params=params, queue=queue, promote=promote, started_by=user if getattr(user, "pk", None) else None,
            timings={"created": timezone.now().isoformat()})
        transaction.on_commit(lambda: _dispatch_job(job.pk))
    return job


def _dispatch_job(job_id: int) -> None:
    from .tasks import build_snapshot, train_ensemble

    job = RetrainJob.objects.get(pk=job_id)
    if job.snapshot_id is None:
        build_snapshot.apply_async(args=[job.pk], queue=job.queue)
    else:
        train_ensemble.apply_async(args=[job.pk], queue=job.queue)


def retrain_job_fail(*, job_id: int, error: str) -> None:
    RetrainJob.objects.filter(pk=job_id).exclude(status=RetrainJob.Status.DONE).update(
        status=RetrainJob.Status.FAILED, error=error[:4000], updated_at=timezone.now())


def retrain_job_snapshot(*, job_id: int) -> RetrainJob:
    """Build (or reuse) the job's snapshot, then queue its training."""
    from .tasks import train_ensemble

    job = RetrainJob.objects.get(pk=job_id)
    if job.status == RetrainJob.Status.SNAPSHOT:
        try:
            snapshot = snapshot_build(synthetic=int(job.params.get("synthetic", 0)), user=job.started_by)
        except SnapshotError as exc:
            retrain_job_fail(job_id=job.pk, error=str(exc))
            raise
        job.snapshot = snapshot
        job.status = RetrainJob.Status.TRAINING
        _mark(job, "snapshot_done")
        job.save(update_fields=["snapshot", "status", "timings", "updated_at"])
    if job.status == RetrainJob.Status.TRAINING:
        train_ensemble.apply_async(args=[job.pk], queue=job.queue)
    return job


def retrain_job_start_training(*, job_id: int) -> list[TrainingRun]:
    """Create the member runs once (idempotent) and queue every run that has not succeeded.

    This is the header of the job's chord. Its body is ``retrain_job_advance``: the database, not a
    Celery chord counter, decides when every member is done. A Redis chord counts a redelivered member
    twice and could fire evaluation early; a row lock on the job cannot.
    """
    from .tasks import train_model

    with transaction.atomic():
        job = RetrainJob.objects.select_for_update().get(pk=job_id)
        if job.status != RetrainJob.Status.TRAINING:
            return []
        if not job.runs.exists():
            TrainingRun.objects.bulk_create([
                TrainingRun(job=job, snapshot=job.snapshot, name=m["name"], architecture=m["architecture"],
                            flavour=m["flavour"], kind=m["kind"], config=m, started_by=job.started_by)
                for m in job.params["members"]])
            _mark(job, "training_started")
            job.save(update_fields=["timings", "updated_at"])
        runs = list(job.runs.exclude(status=TrainingRun.Status.SUCCEEDED).order_by("pk"))
        queue = job.queue
    for run in runs:
        train_model.apply_async(args=[run.pk, str(run.key)], queue=queue)
    return runs


def retrain_job_advance(*, job_id: int) -> bool:
    """Move the job to evaluation when every run has succeeded; True if this call did it (exactly once)."""
    from .tasks import evaluate_model

    with transaction.atomic():
        job = RetrainJob.objects.select_for_update().get(pk=job_id)
        if job.status != RetrainJob.Status.TRAINING:
            return False
        statuses = set(job.runs.values_list("status", flat=True))
        if statuses != {TrainingRun.Status.SUCCEEDED}:
            return False
        job.status = RetrainJob.Status.EVALUATING
        _mark(job, "training_done")
        job.save(update_fields=["status", "timings", "updated_at"])
        transaction.on_commit(lambda: evaluate_model.apply_async(args=[job_id], queue=job.queue))
    return True


def retrain_job_evaluate(*, job_id: int) -> Ensemble | None:
    """Assemble the members into an ensemble, evaluate it, register it as a candidate, compare it with the
    active ensemble on the same test set, judge it on the independent family, and promote it if the job
    asked for that. Idempotent."""
    from training.ml.retrain import assemble_ensemble, compare_on_test, evaluate_folder, json_safe
    from training.ml.snapshot import load_snapshot

    job = RetrainJob.objects.select_related("snapshot").get(pk=job_id)
    if job.status == RetrainJob.Status.DONE:
        return job.ensemble
    if job.status != RetrainJob.Status.EVALUATING:
        return None
    runs = list(job.runs.order_by("pk"))
    version = f"retrain-{job.pk}-{job.snapshot.content_hash[:8]}"
    folder = Path(settings.MODEL_STORE) / "ensembles" / version
    rows = load_snapshot(snapshot_folder(snapshot=job.snapshot))
    members = [{"name": r.name, "architecture": r.architecture, "flavour": r.flavour, "kind": r.kind,
                "group": r.config.get("group", 0), "history": r.history,
                "model_path": Path(r.output_dir) / "best.keras"} for r in runs]
    from training.ml.pipeline import PROFILES

    tta = PROFILES.get(job.params.get("profile") or "quick", PROFILES["quick"]).tta
    assemble_ensemble(folder, version=version, members=members, tta=tta,
                      snapshot={"name": job.snapshot.name, "content_hash": job.snapshot.content_hash})
    metrics = evaluate_folder(folder, rows, log=logger.info)
    ensemble = ensemble_register(folder=folder)
    ensemble.snapshot = job.snapshot
    active = Ensemble.objects.filter(status=Ensemble.Status.ACTIVE).exclude(pk=ensemble.pk).first()
    folders = {"candidate": folder}
    if active:
        folders["active"] = Path(settings.MODEL_STORE) / active.folder
    try:
        comparison = compare_on_test(folders, rows)
    except Exception as exc:  # noqa: BLE001 - a broken old ensemble must not block the new candidate
        comparison = {"error": f"comparison failed: {exc}"}
    ensemble.metrics = json_safe({**ensemble.metrics, "comparison": comparison})
    ensemble.save(update_fields=["snapshot", "metrics"])
    if job.params.get("independent", True) and training_setting("INDEPENDENT_CHECK"):
        # Judged on the independent family before anyone promotes it (≈ 1–2 min at 240 + 80 images).
        from .independent_services import independent_check

        independent_check(ensemble=ensemble, log=logger.info)
    by_name = {r.name: r for r in runs}
    for member in ensemble.members.all():
        run = by_name.get(member.name)
        if run:
            member.run = run
            member.save(update_fields=["run"])
            test_metrics = metrics.get("test", {}).get("members", {}).get(member.name) \
                or metrics.get("reject", {}).get("members", {}).get(member.name)
            run.metrics = {**run.metrics, "test": test_metrics}
            run.save(update_fields=["metrics", "updated_at"])
    with transaction.atomic():
        job = RetrainJob.objects.select_for_update().get(pk=job_id)
        job.ensemble = ensemble
        job.status = RetrainJob.Status.DONE
        _mark(job, "evaluated")
        if job.promote:
            ensemble_activate(ensemble=ensemble)
            _mark(job, "promoted")
        job.save(update_fields=["ensemble", "status", "timings", "updated_at"])
    return ensemble


# --------------------------------------------------------------------------------------------------
# Training runs: lease, progress, resumption
# --------------------------------------------------------------------------------------------------


class LeaseLost(RuntimeError):
    """Another process took this run over (this one was presumed dead); stop without writing more."""


def _me() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _pid_alive(pid: int) -> bool:
    """True if ``pid`` runs. A zombie counts as dead: in a container whose PID 1 does not reap orphans,
    a killed worker's pool child stays a zombie, and ``kill(pid, 0)`` still succeeds on it."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return True  # no procfs (not Linux): trust kill()
    return state not in ("Z", "X")


def training_run_owner_dead(*, run: TrainingRun, now: datetime | None = None) -> bool:
    """True if the process that holds ``run`` is gone: a dead pid on this host, or no report for too long."""
    now = now or timezone.now()
    if not run.worker:
        return True
    host, _, pid = run.worker.rpartition(":")
    if host == socket.gethostname() and pid.isdigit():
        if int(pid) == os.getpid():
            return True  # this very process is asking, so it is not training the run right now
        if not _pid_alive(int(pid)):
            return True
    stale = timedelta(seconds=float(training_setting("STALE_S")))
    return run.heartbeat_at is None or now - run.heartbeat_at > stale


def training_run_claim(*, run_id: int, key: str) -> TrainingRun | None:
    """Take the lease on a run, or None when the message should do nothing (unknown key, finished run,
    or a run that a live process is training)."""
    from training.ml.trainer import load_state

    with transaction.atomic():
        run = TrainingRun.objects.select_for_update().filter(pk=run_id).first()
        if run is None or str(run.key) != str(key):
            logger.warning("ignoring a message for an unknown training run", extra={"run": run_id})
            return None
        if run.status in (TrainingRun.Status.SUCCEEDED, TrainingRun.Status.FAILED):
            return None
        if run.status == TrainingRun.Status.RUNNING and not training_run_owner_dead(run=run):
            return None
        if not run.output_dir:
            run.output_dir = str(Path(settings.MODEL_STORE) / "runs" / f"run-{run.pk}-{run.key.hex[:8]}")
        state = load_state(run.output_dir) or {}
        steps = _steps_per_epoch(run)
        from_epoch = int(state.get("epoch", 0))
        epochs = int(run.config.get("epochs", 1))
        now = timezone.now()
        session = {"worker": _me(), "started": now.isoformat(), "from_epoch": from_epoch,
                   # steps reported before the crash that no checkpoint kept: trained again, counted once
                   "redone_steps": max(0, run.step - from_epoch * steps) if run.sessions else 0}
        run.sessions = [*run.sessions, session]
        run.status, run.worker, run.heartbeat_at = TrainingRun.Status.RUNNING, _me(), now
        run.started_at = run.started_at or now
        run.total_steps = epochs * steps
        # Progress restarts from the checkpoint, so no step is counted twice.
        run.epoch, run.step = from_epoch, from_epoch * steps
        run.progress = run.step / run.total_steps if run.total_steps else 0.0
        run.history = state.get("history", {})
        live = [p for p in run.metrics.get("live", []) if p[0] <= run.step]
        run.metrics = {**run.metrics, "live": live}
        run.save()
    return run


def _steps_per_epoch(run: TrainingRun) -> int:
    import math

    config = run.config
    return int(config.get("steps_per_epoch") or math.ceil(config.get("images_per_epoch", 2048) / config.get("batch_size", 64)))


def _progress_writer(run: TrainingRun) -> Callable[[Any], None]:
    """A trainer progress hook that writes to the run row (throttled) and checks the lease on every write."""
    from training.ml.retrain import json_safe

    interval = float(training_setting("PROGRESS_INTERVAL_S"))
    max_points = int(training_setting("LIVE_POINTS"))
    steps = _steps_per_epoch(run)
    me = run.worker
    last = {"t": 0.0}
    live = list(run.metrics.get("live", []))

    def write(progress: Any) -> None:
        now = time.monotonic()
        global_step = (progress.epoch - 1) * steps + progress.step
        end_of_epoch = progress.phase == "epoch_end"
        if not end_of_epoch and now - last["t"] < interval and progress.step != progress.steps:
            return
        last["t"] = now
        if progress.loss == progress.loss:  # not NaN
            if live and live[-1][0] >= global_step:
                live.pop()  # the epoch-end report repeats the last step with the epoch's final loss
            live.append([global_step, round(float(progress.loss), 6)])
            while len(live) > max_points:
                del live[1::2]  # halve the resolution, keep the ends
        fields: dict[str, Any] = {
            "epoch": progress.epoch if end_of_epoch else progress.epoch - 1, "step": global_step,
            "loss": progress.loss if progress.loss == progress.loss else None,
            "progress": min(1.0, global_step / max(run.total_steps, 1)), "eta_seconds": progress.eta_seconds,
            "heartbeat_at": timezone.now(), "updated_at": timezone.now(),
        }
        run.metrics["live"] = live
        fields["metrics"] = json_safe(run.metrics)
        if end_of_epoch:
            history_path = Path(run.output_dir) / "history.json"
            fields["history"] = json_safe(json.loads(history_path.read_text())) if history_path.exists() else {}
        updated = TrainingRun.objects.filter(pk=run.pk, worker=me, status=TrainingRun.Status.RUNNING).update(**fields)
        if not updated:
            raise LeaseLost(f"Run {run.pk} was taken over by another worker.")

    return write


def training_run_execute(*, run_id: int, key: str) -> dict[str, Any]:
    """Train one member (resuming from its checkpoint), record the result, and advance the job."""
    from training.ml.retrain import MemberPlan, json_safe, train_member
    from training.ml.snapshot import load_snapshot

    run = training_run_claim(run_id=run_id, key=key)
    if run is None:
        current = TrainingRun.objects.filter(pk=run_id).values_list("status", flat=True).first()
        return {"run": run_id, "skipped": True, "status": current}
    try:
        rows = load_snapshot(snapshot_folder(snapshot=run.snapshot))
        plan = MemberPlan.from_json(run.config)
        result = train_member(rows, plan, output_dir=Path(run.output_dir),
                              snapshot_seed=int(run.snapshot.description.get("seed", 2026)),
                              progress=_progress_writer(run))
    except LeaseLost:
        raise
    except Exception as exc:
        logger.exception("training run failed", extra={"run": run.pk})
        TrainingRun.objects.filter(pk=run.pk, worker=run.worker).update(
            status=TrainingRun.Status.FAILED, error=f"{type(exc).__name__}: {exc}"[:4000], finished_at=timezone.now())
        if run.job_id:
            retrain_job_fail(job_id=run.job_id, error=f"{run.name} failed: {exc}")
        raise
    sessions = list(run.sessions)
    sessions[-1] = {**sessions[-1], "ended": timezone.now().isoformat(), "to_epoch": result.epochs_run}
    steps = _steps_per_epoch(run)
    summary = {"best_epoch": result.best_epoch, "best_val_loss": result.best_val_loss, "epochs_run": result.epochs_run,
               "stopped_early": result.stopped_early, "seconds": result.seconds, "device": result.device}
    TrainingRun.objects.filter(pk=run.pk, worker=run.worker).update(
        status=TrainingRun.Status.SUCCEEDED, epoch=result.epochs_run, step=result.epochs_run * steps,
        total_steps=result.epochs_run * steps if result.stopped_early else run.total_steps, progress=1.0,
        eta_seconds=0.0, history=json_safe(result.history), sessions=sessions,
        metrics=json_safe({**TrainingRun.objects.get(pk=run.pk).metrics, "train": summary}),
        finished_at=timezone.now(), heartbeat_at=timezone.now())
    if run.job_id:
        retrain_job_advance(job_id=run.job_id)
    return {"run": run.pk, "skipped": False, "epochs": result.epochs_run}


def training_runs_requeue_orphans() -> list[int]:
    """Re-send the message of every running run whose owner died. Safe to call any time, from anywhere:
    a requeued run is marked queued, and a live owner keeps its lease."""
    from .tasks import train_model

    requeued = []
    with transaction.atomic():
        for run in TrainingRun.objects.select_for_update(skip_locked=True).filter(status=TrainingRun.Status.RUNNING):
            if training_run_owner_dead(run=run):
                run.status, run.worker = TrainingRun.Status.QUEUED, ""
                run.save(update_fields=["status", "worker", "updated_at"])
                requeued.append((run.pk, str(run.key), run.job.queue if run.job_id else "train"))
    for run_id, key, queue in requeued:
        train_model.apply_async(args=[run_id, key], queue=queue)
    return [r[0] for r in requeued]


# --------------------------------------------------------------------------------------------------
# Scoring the catalogue: the ensemble's spread becomes the labeling priority
# --------------------------------------------------------------------------------------------------

_ensemble_cache: dict[str, Any] = {}


def _active_fused() -> Any:
    from training.ml.ensemble import FusedEnsemble

    pointer = Path(settings.MODEL_STORE) / "active.json"
    if not pointer.exists():
        return None
    data = json.loads(pointer.read_text())
    key = f"{data['version']}|{data['folder']}"
    if key not in _ensemble_cache:
        _ensemble_cache.clear()
        _ensemble_cache[key] = FusedEnsemble(Path(settings.MODEL_STORE) / data["folder"])
    return _ensemble_cache[key]


def catalogue_predict(*, limit: int | None = None) -> dict[str, Any]:
    """Score unlabelled galaxies that have images with the active ensemble; each galaxy's inclination
    spread (stdev over the members, degrees) becomes its ``labeling_priority``, then the Zoo queue syncs."""
    import numpy as np

    from catalog.models import Galaxy
    from labeling.models import ConsensusStatus, Standard
    from labeling.services import queue_sync_priorities

    from .selectors import galaxy_model_views

    ensemble = _active_fused()
    if ensemble is None:
        return {"scored": 0, "version": None, "synced": 0}
    decided = [ConsensusStatus.ACCEPTED, ConsensusStatus.FACE_ON, ConsensusStatus.REJECTED]
    ids = list(Galaxy.objects.filter(images__isnull=False)
               .exclude(zoo_consensus__status__in=decided)
               .exclude(pk__in=Standard.objects.values("galaxy_id")).order_by("pk").values_list("pk", flat=True)
               .distinct())
    if limit:
        ids = ids[:limit]
    batch = int(training_setting("PREDICT_BATCH"))
    scored = 0
    for start in range(0, len(ids), batch):
        views = galaxy_model_views(galaxy_ids=ids[start:start + batch])
        chunk = [gid for gid in ids[start:start + batch] if gid in views]
        if not chunk:
            continue
        predictions = ensemble.predict(np.stack([views[g]["colour"] for g in chunk]))
        galaxies = list(Galaxy.objects.filter(pk__in=chunk))
        spread = {g: p.inclination_stdev for g, p in zip(chunk, predictions, strict=True)}
        for galaxy in galaxies:
            galaxy.labeling_priority = round(float(spread[galaxy.pk]), 4)
        Galaxy.objects.bulk_update(galaxies, ["labeling_priority"], batch_size=1000)
        scored += len(chunk)
    synced = queue_sync_priorities()
    return {"scored": scored, "version": ensemble.version, "synced": synced}


# --------------------------------------------------------------------------------------------------
# Scheduled jobs
# --------------------------------------------------------------------------------------------------


def consensus_export_to_store() -> Path:
    """Write the whole consensus as CSV under MODEL_STORE/exports (kept next to the snapshots it feeds)."""
    from labeling.services import consensus_export

    data, _ = consensus_export(fmt="csv", retired_only=False)
    folder = Path(settings.MODEL_STORE) / "exports"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"consensus-{datetime.now(dt_timezone.utc):%Y%m%d}.csv"
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return path


def retrain_if_due() -> RetrainJob | None:
    """The weekly job: retrain when enabled and enough consensus labels are newer than the last snapshot."""
    from .selectors import consensus_labels_since

    if not training_setting("WEEKLY_RETRAIN"):
        return None
    last = DatasetSnapshot.objects.order_by("-created_at").first()
    new_labels = consensus_labels_since(since=last.created_at if last else None)
    if new_labels < int(training_setting("RETRAIN_MIN_NEW_LABELS")):
        return None
    return retrain_job_create(profile=str(training_setting("RETRAIN_PROFILE")))


# --------------------------------------------------------------------------------------------------
# Shipping an ensemble between machines: one tar.gz with the manifest and the weights
# --------------------------------------------------------------------------------------------------


def ensemble_export_archive(*, ensemble: Ensemble, path: Path) -> Path:
    """Write ``ensemble``'s folder (manifest, weights, plots) as a tar.gz whose top folder is its version."""
    folder = Path(settings.MODEL_STORE) / ensemble.folder
    manifest = EnsembleManifest.load(folder)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as archive:
        archive.add(folder / MANIFEST_NAME, arcname=f"{manifest.version}/{MANIFEST_NAME}")
        for member in manifest.members:
            archive.add(folder / member.file, arcname=f"{manifest.version}/{member.file}")
        if (folder / "plots").is_dir():
            archive.add(folder / "plots", arcname=f"{manifest.version}/plots")
    return path


def ensemble_import_archive(*, path: Path) -> Ensemble:
    """Unpack an archive from ``ensemble_export_archive`` into MODEL_STORE/ensembles and register it as a
    candidate. Refuses archives with paths outside one top folder, links, or missing weights."""
    with tarfile.open(path, "r:gz") as archive:
        members = archive.getmembers()
        tops = {Path(m.name).parts[0] for m in members if m.name}
        if len(tops) != 1:
            raise RegistryError("The archive must hold exactly one ensemble folder.")
        top = tops.pop()
        for member in members:
            parts = Path(member.name).parts
            if member.issym() or member.islnk() or ".." in parts or Path(member.name).is_absolute():
                raise RegistryError(f"Refusing the archive entry {member.name!r}.")
        manifest_entry = archive.extractfile(f"{top}/{MANIFEST_NAME}") if f"{top}/{MANIFEST_NAME}" in archive.getnames() else None
        if manifest_entry is None:
            raise RegistryError("The archive has no manifest.json.")
        manifest = EnsembleManifest.from_dict(json.load(io.TextIOWrapper(manifest_entry, encoding="utf-8")))
        target = Path(settings.MODEL_STORE) / "ensembles" / manifest.version
        if Ensemble.objects.filter(version=manifest.version).exists():
            raise RegistryError(f"An ensemble {manifest.version} is already registered.")
        staging = target.with_name(f".{manifest.version}.importing")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        for member in members:
            if member.isfile():
                relative = Path(*Path(member.name).parts[1:])
                (staging / relative).parent.mkdir(parents=True, exist_ok=True)
                with archive.extractfile(member) as source, (staging / relative).open("wb") as out:  # type: ignore[union-attr]
                    shutil.copyfileobj(source, out)
    shutil.rmtree(target, ignore_errors=True)
    os.replace(staging, target)
    return ensemble_register(folder=target)


# --------------------------------------------------------------------------------------------------
# The ensemble shipped in the repository (models/), installed on first run
# --------------------------------------------------------------------------------------------------


def shipped_manifest(*, models_dir: Path) -> dict[str, Any] | None:
    """``models/manifest.json`` (keys ``archive``, ``sha256``, ``version``), or None when nothing is shipped."""
    path = models_dir / SHIPPED_MANIFEST
    if not path.is_file():
        return None
    manifest = json.loads(path.read_text(encoding="utf-8"))
    missing = [key for key in ("archive", "sha256", "version") if not manifest.get(key)]
    if missing:
        raise RegistryError(f"{path} lacks {', '.join(missing)}.")
    return manifest


def ensemble_install_shipped(*, models_dir: Path, activate_if_none: bool = True) -> Ensemble | None:
    """Import the archive shipped under ``models_dir`` (checksum verified) and make it active when no
    ensemble is. Idempotent: an already registered version is not imported twice. Returns None when
    nothing is shipped."""
    manifest = shipped_manifest(models_dir=models_dir)
    if manifest is None:
        return None
    archive = (models_dir / manifest["archive"]).resolve()
    if models_dir.resolve() not in archive.parents or not archive.is_file():
        raise RegistryError(f"The shipped archive {manifest['archive']!r} is not a file under {models_dir}.")
    ensemble = Ensemble.objects.filter(version=manifest["version"]).first()
    if ensemble is None:
        actual = sha256_of(archive)
        if actual != manifest["sha256"]:
            raise RegistryError(f"{archive.name}: sha256 {actual} does not match the manifest's {manifest['sha256']}.")
        ensemble = ensemble_import_archive(path=archive)
        if ensemble.version != manifest["version"]:
            raise RegistryError(f"{archive.name} holds {ensemble.version}, the manifest says {manifest['version']}.")
        logger.info("Installed the shipped ensemble %s", ensemble.version)
    if activate_if_none and not Ensemble.objects.filter(status=Ensemble.Status.ACTIVE).exists():
        ensemble = ensemble_activate(ensemble=ensemble)
    return ensemble
