"""The generator's configuration: morphological types, the seeded ranges it draws from, and its presets
(training, reject-rich, domain-randomised, robustness). Django-free."""
from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Union

from core.geometry import MODEL_SIZE

__all__ = [
    "BANDS", "REJECT_REASONS", "REJECT_RICH_MIX", "Interval", "Range", "Morphology", "MORPHOLOGY_RANGES",
    "GeneratorConfig", "default_config", "reject_rich_config", "domain_randomised_config", "domain_reject_rich_config",
    "robustness_config",
]

BANDS: tuple[str, str, str] = ("g", "r", "i")
REJECT_REASONS: tuple[str, ...] = ("face_on", "bright_star", "companion", "low_snr", "cut_off")

# A range is (lo, hi) or a union of such intervals ((lo, hi), (lo, hi), ...), sampled in
# proportion to the interval widths. The union form lets the robustness preset draw from values
# on both sides of the training range.
Interval = tuple[float, float]
Range = Union[Interval, tuple[Interval, ...]]


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


# Each morphological type's ranges by name; a config's ``morphology_mix`` weighs these names.
MORPHOLOGY_RANGES: dict[str, Morphology] = {
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

    size: int = MODEL_SIZE
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
