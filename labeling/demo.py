"""Demo data for the Zoo (``manage.py zoo_seed_demo``, and the tests and simulated crowd that need a grid):
synthetic standards at every degree of 40–90°."""
from __future__ import annotations

from .models import Standard
from .synthetic import MORPHOLOGIES, synthetic_galaxy


def seed_standards(*, per_value: int = 2, size: int = 24, seed: int = 1000) -> list[Standard]:
    """Synthetic standards at every integer 40-90° (several morphologies each): the grid and the gold set."""
    made = []
    for value in range(40, 91):
        for k in range(per_value):
            galaxy = synthetic_galaxy(name=f"SYN-STD-{value:02d}-{k}", inclination=float(value),
                                      seed=seed + value * 10 + k, morphology=MORPHOLOGIES[(value + k) % 4],
                                      bands=("colour",), size=size)
            made.append(Standard.objects.create(galaxy=galaxy, inclination=float(value),
                                                morphology=MORPHOLOGIES[(value + k) % 4]))
    return made
