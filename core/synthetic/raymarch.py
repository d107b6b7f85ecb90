"""The disk's arms, dust and lopsidedness, ray-marched through the same 3D disk that GalSim draws, as per-band
multiplicative maps on the smooth GalSim image (so they project correctly at every inclination). Django-free."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .params import GalaxyParams

__all__ = ["disk_maps"]

# Extinction per band relative to V (Cardelli-like, SDSS filters).
_EXTINCTION = np.array([1.20, 0.87, 0.67])
f32 = np.float32


@dataclass(frozen=True)
class _Ray:
    """The line-of-sight steps through each pixel: edges and mid-points, in float32, shape (P, steps[+1])."""

    cos_i: float  # cos of the inclination, kept ≥ 1e-3
    valid: np.ndarray  # (P,) the ray crosses the disk's volume
    d_edges: np.ndarray  # distance along the ray, step edges
    z_edges: np.ndarray  # height above the mid-plane, step edges
    x: np.ndarray  # (P, 1) galaxy-frame x
    y_mid: np.ndarray  # in-plane y at the step mid-points
    r_mid: np.ndarray  # in-plane radius at the step mid-points
    lnr: np.ndarray  # log(R / Rs), floored at 0.05 Rs


def _march(p: GalaxyParams, xg: np.ndarray, yg: np.ndarray, rs: float, h: float, steps: int) -> _Ray:
    inc = math.radians(p.inclination)
    c = max(math.cos(inc), 1e-3)  # 0.06° from exactly edge-on keeps float32 step integrals exact
    s = max(math.sin(inc), 1e-3)
    hd = p.dust_hd_over_h * h
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
    return _Ray(c, valid, d_edges, z_edges, x, y_mid, r_mid, lnr)


def _stellar_emission(p: GalaxyParams, ray: _Ray, rs: float, h: float) -> np.ndarray:
    """Starlight of each step (exact vertical integral of sech²), with the lopsidedness."""
    th = np.tanh(ray.z_edges / f32(h))
    j = np.exp(-ray.r_mid / f32(rs)) * np.abs(th[:, 1:] - th[:, :-1])
    if p.lopsidedness > 0:
        cos_l = (ray.x * f32(math.cos(p.lopsided_angle)) + ray.y_mid * f32(math.sin(p.lopsided_angle))) / ray.r_mid
        j *= np.maximum(1 + f32(p.lopsidedness / (p.r25_over_rs * rs)) * ray.r_mid * cos_l, 0.0)
    return j


@dataclass(frozen=True)
class _Spiral:
    arm: np.ndarray  # light modulation, azimuthal mean 1
    taper: np.ndarray  # 0 inside the bar / bulge region, 1 outside
    cos_psi: np.ndarray
    sin_psi: np.ndarray
    mean_k: float  # azimuthal mean of ((1 + cos ψ)/2)^k


def _spiral_pattern(p: GalaxyParams, ray: _Ray, rs: float) -> _Spiral:
    """Spiral pattern with azimuthal mean 1, tapered inside the bar / bulge region."""
    phi = np.arctan2(ray.y_mid, ray.x)
    lnr = ray.lnr
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
    taper = 1 - np.exp(-((ray.r_mid / f32(r_in)) ** 2))
    arm = 1 + taper * (arm - 1)
    return _Spiral(arm, taper, cpsi, spsi, mean_k)


def _dust_depths(p: GalaxyParams, ray: _Ray, spiral: _Spiral, rs: float, h: float) -> tuple[np.ndarray, np.ndarray]:
    """V optical depth in front of each step's mid-point, and through the whole ray.

    Dust is denser on the inner (concave) edge of the arms (pattern shifted by 0.6 rad in ψ)."""
    hd = p.dust_hd_over_h * h
    rd = p.dust_rd_over_rs * rs
    k = p.arm_sharpness
    dbase = 0.5 * (1 + spiral.cos_psi * f32(math.cos(0.6)) - spiral.sin_psi * f32(math.sin(0.6)))
    dmod = 1 + f32(p.dust_arm_contrast) * spiral.taper * (dbase**k / f32(spiral.mean_k) - 1)
    g_edges = -0.5 * np.sign(ray.z_edges) * np.expm1(-np.abs(ray.z_edges) / f32(hd))
    tau = f32(p.dust_tau_v / ray.cos_i) * np.exp(-ray.r_mid / f32(rd)) * dmod * np.abs(g_edges[:, 1:] - g_edges[:, :-1])
    rc = np.cumsum(tau[:, ::-1], axis=1)[:, ::-1]
    return rc - 0.5 * tau, rc[:, 0]


def _los_weights(d_edges: np.ndarray, sigma: np.ndarray | float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bulge or bar light along the line of sight: Gaussian weights per step, plus the parts in front of
    (unobscured) and behind (fully obscured) the marched range."""
    u = d_edges / np.asarray(sigma, dtype=f32).reshape(-1, 1)
    cdf = 0.5 * (1 + np.tanh(f32(0.7978846) * u * (1 + f32(0.044715) * u * u)))  # Gaussian CDF, ±3e-4
    return cdf[:, 1:] - cdf[:, :-1], 1 - cdf[:, -1], cdf[:, 0]


def _truncation(p: GalaxyParams, ray: _Ray, rs: float) -> np.ndarray | np.float32:
    """A soft outer edge of the disk light (dust and clumps are left as they are); 1 without truncation."""
    if p.truncation <= 0:
        return f32(1.0)
    r25 = f32(p.r25_over_rs * rs)
    edge = np.clip((ray.r_mid - f32(p.truncation) * r25) / (f32(p.truncation_softness) * r25), -30.0, 30.0)
    return 1.0 / (1.0 + np.exp(edge))


def disk_maps(
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
    ray = _march(p, xg, yg, rs, h, steps)
    j = _stellar_emission(p, ray, rs, h)
    spiral = _spiral_pattern(p, ray, rs)
    tau_front, tau_total = _dust_depths(p, ray, spiral, rs, h)
    wb, fb, bb = _los_weights(ray.d_edges, sigma_bulge)
    wbar, fbar, bbar = _los_weights(ray.d_edges, sigma_bar)

    valid = ray.valid
    jsum = j.sum(axis=1)
    ok = valid & (jsum > 0)
    jsum = np.where(ok, jsum, 1.0)
    out = {key: np.ones((3, xg.size), np.float32) for key in ("w", "t", "bulge", "bar")}
    cut = _truncation(p, ray, rs)
    for b in range(3):
        att = np.exp(f32(-_EXTINCTION[b]) * tau_front)
        back = np.exp(f32(-_EXTINCTION[b]) * tau_total)
        aj = att * j
        f = f32(p.arm_strength * colour_arm[b])
        out["w"][b] = np.where(ok, (aj * ((1 - f) + f * spiral.arm) * cut).sum(axis=1) / jsum, 1.0)
        out["t"][b] = np.where(ok, aj.sum(axis=1) / jsum, 1.0)
        out["bulge"][b] = np.where(valid, (wb * att).sum(axis=1) + fb + bb * back, 1.0)
        out["bar"][b] = np.where(valid, (wbar * att).sum(axis=1) + fbar + bbar * back, 1.0)
    return out
