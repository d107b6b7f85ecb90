"""The renderer's light profiles and pixel tools: Sersic and exponential profiles on a grid, GalSim's inclined
disk, cloud-in-cell deposits, the PSF kernel, simpler neighbour galaxies and diffraction spikes. Django-free."""
from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from core.geometry import apparent_axis_ratio

from .params import GalaxyParams

__all__ = ["colour_factors", "elliptical_profile", "inv_cov", "sersic_radial", "disk_image", "deposit", "psf_kernel",
           "neighbour_image", "spikes"]


def colour_factors(colour: tuple[float, float]) -> np.ndarray:
    """Flux in g, r, i relative to r of a colour (g − r, r − i) in magnitudes."""
    gr, ri = colour
    return np.array([10 ** (-0.4 * gr), 1.0, 10 ** (0.4 * ri)])


def _sersic_b(n: float) -> float:
    return 2 * n - 1 / 3 + 4 / (405 * n) + 46 / (25515 * n * n)


def elliptical_profile(
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


def inv_cov(major: float, q: float, angle: float) -> np.ndarray:
    """Inverse covariance of an ellipse (semi-major ``major``, axis ratio ``q``) turned by ``angle`` radians."""
    ca, sa = math.cos(angle), math.sin(angle)
    rot = np.array([[ca, -sa], [sa, ca]])
    cov = rot @ np.diag([major**2, (major * q) ** 2]) @ rot.T
    return np.linalg.inv(cov)


def _sersic_total(n: float, re: float, q: float) -> float:
    """Integral of exp(−b·(m/re)^(1/n)) over the plane, m the elliptical radius with axis ratio q."""
    b = _sersic_b(n)
    return 2 * math.pi * q * re * re * n * math.gamma(2 * n) / b ** (2 * n)


def sersic_radial(n: float, re: float) -> Any:
    """The Sersic profile of index ``n`` and half-light radius ``re`` as a function of the elliptical radius."""
    b = _sersic_b(n)
    return lambda m: np.exp(-b * (np.maximum(m, 0.0) / re) ** (1.0 / n))


def disk_image(inclination: float, rs: float, h: float, flux: float, npix: int, scale: float,
                pa_deg: float = 0.0, shift: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """GalSim's inclined exponential disk of finite thickness, as surface brightness per output pixel² on an
    ``npix`` square grid (row 0 at the bottom, GalSim's y up)."""
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


def deposit(img: np.ndarray, x: np.ndarray, y: np.ndarray, w: np.ndarray) -> None:
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


def psf_kernel(p: GalaxyParams, band: int, npix: int, scale: float) -> np.ndarray:
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


def neighbour_image(nb: Mapping[str, float], npix: int, scale: float) -> np.ndarray:
    """A simpler galaxy (disk + bulge, no arms or dust) in output-frame pixels, per band."""
    r25 = nb["r25"]
    rs = r25 / 3.5
    bt = nb["bulge_to_total"]
    flux = nb["flux"]
    # Galaxy centre in fine-pixel coordinates relative to the field centre.
    sx, sy = nb["x"], -nb["y"]  # galsim y is up
    disk = disk_image(nb["inclination"], rs, 0.12 * rs, flux * (1 - bt), npix, scale, nb["pa"], (sx, sy))
    # GalSim arrays have row 0 at the bottom (y up): flip to row 0 at the top.
    disk = disk[::-1]
    c = (npix - 1) / 2
    coords = (np.arange(npix) - c) * scale
    xx, yy = np.meshgrid(coords - nb["x"], coords - nb["y"])
    q = apparent_axis_ratio(nb["inclination"], 0.7)
    bulge = elliptical_profile(xx, yy, inv_cov(1.0, q, -math.radians(nb["pa"])), sersic_radial(3.0, 0.2 * rs),
                                centre_box=2 * scale, step=scale)
    # Analytic normalisation: the galaxy may lie partly outside the field.
    bulge *= flux * bt / _sersic_total(3.0, 0.2 * rs, q) if bt > 0 else 0.0
    gr = nb["gr"]
    cd = colour_factors((gr - 0.1, 0.3))
    cb = colour_factors((gr + 0.2, 0.42))
    return cd[:, None, None] * disk[None] + cb[:, None, None] * bulge[None]


def spikes(img: np.ndarray, x0: float, y0: float, flux: float, angle: float, scale: float, rng: np.random.Generator) -> None:
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
