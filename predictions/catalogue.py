"""Scoring the catalogue with the active ensemble: each unlabelled galaxy's inclination spread becomes its
labeling priority, so the Zoo asks volunteers first about the galaxies the model is least sure of.

The ensemble is the one serving uses (``predictions.inference.active_ensemble``): the same precision and
test-time augmentation as the predictions users see.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from catalog.models import Galaxy
from labeling.assignment import queue_sync_priorities
from labeling.models import ConsensusStatus, Standard
from training.conf import training_setting
from training.selectors import galaxy_model_views

from .inference import NoActiveEnsemble, active_ensemble, active_pointer


def _galaxies_to_score(limit: int | None) -> list[int]:
    """Galaxies with images that the crowd has not decided and that are not standards, by id."""
    decided = [ConsensusStatus.ACCEPTED, ConsensusStatus.FACE_ON, ConsensusStatus.REJECTED]
    ids = list(Galaxy.objects.filter(images__isnull=False)
               .exclude(zoo_consensus__status__in=decided)
               .exclude(pk__in=Standard.objects.values("galaxy_id")).order_by("pk").values_list("pk", flat=True)
               .distinct())
    return ids[:limit] if limit else ids


def catalogue_predict(*, limit: int | None = None) -> dict[str, Any]:
    """Score unlabelled galaxies that have images with the active ensemble; each galaxy's inclination
    spread (stdev over the members, degrees) becomes its ``labeling_priority``, then the Zoo queue syncs."""
    try:
        active_pointer()
    except NoActiveEnsemble:
        return {"scored": 0, "version": None, "synced": 0}
    ensemble = active_ensemble()
    ids = _galaxies_to_score(limit)
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
