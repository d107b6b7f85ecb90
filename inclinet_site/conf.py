"""The one way an app reads its tunables: ``AppSettings`` (issue 17).

Each app declares its tunables once, as a prefix and a dict of typed defaults (``labeling/conf.py``,
``training/conf.py``, ``predictions/conf.py``, ``catalog/conf.py``). A value is looked up as the Django
setting ``<PREFIX>_<NAME>``, then the environment variable of the same name, then the default; values from the
environment are converted to the default's type (booleans from 1/true/yes/on, dicts and lists from JSON), or
to the type given in ``types`` for a setting whose default is None.
Settings that every deployment needs (databases, broker, queues, time limits) stay plain attributes of
``inclinet_site/settings.py``, which is the only module that reads the environment for them.
"""
from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from django.conf import settings


class AppSettings:
    """``conf("NAME")`` → the app's value of ``<PREFIX>_NAME`` (settings, then environment, then default)."""

    def __init__(self, prefix: str, defaults: Mapping[str, Any], *, types: Mapping[str, type] | None = None) -> None:
        self.prefix = prefix
        self.defaults = dict(defaults)
        self.types = dict(types or {})

    def __call__(self, name: str) -> Any:
        if name not in self.defaults:
            raise KeyError(f"{self.prefix}_{name} is not a declared setting")
        full_name = f"{self.prefix}_{name}"
        value = getattr(settings, full_name, None)
        if value is not None:
            return value
        raw = os.environ.get(full_name)
        if raw is None:
            return self.defaults[name]
        default = self.defaults[name]
        return _typed(raw, self.types.get(name) or (str if default is None else type(default)))


def _typed(raw: str, kind: type) -> Any:
    """An environment string converted to ``kind``."""
    if kind is bool:
        return raw.strip().lower() in ("1", "true", "yes", "on")
    if kind in (dict, list, tuple):
        return kind(json.loads(raw))
    return kind(raw)
