"""Synthetic spiral galaxies with exactly known inclination, for training, testing and demo data.

Each galaxy is a thick exponential disk (GalSim ``InclinedExponential``, h/R 0.08–0.25) plus a flattened
Sérsic bulge, an optional bar, log-spiral arms and star-forming clumps in the disk plane, a dust lane
for near edge-on disks, a Moffat PSF, sky noise and foreground stars (bright ones with diffraction
spikes). Components have their own colours, so g, r and i differ; the bands become asinh grey images
and an SDSS-like Lupton colour composite with JPEG artefacts. The galaxy fills about 2/3 of the field,
as in the original 1.5 × D25 cut-outs.

Rejects carry their reason: ``face_on`` (< 45°), ``bright_star`` on the disk, an overlapping
``companion``, ``low_snr``, or ``cut_off`` (masked or cut by the field edge).

Every galaxy is drawn from ``(seed, index)`` alone, so results do not depend on the number of workers.
"""
from __future__ import annotations

import io
import json
import math
import multiprocessing as mp
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

REJECT_REASONS = ("face_on", "bright_star", "companion", "low_snr", "cut_off")
BANDS = ("g", "r", "i")
# Relative flux per band (g, r, i) of each component: bulges and bars are red, arms and clumps blue.
COLOURS = {
    "disk": np.array([0.75, 1.0, 1.15]),
    "bulge": np.array([0.45, 1.0, 1.35]),
    "bar": np.array([0.55, 1.0, 1.3]),
    "arms": np.array([1.35, 1.0, 0.8]),
    "clumps": np.array([1.6, 1.0, 0.7]),
}


@dataclass(frozen=True)
class GeneratorConfig:
    """Ranges every galaxy's parameters are drawn from (uniform unless stated)."""

    size: int = 128
    inclination_range: tuple[float, float] = (45.0, 90.0)
    face_on_range: tuple[float, float] = (5.0, 42.0)
    h_over_r_range: tuple[float, float] = (0.08, 0.25)
    fill_fraction_range: tuple[float, float] = (0.6, 0.8)  # D25 / field; 1/1.5 in the original cut-outs
    bulge_fraction_range: tuple[float, float] = (0.0, 0.45)
    bulge_n_range: tuple[float, float] = (1.5, 4.0)
    bulge_flattening_range: tuple[float, float] = (0.55, 1.0)
    bar_probability: float = 0.35
    arm_strength_range: tuple[float, float] = (0.0, 0.9)
    arm_pitch_deg_range: tuple[float, float] = (10.0, 30.0)
    clump_count_range: tuple[int, int] = (0, 25)
    dust_strength_range: tuple[float, float] = (0.0, 0.8)
    warp_probability: float = 0.15
    psf_fwhm_px_range: tuple[float, float] = (1.2, 2.6)
    snr_range: tuple[float, float] = (25.0, 120.0)  # peak surface brightness over sky noise
    star_count_mean: float = 2.0
    jpeg_quality_range: tuple[int, int] = (75, 95)
    reject_fraction: float = 0.0
    reject_reasons: tuple[str, ...] = REJECT_REASONS

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def robustness_config(**overrides: Any) -> GeneratorConfig:
    """Ranges the training set does not use: sharper and blurrier PSFs, noisier skies, smaller and
    larger galaxies, thinner and thicker disks, stronger bars and dust, lower JPEG qualities."""
    base = GeneratorConfig(
        h_over_r_range=(0.05, 0.08),
        fill_fraction_range=(0.4, 0.6),
        bulge_fraction_range=(0.45, 0.6),
        bar_probability=0.7,
        dust_strength_range=(0.8, 1.0),
        psf_fwhm_px_range=(2.6, 3.6),
        snr_range=(12.0, 25.0),
        jpeg_quality_range=(45, 75),
    )
    return replace(base, **overrides)


@dataclass
class SyntheticGalaxy:
    colour: np.ndarray  # uint8 (H, W, 3), Lupton composite with JPEG artefacts
    g: np.ndarray  # uint8 (H, W), asinh-stretched
    r: np.ndarray
    i: np.ndarray
    truth: dict[str, Any] = field(default_factory=dict)

    def band(self, name: str) -> np.ndarray:
        return {"colour": self.colour, "g": self.g, "r": self.r, "i": self.i}[name]


# --- parameter drawing ----------------------------------------------------------------------

def _uniform(rng: np.random.Generator, bounds: Sequence[float]) -> float:
    return float(rng.uniform(bounds[0], bounds[1]))


def draw_parameters(config: GeneratorConfig, *, seed: int, index: int) -> dict[str, Any]:
    rng = np.random.default_rng([seed, index])
    reason = None
    if rng.random() < config.reject_fraction and config.reject_reasons:
        reason = str(rng.choice(config.reject_reasons))
    inclination = _uniform(rng, config.face_on_range if reason == "face_on" else config.inclination_range)
    fill = _uniform(rng, config.fill_fraction_range)
    r25 = fill * config.size / 2  # D25/2 in pixels
    params = {
        "inclination": inclination,
        "position_angle": _uniform(rng, (0.0, 180.0)),
        "reason": reason,
        "r25_px": r25,
        "scale_radius_px": r25 / _uniform(rng, (3.2, 4.2)),  # R25 is 3–4 exponential scale lengths
        "h_over_r": _uniform(rng, config.h_over_r_range),
        "bulge_fraction": _uniform(rng, config.bulge_fraction_range),
        "bulge_n": _uniform(rng, config.bulge_n_range),
        "bulge_re_frac": _uniform(rng, (0.08, 0.25)),
        "bulge_flattening": _uniform(rng, config.bulge_flattening_range),
        "bar": bool(rng.random() < config.bar_probability),
        "bar_angle": _uniform(rng, (0.0, 180.0)),
        "bar_length_frac": _uniform(rng, (0.25, 0.5)),
        "arm_strength": _uniform(rng, config.arm_strength_range),
        "arm_pitch_deg": _uniform(rng, config.arm_pitch_deg_range),
        "arm_count": int(rng.choice([2, 2, 2, 3, 4])),
        "arm_phase": _uniform(rng, (0.0, 2 * math.pi)),
        "clumps": int(rng.integers(config.clump_count_range[0], config.clump_count_range[1] + 1)),
        "dust_strength": _uniform(rng, config.dust_strength_range),
        "warp": float(rng.uniform(0.03, 0.1)) if rng.random() < config.warp_probability else 0.0,
        "lopsided": float(rng.uniform(0.0, 0.15)),
        "psf_fwhm_px": _uniform(rng, config.psf_fwhm_px_range),
        "snr": _uniform(rng, (4.0, 9.0) if reason == "low_snr" else config.snr_range),
        "stars": int(rng.poisson(config.star_count_mean)),
        "jpeg_quality": int(rng.integers(config.jpeg_quality_range[0], config.jpeg_quality_range[1] + 1)),
        "colour_tilt": float(rng.normal(0.0, 0.08)),
        "noise_seed": int(rng.integers(0, 2**31 - 1)),
        "d25_arcmin": _uniform(rng, (0.6, 4.0)),
    }
    return params


# --- rendering ------------------------------------------------------------------------------

def _grid(size: int, pa_deg: float, inclination_deg: float, centre: tuple[float, float]) -> dict[str, np.ndarray]:
    """Sky pixel coordinates, their rotation into the major axis frame, and disk-plane coordinates."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float64)
    x -= centre[0]
    y -= centre[1]
    theta = math.radians(pa_deg)
    along = x * math.cos(theta) + y * math.sin(theta)  # along the major axis
    across = -x * math.sin(theta) + y * math.cos(theta)
    cos_i = max(math.cos(math.radians(inclination_deg)), 0.02)
    plane_x, plane_y = along, across / cos_i
    return {"along": along, "across": across, "r": np.hypot(plane_x, plane_y), "phi": np.arctan2(plane_y, plane_x)}


def _disk_and_bulge(params: dict[str, Any], size: int, centre: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    import galsim

    pa = galsim.Angle(params["position_angle"], galsim.degrees)
    scale_radius = params["scale_radius_px"]
    disk = galsim.InclinedExponential(
        inclination=params["inclination"] * galsim.degrees, scale_radius=scale_radius,
        scale_height=params["h_over_r"] * scale_radius, flux=1.0,
    ).rotate(pa)
    offset = galsim.PositionD(centre[0] - (size - 1) / 2, centre[1] - (size - 1) / 2)
    disk_image = disk.drawImage(nx=size, ny=size, scale=1.0, method="no_pixel", offset=offset).array
    # A bulge is an oblate spheroid: its projected axis ratio grows toward face-on.
    cos_i = math.cos(math.radians(params["inclination"]))
    q_intrinsic = params["bulge_flattening"]
    q_projected = math.sqrt(q_intrinsic**2 * (1 - cos_i**2) + cos_i**2)
    bulge = galsim.Sersic(n=params["bulge_n"], half_light_radius=max(0.8, params["bulge_re_frac"] * params["r25_px"]), flux=1.0)
    bulge = bulge.shear(q=q_projected, beta=0 * galsim.degrees).rotate(pa)
    bulge_image = bulge.drawImage(nx=size, ny=size, scale=1.0, method="no_pixel", offset=offset).array
    return disk_image, bulge_image


def _bar(params: dict[str, Any], grid: dict[str, np.ndarray]) -> np.ndarray:
    if not params["bar"]:
        return np.zeros_like(grid["r"])
    angle = math.radians(params["bar_angle"])
    plane_x = grid["r"] * np.cos(grid["phi"] - angle)
    plane_y = grid["r"] * np.sin(grid["phi"] - angle)
    length = params["bar_length_frac"] * params["r25_px"]
    return np.exp(-((np.abs(plane_x) / length) ** 4) - (plane_y / (0.22 * length)) ** 2)


def _arms_and_clumps(params: dict[str, Any], grid: dict[str, np.ndarray], disk: np.ndarray,
                     rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    r = np.maximum(grid["r"], 1e-3)
    pitch = math.radians(params["arm_pitch_deg"])
    winding = np.log(r / params["scale_radius_px"]) / math.tan(pitch)
    pattern = np.cos(params["arm_count"] * (grid["phi"] - winding) + params["arm_phase"])
    # Arms start outside the bulge and fade at large radius.
    envelope = (1 - np.exp(-((r / (0.35 * params["r25_px"])) ** 2))) * np.exp(-r / (1.6 * params["r25_px"]))
    arms = params["arm_strength"] * disk * np.clip(pattern, 0, None) ** 2 * envelope * 2.0
    clumps = np.zeros_like(disk)
    for _ in range(params["clumps"]):
        radius = params["scale_radius_px"] * rng.gamma(2.0, 0.9)
        phi = rng.uniform(0, 2 * math.pi)
        dr = np.hypot(grid["r"] * np.cos(grid["phi"]) - radius * math.cos(phi),
                      grid["r"] * np.sin(grid["phi"]) - radius * math.sin(phi))
        clumps += rng.uniform(0.5, 2.0) * np.exp(-0.5 * (dr / rng.uniform(0.8, 2.0)) ** 2)
    clumps *= disk.max() * 0.12 * (params["arm_strength"] + 0.2)
    return arms, clumps


def _dust(params: dict[str, Any], grid: dict[str, np.ndarray]) -> np.ndarray:
    """Transmission of a mid-plane dust lane, seen only near edge-on and offset toward the near side."""
    inclination = params["inclination"]
    if inclination < 70 or params["dust_strength"] <= 0:
        return np.ones_like(grid["r"])
    edge_on = (inclination - 70) / 20
    width = 0.6 + params["h_over_r"] * params["scale_radius_px"] * 0.8
    offset = (90 - inclination) * 0.05 * params["scale_radius_px"] / 10
    radial = np.exp(-grid["r"] / (2.5 * params["scale_radius_px"]))
    tau = params["dust_strength"] * edge_on * radial * np.exp(-0.5 * ((grid["across"] - offset) / width) ** 2)
    return np.exp(-1.5 * tau)


def _warp_shift(params: dict[str, Any], grid: dict[str, np.ndarray], image: np.ndarray) -> np.ndarray:
    """An S-shaped warp: outer disk bent above and below the plane (shift perpendicular to the major axis)."""
    if params["warp"] <= 0:
        return image
    from scipy.ndimage import map_coordinates

    size = image.shape[0]
    along = grid["along"] / params["r25_px"]
    bend = params["warp"] * params["r25_px"] * np.sign(along) * np.clip(np.abs(along) - 0.5, 0, None) ** 2
    theta = math.radians(params["position_angle"])
    y, x = np.mgrid[0:size, 0:size].astype(np.float64)
    # Sample from the unwarped position: move against the perpendicular direction.
    xs = x + bend * math.sin(theta)
    ys = y - bend * math.cos(theta)
    return map_coordinates(image, [ys, xs], order=1, mode="constant")


def _moffat_kernel(fwhm: float, *, beta: float = 3.0) -> np.ndarray:
    alpha = fwhm / (2 * math.sqrt(2 ** (1 / beta) - 1))
    half = int(math.ceil(4 * fwhm))
    y, x = np.mgrid[-half: half + 1, -half: half + 1]
    kernel = (1 + (x**2 + y**2) / alpha**2) ** (-beta)
    return kernel / kernel.sum()


def _stars(params: dict[str, Any], size: int, peak: float, rng: np.random.Generator, grid: dict[str, np.ndarray]) -> np.ndarray:
    """Foreground stars as point sources (the PSF is applied later); bright ones get diffraction spikes."""
    image = np.zeros((size, size))
    placements = []
    for _ in range(params["stars"]):
        placements.append((rng.uniform(0, size), rng.uniform(0, size), peak * 10 ** rng.uniform(-0.8, 1.0)))
    if params["reason"] == "bright_star":
        # On the disk, within half of R25.
        radius, angle = rng.uniform(0.1, 0.5) * params["r25_px"], rng.uniform(0, 2 * math.pi)
        theta = math.radians(params["position_angle"])
        along, across = radius * math.cos(angle), radius * math.sin(angle) * math.cos(math.radians(params["inclination"]))
        x = size / 2 + along * math.cos(theta) - across * math.sin(theta)
        y = size / 2 + along * math.sin(theta) + across * math.cos(theta)
        placements.append((x, y, peak * rng.uniform(15, 40)))
    for x, y, flux in placements:
        ix, iy = int(np.clip(round(x), 0, size - 1)), int(np.clip(round(y), 0, size - 1))
        image[iy, ix] += flux * 6
        if flux > peak * 4:
            length = int(min(size / 3, 4 + 6 * math.log10(flux / peak + 1) * 3))
            spike = flux * 0.05 * np.exp(-np.arange(1, length) / (length / 3))
            for dx, dy in ((1, 0), (-1, 0), (0, 1), (0, -1)):
                for step, value in enumerate(spike, start=1):
                    sx, sy = ix + dx * step, iy + dy * step
                    if 0 <= sx < size and 0 <= sy < size:
                        image[sy, sx] += value
    return image


def _stretch_band(band: np.ndarray, sky_sigma: float) -> np.ndarray:
    from astropy.visualization import AsinhStretch

    lo = -1.0 * sky_sigma
    hi = np.percentile(band, 99.8) * 1.05 + sky_sigma
    scaled = np.clip((band - lo) / max(hi - lo, 1e-9), 0, 1)
    return (AsinhStretch(a=0.05)(scaled) * 255).round().astype(np.uint8)


def _jpeg(array: np.ndarray, quality: int) -> np.ndarray:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="JPEG", quality=quality)
    buffer.seek(0)
    return np.asarray(Image.open(buffer).convert("RGB"))


def render_galaxy(params: dict[str, Any], *, size: int = 128) -> SyntheticGalaxy:
    from astropy.visualization import make_lupton_rgb
    from scipy.signal import fftconvolve

    rng = np.random.default_rng(params["noise_seed"])
    centre = ((size - 1) / 2, (size - 1) / 2)
    if params["reason"] == "cut_off" and rng.random() < 0.5:
        shift = params["r25_px"] * rng.uniform(0.6, 0.9)
        angle = rng.uniform(0, 2 * math.pi)
        centre = (centre[0] + shift * math.cos(angle), centre[1] + shift * math.sin(angle))
        params = {**params, "cut_off_mode": "edge"}
    grid = _grid(size, params["position_angle"], params["inclination"], centre)
    disk, bulge = _disk_and_bulge(params, size, centre)
    disk = disk * (1 + params["lopsided"] * np.cos(grid["phi"]) * np.clip(grid["r"] / params["r25_px"], 0, 1.5))
    arms, clumps = _arms_and_clumps(params, grid, disk, rng)
    bar = _bar(params, grid) * disk.max() * 0.5
    transmission = _dust(params, grid)
    bulge_fraction = params["bulge_fraction"]
    components = {
        "disk": disk * (1 - bulge_fraction),
        "arms": arms * (1 - bulge_fraction),
        "clumps": clumps * (1 - bulge_fraction),
        "bar": bar * (1 - bulge_fraction),
        "bulge": bulge * bulge_fraction * disk.sum() / max(bulge.sum(), 1e-12),
    }
    if params["reason"] == "companion":
        companion_params = {**params, "inclination": rng.uniform(30, 85), "position_angle": rng.uniform(0, 180),
                            "scale_radius_px": params["scale_radius_px"] * rng.uniform(0.5, 0.9)}
        offset = params["r25_px"] * rng.uniform(0.35, 0.7)
        angle = rng.uniform(0, 2 * math.pi)
        companion_disk, companion_bulge = _disk_and_bulge(
            companion_params, size, (centre[0] + offset * math.cos(angle), centre[1] + offset * math.sin(angle)))
        components["bulge"] = components["bulge"] + (companion_disk + 0.4 * companion_bulge) * rng.uniform(0.5, 1.0)
    tilt = np.array([1 - params["colour_tilt"], 1.0, 1 + params["colour_tilt"]])
    bands = []
    peak = float((components["disk"] + components["bulge"]).max())
    sky_sigma = peak / params["snr"]
    stars_point = _stars(params, size, peak, rng, grid)
    star_colour = rng.uniform(0.6, 1.4, size=3)
    for band_index in range(3):
        light = sum(components[name] * COLOURS[name][band_index] for name in components) * tilt[band_index]
        # Dust reddens: it absorbs g more than i.
        light = light * transmission ** (1.3 - 0.3 * band_index)
        light = _warp_shift(params, grid, light) + stars_point * star_colour[band_index]
        fwhm = params["psf_fwhm_px"] * (1.1 - 0.05 * band_index)
        light = fftconvolve(light, _moffat_kernel(fwhm), mode="same")
        light = light + rng.normal(0.0, sky_sigma, light.shape)
        if params["reason"] == "cut_off" and params.get("cut_off_mode") != "edge":
            bands.append(light)  # masked below, identically in every band
        else:
            bands.append(light)
    if params["reason"] == "cut_off" and params.get("cut_off_mode") != "edge":
        # A masked strip across part of the galaxy, as pipeline artefacts leave.
        width = int(size * rng.uniform(0.15, 0.35))
        start = int(size / 2 + rng.uniform(-0.4, 0.1) * size)
        vertical = rng.random() < 0.5
        for band in bands:
            if vertical:
                band[:, max(0, start): start + width] = 0.0
            else:
                band[max(0, start): start + width, :] = 0.0
    g, r, i = bands
    with np.errstate(invalid="ignore", divide="ignore"):  # astropy divides by zero-intensity sky pixels
        colour = make_lupton_rgb(i / sky_sigma, r / sky_sigma, g / sky_sigma, stretch=params["snr"] * 0.12, Q=10)
    colour = _jpeg(colour, params["jpeg_quality"])
    truth = {key: params[key] for key in (
        "inclination", "position_angle", "reason", "h_over_r", "bulge_fraction", "bulge_n", "bar", "arm_strength",
        "clumps", "dust_strength", "warp", "psf_fwhm_px", "snr", "stars", "jpeg_quality", "d25_arcmin", "r25_px")}
    truth["accepted"] = params["reason"] is None
    truth["cut_off_mode"] = params.get("cut_off_mode", "mask" if params["reason"] == "cut_off" else None)
    return SyntheticGalaxy(colour=colour, g=_stretch_band(g, sky_sigma), r=_stretch_band(r, sky_sigma),
                           i=_stretch_band(i, sky_sigma), truth=truth)


def _render_index(args: tuple[GeneratorConfig, int, int]) -> SyntheticGalaxy:
    config, seed, index = args
    params = draw_parameters(config, seed=seed, index=index)
    galaxy = render_galaxy(params, size=config.size)
    galaxy.truth["index"] = index
    galaxy.truth["seed"] = seed
    return galaxy


def generate(config: GeneratorConfig, n: int, *, seed: int, workers: int = 2, start: int = 0) -> list[SyntheticGalaxy]:
    """Render galaxies ``start .. start+n-1``; identical for any number of workers."""
    jobs = [(config, seed, index) for index in range(start, start + n)]
    if workers <= 1 or n < 8:
        return [_render_index(job) for job in jobs]
    # GalSim deadlocks under fork; spawn starts clean interpreters.
    with mp.get_context("spawn").Pool(workers) as pool:
        return pool.map(_render_index, jobs, chunksize=max(1, n // (workers * 8)))


def save_npz(path: Path, galaxies: Sequence[SyntheticGalaxy]) -> None:
    """Arrays per band plus the truth as one JSON string, so the truth round-trips exactly."""
    np.savez_compressed(
        path,
        colour=np.stack([g.colour for g in galaxies]),
        g=np.stack([g.g for g in galaxies]),
        r=np.stack([g.r for g in galaxies]),
        i=np.stack([g.i for g in galaxies]),
        truth=np.array(json.dumps([g.truth for g in galaxies])),
    )


def load_npz(path: Path) -> list[SyntheticGalaxy]:
    with np.load(path, allow_pickle=False) as data:
        truths = json.loads(str(data["truth"]))
        return [SyntheticGalaxy(colour=data["colour"][k], g=data["g"][k], r=data["r"][k], i=data["i"][k], truth=truths[k])
                for k in range(len(truths))]
