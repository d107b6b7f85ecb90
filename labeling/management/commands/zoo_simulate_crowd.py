"""Simulate a crowd of biased volunteers voting through the real API, and report RMS against the truth.

Run it against a scratch database: it creates synthetic standards, galaxies and users.
"""
from __future__ import annotations

from django.core.management.base import BaseCommand, CommandParser

from labeling.simulation import simulate_crowd


class Command(BaseCommand):
    help = "Simulated crowd (default 30 volunteers, 500 synthetic galaxies): uncalibrated, calibrated, oracle RMS."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--volunteers", type=int, default=30)
        parser.add_argument("--galaxies", type=int, default=500)
        parser.add_argument("--seed", type=int, default=7)
        parser.add_argument("--calibrate-every", type=int, default=400, help="Run the calibration every N votes")

    def handle(self, *args: object, **options: object) -> None:
        result = simulate_crowd(n_volunteers=options["volunteers"], n_galaxies=options["galaxies"],
                                seed=options["seed"], calibrate_every=options["calibrate_every"],
                                log=self.stdout.write)
        for line in result.lines():
            self.stdout.write(line)
