"""Drawing one galaxy's parameters from a :class:`GeneratorConfig`, deterministically from ``(seed, index)``.

The random calls happen in a fixed order (inclination, morphology, framing, structure, arms and dust, colours
and observing conditions, then the reject's or neighbour's placement): every set ever drawn depends on it, so
a new parameter gets its own stream (``seed_sequence``'s ``stream``) rather than a place in this order.
Django-free.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from core.geometry import HOLMBERG_Q0, apparent_axis_ratio

from .config import MORPHOLOGY_RANGES, GeneratorConfig, Interval, Morphology, Range
from .params import GalaxyParams, disk_flux, seed_sequence

__all__ = ["draw_params", "sample_range"]


def _intervals(spec: Range) -> list[Interval]:
    if len(spec) and isinstance(spec[0], (tuple, list)):
        return [(float(a), float(b)) for a, b in spec]  # type: ignore[misc]
    lo, hi = spec  # type: ignore[misc]
    return [(float(lo), float(hi))]


def sample_range(rng: np.random.Generator, spec: Range) -> float:
    """One uniform draw from an interval or a union of intervals (weighted by width)."""
    ivs = _intervals(spec)
    widths = np.array([max(b - a, 0.0) for a, b in ivs])
    if widths.sum() <= 0:
        return float(ivs[int(rng.integers(len(ivs)))][0])
    k = int(rng.choice(len(ivs), p=widths / widths.sum()))
    a, b = ivs[k]
    return float(rng.uniform(a, b))


def _choice(rng: np.random.Generator, mix: Mapping[str, float]) -> str:
    keys = list(mix)
    w = np.array([float(mix[k]) for k in keys])
    return keys[int(rng.choice(len(keys), p=w / w.sum()))]


def _pick(rng: np.random.Generator, options: Sequence[int]) -> int:
    return int(options[int(rng.integers(len(options)))])


def _ellipse_radius(a: float, q: float, angle: float) -> float:
    """Radius of an ellipse (semi-major a, axis ratio q) at ``angle`` from its major axis."""
    b = a * q
    return a * b / math.hypot(b * math.cos(angle), a * math.sin(angle))


def _widened(interval: Interval, low: float, high: float, widen: float) -> Interval:
    """``interval`` widened by ``widen`` × its width on each side, kept within [low, high]."""
    if widen <= 0:
        return interval
    a, b = interval
    pad = widen * (b - a)
    return (max(low, a - pad), min(high, b + pad))


def _draw_inclination(rng: np.random.Generator, config: GeneratorConfig, reason: str | None) -> float:
    if reason == "face_on":
        return sample_range(rng, config.face_on_range)
    if config.inclination_sampling == "isotropic":
        ivs = _intervals(config.inclination_range)
        cos_ranges = tuple((math.cos(math.radians(b)), math.cos(math.radians(a))) for a, b in ivs)
        return math.degrees(math.acos(min(1.0, max(0.0, sample_range(rng, cos_ranges)))))
    return sample_range(rng, config.inclination_range)


def _draw_bulge_and_bar(rng: np.random.Generator, config: GeneratorConfig, morph: Morphology, widen: float,
                        has_bar: bool) -> dict[str, Any]:
    u = lambda spec: sample_range(rng, spec)  # noqa: E731
    return dict(
        disk_ellipticity=u(config.disk_ellipticity_range),
        disk_ellipticity_angle=float(rng.uniform(0, 180)),
        bulge_to_total=u(_widened(morph.bulge_to_total, 0.0, 0.8, widen)),
        bulge_n=u(_widened(morph.bulge_n, 0.6, 6.0, widen)),
        bulge_q=u(_widened(morph.bulge_q, 0.3, 0.95, widen)),
        bulge_re_over_rs=u(_widened(morph.bulge_re, 0.04, 0.6, widen)),
        bar_strength=float(rng.uniform(0.04, 0.15)) if has_bar else 0.0,
        bar_length_over_rs=float(rng.uniform(0.6, 1.4)),
        bar_axis_ratio=float(rng.uniform(0.2, 0.4)),
        bar_angle=float(rng.uniform(0, 180)),
    )


def _draw_arms_dust_and_shape(rng: np.random.Generator, config: GeneratorConfig, morph: Morphology,
                              widen: float) -> dict[str, Any]:
    u = lambda spec: sample_range(rng, spec)  # noqa: E731
    return dict(
        n_arms=_pick(rng, morph.n_arms),
        pitch_deg=u(_widened(morph.pitch_deg, 3.0, 50.0, widen)),
        arm_strength=u(_widened(morph.arm_strength, 0.0, 0.9, widen)),
        arm_sharpness=_pick(rng, morph.arm_sharpness),
        arm_phase=float(rng.uniform(0, 2 * math.pi)),
        flocculence=u(_widened(morph.flocculence, 0.0, 1.0, widen)),
        floc_arms=int(rng.integers(3, 7)),
        floc_pitch_deg=float(rng.uniform(20, 40)),
        floc_phase=float(rng.uniform(0, 2 * math.pi)),
        clump_fraction=u(_widened(morph.clump_fraction, 0.0, 0.3, widen)),
        n_clumps=int(rng.integers(morph.n_clumps[0], morph.n_clumps[1] + 1)),
        dust_tau_v=u(_widened(morph.dust_tau_v, 0.0, 8.0, widen)) * u(config.dust_scale_range),
        dust_rd_over_rs=float(rng.uniform(1.0, 1.5)),
        dust_hd_over_h=float(rng.uniform(0.4, 0.8)),
        dust_arm_contrast=float(rng.uniform(0.3, 0.9)),
        warp_amplitude=u(config.warp_amplitude_range) if rng.random() < config.warp_fraction else 0.0,
        warp_start=float(rng.uniform(0.5, 0.8)),
        lopsidedness=u(config.lopsided_range) if rng.random() < config.lopsided_fraction else 0.0,
        lopsided_angle=float(rng.uniform(0, 2 * math.pi)),
    )


def _draw_colours_and_observing(rng: np.random.Generator, config: GeneratorConfig,
                                colour_shift: float) -> dict[str, Any]:
    u = lambda spec: sample_range(rng, spec)  # noqa: E731
    return dict(
        disk_colour=(float(0.55 + colour_shift + rng.normal(0, 0.05)), float(0.30 + rng.normal(0, 0.04))),
        bulge_colour=(float(0.80 + 0.5 * colour_shift + rng.normal(0, 0.05)), float(0.42 + rng.normal(0, 0.04))),
        young_colour=(float(0.10 + rng.normal(0, 0.08)), float(0.02 + rng.normal(0, 0.05))),
        psf_type="kolmogorov" if rng.random() < config.psf_kolmogorov_fraction else "moffat",
        psf_beta=u(config.psf_beta_range),
        psf_shear=tuple(float(v) for v in rng.uniform(-1, 1, 2) * config.psf_ellipticity_max / math.sqrt(2)),
        noise=u(config.noise_range),
        star_density=u(config.star_count_range),
        bright_star_off_disk=bool(rng.random() < config.bright_star_fraction),
        spike_angle=float(rng.uniform(0, 90)),
        background_galaxies=u(config.background_galaxies_range),
        colour_mode=_choice(rng, config.colour_modes),
        d25_arcmin=float(10 ** rng.uniform(math.log10(0.6), math.log10(4.0))),
        stretch=u(config.stretch_range),
        jpeg_quality=int(round(u(config.jpeg_quality_range))),
    )


def _draw_display_law(p: GalaxyParams, config: GeneratorConfig, seed: int, index: int) -> None:
    """The display law comes from its own stream, so sets drawn before it existed keep every other value."""
    if dict(getattr(config, "stretch_modes", {"asinh": 1.0})) == {"asinh": 1.0}:
        return
    srng = np.random.default_rng(seed_sequence(seed, index, 2))
    p.stretch_mode = _choice(srng, config.stretch_modes)
    p.white_point = float(math.exp(sample_range(srng, tuple((math.log(a), math.log(b))
                                                            for a, b in _intervals(config.white_point_range)))))
    p.stretch_exponent = float(srng.uniform(0.25, 0.7))


def _draw_truncation(p: GalaxyParams, config: GeneratorConfig, seed: int, index: int) -> None:
    # Read with getattr: a config pickled by a process that imported an older module may lack the field.
    if getattr(config, "truncation_fraction", 0.0) <= 0:
        return
    trng = np.random.default_rng(seed_sequence(seed, index, 3))
    if trng.random() < config.truncation_fraction:
        p.truncation = sample_range(trng, config.truncation_range)
        p.truncation_softness = float(trng.uniform(0.03, 0.12))


def draw_params(config: GeneratorConfig, *, seed: int, index: int) -> GalaxyParams:
    """Draw the parameters of galaxy ``index`` of the set ``seed`` (deterministic)."""
    rng = np.random.default_rng(seed_sequence(seed, index, 0))
    u = lambda spec: sample_range(rng, spec)  # noqa: E731
    n = config.size
    reason: str | None = None
    if rng.random() < config.reject_fraction:
        reason = _choice(rng, config.reject_mix)
    inclination = _draw_inclination(rng, config, reason)

    morph = MORPHOLOGY_RANGES[_choice(rng, config.morphology_mix)]
    fill = u(config.fill_range)
    r25_app = 0.5 * fill * n  # the observed D25/2, which sets the framing as in the original cut-outs
    n25 = u(config.r25_over_rs_range)
    h_over_r = u(config.h_over_r_range)
    psf_fwhm = u(config.psf_fwhm_range)
    r25 = n25 * _scale_radius_for_apparent(r25_app, n25, h_over_r, inclination, psf_fwhm)
    jit = config.centre_jitter_px
    offset = (float(rng.normal(0, jit / 1.4)), float(rng.normal(0, jit / 1.4)))
    pa = u(config.pa_range)

    widen = float(getattr(config, "morphology_widen", 0.0))  # getattr: configs pickled by older modules
    has_bar = rng.random() < min(0.9, morph.bar_probability + 0.5 * widen)
    colour_shift = morph.colour_shift + rng.normal(0, 0.05)
    structure = _draw_bulge_and_bar(rng, config, morph, widen, has_bar)
    arms_and_dust = _draw_arms_dust_and_shape(rng, config, morph, widen)
    observing = _draw_colours_and_observing(rng, config, colour_shift)
    p = GalaxyParams(
        seed=int(seed), index=int(index), size=n, oversample=config.oversample, accepted=reason is None,
        reason=reason, inclination=float(inclination), pa=float(pa), centre_offset=offset, morphology=morph.name,
        r25=float(r25), r25_apparent=float(r25_app), r25_over_rs=n25, h_over_r=h_over_r, psf_fwhm=psf_fwhm,
        **structure, **arms_and_dust, **observing,
    )
    _draw_display_law(p, config, seed, index)
    _draw_truncation(p, config, seed, index)
    q_app = apparent_axis_ratio(p.inclination, HOLMBERG_Q0)
    _place_reject(p, rng, config, reason, r25_app, r25, q_app)
    if p.accepted and rng.random() < config.neighbour_fraction:
        rc = r25_app * rng.uniform(0.15, 0.4)
        ang = rng.uniform(0, 2 * math.pi)
        rad = _ellipse_radius(r25_app, q_app, ang) * 1.15 + rc * 1.3 + rng.uniform(0, 0.2 * n)
        x, y = _galaxy_to_image(p, rad * math.cos(ang), rad * math.sin(ang))
        p.neighbour = _neighbour_dict(rng, x, y, rc, _flux_of(rc) * rng.uniform(0.3, 1.0))
    return p


def _place_reject(p: GalaxyParams, rng: np.random.Generator, config: GeneratorConfig, reason: str | None,
                  r25_app: float, r25: float, q_app: float) -> None:
    """What makes a reject one: more noise, a bright star or a companion on the disk, or a cut-off galaxy."""

    def point_in_disk(max_frac: float, min_frac: float = 0.0) -> tuple[float, float]:
        """A point inside the galaxy's apparent D25 ellipse, in output-frame offsets (dx, dy)."""
        ang = rng.uniform(0, 2 * math.pi)
        rad = _ellipse_radius(r25_app, q_app, ang) * math.sqrt(rng.uniform(min_frac**2, max_frac**2))
        return _galaxy_to_image(p, rad * math.cos(ang), rad * math.sin(ang))

    flux = disk_flux(p)
    if reason == "low_snr":
        p.noise = sample_range(rng, config.low_snr_noise_range)
    elif reason == "bright_star":
        x, y = point_in_disk(0.75)
        p.bright_star = {"x": x, "y": y, "flux": float(flux * 10 ** rng.uniform(-1.0, 0.3))}
    elif reason == "companion":
        rc = r25_app * rng.uniform(0.3, 0.8)
        x, y = point_in_disk(1.0, 0.35)
        p.companion = _neighbour_dict(rng, x, y, rc, _flux_of(rc) * rng.uniform(0.5, 1.5))
    elif reason == "cut_off":
        _cut_off(p, rng, config.size, r25_app, r25, q_app)


def _cut_off(p: GalaxyParams, rng: np.random.Generator, n: int, r25_app: float, r25: float, q_app: float) -> None:
    """A ``cut_off`` reject: off the frame's edge, zoomed past it, or beyond a straight edge of missing data."""
    mode = ["edge", "zoom", "mask"][int(rng.integers(3))]
    if mode == "edge":
        # Shift the centre along the (roughly horizontal) major axis so 25-60% of D25 leaves.
        shift = (0.5 * n - r25_app) + r25_app * rng.uniform(0.25, 0.6) * 2
        sign = 1 if rng.random() < 0.5 else -1
        p.centre_offset = (sign * shift, float(rng.normal(0, 3)))
    elif mode == "zoom":
        p.r25_apparent = float(0.5 * n * rng.uniform(1.1, 1.5))
        p.r25 = p.r25_apparent / r25_app * r25
    else:
        # Missing data beyond a straight edge that crosses the disk (SDSS footprint edge).
        theta = rng.uniform(0, 2 * math.pi)  # normal of the edge in the image (x right, y down)
        rel = theta + math.radians(p.pa)  # the same angle measured from the major axis
        support = math.hypot(r25_app * math.cos(rel), r25_app * q_app * math.sin(rel))
        p.mask = {"nx": math.cos(theta), "ny": math.sin(theta), "d": float(support * rng.uniform(0.0, 0.6))}
    p.mask = {**(p.mask or {}), "mode": mode}


def _flux_of(r25: float, n25: float = 3.5) -> float:
    """Flux of an exponential disk whose face-on surface brightness is 1 at ``r25``."""
    return 2 * math.pi * (r25 / n25) ** 2 * math.exp(n25)


def _neighbour_dict(rng: np.random.Generator, x: float, y: float, r25: float, flux: float) -> dict[str, float]:
    return {
        "x": float(x), "y": float(y), "r25": float(r25), "flux": float(flux),
        "inclination": float(rng.uniform(20, 88)), "pa": float(rng.uniform(0, 180)),
        "bulge_to_total": float(rng.uniform(0.0, 0.4)), "gr": float(rng.uniform(0.4, 0.9)),
    }


def _galaxy_to_image(p: GalaxyParams, xg: float, yg: float) -> tuple[float, float]:
    """Galaxy-frame (major axis +x, y down) → image offset from the field centre (dx, dy down)."""
    pa = math.radians(p.pa)
    yd = -yg
    xd = xg * math.cos(pa) - yd * math.sin(pa)
    yd2 = xg * math.sin(pa) + yd * math.cos(pa)
    return xd + p.centre_offset[0], -yd2 + p.centre_offset[1]


def _scale_radius_for_apparent(r25_app: float, n25: float, h_over_r: float, inclination: float, psf_fwhm: float) -> float:
    """Disk scale radius whose *observed* isophotal radius (face-on SB at R25 as the isophote) is
    ``r25_app``. An inclined disk is brighter by the line-of-sight path, 1/cos i for a thin disk,
    capped near edge-on by the thickness (sech² and PSF) at the mid-plane: the observed D25 of an
    edge-on galaxy is 1.5–1.8 × its face-on one, as in RC3-style corrections."""
    ci = math.cos(math.radians(inclination))
    sig_p = psf_fwhm / 2.355
    rs = r25_app / n25
    for _ in range(4):
        g_edge = math.sqrt(2 * math.pi * n25) * rs / math.sqrt((2 * h_over_r * rs) ** 2 + 2 * math.pi * sig_p**2)
        g = 1.0 / math.sqrt(ci * ci + 1.0 / max(g_edge, 1.0) ** 2)
        rs = r25_app / (n25 + math.log(max(g, 1.0)))
    return rs
