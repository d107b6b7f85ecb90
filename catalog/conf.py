"""Tunable settings of the image sources: ``LEGACY_SURVEY_<NAME>`` from Django settings or the environment,
else the defaults below (``inclinet_site.conf.AppSettings``)."""
from __future__ import annotations

from typing import Any

from inclinet_site.conf import AppSettings

DEFAULTS: dict[str, Any] = {
    "FITS_URL": "",                # empty: the JPEG cut-out URL's sibling …/fits-cutout
    "LAYER": "ls-dr10",
}

legacy_survey_setting = AppSettings("LEGACY_SURVEY", DEFAULTS)
