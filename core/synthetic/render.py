"""Rendering one galaxy from its parameters: the galaxy's light in its own frame (GalSim disk, bulge, bar,
ray-marched arms and dust, clumps), turned into the output frame, other sources, PSF and noise, then the
display stretches, the colour composite and JPEG artefacts. Deterministic: the noise and every other random
choice come from ``seed_sequence(p.seed, p.index, 1)``, drawn in a fixed order. Django-free."""
from __future__ import annotations

import io
import math
from dataclasses import dataclass

import numpy as np

from core.geometry import HOLMBERG_Q0, apparent_axis_ratio

from .params import GalaxyParams, SyntheticGalaxy, disk_flux, seed_sequence
from .profiles import (colour_factors, deposit, disk_image, elliptical_profile, inv_cov, neighbour_image, psf_kernel,
                       sersic_radial, spikes)
from .raymarch import disk_maps

__all__ = ["render_galaxy"]

# Sky noise per band relative to r, in flux units (i is noisier, g a little quieter).
_SKY_NOISE = np.array([0.85, 1.0, 1.4])


@dataclass(frozen=True)
class _Frame:
    """One render's sampling and the galaxy's scales: the output frame is ``n_out`` pixels, drawn on ``nf`` fine
    pixels of ``scale`` output pixels; the galaxy frame (``ng`` fine pixels) is big enough for rotations and
    offsets."""

    oversample: int
    n_out: int
    nf: int
    scale: float
    ng: int
    rs: float  # disk scale radius, output px
    h: float  # disk scale height
    ci: float  # cos and sin of the inclination
    si: float
    disk_flux: float
    cd: np.ndarray  # g, r, i factors of the disk, bulge and young (arms, clumps) colours
    cb: np.ndarray
    cy: np.ndarray

    @classmethod
    def of(cls, p: GalaxyParams) -> _Frame:
        os_ = max(1, int(p.oversample))
        n_out = int(p.size)
        nf = n_out * os_
        rs = p.r25 / p.r25_over_rs
        inc = p.inclination
        return cls(oversample=os_, n_out=n_out, nf=nf, scale=1.0 / os_, ng=int(math.ceil(1.5 * nf / 2)) * 2,
                   rs=rs, h=p.h_over_r * rs, ci=math.cos(math.radians(inc)), si=math.sin(math.radians(inc)),
                   disk_flux=disk_flux(p), cd=colour_factors(p.disk_colour), cb=colour_factors(p.bulge_colour),
                   cy=colour_factors(p.young_colour))


def render_galaxy(p: GalaxyParams) -> SyntheticGalaxy:
    """Render one galaxy from its parameters (deterministic: noise etc. come from ``p.seed``)."""
    rng = np.random.default_rng(seed_sequence(p.seed, p.index, 1))
    frame = _Frame.of(p)
    img = _to_output_frame(p, frame, _galaxy_frame_light(p, frame, rng))
    _add_neighbours_and_background(p, frame, img, rng)
    _add_stars(p, frame, img, rng)
    colour, grey = _display(p, frame, _observe(p, frame, img, rng))
    return SyntheticGalaxy(colour=colour, g=grey[0], r=grey[1], i=grey[2], truth=p.truth())


def _galaxy_frame_light(p: GalaxyParams, f: _Frame, rng: np.random.Generator) -> np.ndarray:
    """The galaxy's light per band in its own frame (major axis along +x, rows down), (3, ng, ng)."""
    scale, ng = f.scale, f.ng
    disk = disk_image(p.inclination, f.rs, f.h, f.disk_flux, ng, scale)
    cg = (ng - 1) / 2
    coords = (np.arange(ng) - cg) * scale
    xg, yg = np.meshgrid(coords, coords)
    qb = apparent_axis_ratio(p.inclination, p.bulge_q)
    re = max(p.bulge_re_over_rs * f.rs, 0.4 * scale)
    bulge = _bulge(p, f, xg, yg, qb, re)
    bar_a = p.bar_length_over_rs * f.rs
    bar = _bar(p, f, xg, yg, bar_a)
    maps = _disk_maps_on_grid(p, f, xg, yg, qb, re, bar_a)
    clumps = _clumps(p, f, rng, maps["t"], cg)
    return (disk[None] * maps["w"] * f.cd[:, None, None]
            + bulge[None] * f.cb[:, None, None] * maps["bulge"]
            + bar[None] * f.cb[:, None, None] * maps["bar"]
            + clumps)


def _bulge(p: GalaxyParams, f: _Frame, xg: np.ndarray, yg: np.ndarray, qb: float, re: float) -> np.ndarray:
    """Bulge: oblate Sersic, apparent axis ratio ``qb`` from its intrinsic flattening."""
    bulge = np.zeros((f.ng, f.ng))
    if p.bulge_to_total > 0:
        bulge = elliptical_profile(xg, yg, inv_cov(1.0, qb, 0.0), sersic_radial(p.bulge_n, re),
                                   centre_box=max(3 * f.scale, 1.5 * re), step=f.scale)
        bulge *= f.disk_flux * p.bulge_to_total / (1 - p.bulge_to_total) / (bulge.sum() * f.scale * f.scale)
    return bulge


def _bar(p: GalaxyParams, f: _Frame, xg: np.ndarray, yg: np.ndarray, bar_a: float) -> np.ndarray:
    """Bar: triaxial (a, b, c) in the disk plane, projected exactly (covariance P Σ Pᵀ)."""
    bar = np.zeros((f.ng, f.ng))
    if p.bar_strength > 0:
        th = math.radians(p.bar_angle)
        rot = np.array([[math.cos(th), -math.sin(th), 0], [math.sin(th), math.cos(th), 0], [0, 0, 1]])
        cov3 = rot @ np.diag([bar_a**2, (bar_a * p.bar_axis_ratio) ** 2, (max(1.5 * f.h, 0.25 * bar_a)) ** 2]) @ rot.T
        proj = np.array([[1, 0, 0], [0, f.ci, -f.si]])
        cov2 = proj @ cov3 @ proj.T
        bar = elliptical_profile(xg, yg, np.linalg.inv(cov2), lambda m: np.exp(-(m ** 2.5)))
        bar *= f.disk_flux * p.bar_strength / (bar.sum() * f.scale * f.scale)
    return bar


def _disk_maps_on_grid(p: GalaxyParams, f: _Frame, xg: np.ndarray, yg: np.ndarray, qb: float, re: float,
                       bar_a: float) -> dict[str, np.ndarray]:
    """The ray-marched maps over the disk's footprint, 1 elsewhere, each (3, ng, ng)."""
    rs, h, ci, si, scale = f.rs, f.h, f.ci, f.si, f.scale
    rmax = 5.0 * rs
    ext_y = rmax * ci + 4 * h * si + 2 * scale
    foot = (xg / rmax) ** 2 + (yg / ext_y) ** 2 < 1.0
    steps = 16 if p.inclination < 55 else (24 if p.inclination < 75 else 32)
    colour_arm = (f.cy / f.cd) ** 0.5  # arms are bluer: stronger modulation in g
    colour_arm = colour_arm / colour_arm[1]
    xf, yf = xg[foot], yg[foot]
    sigma_bulge = 0.8 * np.sqrt(re * re + xf * xf + (yf / qb) ** 2)
    sigma_bar = max(0.5 * bar_a * si, h)
    maps = disk_maps(p, xf, yf, rs, h, colour_arm, steps, sigma_bulge, sigma_bar)
    full = {}
    for key, val in maps.items():
        arr = np.ones((3, f.ng, f.ng))
        arr[:, foot] = val
        full[key] = arr
    return full


def _clumps(p: GalaxyParams, f: _Frame, rng: np.random.Generator, tr: np.ndarray, cg: float) -> np.ndarray:
    """Star-forming clumps, mostly along the arms, in a thin layer, dimmed by the dust transmission ``tr``."""
    rs, h, ci, si, scale, ng = f.rs, f.h, f.ci, f.si, f.scale, f.ng
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
        fl *= f.disk_flux * p.clump_fraction / max(fl.sum(), 1e-12) / (scale * scale)
        col = xs / scale + cg
        row = ys / scale + cg
        ic = np.clip(np.round(col).astype(int), 0, ng - 1)
        ir = np.clip(np.round(row).astype(int), 0, ng - 1)
        for b in range(3):
            deposit(clumps[b], col, row, fl * f.cy[b] * tr[b, ir, ic])
    return clumps


def _to_output_frame(p: GalaxyParams, f: _Frame, gal: np.ndarray) -> np.ndarray:
    """The galaxy frame sampled in the output frame: PA rotation, offset, intrinsic ellipticity, warp."""
    from scipy.ndimage import map_coordinates

    scale = f.scale
    cf = (f.nf - 1) / 2
    oc = (np.arange(f.nf) - cf) * scale
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
        cc = max(f.ci, 0.2)
        jac = np.diag([1, cc]) @ amat @ np.diag([1, 1 / cc])
        ji = np.linalg.inv(jac)
        xr, yr = ji[0, 0] * xr + ji[0, 1] * yr, ji[1, 0] * xr + ji[1, 1] * yr
    if p.warp_amplitude > 0:
        # S-shaped warp of the outer disk (seen best edge-on), saturating beyond the D25 edge.
        ra = p.r25_apparent
        rw = p.warp_start * ra
        lever = np.clip((np.abs(xr) - rw) / max(ra - rw, 1e-6), 0.0, 1.3)
        sign = 1 if (p.index % 2) else -1
        yr = yr - sign * np.sign(xr) * p.warp_amplitude * ra * f.si * lever**2
    cg = (f.ng - 1) / 2
    src = np.array([yr / scale + cg, xr / scale + cg])
    return np.stack([map_coordinates(gal[b], src, order=1, mode="constant", cval=0.0, prefilter=False)
                     for b in range(3)])


def _add_neighbours_and_background(p: GalaxyParams, f: _Frame, img: np.ndarray, rng: np.random.Generator) -> None:
    """The companion or neighbour galaxy, and faint background galaxies, in the output frame."""
    scale, n_out = f.scale, f.n_out
    for nb in (p.companion, p.neighbour):
        if nb:
            img += neighbour_image(nb, f.nf, scale)
    n_bg = rng.poisson(p.background_galaxies)
    coords_f = (np.arange(f.nf) - (f.nf - 1) / 2) * scale
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
        prof = elliptical_profile(bxx, byy, inv_cov(1.0, bq, rng.uniform(0, math.pi)), lambda m, s_=brs: np.exp(-m / s_))
        prof *= bflux / (2 * math.pi * brs * brs * bq)  # analytic: it may lie partly outside the field
        bcol = colour_factors((rng.uniform(0.5, 1.3), rng.uniform(0.2, 0.6)))
        img[:, jy[0]:jy[-1] + 1, jx[0]:jx[-1] + 1] += bcol[:, None, None] * prof[None]


def _draw_stars(p: GalaxyParams, f: _Frame, rng: np.random.Generator, f_spike: float) -> list[tuple[float, float, float]]:
    """Foreground stars (x, y, flux), a power law in flux; only a bright_star reject has a bright one on its disk."""
    n_out = f.n_out
    fwhm = p.psf_fwhm
    f_min = 3.0 * p.noise * fwhm * fwhm + 0.3 * fwhm * fwhm
    n_st = rng.poisson(p.star_density)
    q_app = apparent_axis_ratio(p.inclination, HOLMBERG_Q0)
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
    return stars


def _add_stars(p: GalaxyParams, f: _Frame, img: np.ndarray, rng: np.random.Generator) -> None:
    """Foreground stars in the output frame (pre-PSF); bright ones get diffraction spikes."""
    f_spike = 150.0 * p.psf_fwhm * p.psf_fwhm
    stars = _draw_stars(p, f, rng, f_spike)
    if not stars:
        return
    scale, nf = f.scale, f.nf
    cf = (nf - 1) / 2
    sa = np.array(stars)
    st_col = np.stack([colour_factors((gr, 0.35 * gr)) for gr in rng.uniform(0.2, 1.4, len(stars))])
    for b in range(3):
        tmp = np.zeros((nf, nf))
        deposit(tmp, sa[:, 0] / scale + cf, sa[:, 1] / scale + cf, sa[:, 2] * st_col[:, b] / (scale * scale))
        for sx, sy, fl in stars:
            if fl > f_spike:
                spikes(tmp, sx, sy, fl, p.spike_angle, scale, np.random.default_rng(int(fl * 1000) % 2**32))
        img[b] += tmp


def _observe(p: GalaxyParams, f: _Frame, img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """PSF, down-sampling to the output pixels, sky noise: linear flux per band, (3, n_out, n_out)."""
    n_out, nf, os_, scale = f.n_out, f.nf, f.oversample, f.scale
    out = np.empty((3, n_out, n_out))
    spec = np.fft.rfft2(img)
    for b in range(3):
        kern = psf_kernel(p, b, nf, scale)
        conv = np.fft.irfft2(spec[b] * np.fft.rfft2(kern), s=(nf, nf)) * scale * scale
        if os_ > 1:
            conv = conv.reshape(n_out, os_, n_out, os_).mean(axis=(1, 3)) * os_ * os_
        out[b] = conv
    sigma = p.noise * _SKY_NOISE
    out += rng.standard_normal(out.shape) * sigma[:, None, None]
    return out


def _missing_data(p: GalaxyParams, n_out: int) -> np.ndarray | None:
    """Pixels beyond a ``cut_off`` reject's straight edge of missing data (None for every other galaxy)."""
    if not (p.mask and p.mask.get("mode") == "mask"):
        return None
    c0 = (n_out - 1) / 2
    yy, xx = np.mgrid[0:n_out, 0:n_out]
    dxm = xx - c0 - p.centre_offset[0]
    dym = yy - c0 - p.centre_offset[1]
    return dxm * p.mask["nx"] + dym * p.mask["ny"] > p.mask["d"]


def _display(p: GalaxyParams, f: _Frame, out: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """The colour composite and the g, r, i grey images as JPEG-compressed uint8.

    The stretches put the D25 isophote near the noise, as in SDSS cut-outs."""
    masked = _missing_data(p, f.n_out)
    i25 = f.cd  # face-on disk surface brightness at R25 per band
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
        colour = _colour_by_display_law(out, i25[1], p)
    if masked is not None:
        colour[masked] = 0
        for gimg in grey:
            gimg[masked] = 0
    q = int(p.jpeg_quality)
    return _jpeg(colour, q), [_jpeg(gimg, q) for gimg in grey]


def _colour_by_display_law(out: np.ndarray, i25_r: float, p: GalaxyParams) -> np.ndarray:
    """A colour image under a display law other than asinh: the law maps the mean intensity; the channels keep
    their ratios (as Lupton's composite does)."""
    scales = (0.8, 1.1, 1.9) if p.colour_mode == "sdss" else (0.75, 1.0, 1.6)
    rgb = np.stack([out[2] * scales[0], out[1] * scales[1], out[0] * scales[2]], axis=-1)
    lum = rgb.mean(axis=-1, keepdims=True)
    mapped = _display_law(lum / (p.white_point * i25_r * 1.25), p)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(lum > 1e-9, rgb / np.maximum(lum, 1e-9), 1.0)
    return np.clip(np.round(mapped * ratio * 255), 0, 255).astype(np.uint8)


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
