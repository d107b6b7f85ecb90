"""HyperLEDA on demand (issue 15): the real HTTP client against a local fake HyperLEDA, storing its answers,
and the APIs answering 503 with the reason when no name service can be asked (issue 16, finding 9)."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.core.cache import cache
from django.urls import reverse

from catalog.models import Galaxy, GalaxyAlias, GalaxySource
from catalog.resolvers import HyperLedaResolver, ResolverUnavailable, hyperleda_lookup, leda_objname, parse_hyperleda_csv
from catalog.services import galaxy_get_or_fetch_by_pgc
from tests.fake_services import FakeHyperLeda
from tests.fixtures_services import CLOSED_URL, offline_services  # noqa: F401 - a fixture

LEDA_ONLY_PGC = 3098765


@pytest.fixture
def fake_leda(settings: Any) -> Iterator[FakeHyperLeda]:
    with FakeHyperLeda() as leda:
        leda.configure(settings)
        cache.clear()
        yield leda
        cache.clear()


# --- the client --------------------------------------------------------------------------------

def test_resolver_reads_a_galaxy_by_pgc(fake_leda: FakeHyperLeda) -> None:
    record = HyperLedaResolver(fake_leda.url, timeout=2, retries=0).by_pgc(LEDA_ONLY_PGC)
    assert record is not None
    assert record.pgc == LEDA_ONLY_PGC and record.name == "SDSSJ123456.78+123456.7"
    assert record.ra == pytest.approx(12.5824389 * 15.0) and record.dec == pytest.approx(12.5824167)
    assert (record.morph_type, record.pa, record.logr25, record.incl, record.e_incl) == ("Sbc", 42.0, 0.31, 62.0, 3.4)
    assert record.d25_arcmin == pytest.approx(0.1 * 10**0.71)
    # The documented query: meandata, csv with ';', the columns asked by name, an SQL condition on pgc.
    params = fake_leda.last_params
    assert (params["n"], params["c"], params["a"], params["sql"]) == ("meandata", "o", "csv[;]", f"pgc={LEDA_ONLY_PGC}")
    assert params["d"].split(",") == ["objname", "pgc", "al2000", "de2000", "type", "logd25", "pa", "logr25",
                                      "incl", "e_incl"]


def test_resolver_reads_empty_cells_as_unknown(fake_leda: FakeHyperLeda) -> None:
    record = HyperLedaResolver(fake_leda.url, timeout=2, retries=0).by_pgc(3098766)
    assert record is not None
    assert (record.pa, record.logd25, record.incl, record.logr25, record.morph_type) == (None, None, None, 0.15, "")


def test_resolver_by_name_uses_hyperleda_designations(fake_leda: FakeHyperLeda) -> None:
    assert leda_objname("NGC 598") == "NGC0598" and leda_objname("ugc 1117") == "UGC01117"
    assert leda_objname("LEDA 5818") == "PGC5818"
    assert leda_objname("x'; drop table") is None  # never reaches the SQL
    record = HyperLedaResolver(fake_leda.url, timeout=2, retries=0).by_name("ESO123-045")
    assert record is not None and record.pgc == 987654
    assert fake_leda.last_params["sql"] == "objname='ESO123-045'"


def test_unknown_pgc_is_none(fake_leda: FakeHyperLeda) -> None:
    assert HyperLedaResolver(fake_leda.url, timeout=2, retries=0).by_pgc(424242) is None


def test_time_out_is_unavailable_with_the_reason(fake_leda: FakeHyperLeda) -> None:
    fake_leda.behaviour.delay_s = 1.5
    with pytest.raises(ResolverUnavailable, match="did not answer within 0.3 s"):
        HyperLedaResolver(fake_leda.url, timeout=0.3, retries=2).by_pgc(LEDA_ONLY_PGC)
    assert fake_leda.requests == 1  # a time-out already spent the budget: no retry


def test_server_errors_are_retried_with_back_off(fake_leda: FakeHyperLeda) -> None:
    fake_leda.behaviour.failures_before_success = 2
    record = HyperLedaResolver(fake_leda.url, timeout=2, retries=2).by_pgc(LEDA_ONLY_PGC)
    assert record is not None and fake_leda.requests == 3
    fake_leda.behaviour.failures_before_success = 5
    with pytest.raises(ResolverUnavailable, match="HTTP 500"):
        HyperLedaResolver(fake_leda.url, timeout=2, retries=1).by_pgc(LEDA_ONLY_PGC)


def test_garbage_is_unavailable_not_unknown(fake_leda: FakeHyperLeda) -> None:
    fake_leda.behaviour.garbage = True
    with pytest.raises(ResolverUnavailable, match="unexpected answer"):
        HyperLedaResolver(fake_leda.url, timeout=2, retries=0).by_pgc(LEDA_ONLY_PGC)


def test_parser_skips_comments_and_rows_without_a_position() -> None:
    body = ("# comment\n objname ; pgc ; al2000 ; de2000 ; pa \n"
            " NGC0001 ; 564 ; 0.1217 ; 27.708 ; 112.3 \n X ; 7 ;  ;  ;  \n")
    records = parse_hyperleda_csv(body)
    assert [(r.pgc, r.name, r.pa) for r in records] == [(564, "NGC0001", 112.3)]


# --- storage and the APIs ---------------------------------------------------------------------

@pytest.mark.django_db
def test_answer_is_stored_in_the_catalogue(fake_leda: FakeHyperLeda) -> None:
    galaxy = galaxy_get_or_fetch_by_pgc(pgc=LEDA_ONLY_PGC)
    stored = Galaxy.objects.get(pgc=LEDA_ONLY_PGC)
    assert stored.pk == galaxy.pk and stored.source == GalaxySource.HYPERLEDA
    assert (stored.pa, stored.logr25, stored.leda_inclination, stored.leda_inclination_error) == (42.0, 0.31, 62.0, 3.4)
    assert stored.catalogue_inclination == 62.0
    assert GalaxyAlias.objects.filter(galaxy=stored, key="PGC3098765").exists()
    cache.clear()
    calls = fake_leda.requests
    assert galaxy_get_or_fetch_by_pgc(pgc=LEDA_ONLY_PGC).pk == stored.pk
    assert fake_leda.requests == calls  # the catalogue answers now, not HyperLEDA


@pytest.mark.django_db
def test_catalogue_inclination_from_logr25_when_hyperleda_has_no_incl(fake_leda: FakeHyperLeda) -> None:
    galaxy = galaxy_get_or_fetch_by_pgc(pgc=3098766)
    # q = 10^-0.15 = 0.708; cos² i = (q² − 0.04)/0.96 → i ≈ 46.1°
    assert galaxy.catalogue_inclination == pytest.approx(46.1, abs=0.1)


@pytest.mark.django_db
def test_lookup_is_off_with_the_resolvers(fake_leda: FakeHyperLeda, settings: Any) -> None:
    settings.REMOTE_RESOLVERS_ENABLED = False
    assert hyperleda_lookup(pgc=LEDA_ONLY_PGC) is None and fake_leda.requests == 0


@pytest.mark.django_db
def test_catalog_pgc_api_answers_for_a_galaxy_only_hyperleda_knows(client, fake_leda: FakeHyperLeda) -> None:
    response = client.get(reverse("catalog-pgc", args=[LEDA_ONLY_PGC]))
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["pgc"] == LEDA_ONLY_PGC and body["pa"] == 42.0 and body["ra"] == pytest.approx(188.736583, abs=1e-5)
    assert body["fov"] == pytest.approx(1.5 * 0.1 * 10**0.71)
    resolved = client.get(reverse("catalog-resolve"), {"q": str(LEDA_ONLY_PGC)})
    assert resolved.status_code == 200 and resolved.json()["pgc"] == LEDA_ONLY_PGC


@pytest.mark.django_db
def test_unknown_pgc_is_404(client, fake_leda: FakeHyperLeda) -> None:
    calls = fake_leda.requests
    for response in (client.get(reverse("catalog-pgc", args=[424242])), client.get(reverse("api-pgc", args=["424242"]))):
        assert response.status_code == 404 and response.json()["status"] == "failed"
        assert response.json()["message"] == "Could not find PGC424242 in the database."  # the original's words
    assert fake_leda.requests == calls + 1  # asked once; "not known" is cached briefly


@pytest.mark.django_db
def test_unreachable_hyperleda_is_503_with_the_reason(client, settings: Any) -> None:
    settings.HYPERLEDA_URL = CLOSED_URL
    settings.REMOTE_RESOLVERS_ENABLED = True
    settings.REMOTE_RETRIES = 0
    cache.clear()
    for response in (client.get(reverse("catalog-pgc", args=[LEDA_ONLY_PGC])),
                     client.get(reverse("catalog-resolve"), {"q": str(LEDA_ONLY_PGC)}),
                     client.get(reverse("api-pgc", args=[str(LEDA_ONLY_PGC)]))):
        assert response.status_code == 503, response.content
        body = response.json()
        assert body["status"] == "failed" and "HyperLEDA cannot be reached" in body["message"]
        assert "ConnectionError" in body["message"]


@pytest.mark.django_db
def test_unreachable_name_resolvers_are_503_not_404(client, offline_services: None) -> None:
    for response in (client.get(reverse("catalog-resolve"), {"q": "ESO 123-G 45"}),
                     client.get(reverse("api-objname", args=["ESO 123-G 45"]))):
        assert response.status_code == 503, response.content
        assert "remote name resolvers are unreachable" in response.json()["message"]
