"""Synthetic Zoo data: galaxy sketches with a known inclination, standards, targets, and simulated volunteers.

Used by the demo seed, the crowd simulation, the guide and the tests. The sketches are small asinh-stretched
discs drawn in a few milliseconds (``render_sketch_png``), not the training generator's galaxies
(``core.synthetic``, GalSim, tens of milliseconds each): their axis ratio follows the Holmberg relation
(``core.geometry.apparent_axis_ratio``), and nothing else of the physics is needed to place a standard.
"""
from __future__ import annotations

import io
import random
from dataclasses import dataclass

import numpy as np
from django.core.files.base import ContentFile
from PIL import Image

from catalog.models import Galaxy, GalaxyImage, GalaxySource, ImageKind
from catalog.names import normalise_name
from core.geometry import apparent_axis_ratio

# The sketches' types, told apart by their bulge share.
MORPHOLOGIES = ("Sa", "Sb", "Sc", "Sd")


def render_sketch_png(*, inclination: float, size: int = 96, seed: int = 0, morphology: str = "Sb",
                      colour: bool = True) -> bytes:
    """A PNG sketch of a disc galaxy (bulge + exponential disc + two arms) seen at ``inclination``."""
    rng = np.random.default_rng(seed)
    q = apparent_axis_ratio(inclination)
    y, x = np.mgrid[-1:1:size * 1j, -1:1:size * 1j]
    # Deproject so the arms and disc wind in the galaxy's own plane.
    xd, yd = x, y / max(q, 0.05)
    r = np.hypot(xd, yd) + 1e-6
    theta = np.arctan2(yd, xd)
    bulge_share = {"Sa": 0.6, "Sb": 0.4, "Sc": 0.25, "Sd": 0.1}.get(morphology, 0.3)
    scale = 0.22
    disc = np.exp(-r / scale)
    arms = 1 + 0.6 * np.cos(2 * (theta - np.log(r) / 0.35)) * np.exp(-r / 0.5)
    bulge = np.exp(-((x / 0.08) ** 2 + (y / (0.08 * max(q, 0.6))) ** 2))
    light = (1 - bulge_share) * disc * arms + bulge_share * bulge
    light += rng.normal(0, 0.004, light.shape)
    grey = np.arcsinh(np.clip(light, 0, None) / 0.02) / np.arcsinh(1 / 0.02)
    grey = np.clip(grey, 0, 1)
    if colour:
        rgb = np.stack([grey * 1.0, grey * 0.85 + 0.05 * bulge, grey * 0.7 + 0.1 * disc], axis=-1)
        pixels = (np.clip(rgb, 0, 1) * 255).astype(np.uint8)
        image = Image.fromarray(pixels, "RGB")
    else:
        image = Image.fromarray((grey * 255).astype(np.uint8), "L")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def synthetic_galaxy(*, name: str, inclination: float, seed: int, morphology: str = "Sb",
                     bands: tuple[str, ...] = ("colour", "g", "r", "i"), size: int = 96,
                     truth_extra: dict | None = None) -> Galaxy:
    """A synthetic galaxy with its truth and generated images (colour and/or g, r, i grey)."""
    rng = random.Random(seed)
    galaxy = Galaxy.objects.create(
        name=name, name_key=normalise_name(name), ra=rng.uniform(0, 359.9), dec=rng.uniform(-60, 60),
        d25_arcmin=1.0, pa=0.0, morph_type=morphology, source=GalaxySource.SYNTHETIC, pgc=None,
        truth={"inclination": inclination, **(truth_extra or {})},
    )
    for band in bands:
        data = render_sketch_png(inclination=inclination, size=size, seed=seed, morphology=morphology,
                                 colour=band == ImageKind.COLOUR)
        image = GalaxyImage(galaxy=galaxy, kind=band, source="synthetic", sha256=f"{seed:016x}{band}",
                            width=size, height=size, fov_arcmin=1.5)
        image.file.save(f"zoo-{name}-{band}.png", ContentFile(data), save=True)
    return galaxy


@dataclass(frozen=True)
class SimulatedVolunteer:
    """A volunteer whose adjustment to the truth is ``i_adj = a·i + b``: they report ``(truth − b)/a`` + noise."""

    username: str
    a: float
    b: float
    sigma: float

    def perceive(self, truth: float, rng: random.Random) -> float:
        return (truth - self.b) / self.a + rng.gauss(0.0, self.sigma)

    def unbias(self, value: float) -> float:
        return self.a * value + self.b


def draw_volunteers(*, n: int, seed: int) -> list[SimulatedVolunteer]:
    """a in 0.87-1.06 and b in −4..+10 (the original's 14 fitted users), with |a·67.5 + b − 67.5| ≤ 6; σ 2-5°."""
    rng = random.Random(seed)
    volunteers = []
    while len(volunteers) < n:
        a, b = rng.uniform(0.87, 1.06), rng.uniform(-4.0, 10.0)
        if abs(a * 67.5 + b - 67.5) > 6.0:
            continue
        volunteers.append(SimulatedVolunteer(f"sim{len(volunteers):02d}", a, b, rng.uniform(2.0, 5.0)))
    return volunteers


def place(*, value: float, standards: list[dict]) -> tuple[int | None, int | None]:
    """Neighbour ids around ``value`` in a left-to-right standard sequence (None at an end)."""
    left = None
    right = None
    for index, standard in enumerate(standards):
        if standard["inclination"] <= value:
            left = standard["id"]
            right = standards[index + 1]["id"] if index + 1 < len(standards) else None
        elif left is None:
            right = standards[0]["id"]
            break
    return left, right
