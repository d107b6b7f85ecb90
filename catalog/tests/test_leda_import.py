"""The streaming HyperLEDA-style CSV import."""
import io

import pytest

from catalog.models import Galaxy
from catalog.selectors import target_resolve_name
from catalog.services import CatalogueFormatError, catalogue_import_leda_csv

pytestmark = pytest.mark.django_db

CSV = """PGC , al2000, de2000, logd25, pa, objname
2557, 0.712305, 41.26875, 3.25, 35.0, NGC0224
44182, 12.94550, 21.68211, 2.02, 115.0, NGC4826
12345678, 1.0, -10.0, , , 
"""


def test_import_converts_hours_and_log_diameters() -> None:
    report = catalogue_import_leda_csv(stream=io.StringIO(CSV), batch_size=2)
    assert report.created == 3
    m31 = Galaxy.objects.get(pgc=2557)
    assert m31.ra == pytest.approx(0.712305 * 15)
    assert m31.d25_arcmin == pytest.approx(0.1 * 10**3.25)
    assert m31.fov_arcmin == pytest.approx(266.74, abs=0.01)  # the original's fov for PGC 2557
    unnamed = Galaxy.objects.get(pgc=12345678)
    assert unnamed.name == "PGC12345678" and unnamed.d25_arcmin is None and unnamed.pa is None
    assert target_resolve_name(name="ngc 4826", use_remote=False).pgc == 44182


def test_reimport_updates_instead_of_duplicating() -> None:
    catalogue_import_leda_csv(stream=io.StringIO(CSV))
    catalogue_import_leda_csv(stream=io.StringIO(CSV.replace("35.0", "36.0")))
    assert Galaxy.objects.filter(pgc__in=[2557, 44182, 12345678]).count() == 3
    assert Galaxy.objects.get(pgc=2557).pa == 36.0


def test_bytes_stream_is_accepted() -> None:
    catalogue_import_leda_csv(stream=io.BytesIO(CSV.encode()))
    assert Galaxy.objects.filter(pgc__in=[2557, 44182, 12345678]).count() == 3


@pytest.mark.parametrize(
    ("text", "message"),
    [("", "empty"), ("pgc,ra\n1,2\n", "lacks the columns"), ("pgc,al2000,de2000,logd25,pa,objname\nx,1,2,3,4,a\n", "Line 2"),
     ("pgc,al2000,de2000,logd25,pa,objname\n5,25,2,3,4,a\n", "out of range")],
)
def test_malformed_csv_is_refused_with_a_message(text: str, message: str) -> None:
    with pytest.raises(CatalogueFormatError, match=message):
        catalogue_import_leda_csv(stream=io.StringIO(text))
