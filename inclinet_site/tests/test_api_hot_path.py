"""What keeps the anonymous API's hot path cheap: one Redis client per pool, one throttle counter per call."""
from __future__ import annotations

from typing import Any

import pytest
import redis
from django.conf import settings
from django.core.cache import cache
from django.test import Client
from rest_framework.throttling import SimpleRateThrottle

from catalog.tests.factories import GalaxyFactory
from labeling.tests.factories import ProfileFactory

needs_redis = pytest.mark.skipif("RedisCache" not in settings.CACHES["default"]["BACKEND"],
                                 reason="the CI settings use Redis; zero-config runs use the file cache")


@needs_redis
def test_redis_cache_reuses_one_client_per_pool() -> None:
    backend = cache._cache  # noqa: SLF001 - the client object is what this test is about
    assert backend.get_client(write=True) is backend.get_client(write=True)
    cache.set("hot-path-probe", {"a": 1}, 30)
    assert cache.get("hot-path-probe") == {"a": 1}


def _throttle_keys() -> list[str]:
    return [key.decode() for key in redis.Redis.from_url(settings.REDIS_URL).keys("*throttle_*")]


@needs_redis
@pytest.mark.django_db
def test_anonymous_api_calls_count_once_per_address_and_users_have_their_own(monkeypatch: Any) -> None:
    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", {"anon": "100/min", "user": "1000/min"})
    GalaxyFactory(pgc=4242)
    cache.clear()
    assert Client().get("/api/catalog/pgc/4242").status_code == 200
    keys = _throttle_keys()
    assert any("throttle_anon_" in key for key in keys)
    assert not any("throttle_user_" in key for key in keys), keys  # the per-user counter is for signed-in users
    volunteer = Client()
    profile = ProfileFactory(role="volunteer")
    volunteer.force_login(profile.user)
    assert volunteer.get("/api/catalog/pgc/4242").status_code == 200
    assert any(key.endswith(f"throttle_user_{profile.user.pk}") for key in _throttle_keys())
