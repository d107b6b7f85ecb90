"""Submitting a measurement: check the placement against the sequences really shown, store the answer and
recompute the galaxy's consensus in the same transaction; a gold task's answer gets its feedback.
"""
from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.utils import timezone

from core.errors import InvalidInput

from .assignment import open_assignment
from .conf import zoo_setting
from .consensus import consensus_recompute
from .errors import ForgedNeighbours, GalaxyRetired
from .feedback import known_answer_feedback
from .models import REJECT_REASONS, AssignmentStatus, Consensus, DisplayMode, Measurement, Standard, _reason_field
from .selectors import step_values
from .stats import round_random
from .transactions import write_transaction


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
        assignment = open_assignment(user=user, assignment_id=assignment_id, now=now, lock=True)
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
