"""Training runs: the lease on a run, its progress, its resumption and the sweep for orphans.

Runs are leased, not trusted to Celery alone (``training.leases``): a run records which process trains it
and when it last reported. A redelivered or duplicated message for a run that another live process trains, or
that has finished, does nothing; a run whose owner died (a dead pid on this host, or no report for
``TRAINING_STALE_S``) is claimed again and resumes from its last per-epoch checkpoint.
"""
from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from django.db import transaction
from django.utils import timezone

from . import dispatch
from .conf import training_setting
from .jobs import retrain_job_advance, retrain_job_fail
from .leases import LeaseLost, lease_owner_dead, worker_identity
from .models import TrainingRun
from .snapshots import snapshot_folder
from .store import store_root

logger = logging.getLogger(__name__)


def training_run_owner_dead(*, run: TrainingRun, now: datetime | None = None) -> bool:
    """True if the process that holds ``run`` is gone: a dead pid on this host, or no report for too long."""
    return lease_owner_dead(worker=run.worker, heartbeat_at=run.heartbeat_at, now=now)


def _steps_per_epoch(run: TrainingRun) -> int:
    config = run.config
    return int(config.get("steps_per_epoch") or math.ceil(config.get("images_per_epoch", 2048) / config.get("batch_size", 64)))


def _start_session(run: TrainingRun) -> None:
    """Record a new session on ``run`` (this process as its owner), resuming from its checkpoint."""
    from training.ml.trainer import load_state

    if not run.output_dir:
        run.output_dir = str(store_root() / "runs" / f"run-{run.pk}-{run.key.hex[:8]}")
    state = load_state(run.output_dir) or {}
    steps = _steps_per_epoch(run)
    from_epoch = int(state.get("epoch", 0))
    epochs = int(run.config.get("epochs", 1))
    now = timezone.now()
    session = {"worker": worker_identity(), "started": now.isoformat(), "from_epoch": from_epoch,
               # steps reported before the crash that no checkpoint kept: trained again, counted once
               "redone_steps": max(0, run.step - from_epoch * steps) if run.sessions else 0}
    run.sessions = [*run.sessions, session]
    run.status, run.worker, run.heartbeat_at = TrainingRun.Status.RUNNING, worker_identity(), now
    run.started_at = run.started_at or now
    run.total_steps = epochs * steps
    # Progress restarts from the checkpoint, so no step is counted twice.
    run.epoch, run.step = from_epoch, from_epoch * steps
    run.progress = run.step / run.total_steps if run.total_steps else 0.0
    run.history = state.get("history", {})
    live = [p for p in run.metrics.get("live", []) if p[0] <= run.step]
    run.metrics = {**run.metrics, "live": live}


def training_run_claim(*, run_id: int, key: str) -> TrainingRun | None:
    """Take the lease on a run, or None when the message should do nothing (unknown key, finished run,
    or a run that a live process is training)."""
    with transaction.atomic():
        run = TrainingRun.objects.select_for_update().filter(pk=run_id).first()
        if run is None or str(run.key) != str(key):
            logger.warning("ignoring a message for an unknown training run", extra={"run": run_id})
            return None
        if run.status in (TrainingRun.Status.SUCCEEDED, TrainingRun.Status.FAILED):
            return None
        if run.status == TrainingRun.Status.RUNNING and not training_run_owner_dead(run=run):
            return None
        _start_session(run)
        run.save()
    return run


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


def _train(run: TrainingRun) -> Any:
    """Train the run's member; a failure is recorded on the run (and its job) and raised."""
    from training.ml.retrain import MemberPlan, train_member
    from training.ml.snapshot import load_snapshot

    try:
        rows = load_snapshot(snapshot_folder(snapshot=run.snapshot))
        plan = MemberPlan.from_json(run.config)
        return train_member(rows, plan, output_dir=Path(run.output_dir),
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


def training_run_execute(*, run_id: int, key: str) -> dict[str, Any]:
    """Train one member (resuming from its checkpoint), record the result, and advance the job."""
    from training.ml.retrain import json_safe

    run = training_run_claim(run_id=run_id, key=key)
    if run is None:
        current = TrainingRun.objects.filter(pk=run_id).values_list("status", flat=True).first()
        return {"run": run_id, "skipped": True, "status": current}
    result = _train(run)
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
    requeued = []
    with transaction.atomic():
        for run in TrainingRun.objects.select_for_update(skip_locked=True).filter(status=TrainingRun.Status.RUNNING):
            if training_run_owner_dead(run=run):
                run.status, run.worker = TrainingRun.Status.QUEUED, ""
                run.save(update_fields=["status", "worker", "updated_at"])
                requeued.append((run.pk, str(run.key), run.job.queue if run.job_id else "train"))
    for run_id, key, queue in requeued:
        dispatch.send(dispatch.TRAIN_MODEL, args=[run_id, key], queue=queue)
    return [r[0] for r in requeued]
