"""Twenty volunteers taking and submitting at once never over-fill a galaxy or see one twice.

Runs on PostgreSQL (row locks, SKIP LOCKED) and on SQLite (one writer at a time, BEGIN IMMEDIATE).
"""
from __future__ import annotations

import random
import threading
import time
from collections import Counter

import pytest
from django.db import connection
from django.urls import reverse
from rest_framework.test import APIClient

from labeling.models import Consensus, Measurement
from labeling.synthetic import place

from .factories import UserFactory


class _Volunteers:
    """Volunteers on their own threads, released together; outcomes and errors shared under one lock."""

    def __init__(self, count: int) -> None:
        self.barrier = threading.Barrier(count)
        self.outcomes: Counter = Counter()
        self.errors: list[str] = []
        self.lock = threading.Lock()

    def count(self, key: object) -> None:
        with self.lock:
            self.outcomes[key] += 1

    def post(self, client: APIClient, url: str, data: dict | None = None):  # noqa: ANN201
        """As the page does: a 503 with Retry-After is asked again (sooner here, to keep the test short)."""
        for _ in range(50):
            response = client.post(url, data, format="json")
            self.count("requests")
            if response.status_code != 503:
                return response
            assert response.has_header("Retry-After"), response.content
            self.count("unavailable")
            time.sleep(0.1)
        raise AssertionError("still 503 after 50 tries")

    def classify(self, client: APIClient, task: dict, rng: random.Random) -> None:
        value = rng.uniform(50, 85)
        low = min(max(int(value // 5 * 5), 45), 85)
        seq = self.post(client, reverse("labeling:api-standards", args=[task["id"]]),
                        {"step": 2, "low": low}).json()["standards"]
        left, right = place(value=value, standards=seq)
        submitted = self.post(client, reverse("labeling:api-submit", args=[task["id"]]),
                              {"left_standard": left, "right_standard": right, "step1_low": low})
        self.count(submitted.status_code)
        if submitted.status_code not in (200, 409):
            with self.lock:
                self.errors.append(submitted.content.decode())

    def volunteer(self, user) -> None:  # noqa: ANN001
        rng = random.Random(user.id)
        client = APIClient()
        client.force_login(user)
        try:
            self.barrier.wait()
            done = empties = 0
            # "Nothing free right now" is normal while others hold every open slot: ask again a little
            # later, as the page does, instead of leaving (which made retirement depend on timing).
            while done < 12 and empties < 40:
                response = self.post(client, reverse("labeling:api-next"))
                if response.status_code == 404:
                    self.count("empty")
                    empties += 1
                    time.sleep(0.05)
                    continue
                done += 1
                self.classify(client, response.json()["task"], rng)
        except Exception as exc:  # surfaced in the main thread's assertion
            with self.lock:
                self.errors.append(repr(exc))
        finally:
            connection.close()


def _assert_nothing_lost_or_overfilled(galaxies: list) -> None:
    per_galaxy = Counter(Measurement.objects.filter(counted=True).values_list("galaxy_id", flat=True))
    assert max(per_galaxy.values()) <= 4
    pairs = list(Measurement.objects.values_list("user_id", "galaxy_id"))
    assert len(pairs) == len(set(pairs))  # never the same galaxy twice to one volunteer
    for c in Consensus.objects.filter(galaxy__in=galaxies):
        assert c.n_votes == per_galaxy.get(c.galaxy_id, 0)  # the counter matches the rows: nothing lost
        if c.retired:
            late = Measurement.objects.filter(galaxy_id=c.galaxy_id, created_at__gt=c.retired_at)
            assert not late.exists()
    # Work spread over every galaxy (breadth first), and some reached retirement under the contention.
    assert Consensus.objects.filter(galaxy__in=galaxies, n_votes__gt=0).count() == len(galaxies)
    assert Consensus.objects.filter(galaxy__in=galaxies, retired=True).exists()


@pytest.mark.django_db(transaction=True)
def test_twenty_threads_never_overfill_or_repeat(grid, targets, no_gold, settings) -> None:  # noqa: ANN001
    settings.LABELING_MAX_VOTES = 4
    settings.LABELING_AGREE_SPREAD = 1.0  # votes disagree often, so galaxies run to the cap
    galaxies = targets(8)
    users = [UserFactory() for _ in range(20)]
    crowd = _Volunteers(len(users))
    threads = [threading.Thread(target=crowd.volunteer, args=(u,)) for u in users]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not crowd.errors, crowd.errors[:3]
    outcomes = crowd.outcomes
    assert outcomes[200] > 0
    if connection.vendor == "sqlite":
        # SQLite's single write lock can stay busy past its timeout on a loaded machine (a 503, retried):
        # rare, never the rule (it was 17 of 28 requests when the candidate query was PostgreSQL's).
        assert outcomes["unavailable"] <= 0.1 * outcomes["requests"], outcomes
    else:
        assert outcomes["unavailable"] == 0, outcomes  # row locks: nobody waits long enough to give up
    _assert_nothing_lost_or_overfilled(galaxies)
