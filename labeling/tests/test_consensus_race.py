"""A vote committed while the calibration recomputes every consensus (or ``consensus_rebuild`` runs) is kept.

The recompute reads a batch's votes and writes the batch's consensus rows. A hook on that read commits a
second volunteer's vote from another thread (its own connection) right after the read, and waits until the
vote is either committed or blocked on the recompute's lock. Reading before locking (the old order) lets
the vote commit in between, and the recompute then writes back the stale count of one vote; locking first
makes the submit wait, then it recomputes with both votes.

Runs on PostgreSQL (the submit waits on the consensus row lock) and on SQLite (it waits for the write lock
that ``write_transaction`` takes with ``BEGIN IMMEDIATE``).
"""
from __future__ import annotations

import threading
import time

import pytest
from django.db import connection

from labeling import consensus
from labeling.assignment import assignment_draw_standards, assignment_next
from labeling.models import Consensus, Measurement
from labeling.submission import Placement, measurement_submit

from .factories import UserFactory
from .test_services import _vote

# How long the hook waits for the racing submit on SQLite, where nothing shows that it is blocked; it must
# stay below SQLite's busy timeout (5 s), after which the blocked submit would give up.
SQLITE_BLOCKED_AFTER_S = 1.0


def _blocked_on_a_lock(pid: int | None) -> bool:
    """PostgreSQL: whether the backend ``pid`` waits for a lock (another transaction's row lock)."""
    if pid is None:
        return False
    with connection.cursor() as cursor:
        cursor.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [pid])
        row = cursor.fetchone()
    return bool(row and row[0] == "Lock")


def _wait_done_or_blocked(thread: threading.Thread, state: dict) -> str:
    deadline = time.monotonic() + (SQLITE_BLOCKED_AFTER_S if connection.vendor == "sqlite" else 20.0)
    while time.monotonic() < deadline:
        if not thread.is_alive():
            return "committed"
        if connection.vendor == "postgresql" and _blocked_on_a_lock(state.get("pid")):
            return "blocked"
        time.sleep(0.02)
    if connection.vendor == "sqlite":
        return "blocked"  # still waiting for the write lock after a second
    raise AssertionError("the racing submit neither finished nor waited on a lock")


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("job", ["recompute_all", "rebuild"])
def test_a_vote_committed_during_the_recompute_is_not_lost(grid, targets, no_gold, monkeypatch,  # noqa: ANN001
                                                            job: str) -> None:
    (galaxy,) = targets(1)
    _vote(UserFactory(), value=62.0)
    late_user = UserFactory()
    late_task = assignment_next(user=late_user)  # leased now; only its submit races
    seq = assignment_draw_standards(user=late_user, assignment_id=late_task.assignment.id, step=2, low=70)
    placement = Placement(left_id=seq[1].id, right_id=seq[2].id, step1_low=70, face_on=False)
    assert Consensus.objects.get(galaxy=galaxy).n_votes == 1

    state: dict = {}
    errors: list[str] = []

    def submit_late_vote() -> None:
        try:
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_backend_pid()")
                    state["pid"] = cursor.fetchone()[0]
            measurement_submit(user=late_user, assignment_id=late_task.assignment.id, placement=placement)
        except Exception as exc:  # surfaced in the main thread's assertion
            errors.append(repr(exc))
        finally:
            connection.close()

    real_votes_for = consensus._votes_for
    main = threading.current_thread()

    def votes_for_then_race(**kwargs):  # noqa: ANN003, ANN202
        votes = real_votes_for(**kwargs)
        if threading.current_thread() is main and "thread" not in state:
            state["thread"] = threading.Thread(target=submit_late_vote)
            state["thread"].start()
            state["race"] = _wait_done_or_blocked(state["thread"], state)
        return votes

    monkeypatch.setattr(consensus, "_votes_for", votes_for_then_race)
    if job == "recompute_all":
        consensus.consensus_recompute_all()
    else:
        consensus.consensus_rebuild(apply=True)
    state["thread"].join(timeout=30)
    assert not state["thread"].is_alive() and not errors, errors

    counted = Measurement.objects.filter(galaxy=galaxy, counted=True, is_gold=False).count()
    assert counted == 2
    assert Consensus.objects.get(galaxy=galaxy).n_votes == counted  # the late vote is in the consensus
    # Locking first: the submit waited for the recompute and wrote after it (the old order: "committed").
    assert state["race"] == "blocked"
    monkeypatch.setattr(consensus, "_votes_for", real_votes_for)
    assert consensus.consensus_rebuild(apply=False).differing == []
