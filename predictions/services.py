"""Evaluating galaxies with the active ensemble, in the original API's JSON shape, with caching.

Every path (PGC, name, position, upload) ends in ``prediction_for_model_input``: one aligned 128×128
image, one fused ensemble call, one cache entry keyed by image hash × ensemble version × TTA × precision.
Cache look-ups run on the request's thread and never load the ensemble; everything CPU-heavy (image fetch
and preparation, the networks, the stored PNG) runs through ``predictions.heavy.run_heavy`` — in a niced
prediction process where ``PREDICTION_PROCESSES`` is set (``make run``, compose), else on a niced thread —
so the heavy functions here take and return plain, picklable data.

Alignment (``align_image``). The networks have only seen major axes within ±25° of horizontal, so every
image is turned before it is evaluated:

- a catalogue galaxy **with a position angle in our catalogue** (OpenNGC / HyperLEDA rows, found by PGC,
  name or the Sesame/NED PGC of a galaxy we hold) is turned by PA + 90, as the original did; that PA is
  trusted, but the one measured on the image is reported too and an alarm says when they differ by more
  than ``PA_DISAGREEMENT_DEG`` on a clearly elongated galaxy;
- everything else — uploads (``/api/file``, the page), ``/api/coords`` (the position need not be the
  catalogue galaxy's), names only Sesame/NED know, galaxies with no catalogue PA — is turned by the
  angle measured on the image (``training.ml.orientation``) about the measured centre, so the same
  photograph at any orientation gives the same model input up to interpolation.

Every answer also carries the physics cross-check: the axial-ratio inclination of the same model input
(``core.axial_ratio``, q0 = 0.2). When it and the ensemble median differ by more than the ensemble's
calibrated margin (its manifest's ``metrics["axial_check"]["margin_deg"]``, else
``PREDICTION_AXIAL_MARGIN_DEG``, predictions/conf.py) the alarm is raised.
"""
from __future__ import annotations

import hashlib
import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.conf import settings
from django.core.cache import cache
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from catalog.imaging import encode_png, load_image, normalise_inversion, prepare_model_input, to_display_rgb
from catalog.selectors import Target
from catalog.sources import fetch_cutout
from core.axial_ratio import axial_ratio
from core.geometry import inclination_from_axial_ratio
from training.ml.ensemble import EnsemblePrediction, FusedEnsemble
from training.ml.image_checks import combine, measure_features, run_checks
from training.ml.orientation import Orientation, astro_from_image, measure_orientation

from .conf import prediction_setting
from .heavy import run_heavy
from .inference import active_ensemble, active_pointer, prediction_precision
from .verdict import decide, error_model_for, whole_degrees

CACHE_SECONDS = 7 * 24 * 3600
UPLOAD_FORMATS = ("PNG", "JPEG", "GIF")
# 99th percentile of |ensemble median − axial-ratio inclination| on validation galaxies of the training
# family (quick profile, measured 2026-12-02; see docs/ml.md). An ensemble calibrated with
# ``python -m training.ml.axial_ratio --calibrate DIR --write`` carries its own.
PA_DISAGREEMENT_DEG = 25.0  # the networks were trained within ±25° of horizontal
PA_CHECK_MAX_Q = 0.6  # the measured PA is only held against the catalogue's for clearly elongated galaxies


@dataclass(frozen=True)
class AlignedImage:
    """The model input and how it was aligned. ``pa_source``: catalogue, measured, manual or none."""

    model_input: np.ndarray
    orientation: Orientation
    pa_source: str
    angle_deg: float  # the clockwise turn applied


def align_image(pixels: np.ndarray, *, angle_deg: float | None = None, scale: float = 1.0,
                pa_source: str = "manual") -> AlignedImage:
    """Measure the galaxy's orientation and build the model input.

    ``angle_deg`` given (a catalogue PA + 90, or the page user's rotation): turned by it about the image
    centre, as before. ``None``: turned by the measured angle about the measured centre; a galaxy too round
    for a position angle is only recentred; with no galaxy found, the image is used as it is.
    """
    rgb, _ = normalise_inversion(to_display_rgb(pixels))
    orientation = measure_orientation(rgb)
    if angle_deg is not None:
        model_input = prepare_model_input(rgb, angle_deg=angle_deg, scale=scale)
        return AlignedImage(model_input, orientation, pa_source, float(angle_deg))
    if orientation.ok and orientation.pa_image_deg is not None:
        angle, centre = _refined(rgb, orientation)
        model_input = prepare_model_input(rgb, angle_deg=angle, scale=scale, centre=centre)
        return AlignedImage(model_input, orientation, "measured", angle)
    if orientation.q is not None:  # found but round: centre it, no meaningful angle
        model_input = prepare_model_input(rgb, scale=scale, centre=(orientation.x, orientation.y))
        return AlignedImage(model_input, orientation, "none", 0.0)
    return AlignedImage(prepare_model_input(rgb, scale=scale), orientation, "none", 0.0)


REFINE_SIZE = 256


def _refined(rgb: np.ndarray, first: Orientation) -> tuple[float, tuple[float, float]]:
    """One refinement: measure again on the aligned view and correct the angle and centre by what is left.

    The first measurement sees the galaxy on a pixel grid at an arbitrary angle, and interpolation and JPEG
    blocks move its isophote by a few degrees from one turn to the next; the second sees it nearly
    horizontal whatever the input's orientation, so its residual brings every turn to the same answer
    (spread of the angle over 13 turns of real photographs: NGC 772 11.7° → 3.9°, NGC 2207 8.6° → 3.5°).
    """
    angle, cx, cy = float(first.pa_image_deg or 0.0), first.x, first.y
    view = prepare_model_input(rgb, angle_deg=angle, centre=(cx, cy), size=REFINE_SIZE)
    second = measure_orientation(view)
    if not second.ok or second.pa_image_deg is None:
        return angle, (cx, cy)
    residual = (second.pa_image_deg + 90.0) % 180.0 - 90.0  # in [-90, 90)
    if abs(residual) > 20.0:  # not a small correction: keep the first answer
        return angle, (cx, cy)
    # The view is the input turned clockwise by ``angle``, ``max(h, w) / REFINE_SIZE`` input px per view px.
    k = max(rgb.shape[:2]) / REFINE_SIZE
    dxv, dyv = second.x - (REFINE_SIZE - 1) / 2, second.y - (REFINE_SIZE - 1) / 2
    t = math.radians(angle)
    cx += k * (math.cos(t) * dxv + math.sin(t) * dyv)
    cy += k * (-math.sin(t) * dxv + math.cos(t) * dyv)
    return (angle + residual) % 180.0, (cx, cy)


def axial_margin_deg(ensemble: FusedEnsemble) -> float:
    check = (ensemble.manifest.metrics or {}).get("axial_check") or {}
    if isinstance(check, dict) and isinstance(check.get("margin_deg"), int | float):
        return float(check["margin_deg"])
    return float(prediction_setting("AXIAL_MARGIN_DEG"))


def _axial_check(model_input: np.ndarray, median: float, margin: float) -> tuple[dict[str, Any], str]:
    """The axial-ratio inclination of the model input, and an alarm reason when it disagrees with the
    reported ensemble median (else ''); the text quotes the reported values in whole degrees."""
    q = axial_ratio(model_input)
    inclination = inclination_from_axial_ratio(q)
    if not math.isfinite(inclination):
        return {"axial_ratio": None, "axial_ratio_inclination": None}, ""
    fields = {"axial_ratio": _round(q, 3), "axial_ratio_inclination": _round(inclination, 1)}
    gap = abs(median - fields["axial_ratio_inclination"])
    if gap <= margin:
        return fields, ""
    return fields, (f"the axial ratio (b/a = {fields['axial_ratio']:.2f}) gives "
                    f"{whole_degrees(fields['axial_ratio_inclination'])}°, {whole_degrees(gap)}° from the networks' "
                    f"{whole_degrees(median)}° (more than the {margin:g}° seen on validation)")


def _pa_difference(a: float, b: float) -> float:
    """Smallest difference between two axes (mod 180°)."""
    d = abs(a - b) % 180.0
    return min(d, 180.0 - d)


def orientation_fields(aligned: AlignedImage, *, catalogue_pa: float | None = None) -> tuple[dict[str, Any], str]:
    """``pa_measured`` (astronomical, null when not measurable) and ``pa_source``, with an alarm reason when
    a catalogue PA and a clear measurement disagree."""
    o = aligned.orientation
    measured = o.pa_astro_deg if o.ok else None
    if aligned.pa_source == "measured":
        measured = astro_from_image(aligned.angle_deg)  # the refined angle the image was turned by
    fields = {"pa_measured": None if measured is None else _round(measured, 1), "pa_source": aligned.pa_source}
    reason = ""
    if catalogue_pa is not None and measured is not None and o.q is not None and o.q <= PA_CHECK_MAX_Q:
        gap = _pa_difference(catalogue_pa, measured)
        if gap > PA_DISAGREEMENT_DEG:
            reason = (f"the catalogue position angle ({catalogue_pa:.0f}°) and the one measured on the image "
                      f"({measured:.0f}°) differ by {gap:.0f}°")
    return fields, reason


def _with_orientation(body: dict[str, Any], aligned: AlignedImage, *, catalogue_pa: float | None = None) -> dict[str, Any]:
    """The cached body plus this image's orientation fields (not cached with the model input: they belong
    to the original image)."""
    fields, reason = orientation_fields(aligned, catalogue_pa=catalogue_pa)
    out = {**body, **fields}
    if reason:
        out["alarm"] = True
        out["alarm_reason"] = "; ".join(r for r in (body.get("alarm_reason"), reason) if r)
    return with_verdict(out)


def _round(value: float, digits: int = 2) -> float:
    return round(float(value), digits)


def _disagreement_reasons(stdev: float, prediction: EnsemblePrediction, ensemble: FusedEnsemble) -> list[str]:
    """The ensemble's own alarms, judged and worded on the reported numbers (the summary's stdev over the
    whole-degree members), so the alarm text quotes the value the table shows."""
    threshold = float(ensemble.manifest.alarm_stdev_deg)
    reasons = []
    if stdev > threshold:
        reasons.append(f"the inclination models disagree (stdev {stdev:.2f}° > {threshold:.2f}°)")
    rejects = [prediction.members[spec.name].reject_percent for spec in ensemble.manifest.reject]
    if rejects and (prediction.reject_median > 50.0) != (prediction.reject_mean > 50.0):
        reasons.append("the reject models disagree about this image")
    return reasons


def response_body(prediction: EnsemblePrediction, ensemble: FusedEnsemble,
                  model_input: np.ndarray | None = None) -> dict[str, Any]:
    """``inclinations`` grouped as Group_0..2 and ``rejection_likelihood``, as the original API returned,
    plus the axial-ratio cross-check of ``model_input`` when given, the calibrated ``inclination_error``
    and the members by name (``member_inclinations``, ``member_rejections``).

    Like the original, member inclinations are rounded to whole degrees and the summary is taken over
    the rounded values (population stdev, 2 decimals); the alarm, the axial check and the error bar use
    those same summary values, so every number shown agrees.
    """
    groups: dict[str, dict[str, float]] = defaultdict(dict)
    rounded = []
    members: dict[str, float] = {}
    for spec in ensemble.manifest.regression:
        value = float(np.round(prediction.members[spec.name].inclination))
        groups[f"Group_{spec.group}"][spec.name] = value
        members[spec.name] = value
        rounded.append(value)
    inclinations: dict[str, Any] = dict(sorted(groups.items()))
    summary = {"mean": _round(np.mean(rounded)), "median": _round(np.median(rounded)), "stdev": _round(np.std(rounded))}
    inclinations["summary"] = summary
    rejection: dict[str, Any] = {
        spec.name: _round(prediction.members[spec.name].reject_percent) for spec in ensemble.manifest.reject
    }
    member_rejections = {k: v for k, v in rejection.items()}
    rejection["summary"] = {
        "mean": _round(prediction.reject_mean), "median": _round(prediction.reject_median),
        "stdev": _round(prediction.reject_stdev),
    }
    reasons = _disagreement_reasons(summary["stdev"], prediction, ensemble)
    axial: dict[str, Any] = {}
    if model_input is not None:
        axial, reason = _axial_check(model_input, summary["median"], axial_margin_deg(ensemble))
        reasons += [reason] if reason else []
        checks, check_reasons = image_check_fields(model_input, rejection)
        axial, reasons = {**axial, **checks}, reasons + check_reasons
    axial_inclination = axial.get("axial_ratio_inclination")
    gap = abs(summary["median"] - axial_inclination) if axial_inclination is not None else None
    return {
        "inclinations": inclinations,
        "rejection_likelihood": rejection,
        "model_version": ensemble.version,
        "alarm": bool(reasons),
        "alarm_reason": "; ".join(reasons),
        **axial,
        "inclination_error": _round(error_model_for(ensemble).sigma(summary["stdev"], gap), 1),
        "member_inclinations": members,
        "member_rejections": member_rejections,
    }


def image_check_fields(model_input: np.ndarray, rejection: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The physical reject checks (``training.ml.image_checks``) on the model input, combined with the networks.

    ``rejection["summary"]``'s median and mean become the larger of the networks' and the checks' likelihoods
    (the networks' own stay there as ``networks_median`` / ``networks_mean``). Returns ``reject_checks`` (every
    check's likelihood, percent), ``reject_reasons`` (each cause at ≥ 50 %: a check's reason code, or
    ``networks``) and an alarm sentence per check that fired.
    """
    checks = run_checks(measure_features(model_input))
    summary = rejection["summary"]
    networks_median, networks_mean = summary["median"], summary["mean"]
    summary.update(median=_round(combine(networks_median, checks)), mean=_round(combine(networks_mean, checks)),
                   networks_median=networks_median, networks_mean=networks_mean)
    fired = [c for c in checks if c.likelihood >= 50.0]
    causes = [{"reason": "networks", "likelihood": networks_median, "detail": "the reject networks"}] \
        if networks_median >= 50.0 else []
    causes += [{"reason": c.reason, "likelihood": _round(c.likelihood, 1), "detail": c.detail} for c in fired]
    return ({"reject_checks": {c.reason: _round(c.likelihood, 1) for c in checks}, "reject_reasons": causes},
            [c.detail for c in fired])


def with_verdict(body: dict[str, Any]) -> dict[str, Any]:
    """``verdict`` and ``verdict_code`` of a finished body (after every alarm is in), and the keys a
    target fills in (``catalog_inclination``, ``permalink``) defaulting to null."""
    error = body.get("inclination_error")
    decided = decide(
        median=float(body["inclinations"]["summary"]["median"]),
        error=float(error) if error is not None else math.inf,
        reject_percent=float(body["rejection_likelihood"]["summary"]["median"]),
        axial_inclination=body.get("axial_ratio_inclination"), alarm=bool(body.get("alarm")),
        member_rejections={**(body.get("member_rejections") or {}), **_reject_causes(body)},
    )
    return {"catalog_inclination": None, "permalink": None, **body, "verdict": decided.text,
            "verdict_code": decided.code}


def _reject_causes(body: dict[str, Any]) -> dict[str, float]:
    """Reject causes named in the body (``reject_reasons``: each ``{"reason", "likelihood"}``), by reason."""
    causes = body.get("reject_reasons")
    if not isinstance(causes, list):
        return {}
    return {str(c["reason"]): float(c["likelihood"]) for c in causes
            if isinstance(c, dict) and "reason" in c and isinstance(c.get("likelihood"), int | float)}


def catalog_inclination_of(target: Target) -> float | None:
    """The catalogue's axis-ratio inclination of the target's galaxy (HyperLEDA's ``incl`` or from logr25)."""
    from catalog.models import Galaxy

    galaxy = None
    if target.galaxy_id is not None:
        galaxy = Galaxy.objects.filter(pk=target.galaxy_id).first()
    elif target.pgc is not None:
        galaxy = Galaxy.objects.filter(pgc=target.pgc).first()
    value = galaxy.catalogue_inclination if galaxy else None
    return None if value is None else _round(value, 1)


def permalink_path(*, pgc: int | None = None, name: str | None = None, ra: float | str | None = None,
                   dec: float | str | None = None, fov: float | str | None = None) -> str:
    """The page URL that reproduces a result: ``/predict/?pgc=…``, ``?name=…`` or ``?ra=&dec=&fov=``."""
    from urllib.parse import urlencode

    from django.urls import reverse

    if pgc is not None:
        query = {"pgc": pgc}
    elif name:
        query = {"name": name}
    else:
        query = {"ra": ra, "dec": dec, "fov": fov}
    return f"{reverse('predict-page')}?{urlencode(query)}"


def _store_model_input(model_input: np.ndarray, digest: str) -> str:
    """Keep the 128×128 model input so the page can show what the networks saw."""
    path = f"model_inputs/{digest[:2]}/{digest}.png"
    if not default_storage.exists(path):
        # Fast zlib settings: "optimize" spent 10-35 ms per prediction to save ~15 % of a 17 KB file.
        default_storage.save(path, ContentFile(encode_png(model_input, optimize=False)))
    return default_storage.url(path)


def _serving_key() -> str:
    """The active version × configured TTA × precision, read without loading the ensemble (for cache keys);
    raises ``NoActiveEnsemble`` before any heavy work when nothing is active."""
    return f"{active_pointer()['version']}:{prediction_setting('TTA')}:{prediction_precision()}"


def prediction_for_model_input(*, model_input: np.ndarray) -> dict[str, Any]:
    digest = hashlib.sha256(np.ascontiguousarray(model_input).tobytes()).hexdigest()
    key = f"prediction:v4:{digest}:{_serving_key()}"
    body = cache.get(key)
    if body is None:
        body = run_heavy(_predict_and_store, model_input, digest)
        cache.set(key, body, CACHE_SECONDS)
    return body


def _predict_and_store(model_input: np.ndarray, digest: str) -> dict[str, Any]:
    ensemble = active_ensemble()
    body = response_body(ensemble.predict(model_input[np.newaxis])[0], ensemble, model_input)
    body["image_url"] = _store_model_input(model_input, digest)
    return body


def prediction_for_aligned(aligned: AlignedImage, *, catalogue_pa: float | None = None) -> dict[str, Any]:
    """The prediction of an aligned image with its orientation fields."""
    return _with_orientation(prediction_for_model_input(model_input=aligned.model_input), aligned,
                             catalogue_pa=catalogue_pa)


def prediction_for_upload(*, data: bytes, angle_deg: float | None = None, scale: float = 1.0) -> dict[str, Any]:
    """An uploaded image, checked by content (PNG/JPEG/GIF, size and pixel limits), turned by the measured
    position angle (or by ``angle_deg`` when the caller gives one)."""
    return run_heavy(_upload_prediction, data, angle_deg, scale)


def _upload_prediction(data: bytes, angle_deg: float | None, scale: float) -> dict[str, Any]:
    image = load_image(
        data, max_bytes=settings.MAX_UPLOAD_BYTES, max_pixels=settings.MAX_IMAGE_PIXELS, allowed_formats=UPLOAD_FORMATS,
        max_side=settings.MAX_DECODE_SIDE,  # a huge image costs seconds of CPU at full size; the model sees 128 px
    )
    return prediction_for_aligned(align_image(image.pixels, angle_deg=angle_deg, scale=scale))


def measure_image_orientation(pixels: np.ndarray) -> Orientation:
    """The centre and position angle measured on an uploaded image (the page shows them before evaluating)."""
    return measure_orientation(normalise_inversion(to_display_rgb(pixels))[0])


def target_angle(target: Target, *, trust_pa: bool = True) -> float | None:
    """PA + 90 for a galaxy with a catalogue PA (trusted), None (measure it) otherwise."""
    return None if target.pa is None or not trust_pa else float(target.pa) + 90.0


def prediction_for_target(*, target: Target, angle_deg: float | None = None, scale: float = 1.0,
                          trust_pa: bool = True) -> dict[str, Any]:
    """A catalogue target: fetch the cut-out (field 1.5 × D25), turn by PA + 90 as the original did when the
    catalogue gives a PA (and ``trust_pa``), else by the angle measured on the cut-out. /api/coords passes
    ``trust_pa=False``: the position it is given need not be the catalogue galaxy's."""
    key = (f"prediction-target:v4:{target.ra:.5f}:{target.dec:.5f}:{target.fov_arcmin:.3f}:{target.pa}:{trust_pa}:"
           f"{angle_deg}:{scale}:{_serving_key()}")
    body = cache.get(key)
    if body is None:
        angle = angle_deg if angle_deg is not None else target_angle(target, trust_pa=trust_pa)
        source = "manual" if angle_deg is not None else "catalogue"
        body = run_heavy(_target_prediction, target, angle, scale, source)
        cache.set(key, body, CACHE_SECONDS)
    return {**body, "catalog_inclination": catalog_inclination_of(target)}


def _target_prediction(target: Target, angle_deg: float | None, scale: float, source: str) -> dict[str, Any]:
    cutout = fetch_cutout(ra=target.ra, dec=target.dec, fov_arcmin=target.fov_arcmin)
    image = load_image(cutout.data, max_bytes=20 * settings.MAX_UPLOAD_BYTES, max_pixels=settings.MAX_IMAGE_PIXELS,
                       max_side=settings.MAX_DECODE_SIDE)
    aligned = align_image(image.pixels, angle_deg=angle_deg, scale=scale, pa_source=source)
    trusted = angle_deg is not None and source == "catalogue"
    return prediction_for_aligned(aligned, catalogue_pa=target.pa if trusted else None)
