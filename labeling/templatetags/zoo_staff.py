"""Template tags of the Zoo's staff pages: the standards' coverage card, for any staff page to include."""
from __future__ import annotations

from typing import Any

from django import template

from labeling import selectors

register = template.Library()


@register.inclusion_tag("labeling/_standards_coverage.html")
def standards_coverage() -> dict[str, Any]:
    """Standards per degree over 45–90° and the degrees with too few (``selectors.standard_coverage``)."""
    return {"coverage": selectors.standard_coverage()}
