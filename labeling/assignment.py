"""The volunteers' queue and handing out work: queue rows, the gold schedule, candidate galaxies, leases.

``assignment_next`` is the hot path: one short transaction (``write_transaction``) that counts the task,
picks a queue, locks a few candidate galaxies (``FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite's write lock
stands in) and leases one slot. ``assignment_draw_standards`` records each drawn sequence, so a submit can be
checked against what was really shown; ``assignment_skip`` gives a task back.
"""
from __future__ import annotations

import functools
import math
import random
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, connection
from django.db.models import Exists, OuterRef
from django.db.models.functions import Mod
from django.utils import timezone

from catalog.models import Galaxy
from core.errors import InvalidInput

from .conf import zoo_setting
from .errors import AlreadySubmitted, LeaseExpired, NoTaskAvailable, NotAssigned
from .models import Assignment, AssignmentStatus, Consensus, Standard, VolunteerProfile
from .profiles import profile_get_or_create
from .selectors import PRACTICE_EVERY, StandardRow, standard_pool, standards_draw, step_values
from .transactions import write_transaction

# --------------------------------------------------------------------------------------------------
# The queue
# --------------------------------------------------------------------------------------------------


def queue_add(*, galaxy_ids: Iterable[int]) -> int:
    """Put galaxies in the volunteers' queue (standards excepted); already queued ones are left alone."""
    ids = list(galaxy_ids)
    standards = set(Standard.objects.filter(galaxy_id__in=ids).values_list("galaxy_id", flat=True))
    priorities = dict(Galaxy.objects.filter(pk__in=ids).values_list("id", "labeling_priority"))
    rows = [Consensus(galaxy_id=gid, priority=priorities[gid]) for gid in ids
            if gid in priorities and gid not in standards]
    created = Consensus.objects.bulk_create(rows, ignore_conflicts=True, batch_size=5000)
    return len(created)


def queue_sync_priorities() -> int:
    """Copy ``Galaxy.labeling_priority`` (written by prediction tasks) onto the queue rows that changed."""
    consensus, galaxy = Consensus._meta.db_table, Galaxy._meta.db_table
    if connection.vendor == "postgresql":
        sql = (f"UPDATE {consensus} c SET priority = g.labeling_priority FROM {galaxy} g "
               "WHERE g.id = c.galaxy_id AND NOT c.retired AND c.priority IS DISTINCT FROM g.labeling_priority")
    else:
        # Portable form (SQLite): a correlated subquery, and IS NOT as the null-safe "differs".
        current = f"(SELECT g.labeling_priority FROM {galaxy} g WHERE g.id = {consensus}.galaxy_id)"
        sql = f"UPDATE {consensus} SET priority = {current} WHERE NOT retired AND priority IS NOT {current}"
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return cursor.rowcount


# --------------------------------------------------------------------------------------------------
# Handing out work
# --------------------------------------------------------------------------------------------------


def gold_rate(*, tasks_served: int) -> float:
    """Chance that the next task is a gold standard: often at first, rarely later, never zero."""
    start, tau, floor = zoo_setting("GOLD_START"), zoo_setting("GOLD_TAU"), zoo_setting("GOLD_MIN")
    return max(floor, start * math.exp(-tasks_served / tau))


@dataclass
class Task:
    """What the measurement page needs: the lease, the target and the first step's standards."""

    assignment: Assignment
    standards: list[StandardRow]
    queue: str


class Candidate(NamedTuple):
    galaxy_id: int
    n_votes: int


# Queue filter and order of each candidate query (the partial indexes on unretired rows serve them).
_QUEUES: dict[str, tuple[str, str]] = {
    "breadth": ("c.n_votes >= 1 AND c.n_votes < %(min_votes)s", "c.n_votes DESC, c.random_key DESC"),
    "fresh": ("c.n_votes = 0 AND c.random_key >= %(pivot)s", "c.random_key"),
    "priority": ("c.priority > 0", "c.priority DESC"),
    "random": ("c.random_key >= %(pivot)s", "c.random_key"),
    "random_wrap": ("TRUE", "c.random_key"),
    "any": ("TRUE", "c.n_votes DESC, c.random_key"),
}


@functools.cache
def _candidates_sql(queue: str, vendor: str) -> str:
    where, order = _QUEUES[queue]
    consensus, assignment = Consensus._meta.db_table, Assignment._meta.db_table
    if vendor == "postgresql":
        # Rows another request holds are skipped, not waited for: concurrent volunteers never queue up.
        at_least, lock = "GREATEST", " FOR UPDATE OF c SKIP LOCKED"
    else:
        # SQLite: two-argument MAX() is its GREATEST, and no row locks: write_transaction() already holds the
        # database's write lock, so no other assignment runs until this one commits.
        at_least, lock = "MAX", ""
    # status is a literal, not a parameter, so the planner can use the partial index on open leases.
    return (
        f"SELECT c.galaxy_id, c.n_votes FROM {consensus} c "
        "WHERE NOT c.retired AND c.n_votes < %(max_votes)s "
        f"AND NOT EXISTS (SELECT 1 FROM {assignment} s WHERE s.galaxy_id = c.galaxy_id AND s.user_id = %(user_id)s) "
        f"AND (SELECT count(*) FROM {assignment} l WHERE l.galaxy_id = c.galaxy_id "
        f"AND l.status = '{AssignmentStatus.OPEN.value}' AND l.leased_until > %(now)s) "
        f"< {at_least}(%(min_votes)s - c.n_votes, 1) "
        f"AND {where} ORDER BY {order} LIMIT %(limit)s{lock}"
    )


def _candidates(*, user: AbstractBaseUser, queue: str, rng: random.Random, now: datetime) -> list[Candidate]:
    """Lock a few unretired galaxies this volunteer has never been given, skipping rows others hold.

    Galaxies whose slots are all leased are left out here already: otherwise, with a dozen volunteers at
    work, the head of the breadth queue is all leased, every request falls through to the fresh queue and
    breadth first is lost. This reads the statement's snapshot; ``_pick_with_free_slot`` recounts after
    the rows are locked, and that count is the one that decides.

    Plain SQL: on the hot path the ORM's compilation of this query cost more than running it (~0.3 ms).
    """
    params = {"user_id": user.pk, "now": connection.ops.adapt_datetimefield_value(now),
              "max_votes": zoo_setting("MAX_VOTES"), "min_votes": zoo_setting("MIN_VOTES"),
              "limit": zoo_setting("CANDIDATES"), "pivot": None}
    if queue in ("fresh", "random"):
        params["pivot"] = rng.random()
    with connection.cursor() as cursor:
        cursor.execute(_candidates_sql(queue, connection.vendor), params)
        rows = [Candidate(*row) for row in cursor.fetchall()]
        if not rows and queue == "random":  # wrap around below the pivot
            cursor.execute(_candidates_sql("random_wrap", connection.vendor), params)
            rows = [Candidate(*row) for row in cursor.fetchall()]
    return rows


def _pick_with_free_slot(*, rows: list[Candidate], now: datetime) -> Candidate | None:
    """A galaxy may hold only as many open leases as it still needs votes, so the last slot goes to one person.

    Counted after the candidates are locked, in a statement of its own (a fresh snapshot): a lease that
    another request committed while this one waited is seen here.
    """
    if not rows:
        return None
    ids = [r.galaxy_id for r in rows]
    # An IN list rather than PostgreSQL's "= ANY(array)": the same statement runs on SQLite too.
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT galaxy_id, count(*) FROM {Assignment._meta.db_table} "
            f"WHERE galaxy_id IN ({', '.join(['%s'] * len(ids))}) "
            f"AND status = '{AssignmentStatus.OPEN.value}' AND leased_until > %s GROUP BY galaxy_id",
            [*ids, connection.ops.adapt_datetimefield_value(now)],
        )
        open_leases = dict(cursor.fetchall())
    min_votes, max_votes = zoo_setting("MIN_VOTES"), zoo_setting("MAX_VOTES")
    for row in rows:
        leased = open_leases.get(row.galaxy_id, 0)
        allowed = max(min_votes - row.n_votes, 1)
        if leased < allowed and row.n_votes + leased < max_votes:
            return row
    return None


def _gold_galaxy(*, user: AbstractBaseUser, rng: random.Random) -> int | None:
    seen = Assignment.objects.filter(user=user, galaxy_id=OuterRef("galaxy_id"))
    # Practice standards are the tutorial's examples, shown with their answers: never a gold task.
    ids = list(Standard.objects.filter(active=True, inclination__gte=45).filter(~Exists(seen))
               .annotate(practice_slot=Mod("id", PRACTICE_EVERY)).exclude(practice_slot=0)
               .values_list("galaxy_id", flat=True)[:500])
    return rng.choice(ids) if ids else None


def _update_returning_supported() -> bool:
    """PostgreSQL, and SQLite from 3.35 (the one Python links; Django 5.2 itself accepts 3.31)."""
    if connection.vendor == "sqlite":
        return sqlite3.sqlite_version_info >= (3, 35)
    return connection.vendor == "postgresql"


def _profile_count_task(*, user: AbstractBaseUser) -> int:
    """Count one more task served to the volunteer; return the count before it (the gold schedule's input).

    One ``UPDATE … RETURNING`` instead of SELECT + UPDATE (PostgreSQL, and SQLite from 3.35); the first task
    ever creates the profile first. The row stays locked until the caller's transaction ends, so a
    rolled-back attempt is not counted.
    """
    table = VolunteerProfile._meta.db_table
    update = f"UPDATE {table} SET tasks_served = tasks_served + 1 WHERE user_id = %s"

    def count() -> tuple | None:
        with connection.cursor() as cursor:
            if _update_returning_supported():
                cursor.execute(update + " RETURNING tasks_served", [user.pk])
                return cursor.fetchone()
            cursor.execute(update, [user.pk])  # an older SQLite: the same row, read back
            if not cursor.rowcount:
                return None
            cursor.execute(f"SELECT tasks_served FROM {table} WHERE user_id = %s", [user.pk])
            return cursor.fetchone()

    row = count()
    if row is None:
        profile_get_or_create(user=user)
        row = count()
    return int(row[0]) - 1


def assignment_next(*, user: AbstractBaseUser, now: datetime | None = None,
                    rng: random.Random | None = None) -> Task:
    """The volunteer's current lease if it is still open, otherwise a new one.

    Order of queues: gold standards on a decaying schedule; then ~RANDOM_SHARE uniformly at random,
    PRIORITY_SHARE from the model's least certain galaxies, and the rest breadth first (galaxies with
    1-2 votes, then fresh ones). Every queue falls back to the others when it is empty.
    """
    now = now or timezone.now()
    rng = rng or random.Random()
    lease = timedelta(seconds=zoo_setting("LEASE_SECONDS"))
    with write_transaction():
        held = (Assignment.objects.filter(user=user, status=AssignmentStatus.OPEN, leased_until__gt=now)
                .order_by("-created_at").first())
        if held is not None:
            ids = (held.shown.get("1") or [[]])[-1]
            by_id = {s.id: s for s in standard_pool()}
            return Task(assignment=held, standards=[by_id[i] for i in ids if i in by_id], queue="held")

        # Counted up front (one UPDATE … RETURNING); a failed attempt below rolls the count back with the lease.
        served = _profile_count_task(user=user)
        roll = rng.random()
        queues: list[str]
        p_gold = gold_rate(tasks_served=served)
        rest = (roll - p_gold) / (1 - p_gold) if roll >= p_gold else None
        if rest is None:
            queues = ["gold", "breadth", "fresh", "any"]
        elif rest < zoo_setting("RANDOM_SHARE"):
            queues = ["random", "breadth", "fresh", "any"]
        elif rest < zoo_setting("RANDOM_SHARE") + zoo_setting("PRIORITY_SHARE"):
            queues = ["priority", "breadth", "fresh", "any"]
        else:
            queues = ["breadth", "fresh", "priority", "any"]

        galaxy_id: int | None = None
        chosen_queue = ""
        for queue in queues:
            if queue == "gold":
                galaxy_id = _gold_galaxy(user=user, rng=rng)
            else:
                row = _pick_with_free_slot(rows=_candidates(user=user, queue=queue, rng=rng, now=now), now=now)
                galaxy_id = row.galaxy_id if row else None
            if galaxy_id is not None:
                chosen_queue = queue
                break
        if galaxy_id is None:
            raise NoTaskAvailable("No galaxy is waiting for you right now. Thank you! Come back later.")

        pool = standard_pool()
        standards = standards_draw(step=1, low=None, exclude_galaxy_id=galaxy_id, rng=rng, pool=pool)
        try:
            # No savepoint: on a conflict nothing else runs in this transaction, the outer atomic() rolls it back.
            assignment = Assignment.objects.create(
                user=user, galaxy_id=galaxy_id, is_gold=chosen_queue == "gold", queue=chosen_queue,
                leased_until=now + lease, shown={"1": [[s.id for s in standards]], "2": []},
            )
        except IntegrityError:
            # The same volunteer asked twice at once and the other request won this galaxy.
            raise NoTaskAvailable("Another request of yours just took this galaxy; ask again.") from None
    return Task(assignment=assignment, standards=standards, queue=chosen_queue)


def open_assignment(*, user: AbstractBaseUser, assignment_id: int, now: datetime, lock: bool) -> Assignment:
    """The volunteer's assignment if they may still answer it (optionally row-locked); the Zoo's error if not."""
    qs = Assignment.objects.filter(pk=assignment_id, user=user)
    if lock:
        qs = qs.select_for_update()
    assignment = qs.first()
    if assignment is None:
        raise NotAssigned("This galaxy is not assigned to you.")
    if assignment.status == AssignmentStatus.DONE:
        raise AlreadySubmitted("You already measured this galaxy; the first answer is kept.")
    if assignment.status == AssignmentStatus.SKIPPED:
        raise AlreadySubmitted("You skipped this galaxy.")
    if assignment.leased_until <= now:
        raise LeaseExpired("This task's lease has expired; ask for the next galaxy.")
    return assignment


def assignment_draw_standards(*, user: AbstractBaseUser, assignment_id: int, step: int, low: int | None = None,
                              now: datetime | None = None, rng: random.Random | None = None) -> list[StandardRow]:
    """(Re)draw a step's standards at random and remember the sequence, so submits can be checked against it."""
    now = now or timezone.now()
    rng = rng or random.Random()
    if step not in (1, 2):
        raise InvalidInput("step must be 1 or 2.")
    if step == 2 and (low is None or low not in step_values(step=1)):
        raise InvalidInput("Step 2 needs the step-1 interval: low must be one of 45, 50, ... 85.")
    with write_transaction():
        assignment = open_assignment(user=user, assignment_id=assignment_id, now=now, lock=True)
        standards = standards_draw(step=step, low=low, exclude_galaxy_id=assignment.galaxy_id, rng=rng)
        shown = assignment.shown or {"1": [], "2": []}
        entry: Any = [s.id for s in standards] if step == 1 else {"low": low, "ids": [s.id for s in standards]}
        history = shown.setdefault(str(step), [])
        history.append(entry)
        shown[str(step)] = history[-zoo_setting("MAX_REDRAWS"):]
        assignment.shown = shown
        assignment.save(update_fields=["shown"])
    return standards


def assignment_skip(*, user: AbstractBaseUser, assignment_id: int, now: datetime | None = None) -> Assignment:
    """Give the task back. The volunteer is not offered this galaxy again."""
    now = now or timezone.now()
    with write_transaction():
        assignment = Assignment.objects.select_for_update().filter(pk=assignment_id, user=user).first()
        if assignment is None:
            raise NotAssigned("This galaxy is not assigned to you.")
        if assignment.status != AssignmentStatus.OPEN:
            raise AlreadySubmitted("This task is already closed.")
        assignment.status = AssignmentStatus.SKIPPED
        assignment.save(update_fields=["status"])
    return assignment
