"""Tunable settings of retraining: ``TRAINING_<NAME>`` from Django settings, then the environment, then the
defaults below (``inclinet_site.conf.AppSettings``), so deployments can set them without editing settings.py."""
from __future__ import annotations

from typing import Any

from inclinet_site.conf import AppSettings

DEFAULTS: dict[str, Any] = {
    "STALE_S": 600.0,              # a run whose owner has not reported for this long may be resumed elsewhere
    "PROGRESS_INTERVAL_S": 0.5,    # at most this often a step's progress is written to the database
    "LIVE_POINTS": 400,            # per-step loss points kept for the live curve
    "WEEKLY_RETRAIN": False,       # the weekly beat job starts a retrain only when this is on ...
    "RETRAIN_MIN_NEW_LABELS": 500,  # ... and at least this many consensus labels are newer than the last snapshot
    "RETRAIN_PROFILE": "quick",
    "SNAPSHOT_SHARD_ROWS": 2048,   # galaxies per .npz shard (about 200 MB uncompressed at 128 px)
    "PREDICT_BATCH": 64,
    "BUILD_HEARTBEAT_S": 20.0,     # a running ensemble build renews its lease this often (also while generating)
    "BUILD_WAIT_S": 30.0,          # a build that finds another one running retries after this long
    "BUILD_MAX_SESSIONS": 3,       # a build whose worker died this many times is failed, not resumed again
    # The independent check at promotion (training/independent_services.py): a seeded set of the independent
    # family, rendered once into INDEPENDENT_DIR (default VAR_DIR/independent-promotion) and reused.
    "INDEPENDENT_CHECK": True,     # builds and retrain jobs evaluate their candidate on it
    "INDEPENDENT_N": 240,          # clean galaxies, truth 45–90°
    "INDEPENDENT_REJECTS": 80,     # rejects, equally of every reason
    "INDEPENDENT_SEED": 2027,      # not the benchmark's 2026: a set of its own
    "INDEPENDENT_DIR": "",
}


training_setting = AppSettings("TRAINING", DEFAULTS)
