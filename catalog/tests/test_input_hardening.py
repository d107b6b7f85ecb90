"""Issue 16: catalogue look-ups with hostile digits answer a 4xx in the failed shape, never a 500."""
from __future__ import annotations

import pytest
from django.conf import settings

from catalog.selectors import GalaxyNotFound, target_resolve

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("query", ["²", "³12", "٣", "١٢٣", "⁵⁵"])
def test_resolve_with_unicode_digits_is_a_4xx_not_a_500(client, query: str) -> None:  # noqa: ANN001
    """``"²".isdigit()`` is true but ``int("²")`` fails: the search box must not take it for a PGC number."""
    response = client.get(f"{settings.WEBROOT}api/catalog/resolve", {"q": query})
    assert 400 <= response.status_code < 500, response.content[:300]
    assert response.json()["status"] == "failed" and response.json()["message"]


def test_target_resolve_reads_only_ascii_digits_as_a_pgc_number() -> None:
    with pytest.raises(GalaxyNotFound):
        target_resolve(query="²")
