"""Writes of the Zoo: profiles, the queue, assignment, submission, consensus, retirement, calibration, export.

Assignment and submission are the hot path. Both run in one short transaction each. On PostgreSQL a galaxy's
queue row (``Consensus``) is the lock that serialises its slots, taken with ``SKIP LOCKED`` when handing out
work so concurrent volunteers never wait on each other. SQLite (the embedded default of ``make run``) has no
row locks: there every writing transaction takes the database's write lock when it begins
(``write_transaction``), so assignments are handed out one at a time.
"""
from __future__ import annotations

import csv
import functools
import io
import json
import math
import random
import sqlite3
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.files.base import ContentFile
from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, OuterRef
from django.db.models.functions import Mod
from django.utils import timezone

from catalog.models import Galaxy
from inclinet_site.csv_safety import csv_safe_row

from .conf import zoo_setting
from .errors import (
    AlreadySubmitted, ForgedNeighbours, GalaxyRetired, InvalidInput, LeaseExpired, NotAssigned, NotFound,
    NoTaskAvailable,
)
from .models import (
    REJECT_REASONS, Assignment, AssignmentStatus, Consensus, ConsensusStatus, DisplayMode, ExportJob, ExportStatus,
    IngestJob, IngestStatus, Measurement, RetireReason, Standard, StandardMethod, StandardProposal,
    VolunteerCalibration, VolunteerProfile, _reason_field,
)
from .feedback import known_answer_feedback
from .selectors import (
    PRACTICE_EVERY, StandardRow, calibrations_for, standard_pool, standards_draw, step_values,
)
from .stats import fit_line, fit_line_se, round_random, scatter, weighted_median

# --------------------------------------------------------------------------------------------------
# Transactions
# --------------------------------------------------------------------------------------------------


@contextmanager
def write_transaction() -> Iterator[None]:
    """``transaction.atomic()`` for a block that reads and then writes; on SQLite it begins ``IMMEDIATE``.

    SQLite has no row locks (``select_for_update`` is a no-op there) and allows one writer at a time. A
    default (deferred) transaction reads under a shared lock, and when it then writes while another
    connection is writing SQLite answers "database is locked" at once instead of waiting (waiting could
    deadlock). ``BEGIN IMMEDIATE`` takes the write lock up front and waits for it (the busy timeout), so the
    read-decide-write of an assignment or a submit runs alone: nobody is leased a slot twice. PostgreSQL
    keeps plain ``atomic()`` and its row locks. Nested blocks are savepoints and change nothing.
    """
    if connection.vendor != "sqlite" or connection.in_atomic_block:
        with transaction.atomic():
            yield
        return
    connection.ensure_connection()  # a new connection would reset transaction_mode from the settings
    configured = connection.transaction_mode
    connection.transaction_mode = "IMMEDIATE"  # read by the BEGIN that atomic() issues on entry
    try:
        with transaction.atomic():
            connection.transaction_mode = configured
            yield
    finally:
        connection.transaction_mode = configured


# --------------------------------------------------------------------------------------------------
# Volunteers and standards
# --------------------------------------------------------------------------------------------------


def profile_get_or_create(*, user: AbstractBaseUser) -> VolunteerProfile:
    profile, _ = VolunteerProfile.objects.get_or_create(user=user)
    return profile


def profile_update(*, user: AbstractBaseUser, display_mode: str | None = None, inverted: bool | None = None,
                   zoom: float | None = None, tutorial_done: bool | None = None) -> VolunteerProfile:
    profile = profile_get_or_create(user=user)
    if display_mode is not None:
        if display_mode not in DisplayMode.values:
            raise InvalidInput(f"display_mode must be one of {', '.join(DisplayMode.values)}.")
        profile.display_mode = display_mode
    if inverted is not None:
        profile.inverted = inverted
    if zoom is not None:
        if not 0.2 <= zoom <= 5:
            raise InvalidInput("zoom must be between 0.2 and 5.")
        profile.zoom = zoom
    if tutorial_done is not None:
        profile.tutorial_done = tutorial_done
    profile.save()
    return profile


def standard_create(*, galaxy_id: int, inclination: float, chosen_by: Iterable[AbstractBaseUser],
                    morphology: str = "", display_scale: float = 1.0, display_angle: float = 0.0,
                    method: str = StandardMethod.STAFF) -> Standard:
    if not 0 <= inclination <= 90:
        raise InvalidInput("A standard's inclination must be between 0 and 90 degrees.")
    if not Galaxy.objects.filter(pk=galaxy_id).exists():
        raise NotFound(f"No galaxy with id {galaxy_id}.")
    with write_transaction():
        standard, _ = Standard.objects.update_or_create(
            galaxy_id=galaxy_id,
            defaults={"inclination": inclination, "morphology": morphology, "display_scale": display_scale,
                      "display_angle": display_angle, "method": method, "active": True},
        )
        standard.chosen_by.add(*chosen_by)
        # A standard is a reference, not a target: take it out of the volunteers' queue.
        Consensus.objects.filter(galaxy_id=galaxy_id, n_votes=0).delete()
    return standard


def standard_update(*, standard_id: int, **changes: Any) -> Standard:
    standard = Standard.objects.filter(pk=standard_id).first()
    if standard is None:
        raise NotFound(f"No standard with id {standard_id}.")
    allowed = {"inclination", "morphology", "display_scale", "display_angle", "active"}
    for key, value in changes.items():
        if key not in allowed:
            raise InvalidInput(f"Cannot change {key!r} of a standard.")
        setattr(standard, key, value)
    if not 0 <= standard.inclination <= 90:
        raise InvalidInput("A standard's inclination must be between 0 and 90 degrees.")
    standard.save()
    return standard


def standard_propose(*, expert: AbstractBaseUser, galaxy_id: int, inclination: float, morphology: str = "",
                     display_scale: float = 1.0, display_angle: float = 0.0) -> Standard | None:
    """An expert's measurement of a candidate. Three experts within 3° adopt the median (as the original did)."""
    if not 45 <= inclination < 90:
        raise InvalidInput("Expert standards must lie in 45-90 degrees (exclusive of 90, as in the original).")
    if not Galaxy.objects.filter(pk=galaxy_id).exists():
        raise NotFound(f"No galaxy with id {galaxy_id}.")
    with write_transaction():
        StandardProposal.objects.update_or_create(
            galaxy_id=galaxy_id, expert=expert,
            defaults={"inclination": inclination, "morphology": morphology, "display_scale": display_scale,
                      "display_angle": display_angle},
        )
        proposals = list(StandardProposal.objects.select_for_update().filter(galaxy_id=galaxy_id))
        if len(proposals) < 3:
            return None
        values = sorted(p.inclination for p in proposals)
        for start in range(len(values) - 2):
            window = values[start:start + 3]
            if window[-1] - window[0] <= 3.0:
                return standard_create(
                    galaxy_id=galaxy_id, inclination=window[1], method=StandardMethod.EXPERTS,
                    chosen_by=[p.expert for p in proposals if window[0] <= p.inclination <= window[-1]],
                    morphology=morphology, display_scale=display_scale, display_angle=display_angle,
                )
    return None


def standard_promote(*, galaxy_id: int, by: AbstractBaseUser) -> Standard:
    """Staff promote a settled galaxy to a standard, by the seed's rule: three measurements within 3° (experts'
    own first), the standard at their median. The galaxy must have retired accepted, with a small scatter."""
    from .selectors import PROMOTION_MAX_SCATTER, _expert_ids, promotion_votes, promotion_window

    if not 0 < galaxy_id < 2**63:  # beyond the id column: no such galaxy (and no database error)
        raise NotFound(f"Galaxy {galaxy_id} is not in the Zoo.")
    with write_transaction():
        consensus = Consensus.objects.select_for_update().filter(galaxy_id=galaxy_id).first()
        if consensus is None:
            raise NotFound(f"Galaxy {galaxy_id} is not in the Zoo.")
        if Standard.objects.filter(galaxy_id=galaxy_id).exists():
            raise InvalidInput(f"Galaxy {galaxy_id} is a standard already.")
        if not consensus.retired or consensus.status != ConsensusStatus.ACCEPTED:
            raise InvalidInput("Only a galaxy that has retired with an accepted inclination can become a standard.")
        if consensus.inc_e is None or consensus.inc_e > PROMOTION_MAX_SCATTER:
            raise InvalidInput(f"The volunteers' scatter on this galaxy ({consensus.inc_e}°) is above "
                               f"{PROMOTION_MAX_SCATTER:g}°: too uncertain for a standard.")
        votes = promotion_votes(galaxy_ids=[galaxy_id]).get(galaxy_id, [])
        window = promotion_window(votes, _expert_ids({u for u, _ in votes}))
        if window is None:
            raise InvalidInput("No three measurements of this galaxy agree within 3° at 45-90°.")
        voters = list(get_user_model().objects.filter(pk__in=window.user_ids))
        return standard_create(galaxy_id=galaxy_id, inclination=round(window.inclination, 2),
                               chosen_by=[by, *voters], method=StandardMethod.CROWD)


def standards_fill_gaps(*, by: AbstractBaseUser) -> list[Standard]:
    """Promote, for every degree of 45–90° with fewer than three standards, the best candidates that fall on it
    (tightest agreement first) until it has three or none is left. Returns the new standards."""
    from .selectors import promotion_candidates, standard_coverage

    missing = {row["degree"]: row["missing"] for row in standard_coverage()["gaps"]}
    made = []
    for candidate in promotion_candidates(limit=2000):
        if missing.get(candidate["degree"], 0) > 0:
            try:
                made.append(standard_promote(galaxy_id=candidate["galaxy_id"], by=by))
            except InvalidInput:
                continue  # changed since it was listed (e.g. promoted meanwhile)
            missing[candidate["degree"]] -= 1
    return made


# --------------------------------------------------------------------------------------------------
# The queue and assignment
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


def _open_assignment(*, user: AbstractBaseUser, assignment_id: int, now: datetime, lock: bool) -> Assignment:
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
        assignment = _open_assignment(user=user, assignment_id=assignment_id, now=now, lock=True)
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


# --------------------------------------------------------------------------------------------------
# Submitting a measurement
# --------------------------------------------------------------------------------------------------


@dataclass
class Placement:
    """Where the volunteer put the target: neighbour standard ids (None at an end) and the step-1 interval."""

    left_id: int | None
    right_id: int | None
    step1_low: int | None
    face_on: bool


def _placement_value(*, placement: Placement, shown: dict, standards: dict[int, Standard]) -> float | None:
    """Check the pair against the sequences really shown and return the raw inclination (None for face-on)."""
    left = standards.get(placement.left_id) if placement.left_id else None
    right = standards.get(placement.right_id) if placement.right_id else None
    if placement.face_on:
        # Left of the 45° standard in step 1: the right neighbour must be a sequence's first standard.
        firsts = {seq[0] for seq in shown.get("1", []) if seq}
        if placement.left_id is not None or placement.right_id not in firsts:
            raise ForgedNeighbours("Face-on means left of the first standard of the sequence you were shown.")
        return None
    if placement.step1_low not in step_values(step=1):
        raise InvalidInput("step1_low must be the step-1 interval's lower edge: 45, 50, ... 85.")
    sequences = [e["ids"] for e in shown.get("2", []) if isinstance(e, dict) and e.get("low") == placement.step1_low]
    ok = False
    for seq in sequences:
        pairs = list(zip([None, *seq], [*seq, None], strict=True))
        if (placement.left_id, placement.right_id) in pairs:
            ok = True
            break
    if not ok:
        raise ForgedNeighbours("These two standards were not next to each other on your step-2 page.")
    if left and right:
        return (left.inclination + right.inclination) / 2.0
    if right is not None:  # left of every step-2 standard: half a step below it
        return max(right.inclination - 0.5, 0.0)
    assert left is not None  # right of every step-2 standard: half a step above it, never beyond 90
    return min(left.inclination + 0.5, 90.0) if left.inclination < 90 else 90.0


@dataclass
class SubmitResult:
    measurement: Measurement
    feedback: dict[str, Any] | None = None


def measurement_submit(
    *, user: AbstractBaseUser, assignment_id: int, placement: Placement | None, reasons: Iterable[str] = (),
    note: str = "", display_mode: str = DisplayMode.COLOUR, inverted: bool = False, zoom: float = 1.0,
    angle: float = 0.0, started_at: datetime | None = None, finished_at: datetime | None = None,
    user_agent: str = "", shown_other_votes: bool = False, shown_model: bool = False,
    now: datetime | None = None, rng: random.Random | None = None,
) -> SubmitResult:
    """Validate and store one answer, then recompute the galaxy's consensus in the same transaction."""
    now = now or timezone.now()
    rng = rng or random.Random()
    reasons = list(dict.fromkeys(reasons))
    unknown = [r for r in reasons if r not in REJECT_REASONS]
    if unknown:
        raise InvalidInput(f"Unknown reject reason(s): {', '.join(unknown)}.")
    if display_mode not in DisplayMode.values:
        raise InvalidInput(f"display_mode must be one of {', '.join(DisplayMode.values)}.")
    if placement is None and not reasons:
        raise InvalidInput("Place the galaxy between two standards, or give a reject reason.")
    if started_at and finished_at and finished_at < started_at:
        raise InvalidInput("finished_at is before started_at.")
    with write_transaction():
        assignment = _open_assignment(user=user, assignment_id=assignment_id, now=now, lock=True)
        consensus = None
        if not assignment.is_gold:
            consensus = Consensus.objects.select_for_update().filter(galaxy_id=assignment.galaxy_id).first()
            if consensus is None or consensus.retired:
                raise GalaxyRetired("This galaxy has retired: it has enough votes. Thank you!")
            if consensus.n_votes >= zoo_setting("MAX_VOTES"):
                raise GalaxyRetired("This galaxy already has all the votes it needs.")
        raw = None
        left = right = None
        if placement is not None:
            ids = [i for i in (placement.left_id, placement.right_id) if i]
            standards = Standard.objects.in_bulk(ids)
            if len(standards) != len(set(ids)):
                raise ForgedNeighbours("Unknown standard id.")
            raw = _placement_value(placement=placement, shown=assignment.shown or {}, standards=standards)
            left, right = standards.get(placement.left_id), standards.get(placement.right_id)
        face_on = bool(placement and placement.face_on)
        step1_low = placement.step1_low if placement and not face_on else None
        counted = not Measurement.objects.filter(user=user, galaxy_id=assignment.galaxy_id, counted=True).exists()
        measurement = Measurement.objects.create(
            user=user, galaxy_id=assignment.galaxy_id, assignment=assignment,
            inclination_raw=raw, inclination=round_random(raw, rng) if raw is not None else None,
            left_standard=left, right_standard=right, step1_low=step1_low,
            step1_high=step1_low + 5 if step1_low is not None else None, face_on=face_on,
            rejected=bool(reasons), note=note[:500], display_mode=display_mode, inverted=inverted,
            zoom=zoom, angle=angle, started_at=started_at, finished_at=finished_at or now,
            user_agent=user_agent[:300], shown_other_votes=shown_other_votes, shown_model=shown_model,
            is_gold=assignment.is_gold, counted=counted,
            **{_reason_field(r): True for r in reasons},
        )
        assignment.status = AssignmentStatus.DONE
        assignment.save(update_fields=["status"])
        if consensus is not None and counted:
            consensus_recompute(consensus=consensus, now=now)
    feedback = None
    if assignment.is_gold:
        feedback = _gold_feedback(measurement=measurement)
    return SubmitResult(measurement=measurement, feedback=feedback)


def _gold_feedback(*, measurement: Measurement) -> dict[str, Any] | None:
    standard = Standard.objects.filter(galaxy_id=measurement.galaxy_id).first()
    if standard is None:
        return None
    # Graded on the stored (rounded) value, so the feedback says the same number as "Saved".
    return known_answer_feedback(truth=standard.inclination, value=measurement.inclination,
                                 face_on=measurement.face_on, reasons=measurement.reasons())


# --------------------------------------------------------------------------------------------------
# Consensus and retirement
# --------------------------------------------------------------------------------------------------


@dataclass
class _Vote:
    user_id: int
    raw: float | None
    face_on: bool
    rejected: bool


def _consensus_values(*, consensus: Consensus, votes: list[_Vote],
                      calibration: dict[int, tuple[float, float, float]]) -> list[float]:
    """Fill the consensus fields from the votes and return the accepted calibrated values."""
    values, weights = [], []
    n = len(votes)
    n_face_on = sum(1 for v in votes if v.face_on)
    n_reject = sum(1 for v in votes if v.rejected and not v.face_on)
    for vote in votes:
        if vote.raw is None or vote.face_on or vote.rejected:
            continue
        a, b, w = calibration.get(vote.user_id, (1.0, 0.0, 1.0))
        values.append(min(max(a * vote.raw + b, 0.0), 90.0))
        weights.append(w)
    consensus.n_votes = n
    consensus.n_face_on = n_face_on
    consensus.n_reject = n_reject
    consensus.face_on_fraction = n_face_on / n if n else 0.0
    consensus.reject_fraction = n_reject / n if n else 0.0
    consensus.inc = weighted_median(values, weights)
    consensus.inc_e = scatter(values)
    if n == 0:
        consensus.status = ConsensusStatus.PENDING
    elif consensus.face_on_fraction > 0.5:
        consensus.status = ConsensusStatus.FACE_ON
    elif consensus.reject_fraction > 0.5 or consensus.inc is None:
        consensus.status = ConsensusStatus.REJECTED
    elif consensus.inc < 44.5:
        # The grid cannot sort galaxies below 45°: the original labelled such accepted galaxies J.
        consensus.status = ConsensusStatus.REJECTED
    else:
        consensus.status = ConsensusStatus.ACCEPTED
    return values


def _retire_reason(*, consensus: Consensus, values: list[float]) -> str:
    min_votes, spread = zoo_setting("MIN_VOTES"), zoo_setting("AGREE_SPREAD")
    if consensus.n_face_on >= min_votes and consensus.face_on_fraction > 0.5:
        return RetireReason.FACE_ON
    if consensus.n_reject >= min_votes and consensus.reject_fraction > 0.5:
        return RetireReason.REJECTED
    ordered = sorted(values)
    if any(ordered[i + min_votes - 1] - ordered[i] <= spread for i in range(len(ordered) - min_votes + 1)):
        return RetireReason.CONSENSUS
    if consensus.n_votes >= zoo_setting("MAX_VOTES"):
        return RetireReason.MAX_VOTES
    return ""


def _votes_for(*, galaxy_ids: list[int]) -> dict[int, list[_Vote]]:
    votes: dict[int, list[_Vote]] = defaultdict(list)
    rows = (Measurement.objects.filter(galaxy_id__in=galaxy_ids, counted=True, is_gold=False)
            .values_list("galaxy_id", "user_id", "inclination_raw", "face_on", "face_on_reason", "rejected"))
    for galaxy_id, user_id, raw, face_on, face_on_reason, rejected in rows:
        votes[galaxy_id].append(_Vote(user_id, raw, face_on or face_on_reason, rejected))
    return votes


def consensus_recompute(*, consensus: Consensus, now: datetime | None = None, retire: bool = True) -> Consensus:
    """Recompute one galaxy from its counted votes (the caller holds the row lock) and retire it if settled."""
    votes = _votes_for(galaxy_ids=[consensus.galaxy_id])[consensus.galaxy_id]
    calibration = calibrations_for(user_ids={v.user_id for v in votes})
    values = _consensus_values(consensus=consensus, votes=votes, calibration=calibration)
    if retire and not consensus.retired:
        reason = _retire_reason(consensus=consensus, values=values)
        if reason:
            consensus.retired, consensus.retire_reason, consensus.retired_at = True, reason, timezone.now()
    consensus.save()
    return consensus


def consensus_recompute_all(*, batch_size: int = 2000) -> int:
    """Refresh every galaxy's values after a calibration (retirement decisions already taken are kept)."""
    calibration_all = {uid: (a, b, w) for uid, a, b, w in
                       VolunteerCalibration.objects.values_list("user_id", "a", "b", "weight")}
    voted = Measurement.objects.filter(galaxy_id=OuterRef("galaxy_id"), counted=True, is_gold=False)
    ids = list(Consensus.objects.filter(Exists(voted)).order_by("galaxy_id").values_list("galaxy_id", flat=True))
    fields = ["n_votes", "n_face_on", "n_reject", "face_on_fraction", "reject_fraction", "inc", "inc_e", "status"]
    for start in range(0, len(ids), batch_size):
        chunk = ids[start:start + batch_size]
        # Lock the rows, then read their votes, in one transaction: a vote committed between an earlier read
        # and this write would be overwritten with a stale count. A submit waits for the lock instead and
        # recomputes after us. Locked in galaxy order (as consensus_rebuild does): two runs cannot deadlock.
        with write_transaction():
            rows = list(Consensus.objects.select_for_update().filter(galaxy_id__in=chunk).order_by("galaxy_id"))
            votes = _votes_for(galaxy_ids=chunk)
            for row in rows:
                _consensus_values(consensus=row, votes=votes.get(row.galaxy_id, []), calibration=calibration_all)
            Consensus.objects.bulk_update(rows, fields)
    return len(ids)


def consensus_retire(*, galaxy_id: int, by: AbstractBaseUser) -> Consensus:
    """Staff force-retire: no more volunteers are given the galaxy; outstanding leases are refused on submit."""
    with write_transaction():
        consensus = Consensus.objects.select_for_update().filter(galaxy_id=galaxy_id).first()
        if consensus is None:
            raise NotFound(f"Galaxy {galaxy_id} is not in the Zoo's queue.")
        consensus.retired, consensus.retire_reason = True, RetireReason.STAFF
        consensus.retired_at, consensus.retired_by = timezone.now(), by
        consensus.save()
    return consensus


def consensus_unretire(*, galaxy_id: int, by: AbstractBaseUser) -> Consensus:
    """Staff unretire: the galaxy goes back in the queue (the next vote re-applies the retirement rules)."""
    with write_transaction():
        consensus = Consensus.objects.select_for_update().filter(galaxy_id=galaxy_id).first()
        if consensus is None:
            raise NotFound(f"Galaxy {galaxy_id} is not in the Zoo's queue.")
        if consensus.n_votes >= zoo_setting("MAX_VOTES"):
            raise InvalidInput("This galaxy already has the maximum number of votes; raise LABELING_MAX_VOTES first.")
        consensus.retired, consensus.retire_reason, consensus.retired_at = False, "", None
        consensus.retired_by = by
        consensus.save()
    return consensus


# --------------------------------------------------------------------------------------------------
# Volunteer calibration
# --------------------------------------------------------------------------------------------------


# Votes are censored at the grid's ends: left of 45° is a face-on flag (no value) and right of 90° is 90.
# A point enters a volunteer's fit only where their expected raw value lies 2σ inside those ends, so the
# censoring cannot flatten their slope. A volunteer without a fit yet has the identity: targets 53-82°.
RAW_LOW, RAW_HIGH = 45.0, 90.0
CENSOR_MARGIN_SIGMA = 2.0


def _uncensored(*, target: float, coef: tuple[float, float], scatter: float) -> bool:
    """Whether this volunteer's raw vote on a galaxy at ``target`` is safely away from the grid's ends."""
    a, b = coef
    expected_raw = (target - b) / a
    margin = CENSOR_MARGIN_SIGMA * max(scatter, 2.0) / a
    return RAW_LOW + margin <= expected_raw <= RAW_HIGH - margin


@dataclass
class CalibrationReport:
    iterations: int = 0
    converged: bool = False
    calibrated: int = 0
    identity: int = 0
    coefficients: dict[int, tuple[float, float, float | None, int]] = field(default_factory=dict)


def calibration_fit(*, max_iter: int | None = None, tol: float = 0.2) -> CalibrationReport:
    """Fit each volunteer's ``i_adj = a·i + b``, iterating against the consensus and the gold standards.

    Each pass: (1) per volunteer, regress their raw values on the targets (the leave-one-out weighted
    mean of the other volunteers' calibrated values, or a gold standard's accepted inclination), using
    points away from the grid's censored ends and |Δ| < 10°, and invert the line; (2) anchor the common
    scale on the gold standards, which consensus alone cannot fix (everyone could share a bias); (3)
    recompute the weights from each volunteer's scatter. Repeat until no volunteer's adjusted value moves
    by ``tol`` degrees at 50° or 85° (0.2°: below the votes' half-degree resolution).
    """
    max_iter = max_iter or zoo_setting("CALIBRATION_MAX_ITER")
    min_n = zoo_setting("CALIBRATION_MIN_N")
    default_scatter = zoo_setting("DEFAULT_SCATTER")
    rows = list(Measurement.objects.filter(counted=True, rejected=False, face_on=False,
                                           inclination_raw__isnull=False)
                .values_list("user_id", "galaxy_id", "inclination_raw", "is_gold"))
    gold_truth = dict(Standard.objects.values_list("galaxy_id", "inclination"))
    per_galaxy: dict[int, list[tuple[int, float]]] = defaultdict(list)
    gold_points: dict[int, list[tuple[float, float]]] = defaultdict(list)
    users: set[int] = set()
    for user_id, galaxy_id, raw, is_gold in rows:
        users.add(user_id)
        if is_gold:
            if galaxy_id in gold_truth:
                gold_points[user_id].append((raw, gold_truth[galaxy_id]))
        else:
            per_galaxy[galaxy_id].append((user_id, raw))
    coef: dict[int, tuple[float, float]] = {u: (1.0, 0.0) for u in users}
    weight: dict[int, float] = {u: 1.0 for u in users}
    scatters: dict[int, float | None] = {u: None for u in users}  # about the targets, their noise included
    own_sigmas: dict[int, float | None] = {u: None for u in users}  # the volunteer's own noise alone
    fitted: set[int] = set()
    report = CalibrationReport()
    for iteration in range(1, max_iter + 1):
        report.iterations = iteration
        points: dict[int, list[tuple[float, float, float]]] = defaultdict(list)  # (raw, target, target variance)
        for votes in per_galaxy.values():
            if len(votes) < 2:
                continue
            adjusted = [(u, coef[u][0] * raw + coef[u][1], weight[u]) for u, raw in votes]
            for index, (user_id, raw) in enumerate(votes):
                others = [(v, w) for j, (_, v, w) in enumerate(adjusted) if j != index]
                centre = weighted_median([v for v, _ in others], [w for _, w in others])
                # The weighted mean of the others (outliers dropped) is a less noisy target than their median.
                kept = [(v, w) for v, w in others if abs(v - centre) < 8] or others
                target = sum(v * w for v, w in kept) / sum(w for _, w in kept)
                points[user_id].append((raw, target, 1.0 / sum(w for _, w in kept)))
        for user_id, pairs in gold_points.items():
            points[user_id].extend((raw, truth, 0.0) for raw, truth in pairs)  # a gold target is exact
        new_coef: dict[int, tuple[float, float]] = {}
        lines: dict[int, tuple[float, float, float, float, float]] = {}  # slope, se², x̄, ȳ, intercept
        for user_id in users:
            a0, b0 = coef[user_id]
            own_sigma = own_sigmas[user_id] or default_scatter
            # Each point weighs by its total variance: the volunteer's own plus the target's (zero for gold).
            usable = [(r, t, 1.0 / (own_sigma ** 2 + var_t)) for r, t, var_t in points.get(user_id, [])
                      if _uncensored(target=t, coef=(a0, b0), scatter=own_sigma) and abs(a0 * r + b0 - t) < 10]
            if len(usable) >= min_n and max(t for _, t, _ in usable) - min(t for _, t, _ in usable) >= 10:
                # Raw values on targets, then inverted: i_adj = (i - β)/α. The noisy targets attenuate each
                # slope a little; the gold anchor below removes the common part of that.
                fit = fit_line_se([t for _, t, _ in usable], [r for r, _, _ in usable], [w for _, _, w in usable])
                if fit is not None and 0.6 < fit[0] < 1.6:
                    lines[user_id] = fit
        # Shrink each slope toward the crowd's (empirical Bayes): with ~100 points a slope is uncertain to a few
        # per cent, comparable to the true spread between volunteers, and a wrong slope costs most at the ends.
        if len(lines) >= 3:
            slopes = [fit[0] for fit in lines.values()]
            mean_slope = sum(slopes) / len(slopes)
            spread = sum((x - mean_slope) ** 2 for x in slopes) / (len(slopes) - 1)
            noise = sum(fit[1] for fit in lines.values()) / len(lines)
            tau2 = max(spread - noise, 1e-4)
            for user_id, (slope, se2, mx, my, _) in list(lines.items()):
                shrunk = mean_slope + tau2 / (tau2 + se2) * (slope - mean_slope)
                lines[user_id] = (shrunk, se2, mx, my, my - shrunk * mx)
        for user_id in users:
            if user_id not in lines:
                new_coef[user_id] = (1.0, 0.0)
                continue
            alpha, _, _, _, beta = lines[user_id]
            new_coef[user_id] = (1.0 / alpha, -beta / alpha)
        fitted = {u for u, c in new_coef.items() if c != (1.0, 0.0)}
        # Anchor the common scale on gold: regress calibrated gold values on the accepted inclinations.
        anchor_x, anchor_y = [], []
        for user_id in fitted:
            a, b = new_coef[user_id]
            for raw, truth in gold_points.get(user_id, []):
                if _uncensored(target=truth, coef=(a, b), scatter=own_sigmas[user_id] or default_scatter):
                    anchor_x.append(truth)
                    anchor_y.append(a * raw + b)
        if len(anchor_x) >= 20:
            line = fit_line(anchor_x, anchor_y, [1.0] * len(anchor_x))
            if line is not None and 0.8 < line[0] < 1.25:
                slope, intercept = line
                for user_id in fitted:
                    a, b = new_coef[user_id]
                    new_coef[user_id] = (a / slope, (b - intercept) / slope)
        elif len(fitted) >= 3:
            # Without enough gold the common scale is free: pin it to the crowd's median volunteer.
            slopes = sorted(new_coef[u][0] for u in fitted)
            offsets = sorted(new_coef[u][0] * 67.5 + new_coef[u][1] - 67.5 for u in fitted)
            m_a, m_off = slopes[len(slopes) // 2], offsets[len(offsets) // 2]
            for user_id in fitted:
                a, b = new_coef[user_id]
                new_coef[user_id] = (a / m_a, (b - m_off - 67.5) / m_a + 67.5)
        if iteration > 2:
            # Points enter and leave the fits (censoring window, outlier cut) as the lines move, which can
            # make the plain iteration cycle; half steps damp that so it settles.
            new_coef = {u: ((coef[u][0] + a) / 2, (coef[u][1] + b) / 2) if u in fitted else (a, b)
                        for u, (a, b) in new_coef.items()}
        # Scatter of each volunteer's calibrated values about the targets. With the targets' noise included it
        # sets the consensus weights after the loop (moderate weights suit a weighted median of three to seven
        # votes better than sharp inverse-variance ones); without it, the fit weights and censoring margin.
        for user_id in users:
            a, b = new_coef[user_id]
            own_sigma = own_sigmas[user_id] or default_scatter
            kept = [((a * r + b - t) ** 2, var_t) for r, t, var_t in points.get(user_id, [])
                    if _uncensored(target=t, coef=(a, b), scatter=own_sigma) and abs(a * r + b - t) < 10]
            if user_id in fitted and len(kept) >= min_n:
                mean_sq = sum(sq for sq, _ in kept) / len(kept)
                scatters[user_id] = math.sqrt(max(mean_sq, 1.0))
                # Less the targets' own variance: what the target noise model and the fit weights need.
                own_sigmas[user_id] = math.sqrt(max(mean_sq - sum(v for _, v in kept) / len(kept), 1.0))
            else:
                scatters[user_id] = own_sigmas[user_id] = None
        for user_id in users:
            s = max(own_sigmas[user_id] or default_scatter, 1.0)
            weight[user_id] = 1.0 / (s * s)
        # How far any volunteer's adjusted value moved, at either end of the usable range (degrees).
        change = max((abs((new_coef[u][0] - coef[u][0]) * x + new_coef[u][1] - coef[u][1])
                      for u in users for x in (50.0, 85.0)), default=0.0)
        coef = new_coef
        if change < tol:
            report.converged = True
            break
    # Consensus weights ∝ 1/σ, not 1/σ²: a weighted median's efficiency goes with the error density at its
    # centre (∝ 1/σ), and this measured better on the simulated crowd. Normalised so a typical volunteer
    # weighs 1, clipped so nobody dominates a median.
    weight = {u: 1.0 / max(scatters[u] or default_scatter, 1.0) ** 2 for u in users}
    if weight:
        typical = sorted(weight.values())[len(weight) // 2]
        weight = {u: min(max(math.sqrt(w / typical), 0.25), 4.0) for u, w in weight.items()}
    with write_transaction():
        existing = set(VolunteerCalibration.objects.filter(user_id__in=users).values_list("user_id", flat=True))
        rows_new, rows_old = [], []
        for user_id in users:
            a, b = coef[user_id]
            golds = gold_points.get(user_id, [])
            gold_deltas = [a * r + b - t for r, t in golds]
            obj = VolunteerCalibration(
                user_id=user_id, a=a, b=b, scatter=scatters[user_id], weight=weight[user_id],
                n=len(points.get(user_id, [])) if user_id in fitted else 0, n_gold=len(golds),
                gold_rms=math.sqrt(sum(d * d for d in gold_deltas) / len(gold_deltas)) if gold_deltas else None,
                updated_at=timezone.now(),
            )
            (rows_old if user_id in existing else rows_new).append(obj)
            report.coefficients[user_id] = (a, b, scatters[user_id], obj.n)
        VolunteerCalibration.objects.bulk_create(rows_new)
        VolunteerCalibration.objects.bulk_update(rows_old, ["a", "b", "scatter", "weight", "n", "n_gold",
                                                            "gold_rms", "updated_at"])
    report.calibrated = len(fitted)
    report.identity = len(users) - len(fitted)
    consensus_recompute_all()
    return report


# --------------------------------------------------------------------------------------------------
# Catalogue galaxies into the Zoo (ingestion)
# --------------------------------------------------------------------------------------------------

INGEST_ERRORS_KEPT = 20


def ingest_settings() -> tuple[int, float]:
    """Image size in pixels (``LABELING_INGEST_IMAGE_SIZE``, at least 256) and requests per second towards the
    image services (``LABELING_INGEST_REQUESTS_PER_S``; 0 means no limit)."""
    size = int(zoo_setting("INGEST_IMAGE_SIZE"))
    rate = float(zoo_setting("INGEST_REQUESTS_PER_S"))
    return max(size, 256), rate


def ingest_job_create(*, user: AbstractBaseUser | None = None, pgcs: list[int] | None = None,
                      region: tuple[float, float, float] | None = None, top: int | None = None) -> IngestJob:
    """Choose the galaxies (exactly one of a PGC list, a sky region ``(ra, dec, radius_deg)`` or the ``top``
    N unlabelled by priority) and record them as a job. Nothing is fetched yet."""
    from .selectors import ingest_by_pgc, ingest_by_region, ingest_top_priority

    if sum(x is not None for x in (pgcs, region, top)) != 1:
        raise InvalidInput("Give exactly one of: PGC numbers, a region, or a number of top-priority galaxies.")
    missing: list[int] = []
    if pgcs is not None:
        if not pgcs or any(not 0 < p < 2**63 for p in pgcs) or len(pgcs) > 100_000:
            raise InvalidInput("PGC numbers are positive integers (at most 100,000 at once).")
        ids, missing = ingest_by_pgc(pgcs=pgcs)
        selection = f"PGC list ({len(pgcs)})"
    elif region is not None:
        ra, dec, radius = region
        if not (math.isfinite(ra) and math.isfinite(dec) and math.isfinite(radius)) \
                or not (0 <= ra < 360 and -90 <= dec <= 90 and 0 < radius <= 10):
            raise InvalidInput("A region is RA 0-360, Dec -90..90 and a radius of more than 0 and at most 10 degrees.")
        ids = ingest_by_region(ra=ra, dec=dec, radius_deg=radius)
        selection = f"region RA {ra:g} Dec {dec:g} radius {radius:g}°"
    else:
        assert top is not None
        if not 0 < top <= 100_000:
            raise InvalidInput("The number of galaxies must be between 1 and 100,000.")
        ids = ingest_top_priority(n=top)
        selection = f"top {top} by labeling priority"
    errors = [f"PGC {p}: not in the catalogue" for p in missing[:INGEST_ERRORS_KEPT]]
    return IngestJob.objects.create(requested_by=user, selection=selection, galaxy_ids=ids, total=len(ids),
                                    not_found=len(missing), errors=errors)


def _ingest_one(*, galaxy: Galaxy, size: int, limiter: Any) -> str:
    """``added`` or ``skipped`` (images already there: only queued, if that was missed); ImageSourceError when no
    source has the galaxy."""
    from catalog.services import galaxy_fetch_zoo_images

    report = galaxy_fetch_zoo_images(galaxy=galaxy, size=size, limiter=limiter)
    queue_add(galaxy_ids=[galaxy.id])
    return "skipped" if report.skipped else "added"


def ingest_job_run(*, job_id: int, progress: Callable[[str], None] | None = None) -> IngestJob:
    """Fetch each chosen galaxy's images and queue it, counting as it goes (the staff page's progress row).
    Rate-limited towards the image services; galaxies already done are skipped, so running a job again (or a
    redelivered task) only does what is left. ``progress`` is called with each galaxy's outcome."""
    from catalog.sources import ImageSourceError, RateLimiter

    job = IngestJob.objects.get(pk=job_id)
    size, rate = ingest_settings()
    limiter = RateLimiter(rate)
    job.added = job.skipped = job.failed = 0  # counted afresh: done galaxies are skipped quickly
    job.errors = [e for e in job.errors if e.endswith("not in the catalogue")]
    job.status, job.started_at, job.finished_at = IngestStatus.RUNNING, timezone.now(), None
    job.save()
    galaxies = Galaxy.objects.in_bulk(job.galaxy_ids)
    counters = ["added", "skipped", "failed", "errors", "updated_at"]
    try:
        for galaxy_id in job.galaxy_ids:
            galaxy = galaxies.get(galaxy_id)
            try:
                if galaxy is None:
                    raise ImageSourceError("the galaxy is no longer in the catalogue")
                outcome = _ingest_one(galaxy=galaxy, size=size, limiter=limiter)
            except ImageSourceError as exc:
                outcome = "failed"
                label = f"PGC {galaxy.pgc}" if galaxy is not None and galaxy.pgc else f"galaxy {galaxy_id}"
                job.errors = [*job.errors, f"{label}: {exc.message}"][-INGEST_ERRORS_KEPT:]
            setattr(job, outcome, getattr(job, outcome) + 1)
            job.save(update_fields=counters)
            if progress:
                progress(outcome)
    except Exception as exc:
        job.status, job.finished_at = IngestStatus.FAILED, timezone.now()
        job.errors = [*job.errors, f"stopped: {type(exc).__name__}: {exc}"][-INGEST_ERRORS_KEPT:]
        job.save()
        raise
    job.status, job.finished_at = IngestStatus.DONE, timezone.now()
    job.save()
    return job


# --------------------------------------------------------------------------------------------------
# Export
# --------------------------------------------------------------------------------------------------

EXPORT_COLUMNS = ["pgc", "inc", "inc_e", "inc_flg", "inc_n", "inc_note"]


def _export_rows(*, retired_only: bool) -> Iterable[dict[str, Any]]:
    qs = Consensus.objects.filter(n_votes__gt=0)
    if retired_only:
        qs = qs.filter(retired=True)
    ids_rows = list(qs.select_related("galaxy").order_by("galaxy_id"))
    for start in range(0, len(ids_rows), 2000):
        chunk = ids_rows[start:start + 2000]
        tags: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        notes: dict[int, list[str]] = defaultdict(list)
        for m in Measurement.objects.filter(galaxy_id__in=[c.galaxy_id for c in chunk], counted=True, is_gold=False):
            for reason in m.reasons():
                tags[m.galaxy_id][reason] += 1
            if m.note.strip():
                notes[m.galaxy_id].append(m.note.strip().replace("\n", " "))
        for c in chunk:
            # Published rounding: half-integers up or down at random, reproducibly per galaxy.
            inc = round_random(c.inc, random.Random(c.galaxy_id)) if c.inc is not None else None
            flag = 0 if c.status == ConsensusStatus.ACCEPTED else 1
            tag_list = sorted(tags[c.galaxy_id].items(), key=lambda kv: (-kv[1], kv[0]))
            note = " ".join(f"[{name}]" for name, _ in tag_list)
            if c.status == ConsensusStatus.FACE_ON and "[face_on]" not in note:
                note = ("[face_on] " + note).strip()
            if notes[c.galaxy_id]:
                note = (note + " " + "; ".join(notes[c.galaxy_id]))[:500].strip()
            yield {
                "pgc": c.galaxy.pgc if c.galaxy.pgc is not None else c.galaxy.name,
                "inc": inc if flag == 0 else (0 if inc is None else inc),
                "inc_e": round(c.inc_e, 1) if c.inc_e is not None else 0,
                "inc_flg": flag, "inc_n": c.n_votes, "inc_note": note,
            }


def consensus_export(*, fmt: str, retired_only: bool = True) -> tuple[bytes, int]:
    """The consensus labels as CSV or JSON with the catalogue's columns; returns (bytes, rows)."""
    rows = list(_export_rows(retired_only=retired_only))
    if fmt == "json":
        return json.dumps(rows, indent=1).encode(), len(rows)
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=EXPORT_COLUMNS)
        writer.writeheader()
        # Notes are volunteers' free text: "=HYPERLINK(...)" must reach a spreadsheet as text, not a formula.
        writer.writerows(csv_safe_row(row) for row in rows)
        return buffer.getvalue().encode(), len(rows)
    raise InvalidInput("format must be csv or json.")


def export_job_create(*, user: AbstractBaseUser, fmt: str, retired_only: bool = True) -> ExportJob:
    if fmt not in ("csv", "json"):
        raise InvalidInput("format must be csv or json.")
    return ExportJob.objects.create(requested_by=user, fmt=fmt, retired_only=retired_only)


def export_job_run(*, job_id: str) -> ExportJob:
    """Run by the Celery worker: write the file and mark the job done (or failed, with the error)."""
    job = ExportJob.objects.get(pk=job_id)
    ExportJob.objects.filter(pk=job.pk).update(status=ExportStatus.RUNNING)
    try:
        data, n = consensus_export(fmt=job.fmt, retired_only=job.retired_only)
        stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
        job.file.save(f"zoo-consensus-{stamp}-{str(job.pk)[:8]}.{job.fmt}", ContentFile(data), save=False)
        job.n_rows, job.status, job.finished_at = n, ExportStatus.DONE, timezone.now()
        job.save()
    except Exception as exc:  # the job records why it failed; the worker log has the traceback
        ExportJob.objects.filter(pk=job.pk).update(status=ExportStatus.FAILED, error=str(exc)[:2000],
                                                   finished_at=timezone.now())
        raise
    return job


# --------------------------------------------------------------------------------------------------
# Rebuilding consensus from the measurements (data safety)
# --------------------------------------------------------------------------------------------------

CONSENSUS_VALUE_FIELDS = ("n_votes", "n_face_on", "n_reject", "face_on_fraction", "reject_fraction", "inc", "inc_e",
                          "status")


@dataclass
class RebuildReport:
    checked: int = 0
    differing: list[int] = field(default_factory=list)  # galaxy ids whose stored values differed
    written: int = 0


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    return a == b


def consensus_rebuild(*, apply: bool = True, batch_size: int = 2000) -> RebuildReport:
    """Recompute every queued galaxy's consensus from its counted measurements (the source of truth) and
    compare with what is stored; with ``apply``, write the recomputed values. Retirement decisions are
    history (taken when the votes arrived, or by staff) and are kept."""
    calibration_all = {uid: (a, b, w) for uid, a, b, w in
                       VolunteerCalibration.objects.values_list("user_id", "a", "b", "weight")}
    ids = list(Consensus.objects.order_by("galaxy_id").values_list("galaxy_id", flat=True))
    report = RebuildReport()
    for start in range(0, len(ids), batch_size):
        chunk = ids[start:start + batch_size]
        with write_transaction():  # lock first, then read the votes (see consensus_recompute_all)
            rows = list(Consensus.objects.select_for_update().filter(galaxy_id__in=chunk).order_by("galaxy_id"))
            votes = _votes_for(galaxy_ids=chunk)
            changed = []
            for row in rows:
                stored = {name: getattr(row, name) for name in CONSENSUS_VALUE_FIELDS}
                _consensus_values(consensus=row, votes=votes.get(row.galaxy_id, []), calibration=calibration_all)
                report.checked += 1
                if any(not _same(stored[name], getattr(row, name)) for name in CONSENSUS_VALUE_FIELDS):
                    report.differing.append(row.galaxy_id)
                    changed.append(row)
            if apply and changed:
                Consensus.objects.bulk_update(changed, list(CONSENSUS_VALUE_FIELDS))
                report.written += len(changed)
    return report
