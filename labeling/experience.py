"""Reads for the volunteer's own pages: totals and accuracy on known galaxies, in words.

"Known galaxies" are gold standards measured as tasks. Errors use the stored (rounded) value, the same
number the page showed as "Saved". The crowd's figure is cached for a few minutes: it reads every gold
measurement, which is too much for each page view.
"""
from __future__ import annotations

import statistics
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.cache import cache

from .feedback import degrees_text
from .models import Measurement

CROWD_CACHE_KEY = "zoo:crowd-gold-median-error"
CROWD_CACHE_S = 300
CROWD_SAMPLE = 20000  # the latest gold answers are plenty for a median


def _gold_errors(queryset: Any) -> list[float]:
    rows = queryset.filter(is_gold=True, inclination__isnull=False,
                           galaxy__zoo_standard__isnull=False).values_list("inclination",
                                                                           "galaxy__zoo_standard__inclination")
    return [abs(value - truth) for value, truth in rows]


def crowd_median_gold_error() -> float | None:
    cached = cache.get(CROWD_CACHE_KEY)
    if cached is not None:
        return cached if cached >= 0 else None
    latest = Measurement.objects.filter(is_gold=True).order_by("-id").values("id")[:CROWD_SAMPLE]
    errors = _gold_errors(Measurement.objects.filter(id__in=latest))
    value = round(statistics.median(errors), 1) if errors else None
    cache.set(CROWD_CACHE_KEY, value if value is not None else -1, CROWD_CACHE_S)
    return value


def volunteer_progress(*, user: AbstractBaseUser) -> dict[str, Any]:
    """Total measurements and the median error on known galaxies, with a sentence saying what they mean."""
    mine = Measurement.objects.filter(user=user)
    total = mine.count()
    errors = _gold_errors(mine)
    median = round(statistics.median(errors), 1) if errors else None
    crowd = crowd_median_gold_error()
    if median is None:
        words = ("Your accuracy appears after your first known galaxy: now and then a galaxy with an accepted "
                 "inclination is mixed in, and you get feedback on it.")
    else:
        words = (f"Your median error on known galaxies: {degrees_text(median)} over {len(errors)} of them"
                 + (f"; the crowd's: {degrees_text(crowd)}." if crowd is not None else "."))
        if crowd is not None:
            words += (" Lower is better; within 3° of the crowd is good work." if median <= crowd + 3
                      else " Lower is better: compare the outline's length and width with the standards'.")
    return {"total": total, "known": len(errors), "median_error": median, "crowd_median_error": crowd,
            "words": words}
