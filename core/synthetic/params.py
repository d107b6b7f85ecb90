"""One generated galaxy's parameters (its truth) and its rendered images, and the seeding both share.
Django-free."""
from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

from core.geometry import MODEL_SIZE

from .config import BANDS

__all__ = ["GalaxyParams", "SyntheticGalaxy", "seed_sequence", "disk_flux"]


@dataclass
class GalaxyParams:
    """Everything needed to render one image; also its truth (``asdict`` is JSON-native)."""

    seed: int
    index: int
    size: int = MODEL_SIZE
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


def seed_sequence(seed: int, index: int, stream: int = 0) -> np.random.SeedSequence:
    """The random stream ``stream`` of galaxy ``index`` in set ``seed``: 0 draws the parameters, 1 renders, 2 and 3
    draw the display law and the truncation (their own streams, so older sets keep every other value)."""
    return np.random.SeedSequence([int(seed) & 0xFFFFFFFFFFFFFFFF, int(index), int(stream)])


def disk_flux(p: GalaxyParams) -> float:
    """Disk flux with the face-on surface brightness at R25 equal to 1 (r band)."""
    rs = p.r25 / p.r25_over_rs
    return 2 * math.pi * rs * rs * math.exp(p.r25_over_rs)
