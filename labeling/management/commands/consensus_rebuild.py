"""``manage.py consensus_rebuild``: recompute every galaxy's consensus from the append-only measurements.

``--check`` only compares (exit status 1 if any stored consensus differs from its measurements), so it
can run after a restore or on a schedule; without it, differing rows are rewritten.
"""
from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser

from labeling.consensus import consensus_rebuild


class Command(BaseCommand):
    help = "Rebuild the Zoo's consensus from the measurements (or --check that it matches)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--check", action="store_true", help="compare only; exit 1 if anything differs")

    def handle(self, *args: object, **options: bool) -> None:
        report = consensus_rebuild(apply=not options["check"])
        shown = ", ".join(str(i) for i in report.differing[:20]) + (" ..." if len(report.differing) > 20 else "")
        self.stdout.write(f"{report.checked} galaxies checked, {len(report.differing)} differed from their "
                          f"measurements{': ' + shown if report.differing else ''}; {report.written} rewritten.")
        if options["check"] and report.differing:
            raise CommandError(f"{len(report.differing)} stored consensus rows do not match their measurements")
