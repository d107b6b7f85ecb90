"""Tunable settings of prediction serving: ``PREDICTION_<NAME>`` from Django settings or the environment, else
the defaults below (``inclinet_site.conf.AppSettings``)."""
from __future__ import annotations

from typing import Any

from inclinet_site.conf import AppSettings
from training.ml.reject_calibration import AXIAL_MARGIN_DEG

DEFAULTS: dict[str, Any] = {
    # Heavy prediction work runs this many nice levels below the web threads (predictions/inference.py), so
    # Zoo and cached API requests are not starved by the networks. 0: same priority.
    "NICENESS": 10,
    # Prediction processes per web process (predictions/heavy.py); 0: a niced thread in the web process.
    "PROCESSES": 0,
    "PRECISION": "auto",           # auto, bf16 or fp32 (training.ml.precision)
    "TTA": None,                   # test-time augmentation views; None: the ensemble manifest's choice
    "AXIAL_MARGIN_DEG": AXIAL_MARGIN_DEG,  # when a manifest carries no calibrated axial cross-check margin
}

prediction_setting = AppSettings("PREDICTION", DEFAULTS)
