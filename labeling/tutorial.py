"""The Zoo tutorial: a short quiz that must be passed before the measuring page opens.

A quiz is a list of questions on galaxies with known answers: standards spread over 45–90°, one face-on
standard (below 45°) and one drawn example that must be rejected with the right reason. The quiz and its
answers live in the volunteer's session (the answers never reach the browser before they are given); the
result is recorded on ``VolunteerProfile``: attempts, the last median error and, once passed, when.

Passing needs a median placement error of at most ``PASS_MEDIAN_ERROR_DEG`` over the placement questions,
the face-on galaxy answered "Face-on" and the example rejected with its reason.
"""
from __future__ import annotations

import random
import statistics
from datetime import datetime
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import F
from django.urls import reverse
from django.utils import timezone

from core.errors import InvalidInput

from .errors import TutorialConflict
from .feedback import REASON_LABELS, known_answer_feedback
from .guide import EXAMPLES
from .models import REJECT_REASONS, Standard, VolunteerProfile
from .selectors import StandardRow, galaxy_cards, practice_standard_pool, standard_pool, standards_draw, step_values

PASS_MEDIAN_ERROR_DEG = 8.0
# Placement questions over the grid (one standard drawn from each band), then face-on and a reject.
PLACEMENT_BANDS = ((45.0, 56.0), (56.0, 67.0), (67.0, 78.0), (78.0, 90.1))
REJECT_QUESTION_EXAMPLES = ("reject-multiple", "reject-not_spiral")
# A wrong kind of answer (a reject on a galaxy to place) counts as this error, in degrees.
WRONG_KIND_ERROR_DEG = 45.0


def tutorial_new(*, rng: random.Random | None = None, pool: list[StandardRow] | None = None) -> dict[str, Any]:
    """A fresh quiz (JSON-ready, for the session). Raises InvalidInput when there are too few standards."""
    rng = rng or random.Random()
    # Practice standards only: a gold-eligible standard shown here with its answer could be matched later.
    pool = practice_standard_pool(pool if pool is not None else standard_pool())
    questions: list[dict[str, Any]] = []
    for low, high in PLACEMENT_BANDS:
        band = [s for s in pool if low <= s.inclination < high]
        if band:
            pick = rng.choice(band)
            questions.append({"kind": "placement", "standard_id": pick.id, "galaxy_id": pick.galaxy_id,
                              "truth": pick.inclination})
    face_on = [s for s in pool if s.inclination < 45]
    if face_on:
        pick = rng.choice(face_on)
        questions.append({"kind": "face_on", "standard_id": pick.id, "galaxy_id": pick.galaxy_id,
                          "truth": pick.inclination})
    if len(questions) < 3:
        raise InvalidInput("The tutorial needs standards; ask the staff to add some.")
    example = rng.choice(REJECT_QUESTION_EXAMPLES)
    questions.append({"kind": "reject", "example": example, "reason": EXAMPLES[example].reason})
    rng.shuffle(questions)
    return {"questions": questions, "answers": {}}


def _quiz_galaxies(state: dict[str, Any]) -> set[int]:
    return {q["galaxy_id"] for q in state["questions"] if q.get("galaxy_id")}


def tutorial_questions(*, state: dict[str, Any]) -> list[dict[str, Any]]:
    """What the page may see: each question's images and, once answered, its feedback. Never the answer."""
    cards = galaxy_cards(galaxy_ids=sorted(_quiz_galaxies(state)))
    out = []
    for index, question in enumerate(state["questions"]):
        if question["kind"] == "reject":
            url = reverse("labeling:guide-example", args=[question["example"]])
            images = {"colour": url, "g": url, "r": url, "i": url}
        else:
            images = cards[question["galaxy_id"]].images if question["galaxy_id"] in cards else {}
        out.append({"index": index, "images": images, "answered": str(index) in state["answers"],
                    "feedback": state["answers"].get(str(index))})
    return out


def tutorial_standards(*, state: dict[str, Any], step: int, low: int | None,
                       rng: random.Random | None = None) -> list[StandardRow]:
    """Standards for a step of any question: never one of the quiz's own galaxies."""
    rng = rng or random.Random()
    if step == 2 and low not in step_values(step=1):
        raise InvalidInput("low must be 45, 50, ... 85.")
    quiz = _quiz_galaxies(state)
    pool = [s for s in standard_pool() if s.galaxy_id not in quiz]
    return standards_draw(step=step, low=low if step == 2 else None, exclude_galaxy_id=None, rng=rng, pool=pool)


def _placed_value(*, left_id: int | None, right_id: int | None) -> float | None:
    """The same rule as a real submit: the mean of the two neighbours, half a step beyond an end one."""
    found = Standard.objects.in_bulk([i for i in (left_id, right_id) if i])
    left, right = found.get(left_id), found.get(right_id)
    if (left_id and left is None) or (right_id and right is None):
        raise InvalidInput("Unknown standard id.")
    if left and right:
        return (left.inclination + right.inclination) / 2.0
    if right is not None:
        return max(right.inclination - 0.5, 0.0)
    if left is not None:
        return min(left.inclination + 0.5, 90.0)
    return None


def _reject_feedback(*, question: dict[str, Any], reasons: list[str], placed: bool) -> dict[str, Any]:
    expected = question["reason"]
    label = REASON_LABELS[expected]
    if expected in reasons:
        return {"grade": "spot_on", "correct": True, "error": None, "truth": None, "value": None,
                "message": f"Right: this one is rejected as \"{label}\". {EXAMPLES[question['example']].text}"}
    said = "placed it among the standards" if placed else f"chose {', '.join(REASON_LABELS[r] for r in reasons)}"
    return {"grade": "wrong_reject", "correct": False, "error": None, "truth": None, "value": None,
            "message": f"You {said}; this one should be rejected as \"{label}\". "
                       f"{EXAMPLES[question['example']].text}"}


def tutorial_answer(*, user: AbstractBaseUser, state: dict[str, Any], index: int, left_id: int | None = None,
                    right_id: int | None = None, face_on: bool = False, reasons: list[str] | None = None,
                    now: datetime | None = None) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Grade one answer, store it in ``state`` and, after the last one, record the result on the profile.

    Returns (feedback, summary); the summary is None until every question is answered.
    """
    reasons = list(dict.fromkeys(reasons or []))
    if any(r not in REJECT_REASONS for r in reasons):
        raise InvalidInput("Unknown reject reason.")
    if not 0 <= index < len(state["questions"]):
        raise InvalidInput(f"question must be 0 … {len(state['questions']) - 1}.")
    if str(index) in state["answers"]:
        raise TutorialConflict("You already answered this question.")
    question = state["questions"][index]
    value = None if face_on else _placed_value(left_id=left_id, right_id=right_id)
    if not face_on and value is None and not reasons:
        raise InvalidInput("Place the galaxy, choose Face-on, or give a reject reason.")
    if question["kind"] == "reject":
        feedback = _reject_feedback(question=question, reasons=reasons, placed=value is not None or face_on)
    else:
        feedback = known_answer_feedback(truth=question["truth"], value=value, face_on=face_on,
                                         reasons=[] if value is not None else reasons)
    feedback["question_kind"] = question["kind"]
    state["answers"][str(index)] = feedback
    summary = None
    if len(state["answers"]) == len(state["questions"]):
        summary = tutorial_summary(state=state)
        _record(user=user, summary=summary, now=now or timezone.now())
    return feedback, summary


def _question_error(question: dict[str, Any], feedback: dict[str, Any]) -> float:
    if feedback.get("error") is not None:
        return float(feedback["error"])
    return WRONG_KIND_ERROR_DEG


def tutorial_summary(*, state: dict[str, Any]) -> dict[str, Any]:
    """Median placement error, which requirements were met, and one line per question."""
    rows, errors = [], []
    face_on_ok = reject_ok = True
    for index, question in enumerate(state["questions"]):
        feedback = state["answers"].get(str(index))
        if feedback is None:
            continue
        if question["kind"] == "reject":
            reject_ok = reject_ok and feedback["correct"]
        else:
            errors.append(_question_error(question, feedback))
            if question["kind"] == "face_on":
                face_on_ok = face_on_ok and feedback["correct"]
        rows.append({"index": index, "kind": question["kind"], "correct": feedback["correct"],
                     "error": feedback.get("error"), "message": feedback["message"]})
    median = round(statistics.median(errors), 1) if errors else None
    accurate = median is not None and median <= PASS_MEDIAN_ERROR_DEG
    missing = []
    if not accurate:
        missing.append(f"a median error of at most {PASS_MEDIAN_ERROR_DEG:g}° (yours: {median:g}°)"
                       if median is not None else "placing the galaxies")
    if not face_on_ok:
        missing.append("the face-on galaxy answered with \"Face-on (< 45°)\"")
    if not reject_ok:
        missing.append("the odd image rejected with the right reason")
    return {"passed": not missing, "median_error": median, "threshold": PASS_MEDIAN_ERROR_DEG,
            "missing": missing, "questions": rows, "total": len(state["questions"])}


def _record(*, user: AbstractBaseUser, summary: dict[str, Any], now: datetime) -> None:
    changes: dict[str, Any] = {"tutorial_attempts": F("tutorial_attempts") + 1,
                               "tutorial_median_error": summary["median_error"]}
    VolunteerProfile.objects.get_or_create(user=user)
    VolunteerProfile.objects.filter(user=user).update(**changes)
    if summary["passed"]:
        VolunteerProfile.objects.filter(user=user, tutorial_passed_at__isnull=True).update(
            tutorial_passed_at=now, tutorial_done=True)
