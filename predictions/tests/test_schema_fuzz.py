"""Schemathesis fuzzes every operation in ``/api/schema/`` in-process (WSGI) and checks each response:
no 5xx, and status code, content type, headers and body all as the schema documents them.

It runs against a live-looking site: the OpenNGC catalogue, the local fake image and name services and an
active ensemble of tiny real Keras networks, so that valid requests (the schema's examples, real PGC
numbers) reach the ensemble and are validated as 200 bodies, not just rejected early as 4xx.

Bounded for CI: a few dozen examples per operation and no Hypothesis deadline (one evaluation runs a
Keras graph, whose first call is slow).
"""
from __future__ import annotations

import os

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.conf import settings as django_settings
from django.core.cache import cache
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings as hypothesis_settings
from rest_framework.throttling import SimpleRateThrottle

pytestmark = pytest.mark.django_db

MAX_EXAMPLES = 25  # per operation; about two minutes for the whole schema on 2 cores


# Loaded at import (pytest-django has set Django up by then): ``schemathesis.pytest.from_fixture`` would be
# the lazy alternative, but 4.32.5 reads ``Function._nodeid``, which pytest 9 no longer has.
schema = schemathesis.openapi.from_wsgi(f"{django_settings.WEBROOT}api/schema/", get_wsgi_application())


@pytest.fixture
def live_site(catalogue: None, fake_services: Any, active_tiny_ensemble: Any,  # noqa: ANN401
              monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Catalogue, fake remote services and an active ensemble, with throttles and task queueing stubbed."""

    # Throttling is real and documented (429), but at 120/min the fuzzer would spend most of its examples
    # on 429s instead of reaching the views; the throttles have their own tests.
    monkeypatch.setattr(SimpleRateThrottle, "allow_request", lambda self, request, view: True)
    # A batch job's Celery task is queued, not run here: test_batch.py runs real workers. Recording the
    # call keeps the fuzzer from filling the test broker with jobs that no worker will consume.
    queued: list[str] = []
    monkeypatch.setattr("predictions.tasks.run_batch_job.delay", lambda job_id: queued.append(job_id))
    # A bare WSGI handler closes the database connection after every request (request_finished); Django's
    # test client disconnects that handler for the same reason: the test's transaction must stay open.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    cache.clear()
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)
        cache.clear()


# Derandomised so CI sees the same cases every run (a red build must be reproducible); set
# SCHEMA_FUZZ_RANDOM=1 to explore fresh cases locally, and pin what it finds as plain tests below.
HYPOTHESIS = hypothesis_settings(
    max_examples=MAX_EXAMPLES, deadline=None, derandomize=os.environ.get("SCHEMA_FUZZ_RANDOM") != "1",
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.function_scoped_fixture],
)

# Operations whose inputs are checked for meaning the schema cannot state: a file's content (a decodable
# PNG/JPEG/GIF, a zip or CSV), and sky positions and field sizes (RA 0–360° or 0–24 h, Dec ±90°, fov > 0,
# units). A schema-valid but meaningless value gets a documented 400 with the failed JSON, which
# ``positive_data_acceptance`` counts as a rejected valid request. Every other check runs on them, and
# test_api_contract.py covers their 400s case by case.
SEMANTIC_INPUT = {
    ("POST", "/api/file"), ("POST", "/api/batch"), ("GET", "/api/coords"), ("GET", "/api/catalog/resolve"),
}


@schema.include(path_regex=r"^/api/").parametrize()
@HYPOTHESIS
def test_prediction_and_catalogue_api_conform_to_the_schema(case: Any, live_site: None) -> None:  # noqa: ANN401
    """Every check, on every prediction and catalogue operation (see SEMANTIC_INPUT for the one exception)."""
    key = (case.operation.method.upper(), case.operation.path)
    excluded = [schemathesis.checks.positive_data_acceptance] if key in SEMANTIC_INPUT else []
    case.call_and_validate(excluded_checks=excluded)


# The Zoo's API, fuzzed anonymously: every operation must answer the documented 403 failed JSON (or a JSON
# 404 for ids that match no route), never a 5xx. Anonymous requests are refused before their body is read,
# so a schema-valid body cannot be "accepted" here; positive_data_acceptance is left out for that reason
# (labeling/tests/test_api.py drives the same operations as a logged-in volunteer).
@schema.include(path_regex=r"^/zoo/api/").parametrize()
@HYPOTHESIS
def test_zoo_api_conforms_to_the_schema(case: Any, live_site: None) -> None:  # noqa: ANN401
    case.call_and_validate(excluded_checks=[schemathesis.checks.positive_data_acceptance])


# Regressions the fuzzer found, pinned as plain tests so they do not depend on what Hypothesis draws.

def test_batch_result_with_a_non_uuid_id_is_404(client: Any) -> None:  # noqa: ANN401
    response = client.get(f"{django_settings.WEBROOT}api/batch/{'0' * 36}/result.csv")
    assert response.status_code == 404 and response.json() == {"status": "failed", "message": "No such batch job."}


def test_coords_without_a_catalogued_galaxy_has_a_null_pgc_in_the_schema(live_site: None) -> None:
    """An empty patch of sky: the answer's galaxy.pgc is null, which the schema must allow."""
    from werkzeug.test import Client as WsgiClient

    response = WsgiClient(get_wsgi_application()).get(f"{django_settings.WEBROOT}api/coords",
                                                       query_string={"ra": "0.5", "dec": "-89.5", "fov": "2"})
    assert response.status_code == 200 and response.get_json()["galaxy"]["pgc"] is None
    schema["/api/coords"]["GET"].validate_response(response)  # raises on any violation
