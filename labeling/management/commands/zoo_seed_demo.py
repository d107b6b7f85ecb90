"""Seed the Zoo's demo data: synthetic standards covering 40-90° (several morphologies each) and targets."""
from __future__ import annotations

import random

from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction

from catalog.models import Galaxy
from labeling.assignment import queue_add
from labeling.demo import seed_standards
from labeling.models import Standard
from labeling.synthetic import MORPHOLOGIES, synthetic_galaxy


class Command(BaseCommand):
    help = "Synthetic standards (two morphologies per degree, 40-90°) and N synthetic targets in the queue."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--targets", type=int, default=200)
        parser.add_argument("--per-degree", type=int, default=2)
        parser.add_argument("--size", type=int, default=96, help="Image size in pixels")
        parser.add_argument("--seed", type=int, default=1)

    def handle(self, *args: object, **options: int) -> None:
        rng = random.Random(options["seed"])
        with transaction.atomic():
            if Standard.objects.exists():
                self.stdout.write("Standards already present; keeping them.")
            else:
                made = seed_standards(per_value=options["per_degree"], size=options["size"])
                self.stdout.write(f"Created {len(made)} synthetic standards.")
            start = Galaxy.objects.filter(name__startswith="SYN-DEMO-").count()
            ids = []
            for k in range(start, start + options["targets"]):
                inclination = round(rng.uniform(40, 90), 1)
                galaxy = synthetic_galaxy(name=f"SYN-DEMO-{k:06d}", inclination=inclination, seed=10_000 + k,
                                          morphology=MORPHOLOGIES[k % 4], size=options["size"])
                ids.append(galaxy.id)
            queued = queue_add(galaxy_ids=ids)
        self.stdout.write(f"Queued {queued} synthetic targets for volunteers.")
