"""Load demo data for a machine with no internet: synthetic galaxies with known truth and their images.

Standards for the Galaxy Inclination Zoo are chosen among them by ``labeling``'s own command.
Idempotent: galaxies that already exist are left alone.
"""
from __future__ import annotations

import numpy as np
from django.core.management.base import BaseCommand
from django.db import transaction
from tqdm import tqdm

from catalog.models import Galaxy, GalaxySource, ImageKind
from catalog.services import galaxy_create_synthetic, galaxy_image_store
from core.synthetic import GeneratorConfig, generate


class Command(BaseCommand):
    help = "Render synthetic galaxies (seeded) and store them with their colour and g/r/i images."

    def add_arguments(self, parser) -> None:  # noqa: ANN001
        parser.add_argument("--count", type=int, default=240)
        parser.add_argument("--seed", type=int, default=20261124)
        parser.add_argument("--workers", type=int, default=2)

    def handle(self, *args: object, count: int, seed: int, workers: int, **options: object) -> None:
        existing = Galaxy.objects.filter(source=GalaxySource.SYNTHETIC).count()
        if existing >= count:
            self.stdout.write(f"Demo data: {existing} synthetic galaxies already present.")
            return
        config = GeneratorConfig(reject_fraction=0.15)
        rng = np.random.default_rng(seed)
        galaxies = generate(config, count, seed=seed, workers=workers)
        for index, galaxy in enumerate(tqdm(galaxies, total=count, desc="demo galaxies", disable=options["verbosity"] == 0)):
            name = f"SYN-{seed % 1000:03d}-{index:05d}"
            truth = {key: (float(value) if isinstance(value, np.floating) else value) for key, value in galaxy.truth.items()}
            with transaction.atomic():
                record = galaxy_create_synthetic(
                    name=name, ra=float(rng.uniform(0, 360)), dec=float(np.degrees(np.arcsin(rng.uniform(-1, 1)))),
                    d25_arcmin=float(truth.get("d25_arcmin", 1.0)), pa=float(truth.get("position_angle", 0.0)), truth=truth,
                )
                for kind, pixels in ((ImageKind.COLOUR, galaxy.colour), (ImageKind.G, galaxy.g), (ImageKind.R, galaxy.r),
                                     (ImageKind.I, galaxy.i)):
                    galaxy_image_store(galaxy=record, kind=kind, source="synthetic", pixels=pixels)
        self.stdout.write(f"Demo data: {count} synthetic galaxies with colour and g/r/i images.")
