"""Disk geometry shared by the catalogue, the Zoo, training and serving: Hubble's oblate-disk relation between
inclination and apparent axis ratio (with Holmberg's intrinsic thickness), and the networks' input size.

An oblate disk of intrinsic axis ratio q0 seen at inclination i (0 = face-on) shows the axis ratio

    q² = cos² i + q0² sin² i,   i.e.   cos² i = (q² − q0²) / (1 − q0²),

with q0 = 0.2 (Holmberg) for the disk. Django-free.
"""
from __future__ import annotations

import math

__all__ = ["HOLMBERG_Q0", "MODEL_SIZE", "apparent_axis_ratio", "inclination_from_axial_ratio"]

HOLMBERG_Q0 = 0.2
# Side in pixels of the square image the networks see (cut-outs, uploads and generated galaxies alike).
MODEL_SIZE = 128


def apparent_axis_ratio(inclination_deg: float, q0: float = HOLMBERG_Q0) -> float:
    """b/a of an oblate spheroid of intrinsic axis ratio ``q0`` seen at ``inclination_deg`` (0 = face-on)."""
    inclination = math.radians(inclination_deg)
    return math.sqrt(math.cos(inclination) ** 2 + (q0 * math.sin(inclination)) ** 2)


def inclination_from_axial_ratio(q: float, q0: float = HOLMBERG_Q0) -> float:
    """Inclination in degrees (0 = face-on) from b/a: cos²i = (q² − q0²)/(1 − q0²), clipped.

    q ≤ q0 gives 90°, q ≥ 1 gives 0°; nan stays nan.
    """
    q = float(q)
    if not math.isfinite(q):
        return float("nan")
    cos2 = (q * q - q0 * q0) / (1.0 - q0 * q0)
    return float(math.degrees(math.acos(math.sqrt(min(max(cos2, 0.0), 1.0)))))
