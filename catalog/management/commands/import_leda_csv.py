"""Stream a HyperLEDA-style CSV (PGC, al2000 [h], de2000, logd25, pa, objname) into the catalogue."""
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from catalog.services import CatalogueFormatError, catalogue_import_leda_csv


class Command(BaseCommand):
    help = "Import a HyperLEDA-style CSV in bounded memory; rows are upserted on PGC."

    def add_arguments(self, parser) -> None:  # noqa: ANN001
        parser.add_argument("path", type=Path)
        parser.add_argument("--batch-size", type=int, default=5000)

    def handle(self, *args: object, path: Path, batch_size: int, **options: object) -> None:
        if not path.is_file():
            raise CommandError(f"No such file: {path}")
        with path.open(newline="", encoding="utf-8") as stream, tqdm(
            desc="LEDA", unit="row", disable=options["verbosity"] == 0
        ) as bar:
            try:
                report = catalogue_import_leda_csv(stream=stream, batch_size=batch_size, progress=bar.update)
            except CatalogueFormatError as exc:
                raise CommandError(str(exc)) from None
        self.stdout.write(f"LEDA: {report.created} rows upserted")
