"""Name, PGC and position resolution against the real OpenNGC catalogue (no network)."""
import pytest

from catalog.models import Galaxy, GalaxyAlias
from catalog.selectors import GalaxyNotFound, galaxy_nearest, target_resolve, target_resolve_name, target_resolve_position
from catalog.services import catalogue_import_openngc

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "query", ["M33", "m 33", "NGC 598", "NGC0598", "ngc0598", "PGC 5818", "UGC 1117", "Triangulum Galaxy", "5818"]
)
def test_every_designation_of_m33_finds_pgc_5818(catalogue, query: str) -> None:
    target = target_resolve(query=query)
    assert target.pgc == 5818
    assert target.ra == pytest.approx(23.4621, abs=1e-3)
    assert target.dec == pytest.approx(30.6599, abs=1e-3)
    assert target.fov_arcmin == pytest.approx(1.5 * 62.09, rel=1e-3)  # 1.5 x D25


def test_common_name_without_galaxy_suffix(catalogue) -> None:
    assert target_resolve_name(name="Sombrero", use_remote=False).pgc == 42407


def test_sexagesimal_position_resolves_to_position_and_field(catalogue) -> None:
    target = target_resolve_position(position="10h42m +41d16m", field="5 arcmin")
    assert target.ra == pytest.approx(160.5)
    assert target.dec == pytest.approx(41.2667, abs=1e-4)
    assert target.fov_arcmin == 5.0


def test_position_on_a_galaxy_finds_it(catalogue) -> None:
    target = target_resolve_position(position="01h33m50.9s +30d39m36s")
    assert target.pgc == 5818 and target.resolved_by == "position"


def test_nearest_handles_ra_wraparound(db) -> None:
    from catalog.tests.factories import GalaxyFactory

    galaxy = GalaxyFactory(ra=359.99, dec=0.0)
    assert galaxy_nearest(ra=0.005, dec=0.0, radius_arcmin=1.0) == galaxy


def test_unknown_name_is_a_clear_not_found(catalogue) -> None:
    with pytest.raises(GalaxyNotFound, match="Could not find object NoSuchGalaxy123"):
        target_resolve(query="NoSuchGalaxy123")


def test_unknown_pgc_is_a_clear_not_found(catalogue) -> None:
    with pytest.raises(GalaxyNotFound, match="Could not find PGC999999999"):
        target_resolve(query="999999999")


def test_openngc_import_is_idempotent(catalogue) -> None:
    galaxies, aliases = Galaxy.objects.count(), GalaxyAlias.objects.count()
    assert galaxies > 10_000
    report = catalogue_import_openngc()
    assert report.created == 0
    assert (Galaxy.objects.count(), GalaxyAlias.objects.count()) == (galaxies, aliases)
