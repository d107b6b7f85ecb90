"""The 3D galaxy of the independent family, integrated along every line of sight with numpy.

Nothing here is drawn by a profile-drawing library. A galaxy is a set of emissivity densities in its own
frame (X, Y in the disk plane, Z up, lengths in disk scale lengths h_R):

- an old stellar disk, exponential in R, sech² or exponential in Z (h_z/h_R 0.1–0.3), with a soft
  truncation and, sometimes, an S-shaped warp;
- a young disk, thinner (half the scale height), modulated by logarithmic spiral arms and by a log-normal
  "flocculence" field in the disk plane (its bright knots stand in for star-forming regions);
- a 3D bulge: an oblate Prugniel–Simien deprojected Sérsic (n 1–4), B/T 0–0.5;
- sometimes a bar: a triaxial Ferrers (n = 2) body in the disk plane;
- a dust layer, exponential in R and Z but thinner than the stars, denser on the arms' inner edges.

For each sky pixel the renderer takes the segment of its line of sight that crosses the galaxy and
samples it at three merged sets of nodes: uniform over the disk slab, dense around the mid-plane crossing
(so a thin dust layer is resolved at any inclination) and uniform over the bulge's sphere. Light emitted
at each node is attenuated by the dust column between it and the observer (per band: g, r, i), and the
trapezoid rule integrates it. Every pixel is vectorised: one (pixels × nodes) array per quantity.

Sky coordinates: x to the right, y up as displayed; the position angle ``pa`` is the major axis's angle
counter-clockwise from +x (as displayed, row 0 at the top). Inclination 0° is face-on.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

BANDS = ("g", "r", "i")
# Dust opacity per band relative to r (this family's own extinction curve).
DUST_KAPPA = np.array([1.35, 1.0, 0.72])


@dataclass
class Galaxy:
    """Every intrinsic parameter of one galaxy (lengths in units of h_R, angles in degrees)."""

    inclination: float
    pa: float
    r25: float = 3.6  # isophotal radius (face-on), in h_R
    hz: float = 0.18  # stellar scale height h_z / h_R
    vertical: str = "sech2"  # or "exp"
    trunc: float = 1.15  # truncation radius / r25
    trunc_soft: float = 0.08  # truncation width / r25
    bt: float = 0.15  # bulge-to-total light in r
    bulge_n: float = 2.0
    bulge_re: float = 0.3  # effective radius / h_R
    bulge_q: float = 0.7  # intrinsic flattening c/a
    young_frac: float = 0.2  # fraction of the disk light in the young (arm) component
    young_h: float = 1.1  # young disk scale length / h_R
    arms: int = 2  # 0 = no grand design
    pitch: float = 18.0  # degrees
    arm_phase: float = 0.0
    arm_sharp: float = 2.0  # exponent of the arm profile
    arm_in_old: float = 0.15  # arm modulation of the old disk
    flocculence: float = 0.5  # sigma of the log-normal field
    bar: bool = False
    bar_len: float = 1.0  # semi-axis a / h_R
    bar_ratio: float = 0.35  # b/a
    bar_angle: float = 0.0  # in the disk plane, degrees
    bar_frac: float = 0.1  # bar light / disk light
    dust_tau: float = 1.0  # face-on central optical depth in r
    dust_hz: float = 0.45  # dust scale height / stellar h_z
    dust_hr: float = 1.3  # dust scale length / h_R
    dust_arm: float = 0.5  # arm contrast of the dust
    ellipticity: float = 0.0  # intrinsic in-plane elongation of the disk isodensities, 1 - b/a
    ellipticity_angle: float = 0.0  # its major axis in the disk plane, degrees from the line of nodes
    lopsided: float = 0.0  # m = 1 amplitude of the disk light at R25
    lopsided_phase: float = 0.0
    warp: float = 0.0  # edge height / h_R
    warp_start: float = 0.7  # / r25
    warp_phase: float = 0.0
    # Colours: flux in g and i relative to r, per component.
    col_old: tuple[float, float] = (0.75, 1.18)
    col_young: tuple[float, float] = (1.45, 0.82)
    col_bulge: tuple[float, float] = (0.52, 1.32)
    noise_seed: int = 0
    extras: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def _vertical(z: np.ndarray, h: float, kind: str) -> np.ndarray:
    """Vertical profile normalised to unit surface density."""
    a = np.abs(z) / h
    if kind == "exp":
        return np.exp(-a) / (2.0 * h)
    e = np.exp(-2.0 * np.minimum(a, 30.0))
    return 4.0 * e / (1.0 + e) ** 2 / (2.0 * h)  # sech²(a) = 4e^{-2a}/(1+e^{-2a})²


def _sersic_b(n: float) -> float:
    return 2.0 * n - 1.0 / 3.0 + 0.009876 / n


def _ps_p(n: float) -> float:
    return 1.0 - 0.6097 / n + 0.05463 / (n * n)


def _bulge_density(m: np.ndarray, n: float) -> np.ndarray:
    """Prugniel–Simien deprojected Sérsic in m = r / r_e (unnormalised)."""
    m = np.maximum(m, 0.03)
    return m ** (-_ps_p(n)) * np.exp(-_sersic_b(n) * m ** (1.0 / n))


def _bulge_volume_integral(n: float) -> float:
    """∫ ρ dV for r_e = 1 and q = 1 (numerically, on a log grid)."""
    m = np.geomspace(1e-4, 60.0, 4000)
    f = 4.0 * math.pi * m * m * _bulge_density(m, n)
    return float(np.trapezoid(f, m))


def _random_field(rng: np.random.Generator, n: int, slope: float) -> np.ndarray:
    """A zero-mean, unit-variance Gaussian random field with a power-law spectrum, n × n."""
    kx = np.fft.fftfreq(n)[:, None]
    ky = np.fft.rfftfreq(n)[None, :]
    k = np.sqrt(kx * kx + ky * ky)
    k[0, 0] = 1.0
    amp = k ** (-slope / 2.0)
    amp[0, 0] = 0.0
    noise = rng.normal(size=(n, n // 2 + 1)) + 1j * rng.normal(size=(n, n // 2 + 1))
    f = np.fft.irfft2(noise * amp, s=(n, n))
    return (f - f.mean()) / (f.std() + 1e-12)


def _bilinear(fields: np.ndarray, extent: float, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Sample square fields (n, n, k) covering [-extent, extent]² at (x, y) (clamped at the border): (..., k)."""
    n = fields.shape[0]
    flat = fields.reshape(n * n, -1)
    scale = np.float32((n - 1) / (2 * extent))
    u = np.clip((x + np.float32(extent)) * scale, 0, n - 1.001)
    v = np.clip((y + np.float32(extent)) * scale, 0, n - 1.001)
    i0 = u.astype(np.int32)
    j0 = v.astype(np.int32)
    fu = (u - i0)[..., None]
    fv = (v - j0)[..., None]
    idx = j0 * n + i0
    f00 = np.take(flat, idx, axis=0)
    f01 = np.take(flat, idx + 1, axis=0)
    f10 = np.take(flat, idx + n, axis=0)
    f11 = np.take(flat, idx + n + 1, axis=0)
    return (f00 * (1 - fu) + f01 * fu) * (1 - fv) + (f10 * (1 - fu) + f11 * fu) * fv


def sky_grid(n: int, width: float, centre: tuple[float, float] = (0.0, 0.0)) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre sky coordinates (x right, y up) of an n × n image ``width`` h_R wide, relative to the
    galaxy centre at ``centre`` (in h_R from the image centre)."""
    step = width / n
    c = (np.arange(n) + 0.5 - n / 2) * step
    x = np.broadcast_to(c[None, :], (n, n)) - centre[0]
    y = np.broadcast_to(-c[:, None], (n, n)) - centre[1]
    return x, y


def render_bands(gal: Galaxy, x: np.ndarray, y: np.ndarray, *, n_slab: int = 32, n_mid: int = 16,
                 n_bulge: int = 24) -> np.ndarray:
    """Surface brightness (per unit area, h_R²) in g, r, i at sky points (x, y): array (..., 3).

    The r-band face-on central surface brightness of the old disk is 1 (before the young disk, bulge and
    bar are added in their proportions).
    """
    shape = x.shape
    x = np.asarray(x, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=np.float64).ravel()
    out = np.zeros((x.size, 3))
    inc = math.radians(gal.inclination)
    sin_i, cos_i = math.sin(inc), math.cos(inc)
    pa = math.radians(gal.pa)
    xp = x * math.cos(pa) + y * math.sin(pa)  # along the major axis
    yp = -x * math.sin(pa) + y * math.cos(pa)  # along the projected minor axis
    nodes = _ray_nodes(gal, xp, yp, sin_i, cos_i, n_slab=n_slab, n_mid=n_mid, n_bulge=n_bulge)
    if nodes is None:
        return out.reshape(shape + (3,))
    active, s = nodes
    xs = xp[active][:, None].astype(np.float32)
    ys = yp[active][:, None].astype(np.float32)
    gx = np.broadcast_to(xs, s.shape)
    gy = ys * np.float32(cos_i) - s * np.float32(sin_i)
    gz = ys * np.float32(sin_i) + s * np.float32(cos_i)
    out[active] = _integrate(gal, s, *_densities(gal, gx, gy, gz))
    return out.reshape(shape + (3,))


def _truncation(gal: Galaxy) -> tuple[float, float, float]:
    """The disk's truncation radius, its width and the radius beyond which nothing is emitted."""
    r_t = gal.trunc * gal.r25
    w_t = max(gal.trunc_soft * gal.r25, 0.05)
    return r_t, w_t, r_t + 4.0 * w_t


def _ray_nodes(gal: Galaxy, xp: np.ndarray, yp: np.ndarray, sin_i: float, cos_i: float, *, n_slab: int,
               n_mid: int, n_bulge: int) -> tuple[np.ndarray, np.ndarray] | None:
    """The rays that cross the galaxy (indices) and the sorted positions s along each where it is sampled:
    uniform over the disk slab, dense about the mid-plane and over the bulge's sphere; None if no ray does."""
    _, _, r_max = _truncation(gal)
    zmax = 5.0 * gal.hz + abs(gal.warp)
    rho2 = xp * xp + yp * yp
    sphere = np.sqrt(np.maximum(r_max * r_max - rho2, 0.0))
    r_b = min(r_max, max(8.0 * gal.bulge_re, gal.bar_len * 1.1 if gal.bar else 0.0, 0.5))
    sphere_b = np.sqrt(np.maximum(r_b * r_b - rho2, 0.0))
    # The slab |Z| ≤ zmax along each ray: Z = y' sin i + s cos i.
    if cos_i > 1e-6:
        lo = (-zmax - yp * sin_i) / cos_i
        hi = (zmax - yp * sin_i) / cos_i
        s_mid = -yp * sin_i / cos_i
        mid_half = 4.0 * gal.hz * gal.dust_hz / cos_i
    else:
        inside = np.abs(yp) <= zmax
        lo = np.where(inside, -np.inf, np.inf)
        hi = np.where(inside, np.inf, -np.inf)
        s_mid = np.zeros_like(yp)
        mid_half = np.inf
    lo = np.maximum(lo, -sphere)
    hi = np.minimum(hi, sphere)
    has_slab = hi > lo
    active = np.nonzero(has_slab | (sphere_b > 0))[0]
    if active.size == 0:
        return None
    lo, hi, s_mid = lo[active], hi[active], s_mid[active]
    has_slab = has_slab[active]
    lo = np.where(has_slab, lo, 0.0)
    hi = np.where(has_slab, hi, 0.0)
    t = (np.arange(n_slab) + 0.5) / n_slab
    s_slab = lo[:, None] + (hi - lo)[:, None] * t[None, :]
    # Dense nodes about the mid-plane crossing, where the thin dust layer lies (sinh spacing).
    u = np.sinh(np.linspace(-3.0, 3.0, n_mid)) / math.sinh(3.0)
    half = np.minimum(mid_half, (hi - lo) / 2.0)
    centre = np.clip(s_mid, lo, hi)
    s_dense = np.clip(centre[:, None] + half[:, None] * u[None, :], lo[:, None], hi[:, None])
    lb = sphere_b[active]
    tb = np.sinh(np.linspace(-2.5, 2.5, n_bulge)) / math.sinh(2.5)  # dense at the closest approach to the centre
    s_b = lb[:, None] * tb[None, :]
    return active, np.sort(np.concatenate([s_slab, s_dense, s_b], axis=1), axis=1).astype(np.float32)


def _densities(gal: Galaxy, gx: np.ndarray, gy: np.ndarray,
               gz: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Emissivity of the old disk, the young disk and the bulge with the bar, and the dust density, at the
    nodes (X, Y, Z in the galaxy's frame)."""
    r_t, w_t, r_max = _truncation(gal)
    if gal.ellipticity:
        # A non-circular disk: isodensity ellipses of axis ratio 1 - e in the disk plane (area kept).
        ea = math.radians(gal.ellipticity_angle)
        ca, sa = np.float32(math.cos(ea)), np.float32(math.sin(ea))
        k = math.sqrt(1.0 - gal.ellipticity)
        u = (gx * ca + gy * sa) * np.float32(k)
        v = (-gx * sa + gy * ca) / np.float32(k)
        rr = np.sqrt(u * u + v * v)
    else:
        rr = np.sqrt(gx * gx + gy * gy)
    phi = np.arctan2(gy, gx)
    if gal.warp:
        r_w = gal.warp_start * gal.r25
        span = max(r_t - r_w, 0.3)
        lift = gal.warp * np.clip((rr - r_w) / span, 0.0, 1.3) ** 2 * np.sin(phi - math.radians(gal.warp_phase))
        gz_w = gz - np.where(rr > r_w, lift, 0.0)
    else:
        gz_w = gz
    trunc = 1.0 / (1.0 + np.exp(np.clip((rr - r_t) / w_t, -50, 50)))

    rng = np.random.default_rng(gal.noise_seed)
    fields = np.stack([_random_field(rng, 96, 2.6), _random_field(rng, 96, 1.6), _random_field(rng, 96, 2.4)], axis=-1).astype(np.float32)
    sampled = _bilinear(fields, r_max, gx, gy)
    fl, ff, fd = sampled[..., 0], sampled[..., 1], sampled[..., 2]
    arm, arm_dust = _arms(gal, rr, phi)
    sig = gal.flocculence
    floc_mod = np.exp(sig * (0.7 * fl + 0.7 * ff) - 0.5 * sig * sig * 0.98)

    # Old disk (face-on central surface density 1).
    old = np.exp(-rr) * _vertical(gz_w, gal.hz, gal.vertical) * trunc
    old = old * (1.0 + gal.arm_in_old * (arm - 1.0)) * np.exp(0.25 * sig * fl - 0.03 * sig * sig)
    if gal.lopsided:
        lop = 1.0 + gal.lopsided * np.minimum(rr / gal.r25, 1.3) * np.cos(phi - math.radians(gal.lopsided_phase))
        old = old * lop
    else:
        lop = 1.0
    disk_lum = 2.0 * math.pi
    young_lum = disk_lum * gal.young_frac / max(1.0 - gal.young_frac, 1e-3)
    hy = gal.young_h
    young = (young_lum / (2.0 * math.pi * hy * hy)) * np.exp(-rr / hy) * _vertical(gz_w, 0.5 * gal.hz, gal.vertical)
    young = young * trunc * arm * floc_mod * lop
    bulge = _bulge_and_bar(gal, gx, gy, gz, rr, total_disk=disk_lum + young_lum)
    if gal.dust_tau > 0:
        hzd = gal.hz * gal.dust_hz
        dust = (gal.dust_tau / (2.0 * hzd)) * np.exp(-rr / gal.dust_hr - np.abs(gz_w) / hzd)
        dust = dust * trunc * arm_dust * np.exp(0.5 * fd - 0.125)
    else:
        dust = np.zeros_like(rr)
    return old, young, bulge, dust


def _arms(gal: Galaxy, rr: np.ndarray, phi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The spiral arms' modulation of the young light and of the dust (ones without arms)."""
    if gal.arms <= 0:
        return np.ones_like(rr), np.ones_like(rr)
    # Spiral arms: ψ = m(φ − φ0) − (m / tan p) ln R.
    ln_r = np.log(np.maximum(rr, 0.05))
    tan_p = math.tan(math.radians(gal.pitch))
    psi = gal.arms * (phi - math.radians(gal.arm_phase)) - (gal.arms / tan_p) * ln_r
    raw = ((1.0 + np.cos(psi)) / 2.0) ** gal.arm_sharp
    mean_raw = math.gamma(gal.arm_sharp + 0.5) / (math.sqrt(math.pi) * math.gamma(gal.arm_sharp + 1.0))
    arm = raw / mean_raw
    # Arms fade inside the bar / bulge region.
    r_in = max(gal.bar_len if gal.bar else 0.0, 0.6)
    taper = 1.0 / (1.0 + np.exp(-(rr - r_in) / 0.2))
    arm = 1.0 + (arm - 1.0) * taper
    # Dust lanes on the inner (concave) edge of the arms: a phase lead.
    raw_d = ((1.0 + np.cos(psi + 0.6)) / 2.0) ** (gal.arm_sharp + 1.0)
    mean_d = math.gamma(gal.arm_sharp + 1.5) / (math.sqrt(math.pi) * math.gamma(gal.arm_sharp + 2.0))
    return arm, 1.0 + (raw_d / mean_d - 1.0) * taper * gal.dust_arm


def _bulge_and_bar(gal: Galaxy, gx: np.ndarray, gy: np.ndarray, gz: np.ndarray, rr: np.ndarray, *,
                   total_disk: float) -> np.ndarray:
    """Emissivity of the bulge (deprojected Sérsic) plus the bar (Ferrers n = 2), in proportion to the disk."""
    re = gal.bulge_re
    if gal.bt > 0:
        m = np.sqrt(gx * gx + gy * gy + (gz / gal.bulge_q) ** 2) / re
        bulge_lum = total_disk * gal.bt / (1.0 - gal.bt)
        norm = bulge_lum / (_bulge_volume_integral(gal.bulge_n) * re ** 3 * gal.bulge_q)
        bulge = norm * _bulge_density(m, gal.bulge_n)
    else:
        bulge = np.zeros_like(rr)
    if gal.bar:
        ba = math.radians(gal.bar_angle)
        bx = gx * math.cos(ba) + gy * math.sin(ba)
        by = -gx * math.sin(ba) + gy * math.cos(ba)
        a, b = gal.bar_len, gal.bar_len * gal.bar_ratio
        c = max(1.2 * gal.hz, 0.6 * b)
        m2 = (bx / a) ** 2 + (by / b) ** 2 + (gz / c) ** 2
        bar_norm = gal.bar_frac * total_disk / (a * b * c * 4.0 * math.pi * 8.0 / 105.0)
        bulge = bulge + bar_norm * np.where(m2 < 1.0, (1.0 - np.minimum(m2, 1.0)) ** 2, 0.0)
    return bulge


def _integrate(gal: Galaxy, s: np.ndarray, old: np.ndarray, young: np.ndarray, bulge: np.ndarray,
               dust: np.ndarray) -> np.ndarray:
    """Light along each ray in g, r, i, (rays, 3): the trapezoid rule on the sorted nodes, each node's light
    dimmed by the dust column in front of it (the observer is at s → +∞)."""
    ds = np.diff(s, axis=1)
    w = np.zeros_like(s)
    w[:, :-1] += ds / 2.0
    w[:, 1:] += ds / 2.0
    # Dust column in front of each node: ∫_s^∞ ρ_d.
    seg = (dust[:, :-1] + dust[:, 1:]) / 2.0 * ds
    tau_front = np.zeros_like(s)
    tau_front[:, :-1] = np.cumsum(seg[:, ::-1], axis=1)[:, ::-1]
    cols = np.array([gal.col_old, gal.col_young, gal.col_bulge])  # (3 comps, g & i)
    light = np.zeros((s.shape[0], 3))
    for b, band in enumerate(BANDS):
        att = np.exp(-DUST_KAPPA[b] * tau_front) * w if gal.dust_tau > 0 else w
        if band == "r":
            fo, fy, fb = 1.0, 1.0, 1.0
        else:
            k = 0 if band == "g" else 1
            fo, fy, fb = cols[0, k], cols[1, k], cols[2, k]
        emis = fo * old + fy * young + fb * bulge
        light[:, b] = np.sum(emis * att, axis=1)
    return light


def reference_brightness(gal: Galaxy) -> float:
    """The r-band face-on surface brightness of the disk (old + young) at R25, without dust."""
    young_lum = gal.young_frac / max(1.0 - gal.young_frac, 1e-3)
    hy = gal.young_h
    return math.exp(-gal.r25) + young_lum / (hy * hy) * math.exp(-gal.r25 / hy)
