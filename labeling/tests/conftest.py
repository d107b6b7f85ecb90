"""Fixtures of the Zoo tests: a standard grid, queued targets, logged-in API clients."""
from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from labeling.assignment import queue_add

from .factories import ImagedGalaxyFactory, ProfileFactory, UserFactory, standard_grid


@pytest.fixture
def grid(db):  # noqa: ANN001, ANN201
    """One standard per integer 40-90°."""
    return standard_grid()


@pytest.fixture
def no_gold(settings):  # noqa: ANN001, ANN201
    """Deterministic queues: no gold injection, no random or priority share."""
    settings.LABELING_GOLD_START = 0.0
    settings.LABELING_GOLD_MIN = 0.0
    settings.LABELING_RANDOM_SHARE = 0.0
    settings.LABELING_PRIORITY_SHARE = 0.0
    return settings


@pytest.fixture
def targets(db):  # noqa: ANN001, ANN201
    def make(n: int = 3, inclination: float = 65.0) -> list:
        galaxies = [ImagedGalaxyFactory(inclination=inclination) for _ in range(n)]
        queue_add(galaxy_ids=[g.id for g in galaxies])
        return galaxies
    return make


@pytest.fixture
def volunteer(db):  # noqa: ANN001, ANN201
    return UserFactory()


@pytest.fixture
def api(volunteer):  # noqa: ANN001, ANN201
    client = APIClient()
    client.force_login(volunteer)
    return client


@pytest.fixture
def staff(db):  # noqa: ANN001, ANN201
    user = UserFactory(is_staff=True)
    client = APIClient()
    client.force_login(user)
    return client


@pytest.fixture
def expert_clients(db):  # noqa: ANN001, ANN201
    clients = []
    for _ in range(3):
        profile = ProfileFactory(role="expert")
        client = APIClient()
        client.force_login(profile.user)
        clients.append(client)
    return clients
