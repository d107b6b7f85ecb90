"""Query budgets of the hot path (POST zoo/api/tasks/next) and the gold schedule's task counter behind it.

Inside the test's transaction ``assignment_next``'s ``atomic()`` is a SAVEPOINT/RELEASE pair; in a real
request it is BEGIN/COMMIT, which Django logs too, so the benchmark prints the same counts.
"""
from __future__ import annotations

import random

import pytest
from django.db import connection
from django.urls import reverse

from django.utils import timezone

from labeling import assignment, errors
from labeling.assignment import assignment_next, assignment_skip
from labeling.models import Assignment, Consensus, VolunteerProfile

from .factories import ProfileFactory, UserFactory

pytestmark = pytest.mark.django_db

# session, user, SAVEPOINT, held lease, profile UPDATE … RETURNING, candidates (FOR UPDATE SKIP LOCKED on
# PostgreSQL; on SQLite the transaction's write lock stands in), open leases, standards pool, lease INSERT,
# RELEASE, target + standards images (one join). The same statements on both, so the same budget.
NEXT_NEW_LEASE = {"postgresql": 11, "sqlite": 11}
# session, user, SAVEPOINT, held lease, standards pool, RELEASE, images.
NEXT_HELD = {"postgresql": 7, "sqlite": 7}


def _next(api):  # noqa: ANN001, ANN202
    response = api.post(reverse("labeling:api-next"))
    assert response.status_code == 200, response.content
    return response.json()["task"]


def test_next_task_query_budget(grid, targets, no_gold, django_assert_max_num_queries) -> None:  # noqa: ANN001
    from rest_framework.test import APIClient

    (started, _) = targets(2)
    Consensus.objects.filter(galaxy=started).update(n_votes=1)
    profile = ProfileFactory(tasks_served=500)  # a volunteer with a history: the profile exists
    api = APIClient()
    api.force_login(profile.user)
    with django_assert_max_num_queries(NEXT_NEW_LEASE[connection.vendor]) as captured:
        task = _next(api)
    sql = " ".join(q["sql"] for q in captured.captured_queries)
    # Each vendor runs its own form of the candidate query (a SQLite syntax error here was a 503 once).
    assert ("SKIP LOCKED" in sql) == (connection.vendor == "postgresql")
    assert task["galaxy"]["id"] == started.id and len(task["standards"]) == 9
    assert set(task["images"]) == {"colour", "g", "r", "i"} and task["images"]["colour"]
    assert all(s["images"]["colour"] for s in task["standards"])
    with django_assert_max_num_queries(NEXT_HELD[connection.vendor]):
        again = _next(api)
    assert again["id"] == task["id"] and again["standards"] == task["standards"]


@pytest.mark.parametrize("returning", [True, False], ids=["update-returning", "update-then-select"])
def test_tasks_served_counts_only_tasks_handed_out(grid, targets, no_gold, returning, monkeypatch) -> None:  # noqa: ANN001
    # Without RETURNING (SQLite before 3.35) the counter is an UPDATE and a SELECT: the same counts.
    monkeypatch.setattr(assignment, "_update_returning_supported", lambda: returning)
    targets(1)
    user = UserFactory()
    assert not VolunteerProfile.objects.filter(user=user).exists()
    first = assignment_next(user=user)  # the first task ever creates the profile
    assert VolunteerProfile.objects.get(user=user).tasks_served == 1
    assignment_next(user=user)  # the held lease again: not a new task
    assert VolunteerProfile.objects.get(user=user).tasks_served == 1
    assignment_skip(user=user, assignment_id=first.assignment.id)
    with pytest.raises(errors.NoTaskAvailable):  # nothing left: the attempt is rolled back, count included
        assignment_next(user=user)
    assert VolunteerProfile.objects.get(user=user).tasks_served == 1


def test_gold_schedule_reads_the_count_before_this_task(grid, targets, settings) -> None:  # noqa: ANN001
    settings.LABELING_RANDOM_SHARE = 0.0
    settings.LABELING_PRIORITY_SHARE = 0.0
    targets(1)
    user = ProfileFactory(tasks_served=0).user
    rng = random.Random(0)
    rng.random = lambda: 0.398  # inside the 40% gold share at 0 tasks served, outside it (39.3%) at 1
    assert assignment_next(user=user, rng=rng).queue == "gold"
    Assignment.objects.filter(user=user).update(status="skipped")
    assert VolunteerProfile.objects.get(user=user).tasks_served == 1
    assert assignment_next(user=user, rng=rng).queue != "gold"


def test_lease_conflict_is_a_clean_refusal(grid, targets, no_gold, monkeypatch) -> None:  # noqa: ANN001
    """Another request of the same volunteer won the galaxy between the queue read and the insert."""
    (galaxy,) = targets(1)
    user = ProfileFactory(tasks_served=3).user
    real = assignment._candidates

    def racing(**kwargs):  # noqa: ANN003, ANN202
        rows = real(**kwargs)
        if rows and not Assignment.objects.filter(user=user).exists():
            Assignment.objects.create(user=user, galaxy=galaxy, status="skipped",
                                      leased_until=timezone.now())
        return rows

    monkeypatch.setattr(assignment, "_candidates", racing)
    with pytest.raises(errors.NoTaskAvailable):
        assignment_next(user=user)
    # The attempt was rolled back as a whole (the count too) and the connection is usable afterwards.
    assert VolunteerProfile.objects.get(user=user).tasks_served == 3
    assert not Assignment.objects.filter(user=user).exists()
