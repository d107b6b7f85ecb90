"""Expiry of the prediction media that serve only for a while (issue 16): page uploads (``uploads/``) and the
stored 128 × 128 model inputs (``model_inputs/``), deleted by age through the default storage.

Uploads live ``MEDIA_EXPIRY_AGE_S`` (default 24 h; evaluating an expired one answers "upload it again").
Model inputs live ``MODEL_INPUT_EXPIRY_AGE_S`` (default 8 days), longer than the 7-day prediction cache whose
answers link them by ``image_url``. The beat task ``predictions.tasks.expire_prediction_media`` calls
``prediction_media_expire`` every ``MEDIA_EXPIRY_INTERVAL_S``.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.core.files.storage import default_storage
from django.utils import timezone

logger = logging.getLogger(__name__)

UPLOADS = "uploads"
MODEL_INPUTS = "model_inputs"


def _expire_folder(folder: str, *, cutoff: datetime) -> int:
    """Delete the files under ``folder`` (recursively) last modified before ``cutoff``; returns how many."""
    try:
        subfolders, files = default_storage.listdir(folder)
    except FileNotFoundError:
        return 0
    removed = 0
    for name in files:
        path = f"{folder}/{name}"
        try:
            if default_storage.get_modified_time(path) < cutoff:
                default_storage.delete(path)
                removed += 1
        except FileNotFoundError:
            continue  # deleted meanwhile (another sweep, or an evaluation replaced it)
    for name in subfolders:
        removed += _expire_folder(f"{folder}/{name}", cutoff=cutoff)
    return removed


def prediction_media_expire(*, upload_age_s: float | None = None, model_input_age_s: float | None = None,
                            now: datetime | None = None) -> dict[str, int]:
    """Delete uploads and model inputs older than their ages (defaults from settings); counts per folder."""
    now = now or timezone.now()
    ages = {
        UPLOADS: settings.MEDIA_EXPIRY_AGE_S if upload_age_s is None else upload_age_s,
        MODEL_INPUTS: settings.MODEL_INPUT_EXPIRY_AGE_S if model_input_age_s is None else model_input_age_s,
    }
    removed = {folder: _expire_folder(folder, cutoff=now - timedelta(seconds=age)) for folder, age in ages.items()}
    if any(removed.values()):
        logger.info("expired prediction media", extra=removed)
    return removed
