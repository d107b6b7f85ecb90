"""Pytest fixtures around the local fake astronomy services (``tests/fake_services.py``).

The root ``conftest.py`` already provides ``fake_services`` (a running server with Django's settings
pointed at it and the remote resolvers switched on). This module adds fixtures for tests that need
something else; enable them with ``pytest_plugins = ["tests.fixtures_services"]`` in the root conftest,
or import the ones a module needs (``from tests.fixtures_services import fake_astro  # noqa: F401``).
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.fake_services import FakeAstroServices

CLOSED_URL = "http://127.0.0.1:9/closed"  # the discard port: connections are refused at once


@pytest.fixture
def fake_astro() -> Iterator[FakeAstroServices]:
    """A running fake server and nothing else: no Django settings touched (for Django-free tests)."""
    with FakeAstroServices() as fake:
        yield fake


@pytest.fixture
def offline_services(settings: Any) -> Iterator[None]:
    """Every remote service unreachable (connection refused at once), resolvers on, no retries."""
    from django.core.cache import cache

    settings.SDSS_CUTOUT_URL = settings.LEGACY_SURVEY_CUTOUT_URL = CLOSED_URL
    settings.SESAME_URL = settings.NED_LOOKUP_URL = CLOSED_URL
    settings.REMOTE_RETRIES = 0
    settings.REMOTE_TIMEOUT_S = 1.0
    settings.REMOTE_RESOLVERS_ENABLED = True
    cache.clear()
    yield
    cache.clear()
