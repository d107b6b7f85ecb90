"""Writes for ensemble builds: ``build_ensemble`` on synthetic galaxies (``training.ml.pipeline``) run as a
job of kind ``build`` (a ``RetrainJob`` row), so the staff pages show its stage, progress and failure.

- **Stable folder.** A build's version and folder are fixed when its job is created,
  ``<profile>-<job id>-<key8>`` under ``MODEL_STORE/ensembles``, so a redelivered or requeued message
  resumes from the per-member checkpoints there instead of starting over in a new folder. A build that
  fails before writing anything leaves no folder behind.
- **One build at a time.** A build holds a lease (``training.leases``: ``worker`` = host:pid, ``heartbeat_at``, renewed by a
  heartbeat thread and by every progress write) taken with a conditional UPDATE, and a partial unique
  index lets only one build job be ``running`` — this works on SQLite, where ``select_for_update`` is a
  no-op, as well as on PostgreSQL. A second build waits (``BuildBusy``; the task retries it later).
- **Dead owners.** A build whose process died (dead pid on this host, or no heartbeat for
  ``TRAINING_STALE_S``) is re-sent by ``ensemble_builds_requeue_orphans`` (at worker start and from beat),
  unless it ran past its time limit or died ``TRAINING_BUILD_MAX_SESSIONS`` times: then it is failed.
- **Time limits** per profile come from ``settings.TRAINING_BUILD_TIME_LIMITS_S``; the task's soft limit
  ends here as a recorded failure.
"""
from __future__ import annotations

import json
import logging
import shutil
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from core.errors import InvalidInput
from training.ml.ensemble import MANIFEST_NAME

from . import dispatch, selectors
from .conf import training_setting
from .independent_services import independent_check
from .leases import LeaseHeartbeat, LeaseLost, lease_owner_dead, worker_identity
from .models import Ensemble, RetrainJob
from .registry import ensemble_activate, ensemble_register
from .store import store_root

logger = logging.getLogger(__name__)

BUILD = RetrainJob.Kind.BUILD
Status = RetrainJob.Status
# Shares of the progress bar: generation, then training (by epochs), then evaluation and registration.
GENERATION_SHARE, EVALUATION_SHARE = 0.08, 0.07


class BuildError(InvalidInput, ValueError):
    """A build cannot be created (e.g. an unknown profile); the message says why."""


class BuildBusy(RuntimeError):
    """Another build is running; this one stays queued and should be tried again later."""

    def __init__(self, running_id: int) -> None:
        self.running_id = running_id
        super().__init__(f"Build #{running_id} is running; this build waits for it.")


def build_time_limits(profile: str) -> tuple[float, float]:
    """(soft, hard) Celery time limits in seconds for a build of ``profile``."""
    limits = settings.TRAINING_BUILD_TIME_LIMITS_S
    soft = float(limits.get(profile, limits.get("default", 12 * 3600)))
    return soft, soft + max(300.0, 0.1 * soft)


def build_folder(*, job: RetrainJob) -> Path:
    return store_root() / "ensembles" / job.params["version"]


def _profiles() -> dict[str, Any]:
    from training.ml.pipeline import PROFILES

    return PROFILES


# --------------------------------------------------------------------------------------------------
# Creating and queueing builds
# --------------------------------------------------------------------------------------------------


def ensemble_build_create(*, profile: str = "quick", promote: bool = True, if_none_active: bool = False,
                          workers: int = 2, user: Any = None, key: uuid.UUID | None = None,
                          queue: str = "train", independent: bool = True) -> RetrainJob:
    """Record a queued build job; its version (and folder) is fixed now, from its id and key."""
    if profile not in _profiles():
        raise BuildError(f"Unknown profile {profile!r}; choose from {', '.join(sorted(_profiles()))}.")
    now = timezone.now()
    with transaction.atomic():
        job = RetrainJob.objects.create(
            kind=BUILD, status=Status.QUEUED, key=key or uuid.uuid4(), queue=queue, promote=promote,
            stage="queued", started_by=user if getattr(user, "pk", None) else None,
            params={"profile": profile, "if_none_active": if_none_active, "workers": int(workers),
                    "independent": bool(independent)},
            timings={"created": now.isoformat()})
        job.params["version"] = f"{profile}-{job.pk}-{job.key.hex[:8]}"
        job.save(update_fields=["params"])
    return job


def _send(job_id: int) -> None:
    job = RetrainJob.objects.get(pk=job_id)
    dispatch.send(dispatch.BUILD_ENSEMBLE, kwargs={"profile": job.params["profile"], "job_id": job.pk,
                                                   "key": str(job.key)}, queue=job.queue)


def ensemble_build_queue(*, profile: str = "quick", promote: bool = True, if_none_active: bool = True,
                         user: Any = None, independent: bool = True) -> RetrainJob | None:
    """Queue a build on a Celery worker (``make run``, staff). An unfinished build of the same profile is
    reused rather than doubled; it is sent again unless a live process is running it. None (nothing
    queued) when ``if_none_active`` and an ensemble is active; the worker checks that again."""
    if if_none_active and Ensemble.objects.filter(status=Ensemble.Status.ACTIVE).exists():
        return None
    existing = (RetrainJob.objects.filter(kind=BUILD, status__in=[Status.QUEUED, Status.RUNNING],
                                          params__profile=profile).order_by("pk").first())
    if existing is not None:
        if existing.status == Status.QUEUED or lease_owner_dead(worker=existing.worker,
                                                                 heartbeat_at=existing.heartbeat_at):
            transaction.on_commit(lambda: _send(existing.pk))
        return existing
    job = ensemble_build_create(profile=profile, promote=promote, if_none_active=if_none_active, user=user,
                                independent=independent)
    transaction.on_commit(lambda: _send(job.pk))
    return job


def ensemble_build_for_message(*, message_id: str, profile: str, promote: bool, if_none_active: bool) -> RetrainJob:
    """The job of a ``build_ensemble`` message sent without one (``build_ensemble.delay("quick")``): its key
    derives from the message id, so a redelivered message finds the same job, and so the same folder."""
    key = uuid.uuid5(uuid.NAMESPACE_URL, f"inclinet:build_ensemble:{message_id}")
    job = RetrainJob.objects.filter(kind=BUILD, key=key).first()
    return job or ensemble_build_create(profile=profile, promote=promote, if_none_active=if_none_active, key=key)


def ensemble_build_reopen(*, job_id: int) -> RetrainJob:
    """Queue a failed build again; run it, and it resumes from the checkpoints in its folder."""
    updated = RetrainJob.objects.filter(pk=job_id, kind=BUILD, status__in=[Status.FAILED, Status.QUEUED]).update(
        status=Status.QUEUED, worker="", stage="queued again", error="", updated_at=timezone.now())
    if not updated:
        raise BuildError(f"There is no failed or queued build #{job_id}.")
    return RetrainJob.objects.get(pk=job_id)


# --------------------------------------------------------------------------------------------------
# The lease: claim, heartbeat, failure
# --------------------------------------------------------------------------------------------------


def ensemble_build_claim(*, job_id: int, key: str) -> RetrainJob | None:
    """Take the lease on a build, or None when the message should do nothing (unknown key, finished build,
    or one a live process runs). Raises ``BuildBusy`` while another build runs."""
    job = RetrainJob.objects.filter(pk=job_id, kind=BUILD).first()
    if job is None or str(job.key) != str(key):
        logger.warning("ignoring a message for an unknown build", extra={"job": job_id})
        return None
    if job.status in (Status.DONE, Status.FAILED):
        return None
    if job.status == Status.RUNNING and not lease_owner_dead(worker=job.worker, heartbeat_at=job.heartbeat_at):
        return None
    for other in RetrainJob.objects.filter(kind=BUILD, status=Status.RUNNING).exclude(pk=job.pk):
        if lease_owner_dead(worker=other.worker, heartbeat_at=other.heartbeat_at):
            if _requeue_or_fail_dead(other):  # frees the lock; the dead build is sent again and waits its turn
                _send(other.pk)
        else:
            _wait_for(job, other.pk)
    now = timezone.now()
    me = worker_identity()
    try:
        with transaction.atomic():
            # Compare-and-set on (status, worker): of two processes claiming at once, exactly one matches.
            updated = RetrainJob.objects.filter(pk=job.pk, status=job.status, worker=job.worker).update(
                status=Status.RUNNING, worker=me, heartbeat_at=now, stage="starting", error="",
                sessions=[*job.sessions, {"worker": me, "started": now.isoformat()}], updated_at=now)
    except IntegrityError:
        # one_running_build: another build became running between the check above and this update
        running = RetrainJob.objects.filter(kind=BUILD, status=Status.RUNNING).exclude(pk=job.pk).first()
        _wait_for(job, running.pk if running else 0)
    if not updated:
        return None
    job.refresh_from_db()
    return job


def _wait_for(job: RetrainJob, running_id: int) -> None:
    RetrainJob.objects.filter(pk=job.pk, status=Status.QUEUED).update(
        stage=f"waiting for build #{running_id} to finish", updated_at=timezone.now())
    raise BuildBusy(running_id)


def _fail(job_id: int, worker: str, error: str) -> bool:
    """Mark a running build failed if ``worker`` still holds it; drop its folder if nothing was written."""
    updated = RetrainJob.objects.filter(pk=job_id, kind=BUILD, status=Status.RUNNING, worker=worker).update(
        status=Status.FAILED, error=error[:4000], heartbeat_at=timezone.now(), updated_at=timezone.now())
    job = RetrainJob.objects.get(pk=job_id)
    _remove_if_empty(build_folder(job=job))
    return bool(updated)


def _remove_if_empty(folder: Path) -> None:
    """A failed build that wrote no file leaves no folder (one with checkpoints is kept for a resume)."""
    if folder.is_dir() and not any(p.is_file() for p in folder.rglob("*")):
        shutil.rmtree(folder, ignore_errors=True)


class _Reporter:
    """The pipeline's ``log`` and ``progress`` hooks: stage text and overall progress on the job row,
    throttled to ``TRAINING_PROGRESS_INTERVAL_S``; every write checks the lease and the soft time limit.

    Celery delivers the soft limit as a signal that raises in whatever Python code runs then; a library that
    catches ``Exception`` around it (an optional import, a retry loop) swallows it, and the build would run on
    to the hard limit. ``deadline`` (monotonic seconds) raises it again at the next progress report."""

    def __init__(self, job: RetrainJob, profile: Any, beat: LeaseHeartbeat, echo: Callable[[str], None],
                 deadline: float | None = None) -> None:
        from training.ml.pipeline import member_name

        self.job, self.beat, self.echo, self.deadline = job, beat, echo, deadline
        members = [(member_name(f, fl), profile.epochs) for f in profile.families for fl in profile.flavours]
        members += [(member_name(f, 0, reject=True), profile.reject_epochs) for f in profile.reject_families]
        self.offsets: dict[str, tuple[int, int]] = {}
        done = 0
        for name, epochs in members:
            self.offsets[name] = (done, epochs)
            done += epochs
        self.total_epochs = max(done, 1)
        self.fraction, self.stage = 0.0, "starting"
        self.interval = float(training_setting("PROGRESS_INTERVAL_S"))
        self.last = 0.0

    def log(self, message: str) -> None:
        self.echo(message)
        text = message.split("] ", 1)[1] if message.startswith("[") and "] " in message else message
        if text.startswith("evaluating"):
            self.fraction = max(self.fraction, 1.0 - EVALUATION_SHARE)
        self.stage = text.strip()[:200]
        self.write(force=True)

    def progress(self, name: str, report: Any) -> None:
        before, epochs = self.offsets.get(name, (0, 1))
        within = ((report.epoch - 1) * report.steps + report.step) / max(report.steps, 1)
        share = 1.0 - GENERATION_SHARE - EVALUATION_SHARE
        self.fraction = max(self.fraction, GENERATION_SHARE + share * (before + min(within, epochs)) / self.total_epochs)
        self.write(force=report.phase == "epoch_end")

    def write(self, *, force: bool = False, **extra: Any) -> None:
        if self.beat.lost:
            raise LeaseLost(f"Build #{self.job.pk} was taken over by another worker.")
        now = time.monotonic()
        if self.deadline is not None and now > self.deadline:
            raise SoftTimeLimitExceeded()
        if not force and now - self.last < self.interval:
            return
        self.last = now
        updated = RetrainJob.objects.filter(pk=self.job.pk, worker=self.job.worker, status=Status.RUNNING).update(
            stage=self.stage, progress=round(min(self.fraction, 1.0), 4), heartbeat_at=timezone.now(),
            updated_at=timezone.now(), **extra)
        if not updated:
            raise LeaseLost(f"Build #{self.job.pk} was taken over by another worker.")


def _describe(exc: BaseException, job: RetrainJob, soft_time_limit: float | None = None) -> str:
    folder = build_folder(job=job)
    if isinstance(exc, SoftTimeLimitExceeded):
        soft = soft_time_limit or build_time_limits(job.params["profile"])[0]
        name = job.params["profile"].upper().replace("-", "_")
        return (f"Stopped at the time limit: the build ran longer than {soft:.0f} s "
                f"(TRAINING_BUILD_TIME_LIMIT_{name}_S). Checkpoints, if any, are kept in {folder}; "
                f"`manage.py build_ensemble --resume {job.pk}` continues from them.")
    if isinstance(exc, KeyboardInterrupt):
        return f"Interrupted. `manage.py build_ensemble --resume {job.pk}` continues from the checkpoints in {folder}."
    return f"{type(exc).__name__}: {exc}"


# --------------------------------------------------------------------------------------------------
# Running a build
# --------------------------------------------------------------------------------------------------


def _evaluated(folder: Path) -> bool:
    """True when the folder holds a finished build (manifest with test metrics): only registration is left."""
    path = folder / MANIFEST_NAME
    try:
        return bool(json.loads(path.read_text()).get("metrics", {}).get("test"))
    except (OSError, ValueError):
        return False


def ensemble_build_execute(*, job_id: int, key: str, log: Callable[[str], None] | None = None,
                           soft_time_limit: float | None = None) -> dict[str, Any]:
    """Run (or resume) a build job: generate, train every member (resuming from its checkpoints), evaluate,
    register, and promote when asked. Any failure, the soft time limit included, is recorded on the job
    (``soft_time_limit``: the one the task runs under, for the message)."""
    deadline = time.monotonic() + soft_time_limit if soft_time_limit else None
    job = ensemble_build_claim(job_id=job_id, key=key)
    if job is None:
        current = RetrainJob.objects.filter(pk=job_id).values_list("status", flat=True).first()
        return {"job": job_id, "skipped": True, "status": current}
    echo = log or logger.info
    try:
        held = RetrainJob.objects.filter(pk=job.pk, worker=job.worker, status=Status.RUNNING)
        with LeaseHeartbeat(held, interval_s=float(training_setting("BUILD_HEARTBEAT_S")),
                            name=f"build-{job.pk}-heartbeat") as beat:
            reporter = _Reporter(job, _profiles()[job.params["profile"]], beat, echo, deadline)
            active = Ensemble.objects.filter(status=Ensemble.Status.ACTIVE).first()
            if job.params.get("if_none_active") and active is not None:
                reporter.stage = f"nothing to build: {active.version} is already active"
                reporter.fraction = 1.0
                reporter.write(force=True, status=Status.DONE)
                echo(reporter.stage)
                return {"job": job.pk, "skipped": True, "status": Status.DONE}
            ensemble = _build_and_register(job, reporter)
    except LeaseLost:
        raise
    except (Exception, KeyboardInterrupt) as exc:
        logger.exception("ensemble build failed", extra={"job": job.pk})
        _fail(job.pk, job.worker, _describe(exc, job, soft_time_limit))
        raise
    return {"job": job.pk, "skipped": False, "version": ensemble.version, "status": ensemble.status}


def _build_and_register(job: RetrainJob, reporter: _Reporter) -> Ensemble:
    from training.ml.pipeline import build_ensemble

    profile = _profiles()[job.params["profile"]]
    folder = build_folder(job=job)
    if _evaluated(folder):
        reporter.log("already built and evaluated; registering")
    else:
        build_ensemble(profile, folder, version=job.params["version"], workers=int(job.params.get("workers", 2)),
                       log=reporter.log, progress=reporter.progress)
    reporter.stage, reporter.fraction = "registering", max(reporter.fraction, 0.99)
    reporter.write(force=True)
    ensemble = ensemble_register(folder=folder)
    if job.params.get("independent", True) and training_setting("INDEPENDENT_CHECK"):
        _independent_check(ensemble, reporter)
    with transaction.atomic():
        # A build asked for "if none is active" does not replace one that became active meanwhile.
        promote = job.promote and not (job.params.get("if_none_active")
                                       and Ensemble.objects.filter(status=Ensemble.Status.ACTIVE)
                                       .exclude(pk=ensemble.pk).exists())
        if promote:
            ensemble = ensemble_activate(ensemble=ensemble)  # and re-score the catalogue for labeling
        timings = {**job.timings, "finished": timezone.now().isoformat()}
        reporter.stage = f"{ensemble.version} registered{' and promoted' if promote else ' (candidate)'}"
        reporter.fraction = 1.0
        reporter.write(force=True, status=Status.DONE, ensemble=ensemble, timings=timings)
    return ensemble


def _independent_check(ensemble: Ensemble, reporter: _Reporter) -> None:
    """Judge the new ensemble on the independent family before it is promoted (stored on it, shown by the
    staff page and the command); the heartbeat thread keeps the lease meanwhile."""
    def progress(done: int, total: int) -> None:
        reporter.stage = f"independent check: {done}/{total} images"
        reporter.write()

    reporter.stage = "independent check: rendering the set (once, then cached)"
    reporter.write(force=True)
    independent_check(ensemble=ensemble, log=reporter.log, progress=progress)
    # Printed before the promotion: the command's output (and the worker's log) show what is promoted.
    for line in selectors.independent_comparison_lines(rows=selectors.independent_comparison(ensemble=ensemble)):
        reporter.echo(line)


# --------------------------------------------------------------------------------------------------
# Builds whose worker died
# --------------------------------------------------------------------------------------------------


def _requeue_or_fail_dead(job: RetrainJob) -> bool:
    """A running build whose owner is dead: fail it if it ran into its time limit or died too often,
    else mark it queued (True: the caller sends it again)."""
    soft, _ = build_time_limits(job.params.get("profile", ""))
    session = job.sessions[-1] if job.sessions else {}
    started = datetime.fromisoformat(session["started"]) if session.get("started") else None
    ran = (job.heartbeat_at - started).total_seconds() if started and job.heartbeat_at else 0.0
    if ran >= soft:
        _fail(job.pk, job.worker, f"Killed at the time limit: the build ran {ran:.0f} s (soft limit {soft:.0f} s).")
        return False
    if len(job.sessions) >= int(training_setting("BUILD_MAX_SESSIONS")):
        _fail(job.pk, job.worker, f"Its worker died {len(job.sessions)} times; not resumed again "
                                  f"(`manage.py build_ensemble --resume {job.pk}` tries once more).")
        return False
    return bool(RetrainJob.objects.filter(pk=job.pk, status=Status.RUNNING, worker=job.worker).update(
        status=Status.QUEUED, worker="", stage=f"requeued: its worker {job.worker} died", updated_at=timezone.now()))


def ensemble_builds_requeue_orphans() -> list[int]:
    """Re-send builds whose worker died, and queued builds whose message was lost (nothing touched them for
    ``TRAINING_STALE_S``). Safe to call any time: a duplicate message finds the lease taken and does nothing."""
    resend = []
    for job in RetrainJob.objects.filter(kind=BUILD, status=Status.RUNNING):
        if lease_owner_dead(worker=job.worker, heartbeat_at=job.heartbeat_at) and _requeue_or_fail_dead(job):
            resend.append(job.pk)
    stale = timezone.now() - timedelta(seconds=float(training_setting("STALE_S")))
    resend += list(RetrainJob.objects.filter(kind=BUILD, status=Status.QUEUED, updated_at__lt=stale)
                   .values_list("pk", flat=True))
    for job_id in resend:
        # touched, so the next sweep does not send it again while this message waits in the queue
        RetrainJob.objects.filter(pk=job_id).update(updated_at=timezone.now())
        _send(job_id)
    return resend
