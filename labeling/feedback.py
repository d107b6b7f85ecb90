"""Feedback on a galaxy whose answer is known (a gold standard or a tutorial question), graded by error size.

One wording for the measurement page and the tutorial: "spot on" within 3°, "close" within 7°, else
"off by N°"; face-on answers and rejects get their own sentences. Degrees are shown as the value that was
graded (the stored, rounded value for a gold task), so "You said" and "Saved" can never disagree.
"""
from __future__ import annotations

from typing import Any

SPOT_ON_DEG = 3.0
CLOSE_DEG = 7.0
FACE_ON_BELOW_DEG = 45.0

REASON_LABELS = {
    "not_sure": "Not sure", "better_image": "Needs a better image", "bad_TF": "Not a good TF galaxy",
    "ambiguous": "Ambiguous", "disturbed": "Disturbed", "HI": "Bad HI / confused", "face_on": "Face-on",
    "not_spiral": "Not a spiral", "multiple": "Multiple objects",
}


def degrees_text(value: float) -> str:
    """The one way a value in degrees is written: whole degrees, or halves as the grid gives them."""
    halves = round(value * 2) / 2
    return f"{halves:g}°"


def grade_for_error(error: float) -> str:
    if error <= SPOT_ON_DEG:
        return "spot_on"
    if error <= CLOSE_DEG:
        return "close"
    return "off"


def reasons_text(reasons: list[str]) -> str:
    labels = [REASON_LABELS.get(r, r) for r in reasons]
    return " or ".join(labels) if labels else "rejected"


def known_answer_feedback(*, truth: float, value: float | None, face_on: bool,
                          reasons: list[str] | tuple[str, ...] = ()) -> dict[str, Any]:
    """Grade one answer against a known inclination ``truth`` (below 45° means a face-on galaxy).

    ``value`` is the placed inclination (None when the answer was face-on or only a reject).
    """
    truth_text = degrees_text(truth)
    truth_face_on = truth < FACE_ON_BELOW_DEG
    reasons = [r for r in reasons if r]
    base: dict[str, Any] = {"truth": truth, "value": value, "error": None}
    if face_on:
        if truth_face_on:
            return {**base, "grade": "spot_on", "correct": True, "error": 0.0,
                    "message": f"Spot on: this galaxy is face-on ({truth_text}), less than 45°."}
        return {**base, "grade": "wrong_face_on", "correct": False, "error": round(truth - FACE_ON_BELOW_DEG, 1),
                "message": f"This galaxy is {truth_text}, not face-on: face-on means less inclined than the "
                           f"45° standard. Place it among the standards instead."}
    if value is None:
        if truth_face_on:
            return {**base, "grade": "wrong_reject", "correct": False,
                    "message": f"This was a face-on galaxy ({truth_text}), not {reasons_text(reasons)}: "
                               f"use \"Face-on (< 45°)\" for it."}
        return {**base, "grade": "wrong_reject", "correct": False,
                "message": f"This was a clean {truth_text} galaxy, not {reasons_text(reasons)}."}
    said = degrees_text(value)
    error = abs(value - truth)
    if truth_face_on:
        return {**base, "grade": "wrong_placement", "correct": False, "error": round(error, 1),
                "message": f"You said {said}; this galaxy is face-on ({truth_text}). "
                           f"Use \"Face-on (< 45°)\" for galaxies less inclined than the 45° standard."}
    grade = grade_for_error(error)
    if grade == "spot_on":
        message = f"Spot on: you said {said}, the accepted value is {truth_text}."
    elif value < truth:
        lead = "Close" if grade == "close" else f"Off by {degrees_text(error)}"
        message = (f"{lead}: you said {said}, the accepted value is {truth_text}. "
                   f"It is more edge-on than you placed it.")
    else:
        lead = "Close" if grade == "close" else f"Off by {degrees_text(error)}"
        message = (f"{lead}: you said {said}, the accepted value is {truth_text}. "
                   f"It is more face-on than you placed it.")
    return {**base, "grade": grade, "correct": grade != "off", "error": round(error, 1), "message": message}
