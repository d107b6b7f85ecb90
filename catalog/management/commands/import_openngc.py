"""Import (or refresh) every galaxy of the OpenNGC catalogue shipped with pyongc."""
from django.core.management.base import BaseCommand
from tqdm import tqdm

from catalog.services import catalogue_import_openngc


class Command(BaseCommand):
    help = "Import the OpenNGC galaxies (with PGC numbers and Messier/NGC/IC/UGC/common-name aliases). Idempotent."

    def handle(self, *args: object, **options: object) -> None:
        with tqdm(desc="OpenNGC", unit="galaxy", disable=options["verbosity"] == 0) as bar:
            report = catalogue_import_openngc(progress=bar.update)
        self.stdout.write(
            f"OpenNGC: {report.created} created, {report.updated} updated, {report.skipped} skipped, "
            f"{report.aliases} aliases"
        )
