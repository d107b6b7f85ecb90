"""Catalogue API: look-ups succeed with the documented fields and fail with the documented JSON."""
import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


def test_pgc_lookup(client, catalogue) -> None:
    body = client.get(reverse("catalog-pgc", args=[5818])).json()
    assert body["status"] == "success" and body["objname"] == "NGC0598" and body["pgc"] == 5818


def test_unknown_pgc_is_404_failed_json(client, catalogue) -> None:
    response = client.get(reverse("catalog-pgc", args=[987654321]))
    assert response.status_code == 404
    assert response.json() == {"status": "failed", "message": "Could not find PGC987654321 in the database."}


@pytest.mark.parametrize("q", ["M33", "Triangulum Galaxy", "NGC 598"])
def test_resolve_by_name(client, catalogue, q: str) -> None:
    body = client.get(reverse("catalog-resolve"), {"q": q}).json()
    assert body["pgc"] == 5818


def test_resolve_position_with_field(client, catalogue) -> None:
    body = client.get(reverse("catalog-resolve"), {"q": "10h42m +41d16m", "fov": "30 arcsec"}).json()
    assert body["fov"] == 0.5 and body["ra"] == pytest.approx(160.5)


@pytest.mark.parametrize(
    ("params", "code"),
    [({"q": "NoSuchThing"}, 404), ({"q": "400 20", "fov": "5"}, 400), ({"q": "10 20", "fov": "0"}, 400),
     ({}, 400), ({"q": "<script>alert(1)</script>'; DROP TABLE catalog_galaxy;--"}, 404), ({"q": "x" * 300}, 400)],
)
def test_bad_queries_get_a_clear_4xx(client, catalogue, params: dict, code: int) -> None:
    response = client.get(reverse("catalog-resolve"), params)
    assert response.status_code == code
    body = response.json()
    assert body["status"] == "failed" and body["message"]


def test_openapi_docs_are_served(client) -> None:
    assert client.get(reverse("schema")).status_code == 200
    page = client.get(reverse("api-docs"))
    assert page.status_code == 200 and b"swagger" in page.content.lower()
