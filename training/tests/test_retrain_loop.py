"""The whole loop on a tiny configuration, with a real Celery worker, Redis and PostgreSQL: simulated
volunteers vote through the API until there is a consensus; staff start a retrain (new snapshot with a few
synthetic galaxies, compact × 2 flavours + a reject model, 1 epoch); the worker builds the snapshot,
trains, evaluates, registers and promotes; the prediction API answers with the new model_version without
a restart, and predict_catalogue has written the ensemble's spread into the labeling priorities."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from django.test import Client
from django.urls import reverse

from catalog.imaging import encode_png
from catalog.models import Galaxy
from labeling.assignment import queue_add
from labeling.models import Consensus, ConsensusStatus
from labeling.synthetic import synthetic_galaxy
from training.ml.ensemble import FusedEnsemble
from training.ml.snapshot import load_snapshot, read_index
from training.models import Ensemble, RetrainJob, TrainingRun
from training.selectors import galaxy_model_views
from training.jobs import retrain_job_create
from training.snapshots import snapshot_folder
from tests.crowd_simulation import simulate_crowd

from .helpers import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_volunteers_to_promoted_model_to_priorities(celery_worker_process, active_tiny_ensemble, settings) -> None:  # noqa: ANN001
    settings.LABELING_CALIBRATION_MIN_N = 15
    crowd = simulate_crowd(n_volunteers=8, n_galaxies=30, seed=21, image_size=24)
    accepted = Consensus.objects.filter(status=ConsensusStatus.ACCEPTED, galaxy__name__startswith="SYN-CROWD-")
    assert crowd.votes > 60 and accepted.count() >= 20
    # Galaxies nobody has measured yet: the ones the new model should prioritise.
    fresh = [synthetic_galaxy(name=f"SYN-FRESH-{k}", inclination=50.0 + 8 * k, seed=900 + k, bands=("colour",),
                              size=24).id for k in range(5)]
    queue_add(galaxy_ids=fresh)
    assert set(Consensus.objects.filter(galaxy_id__in=fresh).values_list("priority", flat=True)) == {0.0}

    job = retrain_job_create(profile="tiny", architectures=["compact"], flavours=[0, 1], reject_architectures=["compact"],
                             epochs=1, steps_per_epoch=4, batch_size=16, synthetic=8, promote=True)
    wait_for(lambda: RetrainJob.objects.get(pk=job.pk).status in (RetrainJob.Status.DONE, RetrainJob.Status.FAILED),
             timeout=240, what="the retrain job", log=celery_worker_process.log)
    job.refresh_from_db()
    assert job.status == RetrainJob.Status.DONE, job.error

    # The snapshot: every consensus label with an image plus the synthetic galaxies, split by galaxy.
    index = read_index(snapshot_folder(snapshot=job.snapshot))
    rows = load_snapshot(snapshot_folder(snapshot=job.snapshot), verify=True)
    labelled = Consensus.objects.filter(status__in=["A", "F", "J"], galaxy__name__startswith="SYN-CROWD-").count()
    assert index["counts"]["sources"] == {"consensus": labelled, "synthetic": 8}
    assert set(rows.split) == {"train", "val", "test"} and len(set(rows.id)) == len(rows)
    assert not set(rows.id) & set(fresh)
    # Every member trained for its one epoch; the candidate was evaluated, compared and promoted.
    runs = list(TrainingRun.objects.filter(job=job))
    assert sorted(r.name for r in runs) == ["compact", "compact-binary", "compact1"]
    assert all(r.status == "succeeded" and r.step == r.total_steps == 4 and len(r.history["loss"]) == 1 for r in runs)
    ensemble = job.ensemble
    assert ensemble.status == Ensemble.Status.ACTIVE and ensemble.previous.version == "tiny-1"
    assert ensemble.metrics["test"]["n_galaxies"] >= 1
    assert ensemble.metrics["comparison"]["active"]["version"] == "tiny-1"
    assert ensemble.metrics["comparison"]["candidate"]["version"] == ensemble.version
    # judged on the independent family before the job promoted it (conftest: 6 + 5 images)
    assert ensemble.independent_evaluation["set"]["n_images"] == 11
    assert ensemble.independent_evaluation["clean"]["ensemble"]["n"] == 6
    plots = Path(settings.MODEL_STORE) / ensemble.folder / "plots"
    assert {"ensemble_scatter.png", "rms_per_bin.png", "reject_roc.png"} <= {p.name for p in plots.iterdir()}

    # The prediction API switched to the new ensemble without a restart.
    image = np.asarray(galaxy_model_views(galaxy_ids=[fresh[0]])[fresh[0]]["colour"])
    client = Client()
    upload = client.post(reverse("api-file"), {"file": _named(encode_png(image), "g.png")})
    assert upload.status_code == 200, upload.content
    assert upload.json()["model_version"] == ensemble.version

    # predict_catalogue ran after the promotion: the fresh galaxies carry the new ensemble's spread.
    def scored() -> bool:
        return all(p > 0 for p in Galaxy.objects.filter(pk__in=fresh).values_list("labeling_priority", flat=True))

    wait_for(scored, timeout=120, what="predict_catalogue", log=celery_worker_process.log)
    fused = FusedEnsemble(Path(settings.MODEL_STORE) / ensemble.folder)
    views = galaxy_model_views(galaxy_ids=fresh)
    expected = [p.inclination_stdev for p in fused.predict(np.stack([views[g]["colour"] for g in fresh]))]
    galaxies = {g.pk: g.labeling_priority for g in Galaxy.objects.filter(pk__in=fresh)}
    assert [galaxies[g] for g in fresh] == pytest.approx(expected, abs=1e-3)
    queue = dict(Consensus.objects.filter(galaxy_id__in=fresh).values_list("galaxy_id", "priority"))
    assert queue == {g: galaxies[g] for g in fresh}  # synced into the Zoo's queue


def _named(data: bytes, name: str):  # noqa: ANN202
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, data, content_type="image/png")
