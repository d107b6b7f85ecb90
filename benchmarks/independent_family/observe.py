"""Image formation of the independent family: PSF, sources, sky, noise, stretch, colour, compression.

All of it is this family's own: an elliptical Moffat PSF (random β and FWHM, per-band widths) applied by
FFT to the galaxy and every star; stars and background galaxies splatted at sub-pixel positions; a sky
with a level, a linear gradient and sometimes a scattered-light glow; Poisson noise from a random gain
plus read noise, sometimes spatially correlated; a saturation level; then one of six display stretches
(Lupton-style colour-preserving asinh, per-channel asinh, log, sqrt, gamma, clipped linear) with random
black and white points, a random colour balance and saturation, a non-black sky pedestal, and JPEG at a
random quality (or PNG).
"""
from __future__ import annotations

import io
import math
from dataclasses import asdict, dataclass, field

import numpy as np
from PIL import Image

STRETCHES = ("lupton", "asinh", "log", "sqrt", "gamma", "linear")


@dataclass
class Observation:
    size: int = 256  # output pixels (square)
    psf_fwhm: float = 2.0  # r band, output pixels
    psf_beta: float = 3.0
    psf_e: float = 0.0  # ellipticity 1 - b/a
    psf_theta: float = 0.0
    psf_band_scale: tuple[float, float, float] = (1.06, 1.0, 0.96)
    snr25: float = 5.0  # r-band face-on disk SB at R25 / sky noise sigma (per output pixel)
    sky_over_sigma: float = 20.0  # sky level in units of the noise sigma (sets the gain)
    read_frac: float = 0.3  # read noise / total sky noise
    sky_colour: tuple[float, float, float] = (0.8, 1.0, 1.3)
    gradient: float = 0.0  # sky gradient across the field, in sigma
    gradient_angle: float = 0.0
    glow: float = 0.0  # scattered-light glow amplitude, in sigma
    glow_xy: tuple[float, float] = (0.0, 0.0)
    noise_corr: float = 0.0  # Gaussian smoothing of the noise, pixels (0 = white)
    saturation: float = 200.0  # full well, in units of the galaxy's peak r brightness
    stretch: str = "lupton"
    stretch_param: float = 10.0
    black_sigma: float = 0.5  # black point above the sky, in sigma
    white_pct: float = 99.7  # white point percentile of the sky-subtracted image
    white_gain: float = 1.0
    balance: tuple[float, float, float] = (1.0, 1.0, 1.0)  # R, G, B multipliers
    colour_saturation: float = 1.2
    pedestal: tuple[int, int, int] = (0, 0, 0)  # sky's display level (0–30)
    grey: str = ""  # "", or the band shown as grey ("g", "r", "i", "sum")
    fmt: str = "JPEG"
    quality: int = 85
    subsampling: int = 2  # JPEG chroma subsampling (0 = 4:4:4, 2 = 4:2:0)
    stars: list = field(default_factory=list)  # (x, y, flux_r, g/r, i/r) in output px and galaxy-flux units
    bg_galaxies: list = field(default_factory=list)  # (x, y, flux_r, r_e px, q, theta, g/r, i/r)

    def to_dict(self) -> dict:
        return asdict(self)


def moffat_kernel(size: int, fwhm: float, beta: float, e: float, theta: float) -> np.ndarray:
    """A normalised elliptical Moffat on a size × size grid centred at (size // 2, size // 2), 3× sub-sampled."""
    alpha = fwhm / (2.0 * math.sqrt(2.0 ** (1.0 / beta) - 1.0))
    sub = 3
    c = (np.arange(size * sub) - (size // 2) * sub - (sub - 1) / 2) / sub
    x = c[None, :]
    y = c[:, None]
    t = math.radians(theta)
    xr = x * math.cos(t) + y * math.sin(t)
    yr = (-x * math.sin(t) + y * math.cos(t)) / max(1.0 - e, 0.5)
    prof = (1.0 + (xr * xr + yr * yr) / (alpha * alpha)) ** (-beta)
    prof = prof.reshape(size, sub, size, sub).sum(axis=(1, 3))
    return prof / prof.sum()


def _convolve(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Linear (zero-padded) FFT convolution, same size as ``image``; kernel centred at k//2."""
    h, w = image.shape
    k = kernel.shape[0]
    ph, pw = h + k, w + k
    f = np.fft.rfft2(image, s=(ph, pw)) * np.fft.rfft2(kernel, s=(ph, pw))
    full = np.fft.irfft2(f, s=(ph, pw))
    o = k // 2
    return full[o: o + h, o: o + w]


def _splat(image: np.ndarray, x: float, y: float, flux: float) -> None:
    """Add a point source at sub-pixel position (x, y) (pixel-centre coordinates) bilinearly."""
    h, w = image.shape
    i0, j0 = math.floor(y), math.floor(x)
    fy, fx = y - i0, x - j0
    for di, dj, wt in ((0, 0, (1 - fy) * (1 - fx)), (0, 1, (1 - fy) * fx), (1, 0, fy * (1 - fx)), (1, 1, fy * fx)):
        ii, jj = i0 + di, j0 + dj
        if 0 <= ii < h and 0 <= jj < w:
            image[ii, jj] += flux * wt


def _small_galaxy(size: int, x: float, y: float, r_e: float, q: float, theta: float) -> np.ndarray:
    """A unit-flux exponential ellipse (no PSF yet) on a size × size grid."""
    c = np.arange(size) + 0.0
    dx = c[None, :] - x
    dy = c[:, None] - y
    t = math.radians(theta)
    u = dx * math.cos(t) + dy * math.sin(t)
    v = (-dx * math.sin(t) + dy * math.cos(t)) / q
    prof = np.exp(-1.678 * np.sqrt(u * u + v * v) / max(r_e, 0.3))
    return prof / max(prof.sum(), 1e-12)


def resample(band: np.ndarray, size: int) -> np.ndarray:
    """Bicubic resampling of a float image to size × size (surface brightness is preserved)."""
    if band.shape[0] == size:
        return band
    return np.asarray(Image.fromarray(band.astype(np.float32), mode="F").resize((size, size), Image.Resampling.BICUBIC),
                      dtype=np.float64)


def observe(bands: np.ndarray, obs: Observation, *, sb_ref: float, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """From noiseless surface brightness (size, size, 3: g, r, i, already at output resolution and in units
    where the r-band disk SB at R25 face-on is ``sb_ref``) to the linear noisy bands and the displayed image.

    Returns ``{"linear": (size, size, 3) sky-subtracted noisy bands in sigma units, "display": uint8 image}``.
    """
    size = obs.size
    sigma = sb_ref / obs.snr25  # noise per output pixel, r band, in SB units
    sources = np.zeros((3, size, size))
    for x, y, flux, g_r, i_r in obs.stars:
        for b, ratio in enumerate((g_r, 1.0, i_r)):
            _splat(sources[b], x, y, flux * ratio)
    for x, y, flux, r_e, q, theta, g_r, i_r in obs.bg_galaxies:
        prof = _small_galaxy(size, x, y, r_e, q, theta)
        for b, ratio in enumerate((g_r, 1.0, i_r)):
            sources[b] += flux * ratio * prof
    ksize = int(min(size - 1, max(15, 10 * obs.psf_fwhm))) | 1
    peak_r = float(bands[..., 1].max())
    out = np.empty((size, size, 3))
    sky_rgb = np.array(obs.sky_colour)
    c = (np.arange(size) - size / 2) / size
    ga = math.radians(obs.gradient_angle)
    plane = obs.gradient * (c[None, :] * math.cos(ga) + c[:, None] * math.sin(ga))
    gx, gy = obs.glow_xy
    glow = obs.glow * np.exp(-(((c[None, :] - gx) ** 2 + (c[:, None] - gy) ** 2) / 0.08))
    for b in range(3):
        kernel = moffat_kernel(ksize, obs.psf_fwhm * obs.psf_band_scale[b], obs.psf_beta, obs.psf_e, obs.psf_theta)
        signal = _convolve(bands[..., b] + sources[b], kernel)
        signal = np.maximum(signal, 0.0)
        sig_b = sigma * math.sqrt(sky_rgb[b])
        sky = obs.sky_over_sigma * sig_b
        total_sky = sky + (plane + glow) * sig_b
        # Poisson from a gain chosen so that the sky's shot noise plus read noise is sig_b.
        shot_var = sig_b * sig_b * (1.0 - obs.read_frac ** 2)
        gain = sky / shot_var  # counts per SB unit
        expected = np.maximum(signal + total_sky, 0.0) * gain
        counts = rng.poisson(np.minimum(expected, 1e12)).astype(np.float64)
        noise = counts / gain - (signal + total_sky)
        read = rng.normal(0.0, sig_b * obs.read_frac, size=(size, size))
        noise = noise + read
        if obs.noise_corr > 0:
            noise = _smooth(noise, obs.noise_corr)
        image = signal + total_sky + noise
        full_well = obs.saturation * peak_r * (sky_rgb[b] if b != 1 else 1.0)
        image = np.minimum(image, full_well)
        out[..., b] = (image - sky) / sig_b  # sky-subtracted (badly, where there is a gradient), in sigma
    return {"linear": out, "display": display(out, obs)}


def _smooth(noise: np.ndarray, s: float) -> np.ndarray:
    """Gaussian-smoothed noise, rescaled to its former standard deviation."""
    r = int(math.ceil(3 * s))
    x = np.arange(-r, r + 1)
    k1 = np.exp(-x * x / (2 * s * s))
    k1 /= k1.sum()
    sm = np.apply_along_axis(lambda row: np.convolve(row, k1, mode="same"), 1, noise)
    sm = np.apply_along_axis(lambda col: np.convolve(col, k1, mode="same"), 0, sm)
    return sm * (noise.std() / max(sm.std(), 1e-12))


def display(linear: np.ndarray, obs: Observation) -> np.ndarray:
    """Bands (g, r, i) in sigma units → uint8 RGB (or grey L) with the observation's stretch."""
    # Colour: R ← i, G ← r, B ← g, with the colour balance.
    rgb = np.stack([linear[..., 2], linear[..., 1], linear[..., 0]], axis=-1) * np.array(obs.balance)
    if obs.grey:
        idx = {"i": 0, "r": 1, "g": 2}
        grey = rgb.mean(axis=-1) if obs.grey == "sum" else rgb[..., idx[obs.grey]]
        rgb = grey[..., None]
    x = rgb - obs.black_sigma
    lum = x.mean(axis=-1)
    white = max(float(np.percentile(lum, obs.white_pct)) * obs.white_gain, 1.0)
    p = obs.stretch_param
    if obs.stretch == "lupton":
        # Colour-preserving: every channel scaled by f(I)/I of the mean intensity.
        i_mean = np.maximum(lum, 1e-6)
        f = np.arcsinh(p * i_mean / white) / math.asinh(p)
        y = np.maximum(x, 0) * (f / i_mean)[..., None]
        top = y.max(axis=-1, keepdims=True)
        y = np.where(top > 1.0, y / np.maximum(top, 1e-6), y)  # keep the hue where a channel saturates
    elif obs.stretch == "asinh":
        y = np.arcsinh(p * np.maximum(x, 0) / white) / math.asinh(p)
    elif obs.stretch == "log":
        y = np.log1p(p * np.maximum(x, 0) / white) / math.log1p(p)
    elif obs.stretch == "sqrt":
        y = np.sqrt(np.maximum(x, 0) / white)
    elif obs.stretch == "gamma":
        y = (np.maximum(x, 0) / white) ** p
    else:  # linear
        y = np.maximum(x, 0) / white
    y = np.clip(y, 0.0, None)
    if y.shape[-1] == 3 and obs.colour_saturation != 1.0:
        mean = y.mean(axis=-1, keepdims=True)
        y = mean + obs.colour_saturation * (y - mean)
    y = np.clip(y, 0.0, 1.0)
    ped = np.array(obs.pedestal[: y.shape[-1]], dtype=np.float64) / 255.0
    y = ped + (1.0 - ped) * y
    return np.round(np.clip(y, 0, 1) * 255).astype(np.uint8)


def encode(image: np.ndarray, obs: Observation) -> bytes:
    """PNG or JPEG bytes of the displayed image (grey as L)."""
    pil = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)
    buffer = io.BytesIO()
    if obs.fmt == "PNG":
        pil.save(buffer, format="PNG")
    else:
        kwargs = {"quality": int(obs.quality)}
        if pil.mode == "RGB":
            kwargs["subsampling"] = obs.subsampling
        pil.save(buffer, format="JPEG", **kwargs)
    return buffer.getvalue()
