"""Tunable settings of the Zoo: ``LABELING_<NAME>`` from Django settings or the environment, else the defaults
below (``inclinet_site.conf.AppSettings``)."""
from __future__ import annotations

from typing import Any

from inclinet_site.conf import AppSettings

DEFAULTS: dict[str, Any] = {
    "LEASE_SECONDS": 600,          # a short lease: an abandoned task frees its slot after 10 minutes
    "MIN_VOTES": 3,                # votes that must agree before a galaxy retires early
    "MAX_VOTES": 7,                # hard cap when votes keep disagreeing
    "AGREE_SPREAD": 4.0,           # degrees: three calibrated votes within this range agree
    "RANDOM_SHARE": 0.2,           # share of tasks drawn uniformly at random ("spice")
    "PRIORITY_SHARE": 0.3,         # share drawn from the galaxies the model is least sure about
    "GOLD_START": 0.4,             # gold-standard rate for a new volunteer ...
    "GOLD_TAU": 60.0,              # ... decaying with this many tasks ...
    "GOLD_MIN": 0.05,              # ... down to this floor, so calibration keeps an anchor
    "CALIBRATION_MIN_N": 15,       # fewer usable points than this: identity adjustment
    "CALIBRATION_MAX_ITER": 12,
    "DEFAULT_SCATTER": 4.0,        # degrees assumed for a volunteer not yet calibrated
    "CANDIDATES": 16,              # rows locked per assignment attempt (SKIP LOCKED)
    "MAX_REDRAWS": 40,             # standard sequences remembered per task and step
    "INGEST_IMAGE_SIZE": 512,      # pixels of the cut-outs fetched for galaxies entering the Zoo
    "INGEST_REQUESTS_PER_S": 2.0,  # politeness towards the image services while ingesting
    "SERVE_MEDIA_DIRECTLY": None,  # task images as plain /media URLs (None: when DEBUG is on)
}

zoo_setting = AppSettings("LABELING", DEFAULTS, types={"SERVE_MEDIA_DIRECTLY": bool})
