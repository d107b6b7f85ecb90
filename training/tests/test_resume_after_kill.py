"""Fault test: SIGKILL a real Celery worker (main process and pool child) in the middle of an epoch, start
a new worker, and the run resumes from its last checkpoint: nothing lost, no step counted twice, and the
final weights equal those of a run that was never interrupted. Real PostgreSQL, real Redis."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from training.ml.retrain import MemberPlan, train_member
from training.ml.snapshot import load_snapshot
from training.models import RetrainJob, TrainingRun
from training.jobs import retrain_job_create
from training.snapshots import snapshot_build, snapshot_folder

from .helpers import kill_tree, labelled_galaxies, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

EPOCHS, STEPS = 2, 30


def test_killed_worker_resumes_from_checkpoint(celery_worker_process, tmp_path) -> None:  # noqa: ANN001
    labelled_galaxies(24, rejects=6)
    snapshot = snapshot_build()
    job = retrain_job_create(snapshot_id=snapshot.pk, profile="tiny", architectures=["compact"], flavours=[0],
                             reject_architectures=["compact"], epochs=EPOCHS, reject_epochs=1, steps_per_epoch=STEPS, batch_size=8)

    def mid_second_epoch() -> TrainingRun | None:
        run = TrainingRun.objects.filter(job=job, kind="regression").first()
        return run if run and run.epoch == 1 and run.step >= STEPS + 8 else None

    run = wait_for(mid_second_epoch, timeout=150, what="the second epoch", log=celery_worker_process.log,
                   interval=0.05)
    first_history = run.history
    assert len(first_history["loss"]) == 1
    victims = kill_tree(celery_worker_process.process.pid)
    assert len(victims) >= 2  # the main process and the pool child that trains
    celery_worker_process.process.wait(timeout=10)
    killed = TrainingRun.objects.get(pk=run.pk)
    assert killed.status == TrainingRun.Status.RUNNING  # nobody told the database: the process just vanished
    steps_before_kill = killed.step
    assert STEPS < steps_before_kill < 2 * STEPS

    celery_worker_process.start()  # a brand-new worker: it finds the orphaned run and resumes it
    wait_for(lambda: RetrainJob.objects.get(pk=job.pk).status in (RetrainJob.Status.DONE, RetrainJob.Status.FAILED),
             timeout=240, what="the resumed job to finish", log=celery_worker_process.log)
    job.refresh_from_db()
    assert job.status == RetrainJob.Status.DONE, job.error
    run = TrainingRun.objects.get(pk=run.pk)
    assert run.status == TrainingRun.Status.SUCCEEDED
    # Two sessions: the second resumed from the epoch-1 checkpoint and redid only the lost part of epoch 2.
    assert len(run.sessions) == 2, run.sessions
    first, second = run.sessions
    assert first["worker"] != second["worker"]
    assert second["from_epoch"] == 1
    assert 0 < second["redone_steps"] <= STEPS
    assert second["to_epoch"] == EPOCHS
    # No step counted twice: one history entry per epoch, the global step ends at epochs × steps, and the
    # live curve's steps strictly increase.
    assert run.step == run.total_steps == EPOCHS * STEPS
    assert {key: len(values) for key, values in run.history.items()} == {k: EPOCHS for k in run.history}
    assert run.history["loss"][0] == first_history["loss"][0]  # epoch 1 kept from the first session
    live_steps = [point[0] for point in run.metrics["live"]]
    assert live_steps == sorted(set(live_steps)) and live_steps[-1] == EPOCHS * STEPS
    state = json.loads((Path(run.output_dir) / "state.json").read_text())
    assert state["epoch"] == EPOCHS and len(state["history"]["loss"]) == EPOCHS

    # Nothing lost: the same member trained without interruption, in this process, ends identical.
    rows = load_snapshot(snapshot_folder(snapshot=snapshot))
    plan = MemberPlan.from_json(run.config)
    straight = train_member(rows, plan, output_dir=tmp_path / "straight", snapshot_seed=2026)
    assert straight.history["loss"] == pytest.approx(run.history["loss"], rel=1e-5)
    import keras

    resumed_model = keras.saving.load_model(Path(run.output_dir) / "checkpoints" / f"epoch-{EPOCHS:04d}.keras")
    for a, b in zip(resumed_model.get_weights(), straight.model.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
