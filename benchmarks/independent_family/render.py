"""Draw and render the independent evaluation set: images plus ``truth.csv``.

    .venv/bin/python -m benchmarks.independent_family.render --n 600 --rejects 200 --seed 2026 --out var/independent

``--n`` clean galaxies (truth inclination uniform in 45–90°) and ``--rejects`` rejects, shared equally among
the reject reasons (``face_on``: inclination uniform in 0–44°). Every item is seeded from (seed, index)
alone, so a set is identical for any number of workers. Position angles are uniform in 0–180°.
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from . import REJECT_REASONS
from .model import Galaxy, reference_brightness, render_bands, sky_grid
from .observe import STRETCHES, Observation, encode, observe, resample

MAX_INTERNAL = 144  # the 3D integration's grid side; the image is resampled to its output size after it
TRUTH_FIELDS = (
    "file", "index", "accepted", "reason", "inclination", "pa", "size", "fov_d25", "centre_x", "centre_y",
    "r25_px", "q_thin", "fmt", "quality", "grey", "stretch", "psf_fwhm", "psf_beta", "snr25", "noise_corr",
    "r25_hr", "hz", "vertical", "bt", "bulge_n", "arms", "pitch", "flocculence", "bar", "dust_tau", "warp",
    "n_stars", "detail",
)


@dataclass
class Item:
    """One drawn image: the galaxy, its observation, placement and truth."""

    index: int
    kind: str  # "clean" or a reject reason
    galaxy: Galaxy
    obs: Observation
    fov_d25: float
    centre_px: tuple[float, float]  # galaxy centre offset from the image centre, output px (x right, y up)
    companion: Galaxy | None = None
    companion_scale: float = 1.0
    companion_centre_px: tuple[float, float] = (0.0, 0.0)
    companion_brightness: float = 1.0
    detail: str = ""


def _logu(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))


def draw_galaxy(rng: np.random.Generator, inclination: float) -> Galaxy:
    arms = int(rng.choice([0, 1, 2, 2, 2, 2, 3, 3, 4]))
    bar = bool(rng.random() < 0.3)
    dusty = rng.random() > 0.15
    warp = rng.random() < 0.25
    return Galaxy(
        inclination=float(inclination),
        pa=float(rng.uniform(0.0, 180.0)),
        r25=float(rng.uniform(3.0, 4.5)),
        hz=float(rng.uniform(0.1, 0.3)),
        vertical="sech2" if rng.random() < 0.7 else "exp",
        trunc=float(rng.uniform(0.95, 1.35)),
        trunc_soft=float(rng.uniform(0.03, 0.12)),
        bt=0.0 if rng.random() < 0.12 else float(rng.uniform(0.0, 0.5)),
        bulge_n=float(rng.uniform(1.0, 4.0)),
        bulge_re=float(rng.uniform(0.12, 0.45)),
        bulge_q=float(rng.uniform(0.45, 0.95)),
        young_frac=float(rng.uniform(0.05, 0.4)),
        young_h=float(rng.uniform(0.9, 1.4)),
        arms=arms,
        pitch=float(rng.uniform(8.0, 35.0)),
        arm_phase=float(rng.uniform(0.0, 360.0)),
        arm_sharp=float(rng.uniform(1.0, 4.0)),
        arm_in_old=float(rng.uniform(0.0, 0.3)),
        flocculence=float(rng.uniform(0.8, 1.4) if arms == 0 else rng.uniform(0.2, 1.2)),
        bar=bar,
        bar_len=float(rng.uniform(0.6, 1.6)),
        bar_ratio=float(rng.uniform(0.25, 0.45)),
        bar_angle=float(rng.uniform(0.0, 180.0)),
        bar_frac=float(rng.uniform(0.05, 0.2)),
        dust_tau=float(rng.uniform(0.3, 3.5) if dusty else rng.uniform(0.0, 0.2)),
        dust_hz=float(rng.uniform(0.2, 0.6)),
        dust_hr=float(rng.uniform(1.0, 1.6)),
        dust_arm=float(rng.uniform(0.2, 1.0)),
        ellipticity=float(rng.uniform(0.0, 0.1)),
        ellipticity_angle=float(rng.uniform(0.0, 180.0)),
        lopsided=float(rng.uniform(0.05, 0.25)) if rng.random() < 0.4 else 0.0,
        lopsided_phase=float(rng.uniform(0.0, 360.0)),
        warp=float(rng.uniform(0.08, 0.35)) if warp else 0.0,
        warp_start=float(rng.uniform(0.55, 0.9)),
        warp_phase=float(rng.uniform(0.0, 360.0)),
        col_old=(float(rng.uniform(0.62, 0.85)), float(rng.uniform(1.08, 1.28))),
        col_young=(float(rng.uniform(1.2, 1.8)), float(rng.uniform(0.7, 0.9))),
        col_bulge=(float(rng.uniform(0.42, 0.62)), float(rng.uniform(1.2, 1.45))),
        noise_seed=int(rng.integers(0, 2**31 - 1)),
    )


def draw_observation(rng: np.random.Generator, size: int, *, low_snr: bool) -> Observation:
    stretch = str(rng.choice(STRETCHES, p=[0.3, 0.2, 0.15, 0.12, 0.13, 0.1]))
    param = {"lupton": rng.uniform(3, 30), "asinh": rng.uniform(3, 50), "log": _logu(rng, 30, 1000),
             "gamma": rng.uniform(0.3, 0.6)}.get(stretch, 1.0)
    base_ped = rng.uniform(0, 20) if rng.random() < 0.4 else 0.0
    jpeg = rng.random() < 0.8
    grey = str(rng.choice(["g", "r", "i", "sum"])) if rng.random() < 0.15 else ""
    return Observation(
        size=size,
        psf_fwhm=_logu(rng, 1.0, 4.5),
        psf_beta=float(rng.uniform(1.8, 5.5)),
        psf_e=float(rng.uniform(0.0, 0.12)),
        psf_theta=float(rng.uniform(0.0, 180.0)),
        psf_band_scale=(1.0 + float(rng.uniform(0.0, 0.1)), 1.0, 1.0 - float(rng.uniform(0.0, 0.06))),
        snr25=_logu(rng, 0.08, 0.3) if low_snr else _logu(rng, 1.0, 25.0),
        sky_over_sigma=_logu(rng, 3.0, 100.0),
        read_frac=float(rng.uniform(0.05, 0.8)),
        sky_colour=(float(rng.uniform(0.5, 1.1)), 1.0, float(rng.uniform(1.0, 1.8))),
        gradient=float(rng.uniform(0.0, 4.0)) if rng.random() < 0.5 else 0.0,
        gradient_angle=float(rng.uniform(0.0, 360.0)),
        glow=float(rng.uniform(0.0, 6.0)) if rng.random() < 0.2 else 0.0,
        glow_xy=(float(rng.uniform(-0.6, 0.6)), float(rng.uniform(-0.6, 0.6))),
        noise_corr=float(rng.uniform(0.5, 1.3)) if rng.random() < 0.3 else 0.0,
        saturation=_logu(rng, 0.6, 30.0),
        stretch=stretch,
        stretch_param=float(param),
        black_sigma=float(rng.uniform(-0.5, 2.5)),
        white_pct=float(rng.uniform(99.0, 99.95)),
        white_gain=_logu(rng, 0.15, 0.6) if stretch == "linear" else _logu(rng, 0.5, 2.0),
        balance=tuple(float(v) for v in rng.uniform(0.8, 1.25, size=3)),
        colour_saturation=float(rng.uniform(0.6, 1.6)),
        pedestal=tuple(int(round(base_ped * f)) for f in rng.uniform(0.6, 1.2, size=3)),
        grey=grey,
        fmt="JPEG" if jpeg else "PNG",
        quality=int(rng.integers(45, 97)),
        subsampling=int(rng.choice([0, 2])),
    )


def projected_axes(gal: Galaxy, r25_px: float) -> tuple[float, float]:
    """Semi-axes (px) of the projected D25 ellipse of a disk of thickness h_z."""
    i = math.radians(gal.inclination)
    q = math.sqrt(math.cos(i) ** 2 + (2.0 * gal.hz / gal.r25) ** 2 * math.sin(i) ** 2)
    return r25_px, r25_px * min(q, 1.0)


def half_extent(a: float, b: float, pa_deg: float) -> tuple[float, float]:
    """Half-widths along x and y of an ellipse with semi-axes a, b at position angle pa."""
    t = math.radians(pa_deg)
    return (math.sqrt((a * math.cos(t)) ** 2 + (b * math.sin(t)) ** 2),
            math.sqrt((a * math.sin(t)) ** 2 + (b * math.cos(t)) ** 2))


def overhang(item_size: int, centre: tuple[float, float], hx: float, hy: float) -> float:
    """How far (px) the ellipse's bounding box reaches beyond the frame (negative: margin left)."""
    half = item_size / 2.0
    return max(abs(centre[0]) + hx - half, abs(centre[1]) + hy - half)


def in_ellipse(x: float, y: float, centre: tuple[float, float], a: float, b: float, pa_deg: float, grow: float) -> bool:
    """(x, y) relative to the image centre (y up) inside the ellipse grown by ``grow``."""
    t = math.radians(pa_deg)
    dx, dy = x - centre[0], y - centre[1]
    u = dx * math.cos(t) + dy * math.sin(t)
    v = -dx * math.sin(t) + dy * math.cos(t)
    return (u / (a * grow)) ** 2 + (v / (max(b, 1.0) * grow)) ** 2 <= 1.0


def kinds_for(n: int, rejects: int, seed: int) -> list[str]:
    kinds = ["clean"] * n + [REJECT_REASONS[k % len(REJECT_REASONS)] for k in range(rejects)]
    order = np.random.default_rng(np.random.SeedSequence([seed, 7_777])).permutation(len(kinds))
    return [kinds[k] for k in order]


def draw_item(seed: int, index: int, kind: str) -> Item:
    rng = np.random.default_rng(np.random.SeedSequence([seed, index, 20_261_202]))
    inc = float(rng.uniform(0.0, 44.0)) if kind == "face_on" else float(rng.uniform(45.0, 90.0))
    gal = draw_galaxy(rng, inc)
    size = int(rng.integers(128, 513))
    obs = draw_observation(rng, size, low_snr=kind == "low_snr")
    fov, centre, detail = _frame(rng, gal, size, kind)
    r25_px = size / (2.0 * fov)
    a, b = projected_axes(gal, r25_px)
    item = Item(index=index, kind=kind, galaxy=gal, obs=obs, fov_d25=fov, centre_px=centre, detail=detail)
    _add_field_sources(rng, item, size, a, b)
    if kind == "companion":
        _add_companion(rng, item, a, b, r25_px)
    return item


def _frame(rng: np.random.Generator, gal: Galaxy, size: int, kind: str) -> tuple[float, tuple[float, float], str]:
    """The field of view (in D25), the galaxy's centre offset in pixels and, for cut-off items, how it is cut
    ("zoom": zoomed in past the disk; "edge": pushed over an edge). Other items fit with a margin."""
    fov = float(rng.uniform(1.2, 2.5))
    detail = ""
    if kind == "cut_off":
        if rng.random() < 0.35:
            fov = float(rng.uniform(0.55, 0.85))  # zoomed in: the disk does not fit
            detail = "zoom"
        else:
            fov = float(rng.uniform(0.9, 1.6))
            detail = "edge"
    r25_px = size / (2.0 * fov)
    a, b = projected_axes(gal, r25_px)
    hx, hy = half_extent(a, b, gal.pa)
    centre = (0.0, 0.0)
    while detail == "zoom" and overhang(size, centre, hx, hy) < 0.25 * r25_px:
        fov *= 0.95  # zoom in until at least a quarter of R25 is cut off
        r25_px = size / (2.0 * fov)
        a, b = projected_axes(gal, r25_px)
        hx, hy = half_extent(a, b, gal.pa)
    if kind == "cut_off" and detail == "edge":
        # Push the galaxy toward a random edge until 25–60 % of R25 hangs over it.
        beyond = float(rng.uniform(0.25, 0.6)) * r25_px
        angle = rng.uniform(0, 2 * math.pi)
        ux, uy = math.cos(angle), math.sin(angle)
        # Solve for the distance d along (ux, uy) where the overhang reaches `beyond`.
        lo, hi = 0.0, size
        for _ in range(40):
            mid = (lo + hi) / 2
            if overhang(size, (mid * ux, mid * uy), hx, hy) < beyond:
                lo = mid
            else:
                hi = mid
        centre = (lo * ux, lo * uy)
    elif kind != "cut_off":
        for _ in range(20):
            centre = (float(rng.uniform(-0.06, 0.06) * size), float(rng.uniform(-0.06, 0.06) * size))
            if overhang(size, centre, hx, hy) <= -0.03 * size:
                break
            centre = (centre[0] * 0.5, centre[1] * 0.5)
        if overhang(size, centre, hx, hy) > -0.03 * size:
            # Widen the field until the D25 ellipse fits with a margin.
            while overhang(size, centre, hx, hy) > -0.03 * size:
                fov *= 1.05
                r25_px = size / (2.0 * fov)
                a, b = projected_axes(gal, r25_px)
                hx, hy = half_extent(a, b, gal.pa)
    return fov, centre, detail


def _add_field_sources(rng: np.random.Generator, item: Item, size: int, a: float, b: float) -> None:
    """Foreground stars (fluxes relative to the galaxy's r-band flux) and background galaxies, into ``item.obs``;
    a bright star on the disk for the bright_star reject."""
    gal, centre, kind = item.galaxy, item.centre_px, item.kind
    density = _logu(rng, 2.0, 60.0) * (size / 256.0) ** 2
    stars = []
    for _ in range(int(rng.poisson(density))):
        x, y = float(rng.uniform(-0.5, 0.5) * size), float(rng.uniform(-0.5, 0.5) * size)
        flux = 10 ** float(rng.uniform(-5.0, -1.5))
        if flux > 3e-3 and in_ellipse(x, y, centre, a, b, gal.pa, 1.25):
            continue  # a bright star on the disk only where the bright_star reject puts one
        stars.append([x, y, flux, *_star_colour(rng)])
    if kind == "clean" and rng.random() < 0.25:
        for _ in range(30):  # one bright star well off the disk
            x, y = float(rng.uniform(-0.48, 0.48) * size), float(rng.uniform(-0.48, 0.48) * size)
            if not in_ellipse(x, y, centre, a, b, gal.pa, 1.5):
                stars.append([x, y, 10 ** float(rng.uniform(-1.5, -0.3)), *_star_colour(rng)])
                break
    if kind == "bright_star":
        rad = 0.75 * math.sqrt(rng.uniform(0.0, 1.0))
        th = rng.uniform(0, 2 * math.pi)
        u, v = rad * a * math.cos(th), rad * max(b, 2.0) * math.sin(th)
        t = math.radians(gal.pa)
        x = centre[0] + u * math.cos(t) - v * math.sin(t)
        y = centre[1] + u * math.sin(t) + v * math.cos(t)
        stars.append([x, y, 10 ** float(rng.uniform(-1.0, 0.5)), *_star_colour(rng)])
        item.detail = f"star at ({x:.1f}, {y:.1f}) px"
    bgs = []
    for _ in range(int(rng.poisson(rng.uniform(0.0, 8.0) * (size / 256.0) ** 2))):
        x, y = float(rng.uniform(-0.5, 0.5) * size), float(rng.uniform(-0.5, 0.5) * size)
        if in_ellipse(x, y, centre, a, b, gal.pa, 1.2):
            continue
        bgs.append([x, y, 10 ** float(rng.uniform(-3.5, -1.8)), float(rng.uniform(0.8, 4.0)),
                    float(rng.uniform(0.3, 1.0)), float(rng.uniform(0, 180)), float(rng.uniform(0.35, 0.6)),
                    float(rng.uniform(1.25, 1.6))])
    item.obs.stars = stars
    item.obs.bg_galaxies = bgs


def _add_companion(rng: np.random.Generator, item: Item, a: float, b: float, r25_px: float) -> None:
    """A second galaxy whose D25 ellipse overlaps the main one's (the companion reject)."""
    gal, centre = item.galaxy, item.centre_px
    comp = draw_galaxy(rng, float(rng.uniform(0.0, 90.0)))
    scale = float(rng.uniform(0.35, 1.0))
    ca, cb = projected_axes(comp, r25_px * scale)
    # Centres close enough that the D25 ellipses overlap.
    ang = rng.uniform(0, 2 * math.pi)
    reach_main = _ellipse_radius(a, b, gal.pa, ang)
    reach_comp = _ellipse_radius(ca, cb, comp.pa, ang + math.pi)
    dist = float(rng.uniform(0.35, 0.85)) * (reach_main + reach_comp)
    item.companion = comp
    item.companion_scale = scale
    item.companion_centre_px = (centre[0] + dist * math.cos(ang), centre[1] + dist * math.sin(ang))
    item.companion_brightness = _logu(rng, 0.4, 2.0)
    item.detail = (f"companion i={comp.inclination:.0f} scale={scale:.2f} at "
                   f"({item.companion_centre_px[0]:.1f}, {item.companion_centre_px[1]:.1f}) px")


def _ellipse_radius(a: float, b: float, pa_deg: float, angle: float) -> float:
    """Distance from the centre to the ellipse along direction ``angle`` (radians)."""
    t = angle - math.radians(pa_deg)
    return 1.0 / math.sqrt((math.cos(t) / a) ** 2 + (math.sin(t) / max(b, 1.0)) ** 2)


def _star_colour(rng: np.random.Generator) -> tuple[float, float]:
    g_r = float(rng.uniform(-0.1, 1.4))
    r_i = float(rng.uniform(-0.05, 0.6)) * (0.3 + 0.7 * (g_r + 0.1) / 1.5)
    return 10 ** (-0.4 * g_r), 10 ** (0.4 * r_i)


def render_item(item: Item) -> dict[str, Any]:
    """Render one drawn item: ``{"bytes", "display", "linear", "truth"}``."""
    gal, obs = item.galaxy, item.obs
    size = obs.size
    n_int = min(size, MAX_INTERNAL)
    r25_px = size / (2.0 * item.fov_d25)
    width = size / r25_px * gal.r25  # field width in h_R
    px = width / size  # h_R per output pixel
    x, y = sky_grid(n_int, width, (item.centre_px[0] * px, item.centre_px[1] * px))
    bands = render_bands(gal, x, y)
    if item.companion is not None:
        comp = item.companion
        # The companion in its own h_R: its R25 spans ``scale`` × the main galaxy's R25 on the sky.
        k = comp.r25 / (gal.r25 * item.companion_scale)
        cx, cy = item.companion_centre_px
        xc, yc = sky_grid(n_int, width, (cx * px, cy * px))
        bands = bands + item.companion_brightness * render_bands(comp, xc * k, yc * k)
    hi = np.stack([resample(bands[..., b], size) for b in range(3)], axis=-1)
    hi = np.maximum(hi, 0.0)
    total_flux = float(hi[..., 1].sum())
    # Star and background positions to pixel coordinates (x right, y down), fluxes to SB·px units.
    obs_px = replace(obs,
                     stars=[(sx + size / 2 - 0.5, size / 2 - sy - 0.5, f * total_flux, c1, c2)
                            for sx, sy, f, c1, c2 in obs.stars],
                     bg_galaxies=[(bx + size / 2 - 0.5, size / 2 - by - 0.5, f * total_flux, re, q, th, c1, c2)
                                  for bx, by, f, re, q, th, c1, c2 in obs.bg_galaxies])
    rng = np.random.default_rng(np.random.SeedSequence([gal.noise_seed, 99]))
    result = observe(hi, obs_px, sb_ref=reference_brightness(gal), rng=rng)
    data = encode(result["display"], obs)
    a, b = projected_axes(gal, r25_px)
    truth = {
        "file": f"{item.index:05d}.{'jpg' if obs.fmt == 'JPEG' else 'png'}",
        "index": item.index,
        "accepted": int(item.kind == "clean"),
        "reason": "" if item.kind == "clean" else item.kind,
        "inclination": round(gal.inclination, 3),
        "pa": round(gal.pa % 180.0, 3),
        "size": size,
        "fov_d25": round(item.fov_d25, 4),
        "centre_x": round(item.centre_px[0], 2),
        "centre_y": round(item.centre_px[1], 2),
        "r25_px": round(r25_px, 2),
        "q_thin": round(b / a, 4),
        "fmt": obs.fmt,
        "quality": obs.quality if obs.fmt == "JPEG" else "",
        "grey": obs.grey,
        "stretch": obs.stretch,
        "psf_fwhm": round(obs.psf_fwhm, 3),
        "psf_beta": round(obs.psf_beta, 3),
        "snr25": round(obs.snr25, 4),
        "noise_corr": round(obs.noise_corr, 3),
        "r25_hr": round(gal.r25, 3),
        "hz": round(gal.hz, 4),
        "vertical": gal.vertical,
        "bt": round(gal.bt, 4),
        "bulge_n": round(gal.bulge_n, 3),
        "arms": gal.arms,
        "pitch": round(gal.pitch, 2),
        "flocculence": round(gal.flocculence, 3),
        "bar": int(gal.bar),
        "dust_tau": round(gal.dust_tau, 3),
        "warp": round(gal.warp, 3),
        "n_stars": len(obs.stars),
        "detail": item.detail,
    }
    return {"bytes": data, "display": result["display"], "linear": result["linear"], "truth": truth}


def _render_one(args: tuple[int, int, str]) -> tuple[dict[str, Any], bytes]:
    seed, index, kind = args
    out = render_item(draw_item(seed, index, kind))
    return out["truth"], out["bytes"]


def render_set(out: Path, *, n: int, rejects: int, seed: int, workers: int = 2) -> list[dict[str, Any]]:
    """Write the set's images and ``truth.csv`` (plus ``set.json``) to ``out``; returns the truth rows."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tasks = [(seed, index, kind) for index, kind in enumerate(kinds_for(n, rejects, seed))]
    rows: list[dict[str, Any]] = []
    if workers > 1:
        import multiprocessing as mp

        with mp.get_context("fork").Pool(workers) as pool:
            results = pool.imap(_render_one, tasks, chunksize=4)
            for truth, data in results:
                (out / truth["file"]).write_bytes(data)
                rows.append(truth)
    else:
        for task in tasks:
            truth, data = _render_one(task)
            (out / truth["file"]).write_bytes(data)
            rows.append(truth)
    with (out / "truth.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=TRUTH_FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    (out / "set.json").write_text(json.dumps({"family": "independent_family", "version": FAMILY_VERSION, "n": n,
                                              "rejects": rejects, "seed": seed}, indent=1))
    return rows


FAMILY_VERSION = 2


def read_truth(folder: Path) -> list[dict[str, Any]]:
    """The truth rows of a rendered set, typed."""
    rows = []
    with (Path(folder) / "truth.csv").open(newline="") as handle:
        for row in csv.DictReader(handle):
            row["index"] = int(row["index"])
            row["accepted"] = bool(int(row["accepted"]))
            for key in ("inclination", "pa", "fov_d25", "r25_px", "q_thin", "snr25"):
                row[key] = float(row[key])
            row["size"] = int(row["size"])
            rows.append(row)
    return rows


def contact_sheet(path: Path, *, seed: int = 1, tile: int = 160) -> None:
    """A PNG or JPEG (by suffix) of 12 clean galaxies (45–90°) and one image of each reject reason, labelled with their truth."""
    from PIL import Image, ImageDraw

    kinds = ["clean"] * 12 + list(REJECT_REASONS) + ["cut_off"]
    tiles = []
    for index, kind in enumerate(kinds):
        item = draw_item(seed, index, kind)
        if kind == "clean":  # spread the clean ones over 45–90
            item.galaxy.inclination = 45.0 + 45.0 * index / 11.0
        out = render_item(item)
        image = Image.fromarray(out["display"][..., 0] if out["display"].shape[-1] == 1 else out["display"])
        image = image.convert("RGB").resize((tile, tile), Image.Resampling.LANCZOS)
        draw = ImageDraw.Draw(image)
        t = out["truth"]
        label = f"i={t['inclination']:.0f} pa={t['pa']:.0f}" + (f" {kind}" if kind != "clean" else "")
        draw.rectangle((0, tile - 13, tile, tile), fill=(0, 0, 0))
        draw.text((3, tile - 12), label, fill=(255, 255, 0))
        draw.text((3, 2), f"{t['size']}px {t['stretch']}{' ' + t['grey'] if t['grey'] else ''} {t['fmt']}",
                  fill=(150, 220, 255))
        tiles.append(np.asarray(image))
    cols = 6
    rows = [np.concatenate(tiles[r * cols:(r + 1) * cols], axis=1) for r in range(len(tiles) // cols)]
    sheet = Image.fromarray(np.concatenate(rows, axis=0))
    if Path(path).suffix.lower() in (".jpg", ".jpeg"):
        sheet.save(path, quality=88)
    else:
        sheet.save(path, optimize=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Render the independent evaluation family to a folder.")
    parser.add_argument("--n", type=int, default=600, help="clean galaxies (truth 45–90°)")
    parser.add_argument("--rejects", type=int, default=200, help="rejects, equally of every reason")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--out", type=Path, default=Path("var/independent"))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--sheet", type=Path, default=None, help="only write a contact sheet PNG to this path")
    args = parser.parse_args(argv)
    if args.sheet:
        contact_sheet(args.sheet, seed=args.seed)
        print(f"contact sheet -> {args.sheet}")
        return
    start = time.perf_counter()
    rows = render_set(args.out, n=args.n, rejects=args.rejects, seed=args.seed, workers=args.workers)
    elapsed = time.perf_counter() - start
    reasons = {r: sum(1 for row in rows if row["reason"] == r) for r in REJECT_REASONS}
    print(f"{len(rows)} images ({args.n} clean, rejects {reasons}) in {elapsed:.1f} s "
          f"({elapsed / max(len(rows), 1) * 1000:.0f} ms each, {args.workers} workers) -> {args.out}")


if __name__ == "__main__":
    main()
