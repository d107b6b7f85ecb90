"""Synthetic spiral galaxies with exactly known inclination, for training and testing IncliNET models.

Real labels carry human scatter (about 2.6° between groups), so a model can only be judged to
degree level on images whose inclination is known exactly. This module draws such images: a
GalSim ``InclinedExponential`` disk of finite thickness (the truth-bearing component) plus a
flattened Sersic bulge, an optional bar, log-spiral arms, flocculent structure and star-forming
clumps, a dusty mid-plane, warps, lopsidedness and an intrinsically non-circular disk; then a
PSF (Moffat or Kolmogorov, wider in g), sky noise, foreground stars (bright ones with diffraction
spikes), faint background galaxies, neighbours, g/r/i bands with different bulge/disk/arm colours,
an SDSS-like Lupton colour composite, asinh grey images per band, and JPEG artefacts.

The framing copies the original cut-outs: the galaxy's D25 fills about 2/3 of the field (1.5×D25)
and the major axis lies close to horizontal (the cut-outs were rotated by the catalogue PA).

Every image carries its truth: inclination (0° = face-on), position angle in the image, colour
mode, and for rejects the reason (``face_on``, ``bright_star``, ``companion``, ``low_snr``,
``cut_off``). Accepted galaxies have inclinations 45–90°.

The arms, dust and lopsidedness are computed by a short ray march through the same 3D disk
(exponential in R, sech² in z) that GalSim draws, and applied as per-band multiplicative maps on
the GalSim image, so they project correctly at every inclination (an edge-on disk shows a
mid-plane dust lane and no arms; a 50° disk shows foreshortened arms with dust lanes on their
inner edges).

Usage::

    from training.ml.synthetic import GeneratorConfig, generate, save_npz
    galaxies = list(generate(GeneratorConfig(), 1000, seed=1, workers=2))
    save_npz("train.npz", galaxies)

Galaxies are seeded from ``(seed, index)``, so a set is identical whatever the number of
workers. Workers use the ``spawn`` start method (``fork`` deadlocks with GalSim).

This module is Django-free.
"""
from __future__ import annotations

import io
import json
import math
import multiprocessing
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Union

import numpy as np

__all__ = [
    "BANDS",
    "REJECT_REASONS",
    "MORPHOLOGIES",
    "Morphology",
    "GeneratorConfig",
    "GalaxyParams",
    "SyntheticGalaxy",
    "default_config",
    "robustness_config",
    "domain_randomised_config",
    "domain_reject_rich_config",
    "draw_params",
    "render_galaxy",
    "generate",
    "save_npz",
    "load_npz",
]

BANDS: tuple[str, str, str] = ("g", "r", "i")
REJECT_REASONS: tuple[str, ...] = ("face_on", "bright_star", "companion", "low_snr", "cut_off")

# A range is (lo, hi) or a union of such intervals ((lo, hi), (lo, hi), ...), sampled in
# proportion to the interval widths. The union form lets the robustness preset draw from values
# on both sides of the training range.
Interval = tuple[float, float]
Range = Union[Interval, tuple[Interval, ...]]

# Extinction per band relative to V (Cardelli-like, SDSS filters).
_EXTINCTION = np.array([1.20, 0.87, 0.67])
# Sky noise per band relative to r, in flux units (i is noisier, g a little quieter).
_SKY_NOISE = np.array([0.85, 1.0, 1.4])


@dataclass(frozen=True)
class Morphology:
    """Ranges that define one morphological type (all lengths relative to the disk scale length)."""

    name: str
    bulge_to_total: Interval
    bulge_n: Interval
    bulge_q: Interval  # intrinsic flattening c/a of the oblate bulge
    bulge_re: Interval  # bulge half-light radius / disk scale radius
    n_arms: tuple[int, ...]
    pitch_deg: Interval
    arm_strength: Interval  # fraction of disk light modulated by the arms
    arm_sharpness: tuple[int, ...]  # exponent k of ((1 + cos ψ)/2)^k
    flocculence: Interval  # weight of the secondary, higher-m pattern
    clump_fraction: Interval  # fraction of the disk light in star-forming clumps
    n_clumps: tuple[int, int]
    bar_probability: float
    dust_tau_v: Interval  # face-on central V optical depth
    colour_shift: float  # added to g-r (mag): positive is redder


MORPHOLOGIES: dict[str, Morphology] = {
    "Sa": Morphology("Sa", (0.25, 0.50), (2.5, 4.5), (0.55, 0.85), (0.15, 0.35), (2,), (6, 12),
                     (0.15, 0.40), (2, 3), (0.0, 0.2), (0.0, 0.02), (0, 25), 0.35, (0.5, 2.0), 0.08),
    "Sb": Morphology("Sb", (0.10, 0.30), (1.8, 4.0), (0.5, 0.85), (0.12, 0.30), (2, 2, 3), (10, 18),
                     (0.30, 0.60), (2, 3), (0.0, 0.3), (0.01, 0.05), (15, 70), 0.40, (1.0, 5.0), 0.0),
    "Sc": Morphology("Sc", (0.02, 0.12), (1.0, 2.5), (0.5, 0.8), (0.08, 0.22), (2, 2, 3, 4), (15, 28),
                     (0.40, 0.75), (1, 2, 3), (0.1, 0.5), (0.03, 0.10), (40, 140), 0.35, (1.0, 5.0), -0.05),
    "Sd": Morphology("Sd", (0.0, 0.04), (1.0, 1.5), (0.5, 0.8), (0.06, 0.15), (2, 3, 4), (20, 35),
                     (0.30, 0.60), (1, 2), (0.4, 0.8), (0.05, 0.14), (60, 180), 0.30, (0.3, 1.5), -0.1),
    # Used by the robustness preset only.
    "S0a": Morphology("S0a", (0.45, 0.70), (3.0, 5.0), (0.45, 0.75), (0.20, 0.45), (2,), (4, 8),
                      (0.05, 0.20), (1, 2), (0.0, 0.1), (0.0, 0.01), (0, 8), 0.45, (0.3, 1.2), 0.15),
    "Sm": Morphology("Sm", (0.0, 0.01), (0.8, 1.2), (0.6, 0.9), (0.05, 0.12), (1, 2, 3), (30, 45),
                     (0.20, 0.50), (1,), (0.6, 1.0), (0.10, 0.25), (120, 260), 0.25, (0.1, 0.8), -0.15),
}


def _default_morphology_mix() -> dict[str, float]:
    return {"Sa": 0.2, "Sb": 0.3, "Sc": 0.3, "Sd": 0.2}


def _default_reject_mix() -> dict[str, float]:
    return {"face_on": 0.35, "bright_star": 0.17, "companion": 0.16, "low_snr": 0.16, "cut_off": 0.16}


@dataclass(frozen=True)
class GeneratorConfig:
    """Seeded ranges the generator draws from. Lengths are in output pixels unless stated.

    ``fill_range`` is D25 / field width (the original cut-outs are 1.5×D25, so about 2/3).
    ``noise_range`` is the r-band sky sigma per output pixel in units of the disk's face-on
    surface brightness at R25 (so 0.1 means the D25 isophote has S/N 10 per pixel).
    """

    size: int = 128
    oversample: int = 1  # render at size*oversample, then block-average down
    inclination_range: Range = (45.0, 90.0)  # accepted galaxies and non-face-on rejects
    inclination_sampling: str = "uniform"  # "uniform" in degrees or "isotropic" (uniform in cos i)
    face_on_range: Range = (0.0, 44.0)
    pa_range: Range = (-5.0, 5.0)  # major axis orientation in the image, deg CCW from +x
    centre_jitter_px: float = 1.5
    fill_range: Range = (0.55, 0.80)
    r25_over_rs_range: Range = (3.0, 4.2)  # face-on isophotal radius / scale length
    h_over_r_range: Range = (0.08, 0.25)
    disk_ellipticity_range: Range = (0.0, 0.08)  # intrinsic 1 - b/a of the disk plane
    morphology_mix: Mapping[str, float] = field(default_factory=_default_morphology_mix)
    dust_scale_range: Range = (0.7, 1.3)  # multiplies the morphology's optical depth
    warp_fraction: float = 0.3
    warp_amplitude_range: Range = (0.02, 0.08)  # height at R25 / R25
    lopsided_fraction: float = 0.4
    lopsided_range: Range = (0.03, 0.15)
    psf_fwhm_range: Range = (1.2, 3.2)  # r band; g is 6% wider, i 4% narrower
    psf_beta_range: Range = (2.5, 4.5)
    psf_kolmogorov_fraction: float = 0.3
    psf_ellipticity_max: float = 0.05
    noise_range: Range = (0.04, 0.35)
    low_snr_noise_range: Range = (1.5, 6.0)  # for low_snr rejects
    star_count_range: Range = (1.0, 10.0)  # mean number of field stars per image
    bright_star_fraction: float = 0.25  # accepted images with a bright star off the disk
    background_galaxies_range: Range = (0.0, 5.0)  # mean number of small background galaxies
    neighbour_fraction: float = 0.1  # accepted images with a non-overlapping neighbour
    colour_modes: Mapping[str, float] = field(default_factory=lambda: {"sdss": 1.0})
    stretch_range: Range = (0.7, 1.4)  # scales the asinh softening (brightness of faint light)
    jpeg_quality_range: Range = (70.0, 95.0)
    reject_fraction: float = 0.0  # the training preset draws accepted galaxies unless asked
    reject_mix: Mapping[str, float] = field(default_factory=_default_reject_mix)
    # Display stretch laws and their weights: "asinh" (the SDSS-like default), "log", "sqrt", "linear",
    # "power". Laws other than asinh map the linear flux with a white point of ``white_point_range`` × the
    # face-on surface brightness at R25 (small: the disk saturates; large: only the core shows).
    stretch_modes: Mapping[str, float] = field(default_factory=lambda: {"asinh": 1.0})
    white_point_range: Range = (8.0, 120.0)
    # Widen every morphology's ranges by this fraction of their width on each side (0: as tabulated), and
    # raise the bar probability by half of it: more varied bulges, arms, flocculence, clumps and dust.
    morphology_widen: float = 0.0
    # Outer disk truncation: this share of galaxies has its disk light cut off (a soft step of relative width
    # 0.03–0.12) at ``truncation_range`` × R25. 0: never (the training preset).
    truncation_fraction: float = 0.0
    truncation_range: Range = (0.95, 1.4)

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(asdict(self)))


def default_config(**overrides: Any) -> GeneratorConfig:
    """The training preset (``GeneratorConfig()``), with optional field overrides."""
    return replace(GeneratorConfig(), **overrides)


# Extra training material for reject models: mostly rejects, weighted to the reasons that are hard to see
# (a star on the disk, an overlapping companion, a cut-off edge); accepted galaxies in it still carry
# off-disk stars and non-overlapping neighbours, the look-alikes a reject model must learn to let through.
REJECT_RICH_MIX: dict[str, float] = {"face_on": 0.1, "bright_star": 0.25, "companion": 0.25, "low_snr": 0.1, "cut_off": 0.3}


def reject_rich_config(**overrides: Any) -> GeneratorConfig:
    """The training preset with 60 % rejects in :data:`REJECT_RICH_MIX` (reject-model training only)."""
    return replace(GeneratorConfig(reject_fraction=0.6, reject_mix=dict(REJECT_RICH_MIX)), **overrides)


def domain_randomised_config(**overrides: Any) -> GeneratorConfig:
    """The training preset widened for domain-robust training (``pipeline`` profile ``robust``): every
    morphology (S0a and Sm included) with ranges widened by half their width, thinner and thicker disks,
    stronger warps and lopsidedness, wider PSFs and noise, more stars, background galaxies and neighbours,
    both colour modes, five display stretch laws and JPEG quality 40–98. The cut-out framing stays the
    original's (augmentation varies field, pixel size and residual rotation further).

    It overlaps the ranges of :func:`robustness_config`, so that preset no longer measures extrapolation for
    networks trained on this one.
    """
    cfg = GeneratorConfig(
        pa_range=(-3.0, 3.0),
        centre_jitter_px=3.0,
        fill_range=(0.5, 0.83),
        r25_over_rs_range=(2.7, 4.6),
        h_over_r_range=(0.05, 0.30),
        disk_ellipticity_range=(0.0, 0.08),
        morphology_mix={"S0a": 0.1, "Sa": 0.18, "Sb": 0.24, "Sc": 0.24, "Sd": 0.16, "Sm": 0.08},
        morphology_widen=0.5,
        dust_scale_range=(0.3, 2.0),
        warp_fraction=0.4,
        warp_amplitude_range=(0.02, 0.12),
        lopsided_fraction=0.5,
        lopsided_range=(0.03, 0.25),
        psf_fwhm_range=(0.8, 4.5),
        psf_beta_range=(2.0, 5.5),
        psf_kolmogorov_fraction=0.4,
        psf_ellipticity_max=0.07,
        noise_range=(0.03, 0.6),
        star_count_range=(1.0, 20.0),
        bright_star_fraction=0.3,
        background_galaxies_range=(0.0, 10.0),
        neighbour_fraction=0.2,
        colour_modes={"sdss": 0.6, "panstarrs": 0.4},
        stretch_range=(0.45, 2.0),
        stretch_modes={"asinh": 0.45, "log": 0.2, "sqrt": 0.15, "linear": 0.1, "power": 0.1},
        jpeg_quality_range=(40.0, 98.0),
        # truncation_fraction stays 0 here: the shipped robust ensemble was built without it (not yet measured).
    )
    return replace(cfg, **overrides)


def domain_reject_rich_config(**overrides: Any) -> GeneratorConfig:
    """:func:`domain_randomised_config` with 60 % rejects in :data:`REJECT_RICH_MIX` (reject-model training)."""
    return domain_randomised_config(reject_fraction=0.6, reject_mix=dict(REJECT_RICH_MIX), **overrides)


def robustness_config(**overrides: Any) -> GeneratorConfig:
    """A preset drawn from ranges the training preset does not use.

    Wider and narrower PSFs, higher noise, smaller and larger galaxies in the field, S0a and Sm
    morphologies, thinner/thicker disks, rounder/flatter intrinsic disks, Pan-STARRS-like colour,
    lower JPEG quality and larger misalignment.
    """
    cfg = GeneratorConfig(
        pa_range=((-20.0, -5.0), (5.0, 20.0)),
        centre_jitter_px=4.0,
        fill_range=((0.42, 0.55), (0.80, 0.90)),
        r25_over_rs_range=((2.6, 3.0), (4.2, 4.8)),
        h_over_r_range=((0.05, 0.08), (0.25, 0.32)),
        disk_ellipticity_range=(0.08, 0.14),
        morphology_mix={"S0a": 0.5, "Sm": 0.5},
        dust_scale_range=((0.3, 0.7), (1.3, 2.0)),
        warp_fraction=0.5,
        warp_amplitude_range=(0.08, 0.14),
        lopsided_fraction=0.6,
        lopsided_range=(0.15, 0.30),
        psf_fwhm_range=((0.7, 1.2), (3.2, 5.0)),
        psf_beta_range=((1.8, 2.5), (4.5, 6.0)),
        psf_kolmogorov_fraction=0.5,
        psf_ellipticity_max=0.10,
        noise_range=(0.35, 0.80),
        star_count_range=(10.0, 25.0),
        bright_star_fraction=0.4,
        background_galaxies_range=(5.0, 12.0),
        neighbour_fraction=0.25,
        colour_modes={"panstarrs": 1.0},
        stretch_range=((0.45, 0.7), (1.4, 2.0)),
        jpeg_quality_range=(35.0, 70.0),
    )
    return replace(cfg, **overrides)


@dataclass
class GalaxyParams:
    """Everything needed to render one image; also its truth (``asdict`` is JSON-native)."""

    seed: int
    index: int
    size: int = 128
    oversample: int = 1
    accepted: bool = True
    reason: str | None = None
    inclination: float = 60.0  # degrees, 0 = face-on
    pa: float = 0.0  # major axis orientation in the image, deg CCW from +x (row 0 at the top)
    centre_offset: tuple[float, float] = (0.0, 0.0)  # (dx right, dy down) in output px
    morphology: str = "Sb"
    r25: float = 42.0  # face-on isophotal radius (D25/2 if seen face-on), output px
    r25_apparent: float = 42.0  # observed isophotal semi-major axis (longer when inclined), output px
    r25_over_rs: float = 3.5
    h_over_r: float = 0.12
    disk_ellipticity: float = 0.0
    disk_ellipticity_angle: float = 0.0  # deg, in the disk plane
    bulge_to_total: float = 0.15
    bulge_n: float = 3.0
    bulge_q: float = 0.7
    bulge_re_over_rs: float = 0.2
    bar_strength: float = 0.0  # bar flux / disk flux (0: no bar)
    bar_length_over_rs: float = 1.0  # semi-major axis scale
    bar_axis_ratio: float = 0.3
    bar_angle: float = 0.0  # deg in the disk plane from the line of nodes
    n_arms: int = 2
    pitch_deg: float = 15.0
    arm_strength: float = 0.4
    arm_sharpness: int = 2
    arm_phase: float = 0.0  # radians
    flocculence: float = 0.2
    floc_arms: int = 4
    floc_pitch_deg: float = 25.0
    floc_phase: float = 0.0
    clump_fraction: float = 0.04
    n_clumps: int = 50
    dust_tau_v: float = 1.0
    dust_rd_over_rs: float = 1.2
    dust_hd_over_h: float = 0.45
    dust_arm_contrast: float = 0.5
    warp_amplitude: float = 0.0  # height at R25 / R25
    warp_start: float = 0.6  # warp begins at this fraction of R25
    lopsidedness: float = 0.0
    lopsided_angle: float = 0.0  # radians
    truncation: float = 0.0  # disk light cut off at this × R25 (0: none)
    truncation_softness: float = 0.05  # width of the cut-off step, × R25
    disk_colour: tuple[float, float] = (0.55, 0.30)  # (g-r, r-i) mag
    bulge_colour: tuple[float, float] = (0.80, 0.42)
    young_colour: tuple[float, float] = (0.15, 0.05)
    psf_type: str = "moffat"
    psf_fwhm: float = 2.0  # r band, output px
    psf_beta: float = 3.0
    psf_shear: tuple[float, float] = (0.0, 0.0)  # (g1, g2)
    noise: float = 0.1  # r-band sky sigma / face-on SB at R25
    star_density: float = 4.0
    bright_star_off_disk: bool = False
    spike_angle: float = 0.0  # deg; SDSS spikes follow the CCD axes, rotated with the cut-out
    bright_star: dict[str, float] | None = None  # the reject's star: x, y (output px), flux
    companion: dict[str, float] | None = None
    neighbour: dict[str, float] | None = None
    background_galaxies: float = 2.0
    mask: dict[str, Any] | None = None  # cut_off kind ("mode": edge/zoom/mask); for "mask" the edge nx, ny, d
    colour_mode: str = "sdss"
    d25_arcmin: float = 1.5  # nominal angular size (for catalogue records of demo data only)
    stretch: float = 1.0
    jpeg_quality: int = 85
    stretch_mode: str = "asinh"  # display law: asinh, log, sqrt, linear or power (see GeneratorConfig)
    white_point: float = 100.0  # × face-on SB at R25: flux shown as full white by laws other than asinh
    stretch_exponent: float = 0.5  # power law exponent ("power" only)

    def truth(self) -> dict[str, Any]:
        """JSON-native truth dict (every parameter, plus the derived bands list)."""
        d = json.loads(json.dumps(asdict(self)))
        d["bands"] = list(BANDS)
        d["position_angle"] = self.pa
        return d

    @classmethod
    def from_truth(cls, truth: Mapping[str, Any]) -> GalaxyParams:
        names = {f.name for f in fields(cls)}
        kw: dict[str, Any] = {k: v for k, v in truth.items() if k in names}
        for key in ("centre_offset", "disk_colour", "bulge_colour", "young_colour", "psf_shear"):
            if key in kw and kw[key] is not None:
                kw[key] = tuple(kw[key])
        return cls(**kw)


@dataclass
class SyntheticGalaxy:
    """One rendered image set. ``colour`` is (H, W, 3) uint8; ``g``, ``r``, ``i`` are (H, W) uint8."""

    colour: np.ndarray
    g: np.ndarray
    r: np.ndarray
    i: np.ndarray
    truth: dict[str, Any]

    @property
    def inclination(self) -> float:
        return float(self.truth["inclination"])

    @property
    def accepted(self) -> bool:
        return bool(self.truth["accepted"])

    @property
    def reason(self) -> str | None:
        return self.truth.get("reason")

    def band(self, name: str) -> np.ndarray:
        """``"colour"`` or one of ``g``/``r``/``i``."""
        return {"colour": self.colour, "g": self.g, "r": self.r, "i": self.i}[name]


# ----------------------------------------------------------------------------------------------
# Parameter drawing


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


def _seed_sequence(seed: int, index: int, stream: int = 0) -> np.random.SeedSequence:
    return np.random.SeedSequence([int(seed) & 0xFFFFFFFFFFFFFFFF, int(index), int(stream)])


def _apparent_q(inclination_deg: float, q0: float) -> float:
    inc = math.radians(inclination_deg)
    return math.sqrt(math.cos(inc) ** 2 + (q0 * math.sin(inc)) ** 2)


def _ellipse_radius(a: float, q: float, angle: float) -> float:
    """Radius of an ellipse (semi-major a, axis ratio q) at ``angle`` from its major axis."""
    b = a * q
    return a * b / math.hypot(b * math.cos(angle), a * math.sin(angle))


def draw_params(config: GeneratorConfig, *, seed: int, index: int) -> GalaxyParams:
    """Draw the parameters of galaxy ``index`` of the set ``seed`` (deterministic)."""
    rng = np.random.default_rng(_seed_sequence(seed, index, 0))
    u = lambda spec: sample_range(rng, spec)  # noqa: E731
    n = config.size
    reason: str | None = None
    if rng.random() < config.reject_fraction:
        reason = _choice(rng, config.reject_mix)
    if reason == "face_on":
        inclination = u(config.face_on_range)
    elif config.inclination_sampling == "isotropic":
        ivs = _intervals(config.inclination_range)
        cos_ranges = tuple((math.cos(math.radians(b)), math.cos(math.radians(a))) for a, b in ivs)
        inclination = math.degrees(math.acos(min(1.0, max(0.0, u(cos_ranges)))))
    else:
        inclination = u(config.inclination_range)

    morph = MORPHOLOGIES[_choice(rng, config.morphology_mix)]
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

    def wide(interval: Interval, low: float, high: float) -> Interval:
        if widen <= 0:
            return interval
        a, b = interval
        pad = widen * (b - a)
        return (max(low, a - pad), min(high, b + pad))

    has_bar = rng.random() < min(0.9, morph.bar_probability + 0.5 * widen)
    colour_shift = morph.colour_shift + rng.normal(0, 0.05)
    p = GalaxyParams(
        seed=int(seed),
        index=int(index),
        size=n,
        oversample=config.oversample,
        accepted=reason is None,
        reason=reason,
        inclination=float(inclination),
        pa=float(pa),
        centre_offset=offset,
        morphology=morph.name,
        r25=float(r25),
        r25_apparent=float(r25_app),
        r25_over_rs=n25,
        h_over_r=h_over_r,
        disk_ellipticity=u(config.disk_ellipticity_range),
        disk_ellipticity_angle=float(rng.uniform(0, 180)),
        bulge_to_total=u(wide(morph.bulge_to_total, 0.0, 0.8)),
        bulge_n=u(wide(morph.bulge_n, 0.6, 6.0)),
        bulge_q=u(wide(morph.bulge_q, 0.3, 0.95)),
        bulge_re_over_rs=u(wide(morph.bulge_re, 0.04, 0.6)),
        bar_strength=float(rng.uniform(0.04, 0.15)) if has_bar else 0.0,
        bar_length_over_rs=float(rng.uniform(0.6, 1.4)),
        bar_axis_ratio=float(rng.uniform(0.2, 0.4)),
        bar_angle=float(rng.uniform(0, 180)),
        n_arms=_pick(rng, morph.n_arms),
        pitch_deg=u(wide(morph.pitch_deg, 3.0, 50.0)),
        arm_strength=u(wide(morph.arm_strength, 0.0, 0.9)),
        arm_sharpness=_pick(rng, morph.arm_sharpness),
        arm_phase=float(rng.uniform(0, 2 * math.pi)),
        flocculence=u(wide(morph.flocculence, 0.0, 1.0)),
        floc_arms=int(rng.integers(3, 7)),
        floc_pitch_deg=float(rng.uniform(20, 40)),
        floc_phase=float(rng.uniform(0, 2 * math.pi)),
        clump_fraction=u(wide(morph.clump_fraction, 0.0, 0.3)),
        n_clumps=int(rng.integers(morph.n_clumps[0], morph.n_clumps[1] + 1)),
        dust_tau_v=u(wide(morph.dust_tau_v, 0.0, 8.0)) * u(config.dust_scale_range),
        dust_rd_over_rs=float(rng.uniform(1.0, 1.5)),
        dust_hd_over_h=float(rng.uniform(0.4, 0.8)),
        dust_arm_contrast=float(rng.uniform(0.3, 0.9)),
        warp_amplitude=u(config.warp_amplitude_range) if rng.random() < config.warp_fraction else 0.0,
        warp_start=float(rng.uniform(0.5, 0.8)),
        lopsidedness=u(config.lopsided_range) if rng.random() < config.lopsided_fraction else 0.0,
        lopsided_angle=float(rng.uniform(0, 2 * math.pi)),
        disk_colour=(float(0.55 + colour_shift + rng.normal(0, 0.05)), float(0.30 + rng.normal(0, 0.04))),
        bulge_colour=(float(0.80 + 0.5 * colour_shift + rng.normal(0, 0.05)), float(0.42 + rng.normal(0, 0.04))),
        young_colour=(float(0.10 + rng.normal(0, 0.08)), float(0.02 + rng.normal(0, 0.05))),
        psf_type="kolmogorov" if rng.random() < config.psf_kolmogorov_fraction else "moffat",
        psf_fwhm=psf_fwhm,
        psf_beta=u(config.psf_beta_range),
        psf_shear=tuple(float(v) for v in rng.uniform(-1, 1, 2) * config.psf_ellipticity_max / math.sqrt(2)),  # type: ignore[arg-type]
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
    # The display law comes from its own stream, so sets drawn before it existed keep every other value.
    if dict(getattr(config, "stretch_modes", {"asinh": 1.0})) != {"asinh": 1.0}:
        srng = np.random.default_rng(_seed_sequence(seed, index, 2))
        p.stretch_mode = _choice(srng, config.stretch_modes)
        p.white_point = float(math.exp(sample_range(srng, tuple((math.log(a), math.log(b))
                                                                for a, b in _intervals(config.white_point_range)))))
        p.stretch_exponent = float(srng.uniform(0.25, 0.7))
    # Read with getattr: a config pickled by a process that imported an older module may lack the field.
    if getattr(config, "truncation_fraction", 0.0) > 0:
        trng = np.random.default_rng(_seed_sequence(seed, index, 3))
        if trng.random() < config.truncation_fraction:
            p.truncation = sample_range(trng, config.truncation_range)
            p.truncation_softness = float(trng.uniform(0.03, 0.12))
    q_app = _apparent_q(p.inclination, 0.2)

    def point_in_disk(max_frac: float, min_frac: float = 0.0) -> tuple[float, float]:
        """A point inside the galaxy's apparent D25 ellipse, in output-frame offsets (dx, dy)."""
        ang = rng.uniform(0, 2 * math.pi)
        rad = _ellipse_radius(r25_app, q_app, ang) * math.sqrt(rng.uniform(min_frac**2, max_frac**2))
        return _galaxy_to_image(p, rad * math.cos(ang), rad * math.sin(ang))

    disk_flux = _disk_flux(p)
    if reason == "low_snr":
        p.noise = u(config.low_snr_noise_range)
    elif reason == "bright_star":
        x, y = point_in_disk(0.75)
        p.bright_star = {"x": x, "y": y, "flux": float(disk_flux * 10 ** rng.uniform(-1.0, 0.3))}
    elif reason == "companion":
        rc = r25_app * rng.uniform(0.3, 0.8)
        x, y = point_in_disk(1.0, 0.35)
        p.companion = _neighbour_dict(rng, x, y, rc, _flux_of(rc) * rng.uniform(0.5, 1.5))
    elif reason == "cut_off":
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
    if p.accepted and rng.random() < config.neighbour_fraction:
        rc = r25_app * rng.uniform(0.15, 0.4)
        ang = rng.uniform(0, 2 * math.pi)
        rad = _ellipse_radius(r25_app, q_app, ang) * 1.15 + rc * 1.3 + rng.uniform(0, 0.2 * n)
        x, y = _galaxy_to_image(p, rad * math.cos(ang), rad * math.sin(ang))
        p.neighbour = _neighbour_dict(rng, x, y, rc, _flux_of(rc) * rng.uniform(0.3, 1.0))
    return p


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


def _disk_flux(p: GalaxyParams) -> float:
    """Disk flux with the face-on surface brightness at R25 equal to 1 (r band)."""
    rs = p.r25 / p.r25_over_rs
    return 2 * math.pi * rs * rs * math.exp(p.r25_over_rs)


# ----------------------------------------------------------------------------------------------
# Rendering helpers


def _colour_factors(colour: tuple[float, float]) -> np.ndarray:
    gr, ri = colour
    return np.array([10 ** (-0.4 * gr), 1.0, 10 ** (0.4 * ri)])


def _sersic_b(n: float) -> float:
    return 2 * n - 1 / 3 + 4 / (405 * n) + 46 / (25515 * n * n)


def _elliptical_profile(
    x: np.ndarray, y: np.ndarray, inv_cov: np.ndarray, radial: Any, *, centre_box: float = 0.0, step: float = 1.0
) -> np.ndarray:
    """Evaluate ``radial(m)`` with m² = [x y]·inv_cov·[x y]ᵀ on a grid; 5×5 sub-sampling near 0."""
    a, b, c = inv_cov[0, 0], inv_cov[0, 1], inv_cov[1, 1]
    img = radial(np.sqrt(np.maximum(a * x * x + 2 * b * x * y + c * y * y, 0.0)))
    if centre_box > 0:
        sel = (np.abs(x) <= centre_box) & (np.abs(y) <= centre_box)
        if sel.any():
            sub = (np.arange(5) + 0.5) / 5 - 0.5
            sx, sy = np.meshgrid(sub * step, sub * step)
            xs = x[sel][:, None] + sx.ravel()[None, :]
            ys = y[sel][:, None] + sy.ravel()[None, :]
            m = np.sqrt(np.maximum(a * xs * xs + 2 * b * xs * ys + c * ys * ys, 0.0))
            img[sel] = radial(m).mean(axis=1)
    return img


def _inv_cov(major: float, q: float, angle: float) -> np.ndarray:
    ca, sa = math.cos(angle), math.sin(angle)
    rot = np.array([[ca, -sa], [sa, ca]])
    cov = rot @ np.diag([major**2, (major * q) ** 2]) @ rot.T
    return np.linalg.inv(cov)


def _sersic_total(n: float, re: float, q: float) -> float:
    """Integral of exp(−b·(m/re)^(1/n)) over the plane, m the elliptical radius with axis ratio q."""
    b = _sersic_b(n)
    return 2 * math.pi * q * re * re * n * math.gamma(2 * n) / b ** (2 * n)


def _sersic_radial(n: float, re: float) -> Any:
    b = _sersic_b(n)
    return lambda m: np.exp(-b * (np.maximum(m, 0.0) / re) ** (1.0 / n))


def _disk_image(inclination: float, rs: float, h: float, flux: float, npix: int, scale: float,
                pa_deg: float = 0.0, shift: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    import galsim

    inc = min(max(inclination, 0.0), 90.0)
    disk = galsim.InclinedExponential(inc * galsim.degrees, scale_radius=rs, scale_height=h, flux=flux)
    if pa_deg:
        disk = disk.rotate(pa_deg * galsim.degrees)
    # A 0.5-pixel Gaussian stands in for the pixel response and bounds the FFT size.
    prof = galsim.Convolve(disk, galsim.Gaussian(sigma=0.5 * scale))
    if shift != (0.0, 0.0):
        prof = prof.shift(*shift)
    # Flux per pixel → surface brightness per output pixel².
    return prof.drawImage(nx=npix, ny=npix, scale=scale, method="no_pixel").array.astype(np.float64) / (scale * scale)


def _disk_maps(
    p: GalaxyParams, xg: np.ndarray, yg: np.ndarray, rs: float, h: float, colour_arm: np.ndarray, steps: int,
    sigma_bulge: np.ndarray, sigma_bar: float,
) -> dict[str, np.ndarray]:
    """Ray-march the 3D disk along the line of sight through each pixel (xg, yg) of the galaxy frame.

    The disk is the one GalSim draws (exp(−R/Rs)·sech²(z/h)) with log-spiral arms, a flocculent
    secondary pattern and lopsidedness; the dust is exp(−R/Rd)·exp(−|z|/hd), denser on the inner
    edge of the arms. Within each step the vertical integrals of stars (tanh) and dust (exp) are
    exact, so a thin dust layer is resolved at any inclination; R varies from step to step.

    Returns per band (arrays (3, P)): ``w`` the disk light relative to the smooth GalSim disk
    (arms × lopsidedness × dust), ``t`` the dust transmission of disk light (for the clumps),
    ``bulge`` and ``bar`` the transmissions of bulge and bar light, whose distribution along the
    line of sight is taken as Gaussian (``sigma_bulge`` per pixel, ``sigma_bar``) about the centre.
    """
    f32 = np.float32
    inc = math.radians(p.inclination)
    c = max(math.cos(inc), 1e-3)  # 0.06° from exactly edge-on keeps float32 step integrals exact
    s = max(math.sin(inc), 1e-3)
    hd = p.dust_hd_over_h * h
    rd = p.dust_rd_over_rs * rs
    rmax = 5.0 * rs
    zc = 4.0 * max(h, hd)
    x = xg.astype(f32)[:, None]
    y0 = yg.astype(f32)[:, None]
    ymax = np.sqrt(np.maximum(rmax * rmax - x * x, 0.0))
    lo = np.maximum((y0 * s - zc) / c, (-ymax - y0 * c) / s)
    hi = np.minimum((y0 * s + zc) / c, (ymax - y0 * c) / s)
    valid = (hi > lo)[:, 0]
    hi = np.where(hi > lo, hi, lo + 1.0)
    t = np.linspace(0.0, 1.0, steps + 1, dtype=f32)[None, :]
    d_edges = lo + (hi - lo) * t
    z_edges = -y0 * s + d_edges * c
    d_mid = 0.5 * (d_edges[:, 1:] + d_edges[:, :-1])
    y_mid = y0 * c + d_mid * s
    r_mid = np.sqrt(x * x + y_mid * y_mid) + f32(1e-3)
    lnr = np.log(np.maximum(r_mid, f32(0.05 * rs)) / f32(rs))

    th = np.tanh(z_edges / f32(h))
    j = np.exp(-r_mid / f32(rs)) * np.abs(th[:, 1:] - th[:, :-1])
    if p.lopsidedness > 0:
        cos_l = (x * f32(math.cos(p.lopsided_angle)) + y_mid * f32(math.sin(p.lopsided_angle))) / r_mid
        j *= np.maximum(1 + f32(p.lopsidedness / (p.r25_over_rs * rs)) * r_mid * cos_l, 0.0)

    # Spiral pattern with azimuthal mean 1, tapered inside the bar / bulge region.
    phi = np.arctan2(y_mid, x)
    m = p.n_arms
    k = p.arm_sharpness
    psi = f32(m) * (phi - f32(p.arm_phase)) - f32(m / math.tan(math.radians(p.pitch_deg))) * lnr
    mean_k = math.gamma(k + 0.5) / (math.sqrt(math.pi) * math.gamma(k + 1))
    cpsi = np.cos(psi)
    spsi = np.sin(psi)
    base = 0.5 * (1 + cpsi)
    arm = base ** k / f32(mean_k)
    if p.flocculence > 0:
        m2 = p.floc_arms
        psi2 = f32(m2) * (phi - f32(p.floc_phase)) - f32(m2 / math.tan(math.radians(p.floc_pitch_deg))) * lnr
        frag = 1 + 0.8 * np.sin(f32(12.4) * lnr + f32(2.3) * phi + f32(p.floc_phase))  # break the arms up
        b2 = 0.5 * (1 + np.cos(psi2))
        arm = f32(1 - p.flocculence) * arm + f32(p.flocculence / 0.375) * (b2 * b2) * frag
    r_in = max(p.bar_length_over_rs if p.bar_strength > 0 else 0.0, 0.6) * rs
    taper = 1 - np.exp(-((r_mid / f32(r_in)) ** 2))
    arm = 1 + taper * (arm - 1)

    # Dust: denser on the inner (concave) edge of the arms (pattern shifted by 0.6 rad in ψ).
    dbase = 0.5 * (1 + cpsi * f32(math.cos(0.6)) - spsi * f32(math.sin(0.6)))
    dmod = 1 + f32(p.dust_arm_contrast) * taper * (dbase**k / f32(mean_k) - 1)
    g_edges = -0.5 * np.sign(z_edges) * np.expm1(-np.abs(z_edges) / f32(hd))
    tau = f32(p.dust_tau_v / c) * np.exp(-r_mid / f32(rd)) * dmod * np.abs(g_edges[:, 1:] - g_edges[:, :-1])
    rc = np.cumsum(tau[:, ::-1], axis=1)[:, ::-1]
    tau_front = rc - 0.5 * tau
    tau_total = rc[:, 0]

    # Bulge and bar light along the line of sight: Gaussian weights per step, plus the parts in
    # front of (unobscured) and behind (fully obscured) the marched range.
    def los_weights(sigma: np.ndarray | float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        u = d_edges / np.asarray(sigma, dtype=f32).reshape(-1, 1)
        cdf = 0.5 * (1 + np.tanh(f32(0.7978846) * u * (1 + f32(0.044715) * u * u)))  # Gaussian CDF, ±3e-4
        return cdf[:, 1:] - cdf[:, :-1], 1 - cdf[:, -1], cdf[:, 0]

    wb, fb, bb = los_weights(sigma_bulge)
    wbar, fbar, bbar = los_weights(sigma_bar)

    jsum = j.sum(axis=1)
    ok = valid & (jsum > 0)
    jsum = np.where(ok, jsum, 1.0)
    out = {key: np.ones((3, xg.size), np.float32) for key in ("w", "t", "bulge", "bar")}
    cut = f32(1.0)
    if p.truncation > 0:  # a soft outer edge of the disk light (dust and clumps are left as they are)
        r25 = f32(p.r25_over_rs * rs)
        edge = np.clip((r_mid - f32(p.truncation) * r25) / (f32(p.truncation_softness) * r25), -30.0, 30.0)
        cut = 1.0 / (1.0 + np.exp(edge))
    for b in range(3):
        att = np.exp(f32(-_EXTINCTION[b]) * tau_front)
        back = np.exp(f32(-_EXTINCTION[b]) * tau_total)
        aj = att * j
        f = f32(p.arm_strength * colour_arm[b])
        out["w"][b] = np.where(ok, (aj * ((1 - f) + f * arm) * cut).sum(axis=1) / jsum, 1.0)
        out["t"][b] = np.where(ok, aj.sum(axis=1) / jsum, 1.0)
        out["bulge"][b] = np.where(valid, (wb * att).sum(axis=1) + fb + bb * back, 1.0)
        out["bar"][b] = np.where(valid, (wbar * att).sum(axis=1) + fbar + bbar * back, 1.0)
    return out


def _deposit(img: np.ndarray, x: np.ndarray, y: np.ndarray, w: np.ndarray) -> None:
    """Cloud-in-cell deposit of weights ``w`` at fractional pixel positions (col x, row y)."""
    ny, nx = img.shape
    x0 = np.floor(x).astype(int)
    y0 = np.floor(y).astype(int)
    fx = x - x0
    fy = y - y0
    flat = img.reshape(-1)
    for dx, dy, ww in ((0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy)), (0, 1, (1 - fx) * fy), (1, 1, fx * fy)):
        xi = x0 + dx
        yi = y0 + dy
        ok = (xi >= 0) & (xi < nx) & (yi >= 0) & (yi < ny)
        np.add.at(flat, yi[ok] * nx + xi[ok], (w * ww)[ok])


def _psf_kernel(p: GalaxyParams, band: int, npix: int, scale: float) -> np.ndarray:
    """The band's PSF as an FFT-ready kernel (centred on pixel 0), pixel-integrated by 2× sampling."""
    import galsim

    fwhm = p.psf_fwhm * (1.06, 1.0, 0.96)[band]  # seeing improves slowly with wavelength
    if p.psf_type == "kolmogorov":
        psf = galsim.Kolmogorov(fwhm=fwhm)
    else:
        psf = galsim.Moffat(beta=p.psf_beta, fwhm=fwhm)
    g1, g2 = p.psf_shear
    if g1 or g2:
        psf = psf.shear(g1=g1, g2=g2)
    stamp = min(npix, int(48 / scale))
    stamp -= stamp % 2
    # Real-space evaluation on a 2× finer grid, then 2×2 binning: fast and close to pixel integration.
    fine = psf.drawImage(nx=2 * stamp, ny=2 * stamp, scale=scale / 2, method="no_pixel", offset=(1.0, 1.0)).array
    fine = fine.astype(np.float64)
    im = fine.reshape(stamp, 2, stamp, 2).sum(axis=(1, 3))
    kern = np.zeros((npix, npix))
    o = npix // 2 - stamp // 2
    kern[o:o + stamp, o:o + stamp] = im
    return np.fft.ifftshift(kern / kern.sum())


def _neighbour_image(nb: Mapping[str, float], npix: int, scale: float) -> np.ndarray:
    """A simpler galaxy (disk + bulge, no arms or dust) in output-frame pixels, per band."""
    r25 = nb["r25"]
    rs = r25 / 3.5
    bt = nb["bulge_to_total"]
    flux = nb["flux"]
    # Galaxy centre in fine-pixel coordinates relative to the field centre.
    sx, sy = nb["x"], -nb["y"]  # galsim y is up
    disk = _disk_image(nb["inclination"], rs, 0.12 * rs, flux * (1 - bt), npix, scale, nb["pa"], (sx, sy))
    # GalSim arrays have row 0 at the bottom (y up): flip to row 0 at the top.
    disk = disk[::-1]
    c = (npix - 1) / 2
    coords = (np.arange(npix) - c) * scale
    xx, yy = np.meshgrid(coords - nb["x"], coords - nb["y"])
    q = _apparent_q(nb["inclination"], 0.7)
    bulge = _elliptical_profile(xx, yy, _inv_cov(1.0, q, -math.radians(nb["pa"])), _sersic_radial(3.0, 0.2 * rs),
                                centre_box=2 * scale, step=scale)
    # Analytic normalisation: the galaxy may lie partly outside the field.
    bulge *= flux * bt / _sersic_total(3.0, 0.2 * rs, q) if bt > 0 else 0.0
    gr = nb["gr"]
    cd = _colour_factors((gr - 0.1, 0.3))
    cb = _colour_factors((gr + 0.2, 0.42))
    return cd[:, None, None] * disk[None] + cb[:, None, None] * bulge[None]


def _spikes(img: np.ndarray, x0: float, y0: float, flux: float, angle: float, scale: float, rng: np.random.Generator) -> None:
    """Add four diffraction spikes (two lines at ``angle`` and ``angle`` + 90°), pre-PSF."""
    npix = img.shape[0]
    c = (npix - 1) / 2
    coords = (np.arange(npix) - c) * scale
    xx, yy = np.meshgrid(coords - x0, coords - y0)
    length = 0.9 * math.sqrt(flux) ** 0.5 * rng.uniform(0.8, 1.3)
    amp = flux * 3e-3 / max(length, 1.0)
    for a in (angle, angle + 90.0):
        ca, sa = math.cos(math.radians(a)), math.sin(math.radians(a))
        t = xx * ca - yy * sa
        d = xx * sa + yy * ca
        img += amp * np.exp(-0.5 * (d / 0.35) ** 2 - np.abs(t) / length)


# ----------------------------------------------------------------------------------------------
# The renderer


def render_galaxy(p: GalaxyParams) -> SyntheticGalaxy:
    """Render one galaxy from its parameters (deterministic: noise etc. come from ``p.seed``)."""
    rng = np.random.default_rng(_seed_sequence(p.seed, p.index, 1))
    os_ = max(1, int(p.oversample))
    n_out = int(p.size)
    nf = n_out * os_  # output frame in fine pixels
    scale = 1.0 / os_  # fine pixel size in output pixels
    ng = int(math.ceil(1.5 * nf / 2)) * 2  # galaxy frame, big enough for rotations and offsets
    rs = p.r25 / p.r25_over_rs
    h = p.h_over_r * rs
    inc = p.inclination
    ci, si = math.cos(math.radians(inc)), math.sin(math.radians(inc))
    disk_flux = _disk_flux(p)

    cd = _colour_factors(p.disk_colour)
    cb = _colour_factors(p.bulge_colour)
    cy_ = _colour_factors(p.young_colour)

    # --- galaxy frame: major axis along +x, rows down -------------------------------------
    disk = _disk_image(inc, rs, h, disk_flux, ng, scale)
    cg = (ng - 1) / 2
    coords = (np.arange(ng) - cg) * scale
    xg, yg = np.meshgrid(coords, coords)

    # Bulge: oblate Sersic, apparent axis ratio from its intrinsic flattening.
    bulge = np.zeros((ng, ng))
    qb = _apparent_q(inc, p.bulge_q)
    re = max(p.bulge_re_over_rs * rs, 0.4 * scale)
    if p.bulge_to_total > 0:
        bulge = _elliptical_profile(xg, yg, _inv_cov(1.0, qb, 0.0), _sersic_radial(p.bulge_n, re),
                                    centre_box=max(3 * scale, 1.5 * re), step=scale)
        bulge *= disk_flux * p.bulge_to_total / (1 - p.bulge_to_total) / (bulge.sum() * scale * scale)

    # Bar: triaxial (a, b, c) in the disk plane, projected exactly (covariance P Σ Pᵀ).
    bar = np.zeros((ng, ng))
    bar_a = p.bar_length_over_rs * rs
    if p.bar_strength > 0:
        th = math.radians(p.bar_angle)
        rot = np.array([[math.cos(th), -math.sin(th), 0], [math.sin(th), math.cos(th), 0], [0, 0, 1]])
        cov3 = rot @ np.diag([bar_a**2, (bar_a * p.bar_axis_ratio) ** 2, (max(1.5 * h, 0.25 * bar_a)) ** 2]) @ rot.T
        proj = np.array([[1, 0, 0], [0, ci, -si]])
        cov2 = proj @ cov3 @ proj.T
        bar = _elliptical_profile(xg, yg, np.linalg.inv(cov2), lambda m: np.exp(-(m ** 2.5)))
        bar *= disk_flux * p.bar_strength / (bar.sum() * scale * scale)

    # Ray-marched maps over the disk's footprint (1 elsewhere).
    rmax = 5.0 * rs
    ext_y = rmax * ci + 4 * h * si + 2 * scale
    foot = (xg / rmax) ** 2 + (yg / ext_y) ** 2 < 1.0
    steps = 16 if inc < 55 else (24 if inc < 75 else 32)
    colour_arm = (cy_ / cd) ** 0.5  # arms are bluer: stronger modulation in g
    colour_arm = colour_arm / colour_arm[1]
    xf, yf = xg[foot], yg[foot]
    sigma_bulge = 0.8 * np.sqrt(re * re + xf * xf + (yf / qb) ** 2)
    sigma_bar = max(0.5 * bar_a * si, h)
    maps = _disk_maps(p, xf, yf, rs, h, colour_arm, steps, sigma_bulge, sigma_bar)
    full = {}
    for key, val in maps.items():
        arr = np.ones((3, ng, ng))
        arr[:, foot] = val
        full[key] = arr
    tr = full["t"]

    # Star-forming clumps, mostly along the arms, in a thin layer.
    clumps = np.zeros((3, ng, ng))
    if p.n_clumps > 0 and p.clump_fraction > 0:
        nc = p.n_clumps
        rr = rng.gamma(2.0, rs, nc)
        rr = rr[rr < 1.15 * p.r25]
        nc = rr.size
        on_arm = rng.random(nc) < 0.7
        phi = rng.uniform(0, 2 * math.pi, nc)
        arm_phi = (p.arm_phase + np.log(np.maximum(rr, 0.05 * rs) / rs) / math.tan(math.radians(p.pitch_deg))
                   + 2 * math.pi * rng.integers(0, p.n_arms, nc) / p.n_arms + rng.normal(0, 0.18, nc))
        phi = np.where(on_arm, arm_phi, phi)
        xd, yd = rr * np.cos(phi), rr * np.sin(phi)
        zd = rng.normal(0, 0.3 * h, nc)
        xs = xd
        ys = yd * ci - zd * si
        fl = rng.lognormal(0, 0.8, nc)
        fl *= disk_flux * p.clump_fraction / max(fl.sum(), 1e-12) / (scale * scale)
        col = xs / scale + cg
        row = ys / scale + cg
        ic = np.clip(np.round(col).astype(int), 0, ng - 1)
        ir = np.clip(np.round(row).astype(int), 0, ng - 1)
        for b in range(3):
            _deposit(clumps[b], col, row, fl * cy_[b] * tr[b, ir, ic])

    gal = (disk[None] * full["w"] * cd[:, None, None]
           + bulge[None] * cb[:, None, None] * full["bulge"]
           + bar[None] * cb[:, None, None] * full["bar"]
           + clumps)

    # --- to the output frame: PA rotation, offset, intrinsic ellipticity, warp -------------
    cf = (nf - 1) / 2
    oc = (np.arange(nf) - cf) * scale
    ox, oy = np.meshgrid(oc - p.centre_offset[0], oc - p.centre_offset[1])
    pa = math.radians(p.pa)
    xd_, yd_ = ox, -oy
    xr = xd_ * math.cos(pa) + yd_ * math.sin(pa)
    yr = -(-xd_ * math.sin(pa) + yd_ * math.cos(pa))
    if p.disk_ellipticity > 0:
        e = p.disk_ellipticity
        th = math.radians(p.disk_ellipticity_angle)
        rot = np.array([[math.cos(th), -math.sin(th)], [math.sin(th), math.cos(th)]])
        amat = rot @ np.diag([1 + e / 2, 1 - e / 2]) @ rot.T
        cc = max(ci, 0.2)
        jac = np.diag([1, cc]) @ amat @ np.diag([1, 1 / cc])
        ji = np.linalg.inv(jac)
        xr, yr = ji[0, 0] * xr + ji[0, 1] * yr, ji[1, 0] * xr + ji[1, 1] * yr
    if p.warp_amplitude > 0:
        # S-shaped warp of the outer disk (seen best edge-on), saturating beyond the D25 edge.
        ra = p.r25_apparent
        rw = p.warp_start * ra
        lever = np.clip((np.abs(xr) - rw) / max(ra - rw, 1e-6), 0.0, 1.3)
        sign = 1 if (p.index % 2) else -1
        yr = yr - sign * np.sign(xr) * p.warp_amplitude * ra * si * lever**2
    from scipy.ndimage import map_coordinates

    src = np.array([yr / scale + cg, xr / scale + cg])
    img = np.stack([map_coordinates(gal[b], src, order=1, mode="constant", cval=0.0, prefilter=False)
                    for b in range(3)])

    # --- other sources in the output frame ----------------------------------------------------
    for nb in (p.companion, p.neighbour):
        if nb:
            img += _neighbour_image(nb, nf, scale)
    n_bg = rng.poisson(p.background_galaxies)
    coords_f = (np.arange(nf) - cf) * scale
    for _ in range(n_bg):
        bx, by = rng.uniform(-0.5 * n_out, 0.5 * n_out, 2)
        brs = rng.uniform(0.4, 2.5)
        bq = rng.uniform(0.25, 1.0)
        sb0 = 10 ** rng.uniform(-0.3, 0.9)
        bflux = 2 * math.pi * brs * brs * bq * sb0
        win = 8 * brs
        jx = np.nonzero(np.abs(coords_f - bx) < win)[0]
        jy = np.nonzero(np.abs(coords_f - by) < win)[0]
        if jx.size == 0 or jy.size == 0:
            continue
        bxx, byy = np.meshgrid(coords_f[jx] - bx, coords_f[jy] - by)
        prof = _elliptical_profile(bxx, byy, _inv_cov(1.0, bq, rng.uniform(0, math.pi)), lambda m, s_=brs: np.exp(-m / s_))
        prof *= bflux / (2 * math.pi * brs * brs * bq)  # analytic: it may lie partly outside the field
        bcol = _colour_factors((rng.uniform(0.5, 1.3), rng.uniform(0.2, 0.6)))
        img[:, jy[0]:jy[-1] + 1, jx[0]:jx[-1] + 1] += bcol[:, None, None] * prof[None]

    # Foreground stars (a power law in flux); bright ones get diffraction spikes.
    fwhm = p.psf_fwhm
    f_min = 3.0 * p.noise * fwhm * fwhm + 0.3 * fwhm * fwhm
    f_spike = 150.0 * fwhm * fwhm
    n_st = rng.poisson(p.star_density)
    q_app = _apparent_q(inc, 0.2)
    stars: list[tuple[float, float, float]] = []
    for _ in range(n_st):
        fl = f_min * rng.random() ** (-1 / 0.75)
        fl = min(fl, 40 * f_spike)
        sx, sy = rng.uniform(-0.5 * n_out, 0.5 * n_out, 2)
        stars.append((float(sx), float(sy), float(fl)))
    if p.bright_star_off_disk:
        stars.append((*rng.uniform(-0.5 * n_out, 0.5 * n_out, 2).tolist(), float(f_spike * 10 ** rng.uniform(0, 1.3))))
    if p.reason != "bright_star":
        # Only a bright_star reject has a bright star on its disk: move any other out of the D25 ellipse.
        kept = []
        for sx, sy, fl in stars:
            if fl > 0.3 * f_spike:
                for _ in range(20):
                    if not _on_disk(p, sx, sy, q_app, 1.3):
                        break
                    sx, sy = rng.uniform(-0.5 * n_out, 0.5 * n_out, 2)
                else:
                    continue
            kept.append((sx, sy, fl))
        stars = kept
    if p.bright_star:
        stars.append((p.bright_star["x"], p.bright_star["y"], p.bright_star["flux"]))
    if stars:
        sa = np.array(stars)
        st_col = np.stack([_colour_factors((gr, 0.35 * gr)) for gr in rng.uniform(0.2, 1.4, len(stars))])
        for b in range(3):
            tmp = np.zeros((nf, nf))
            _deposit(tmp, sa[:, 0] / scale + cf, sa[:, 1] / scale + cf, sa[:, 2] * st_col[:, b] / (scale * scale))
            for sx, sy, fl in stars:
                if fl > f_spike:
                    _spikes(tmp, sx, sy, fl, p.spike_angle, scale, np.random.default_rng(int(fl * 1000) % 2**32))
            img[b] += tmp

    # --- PSF, down-sampling, noise -----------------------------------------------------------
    out = np.empty((3, n_out, n_out))
    spec = np.fft.rfft2(img)
    for b in range(3):
        kern = _psf_kernel(p, b, nf, scale)
        conv = np.fft.irfft2(spec[b] * np.fft.rfft2(kern), s=(nf, nf)) * scale * scale
        if os_ > 1:
            conv = conv.reshape(n_out, os_, n_out, os_).mean(axis=(1, 3)) * os_ * os_
        out[b] = conv
    sigma = p.noise * _SKY_NOISE
    out += rng.standard_normal(out.shape) * sigma[:, None, None]

    masked = None
    if p.mask and p.mask.get("mode") == "mask":
        c0 = (n_out - 1) / 2
        yy, xx = np.mgrid[0:n_out, 0:n_out]
        dxm = xx - c0 - p.centre_offset[0]
        dym = yy - c0 - p.centre_offset[1]
        masked = dxm * p.mask["nx"] + dym * p.mask["ny"] > p.mask["d"]

    # --- stretches: the D25 isophote lands near the noise, as in SDSS cut-outs --------------------
    i25 = cd  # face-on disk surface brightness at R25 per band
    soft = 0.5 * p.stretch
    grey = []
    for b in range(3):
        if p.stretch_mode == "asinh":
            v = np.arcsinh(out[b] / (soft * i25[b]) + 0.05) / math.asinh(400.0 / soft)
        else:
            v = _display_law(out[b] / (p.white_point * i25[b]), p)
        grey.append(np.clip(np.round(v * 255), 0, 255).astype(np.uint8))
    if p.stretch_mode == "asinh":
        colour = _colour_composite(out, i25[1], p)
    else:
        scales = (0.8, 1.1, 1.9) if p.colour_mode == "sdss" else (0.75, 1.0, 1.6)
        rgb = np.stack([out[2] * scales[0], out[1] * scales[1], out[0] * scales[2]], axis=-1)
        lum = rgb.mean(axis=-1, keepdims=True)
        # The law maps the mean intensity; the channels keep their ratios (as Lupton's composite does).
        mapped = _display_law(lum / (p.white_point * i25[1] * 1.25), p)
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = np.where(lum > 1e-9, rgb / np.maximum(lum, 1e-9), 1.0)
        colour = np.clip(np.round(mapped * ratio * 255), 0, 255).astype(np.uint8)
    if masked is not None:
        colour[masked] = 0
        for gimg in grey:
            gimg[masked] = 0

    q = int(p.jpeg_quality)
    colour = _jpeg(colour, q)
    grey = [_jpeg(gimg, q) for gimg in grey]
    return SyntheticGalaxy(colour=colour, g=grey[0], r=grey[1], i=grey[2], truth=p.truth())


def _display_law(x: np.ndarray, p: GalaxyParams) -> np.ndarray:
    """Linear flux in units of the white point → 0–1 display values by ``p.stretch_mode`` (not asinh)."""
    z = np.maximum(x, 0.0)
    soft = 30.0 * p.stretch  # log law: larger shows fainter light
    if p.stretch_mode == "log":
        v = np.log1p(soft * z) / math.log1p(soft)
    elif p.stretch_mode == "sqrt":
        v = np.sqrt(z)
    elif p.stretch_mode == "power":
        v = z ** p.stretch_exponent
    elif p.stretch_mode == "linear":
        v = z
    else:
        raise ValueError(f"Unknown stretch mode {p.stretch_mode!r}")
    return np.clip(v, 0.0, 1.0)


def _on_disk(p: GalaxyParams, x: float, y: float, q_app: float, grow: float) -> bool:
    dx, dy = x - p.centre_offset[0], y - p.centre_offset[1]
    pa = math.radians(p.pa)
    xd, yd = dx, -dy
    xr = xd * math.cos(pa) + yd * math.sin(pa)
    yr = -xd * math.sin(pa) + yd * math.cos(pa)
    a = grow * p.r25_apparent
    b = max(a * q_app, 0.15 * a)
    return (xr / a) ** 2 + (yr / b) ** 2 < 1.0


def _colour_composite(bands: np.ndarray, i25_r: float, p: GalaxyParams) -> np.ndarray:
    """Lupton asinh composite: R = i, G = r, B = g, balanced like SDSS (or Pan-STARRS) JPEGs."""
    from astropy.visualization import make_lupton_rgb

    g, r, i = bands
    if p.colour_mode == "panstarrs":
        scales = (0.75, 1.0, 1.6)
        q, stretch = 5.0, 3.0 * p.stretch * i25_r
        minimum = -0.03 * i25_r
    else:
        scales = (0.8, 1.1, 1.9)
        q, stretch = 8.0, 4.0 * p.stretch * i25_r
        minimum = -0.04 * i25_r
    with np.errstate(invalid="ignore", divide="ignore"):  # astropy divides by zero-intensity pixels
        return make_lupton_rgb(i * scales[0], r * scales[1], g * scales[2], minimum=minimum, stretch=stretch, Q=q)


def _jpeg(arr: np.ndarray, quality: int) -> np.ndarray:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=int(quality))
    buf.seek(0)
    with Image.open(buf) as im:
        return np.asarray(im.convert("RGB" if arr.ndim == 3 else "L")).copy()


# ----------------------------------------------------------------------------------------------
# Sets: parallel generation and npz round-trip


def _render_index(args: tuple[GeneratorConfig, int, int]) -> SyntheticGalaxy:
    config, seed, index = args
    return render_galaxy(draw_params(config, seed=seed, index=index))


def _in_daemonic_process() -> bool:
    """True inside a daemonic process (e.g. a Celery prefork child): ``multiprocessing`` refuses to
    start children there ("daemonic processes are not allowed to have children")."""
    return bool(multiprocessing.current_process().daemon)


def generate(
    config: GeneratorConfig, n: int, *, seed: int, workers: int = 2, start: int = 0, chunksize: int = 8
) -> Iterator[SyntheticGalaxy]:
    """Yield galaxies ``start .. start+n-1`` of set ``seed`` in index order.

    Each galaxy is seeded from ``(seed, index)``, so the pixels do not depend on ``workers``.
    With ``workers > 1`` a ``spawn`` pool is used (fork deadlocks with GalSim), except inside a daemonic
    process (a prefork Celery child), which may not have children: there it renders in-process.
    Threads would not help: drawing holds the GIL (240 galaxies: 2 threads 5.7 s wall for 5.0 s CPU,
    one thread 5.4 s).
    """
    jobs = [(config, int(seed), start + k) for k in range(int(n))]
    if workers <= 1 or n <= 1 or _in_daemonic_process():
        for job in jobs:
            yield _render_index(job)
        return
    ctx = multiprocessing.get_context("spawn")
    pool = ctx.Pool(processes=int(workers))
    try:
        yield from pool.imap(_render_index, jobs, chunksize=max(1, int(chunksize)))
    finally:
        pool.terminate()
        pool.join()


def save_npz(path: str | Path, galaxies: Iterable[SyntheticGalaxy], *, config: GeneratorConfig | None = None) -> None:
    """Store a set: ``colour`` (N,H,W,3) uint8, ``g``/``r``/``i`` (N,H,W) uint8, ``inclination``
    (N,) float32, ``pa`` (N,) float32, ``accepted`` (N,) bool, ``reason`` (N,) str ('' if accepted),
    ``truth`` (a JSON string: list of truth dicts) and ``config`` (JSON string, '{}' if none)."""
    gals = list(galaxies)
    truths = [g.truth for g in gals]
    np.savez_compressed(
        path,
        colour=np.stack([g.colour for g in gals]) if gals else np.zeros((0, 0, 0, 3), np.uint8),
        g=np.stack([g.g for g in gals]) if gals else np.zeros((0, 0, 0), np.uint8),
        r=np.stack([g.r for g in gals]) if gals else np.zeros((0, 0, 0), np.uint8),
        i=np.stack([g.i for g in gals]) if gals else np.zeros((0, 0, 0), np.uint8),
        inclination=np.array([t["inclination"] for t in truths], np.float32),
        pa=np.array([t["pa"] for t in truths], np.float32),
        accepted=np.array([bool(t["accepted"]) for t in truths], bool),
        reason=np.array([t.get("reason") or "" for t in truths], dtype=str),
        truth=np.array(json.dumps(truths)),
        config=np.array(json.dumps(config.to_dict() if config else {})),
    )


def load_npz(path: str | Path) -> list[SyntheticGalaxy]:
    """Inverse of :func:`save_npz` (no pickle needed)."""
    with np.load(path, allow_pickle=False) as z:
        truths = json.loads(str(z["truth"]))
        return [
            SyntheticGalaxy(colour=z["colour"][k], g=z["g"][k], r=z["r"][k], i=z["i"][k], truth=truths[k])
            for k in range(len(truths))
        ]




def main(argv: list[str] | None = None) -> None:
    """``python -m training.ml.synthetic --n 200 --workers 2 [--out set.npz] [--robustness]``: generate a
    set, report the speed, optionally save it."""
    import argparse
    import time

    parser = argparse.ArgumentParser(description="Generate synthetic galaxies and report the speed.")
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--reject-fraction", type=float, default=0.0)
    parser.add_argument("--robustness", action="store_true")
    parser.add_argument("--out", default=None, help="write the set to this .npz")
    args = parser.parse_args(argv)
    config = (robustness_config if args.robustness else default_config)(reject_fraction=args.reject_fraction)
    if args.workers <= 1:
        render_galaxy(draw_params(config, seed=args.seed, index=-1 % 2**31))  # warm imports and caches
    start = time.perf_counter()
    galaxies = list(generate(config, args.n, seed=args.seed, workers=args.workers))
    seconds = time.perf_counter() - start
    print(f"{args.n} galaxies in {seconds:.1f} s with {args.workers} worker(s): {1000 * seconds / args.n:.1f} ms per "
          f"galaxy wall, {1000 * seconds * max(args.workers, 1) / args.n:.1f} ms per galaxy per core")
    if args.out:
        save_npz(args.out, galaxies, config=config)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
