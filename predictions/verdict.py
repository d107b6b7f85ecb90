"""What a prediction means, in one line: the verdict, and the calibrated error bar behind it (issue 15).

``verdict_code`` is one of ``inclined``, ``face_on``, ``rejected`` or ``uncertain``, decided in this order:

- **face_on**: the axial-ratio inclination of the same image is below 45° and either the reject models
  reject it or the networks sit near their 45° floor (median < ``FACE_ON_MEDIAN_DEG``). The networks only
  measure 45–90°, so a face-on galaxy gets a floor value, never its inclination;
- **rejected**: the reject likelihood (median of the reject members) is at least 50 %; the reason is named
  when a reject cause says which (members named after a reason, e.g. ``…-bright_star``, or the body's
  ``reject_reasons`` from the image checks);
- **uncertain**: an alarm is raised, the error bar is wider than ``UNCERTAIN_ERROR_DEG`` or the reject
  likelihood is at least ``BORDERLINE_REJECT_PERCENT``;
- **inclined** otherwise.

Numbers in the text are whole degrees, rounded half up, from the same values as the JSON.

``inclination_error`` (``error_model_for``) comes from ``training.ml.error_calibration``: the ensemble's own
``error_calibration.json``, else ``models/error_calibration/<version>.json`` for the shipped ensemble,
else a wide uncalibrated default.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path

from training.ml.error_calibration import CALIBRATION_FILE, ErrorModel, load, uncalibrated

REJECT_THRESHOLD_PERCENT = 50.0
BORDERLINE_REJECT_PERCENT = 30.0
FACE_ON_DEG = 45.0
FACE_ON_MEDIAN_DEG = 55.0
UNCERTAIN_ERROR_DEG = 8.0
VERDICT_CODES = ("inclined", "face_on", "rejected", "uncertain")
# What a reject member named after a reason (``synthetic.REJECT_REASONS``) suggests, for the verdict line.
REASON_HINTS = {
    "bright_star": "star on the disk?",
    "companion": "a companion or merger in the field?",
    "low_snr": "too faint or noisy?",
    "cut_off": "cut off by the image edge?",
    "face_on": "face-on?",
}


@dataclass(frozen=True)
class Verdict:
    code: str
    text: str


def whole_degrees(value: float) -> int:
    """Half up (74.5 → 75), not Python's half to even, so the text never looks rounded the wrong way."""
    return int(math.floor(float(value) + 0.5))


def reject_reason_hint(member_rejections: dict[str, float]) -> str:
    """The hint of the most confident reject member named after a reason, when one is above 50 %."""
    best: tuple[float, str] | None = None
    for name, percent in member_rejections.items():
        for reason, hint in REASON_HINTS.items():
            if reason in name and percent >= REJECT_THRESHOLD_PERCENT and (best is None or percent > best[0]):
                best = (percent, hint)
    return best[1] if best else ""


def decide(*, median: float, error: float, reject_percent: float, axial_inclination: float | None,
           alarm: bool, member_rejections: dict[str, float] | None = None) -> Verdict:
    """The verdict of one prediction (see the module docstring for the rules)."""
    rejected = reject_percent >= REJECT_THRESHOLD_PERCENT
    axial_face_on = axial_inclination is not None and axial_inclination < FACE_ON_DEG
    if axial_face_on and (rejected or median < FACE_ON_MEDIAN_DEG):
        return Verdict("face_on", f"likely face-on (< {FACE_ON_DEG:.0f}°): the axis ratio gives about "
                                  f"{whole_degrees(axial_inclination or 0.0)}°, and the networks only measure "
                                  f"45–90°")
    if rejected:
        hint = reject_reason_hint(member_rejections or {})
        return Verdict("rejected", "rejected: probably not a clean spiral"
                                   + (f" ({hint})" if hint else f" (reject likelihood {whole_degrees(reject_percent)}%)"))
    value, bar = whole_degrees(median), max(1, whole_degrees(error))
    why = []
    if alarm:
        why.append("see the alarm")
    if error > UNCERTAIN_ERROR_DEG:
        why.append("wide error bar")
    if reject_percent >= BORDERLINE_REJECT_PERCENT:
        why.append(f"reject likelihood {whole_degrees(reject_percent)}%")
    if why:
        return Verdict("uncertain", f"uncertain: i = {value} ± {bar}° ({', '.join(why)})")
    return Verdict("inclined", f"inclined spiral, i = {value} ± {bar}°")


def shipped_calibration_dir() -> Path:
    from django.conf import settings

    return Path(settings.BASE_DIR) / "models" / "error_calibration"


@functools.lru_cache(maxsize=8)
def _error_model(folder: str, version: str, shipped_dir: str) -> ErrorModel:
    for path in (Path(folder) / CALIBRATION_FILE, Path(shipped_dir) / f"{version}.json"):
        model = load(path)
        if model is not None and model.version in ("", version):
            return model
    return uncalibrated(version)


def error_model_for(ensemble: object) -> ErrorModel:
    """The error model of a loaded ``FusedEnsemble`` (read once per folder and version)."""
    folder = str(getattr(ensemble, "folder", ""))
    return _error_model(folder, str(getattr(ensemble, "version", "")), str(shipped_calibration_dir()))
