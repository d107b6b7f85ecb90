"""Issue 14, point 2: settled galaxies promoted to standards by the seed's rule, and the coverage of 45–90°."""
from __future__ import annotations

import pytest
from django.urls import reverse

from catalog.tests.factories import GalaxyFactory
from core.errors import InvalidInput, NotFound
from labeling import selectors
from labeling.models import Consensus, ConsensusStatus, Measurement, Standard, StandardMethod, VolunteerCalibration
from labeling.standards import standard_promote

from .factories import ProfileFactory, StandardFactory, UserFactory

pytestmark = pytest.mark.django_db


def _settled(values: list[float], *, experts: int = 0, inc_e: float = 1.0, retired: bool = True,
             status: str = ConsensusStatus.ACCEPTED):  # noqa: ANN202
    """A queued galaxy with one counted vote per value (the first ``experts`` by experts), its consensus set."""
    galaxy = GalaxyFactory()
    for k, value in enumerate(values):
        user = ProfileFactory(role="expert").user if k < experts else UserFactory()
        Measurement.objects.create(user=user, galaxy=galaxy, inclination_raw=value, inclination=round(value))
    ordered = sorted(values)
    Consensus.objects.create(galaxy=galaxy, n_votes=len(values), inc=ordered[len(values) // 2], inc_e=inc_e,
                             status=status, retired=retired, retire_reason="consensus" if retired else "")
    return galaxy


def test_three_within_three_degrees_make_a_standard_at_their_median() -> None:
    staff = UserFactory(is_staff=True)
    galaxy = _settled([70.0, 71.5, 72.8, 80.0])
    standard = standard_promote(galaxy_id=galaxy.id, by=staff)
    assert standard.inclination == pytest.approx(71.5) and standard.method == StandardMethod.CROWD
    assert staff in standard.chosen_by.all() and standard.chosen_by.count() == 4  # staff and the three voters
    assert Consensus.objects.filter(galaxy=galaxy).exists()  # its history stays
    with pytest.raises(InvalidInput):  # once only
        standard_promote(galaxy_id=galaxy.id, by=staff)


def test_experts_agreeing_are_used_before_the_crowd() -> None:
    # The crowd's tightest three are 60.0-60.4; the three experts agree on 62-64.5: the experts' median wins.
    galaxy = _settled([62.0, 63.0, 64.5, 60.0, 60.2, 60.4], experts=3)
    standard = standard_promote(galaxy_id=galaxy.id, by=UserFactory(is_staff=True))
    assert standard.inclination == pytest.approx(63.0)


def test_calibrated_values_are_what_count() -> None:
    galaxy = _settled([71.0, 72.0, 73.0])
    for m in Measurement.objects.filter(galaxy=galaxy):
        VolunteerCalibration.objects.create(user=m.user, a=1.0, b=-2.0)
    standard = standard_promote(galaxy_id=galaxy.id, by=UserFactory(is_staff=True))
    assert standard.inclination == pytest.approx(70.0)


@pytest.mark.parametrize("case, error", [
    ({"values": [70.0, 74.0, 78.0]}, InvalidInput),  # no three within 3°
    ({"values": [70.0, 71.0, 72.0], "inc_e": 3.5}, InvalidInput),  # scatter too large
    ({"values": [70.0, 71.0, 72.0], "retired": False}, InvalidInput),  # still being measured
    ({"values": [70.0, 71.0, 72.0], "status": ConsensusStatus.REJECTED}, InvalidInput),
    ({"values": [89.5, 90.0, 90.0]}, InvalidInput),  # 90 excluded, as the seed's standards
    ({"values": [30.0, 31.0, 32.0]}, InvalidInput),  # below the grid
])
def test_what_cannot_be_promoted(case, error) -> None:  # noqa: ANN001
    galaxy = _settled(**case)
    with pytest.raises(error):
        standard_promote(galaxy_id=galaxy.id, by=UserFactory(is_staff=True))
    assert not Standard.objects.filter(galaxy=galaxy).exists()


def test_unknown_galaxy() -> None:
    with pytest.raises(NotFound):
        standard_promote(galaxy_id=987654321, by=UserFactory(is_staff=True))


def test_coverage_reports_every_degree_with_fewer_than_three() -> None:
    for value in range(45, 91):
        for _ in range(3 if value != 60 else 1):
            StandardFactory(inclination=float(value) + (0.4 if value % 2 else -0.4) * (value < 90))
    StandardFactory(inclination=71.6)  # rounds to 72, not 71
    StandardFactory(inclination=44.0)  # outside the grid: not counted
    Standard.objects.filter(inclination=float(88) - 0.4).update(active=False)  # inactive ones do not count
    coverage = selectors.standard_coverage()
    gaps = {row["degree"]: row["n"] for row in coverage["gaps"]}
    assert gaps == {60: 1, 88: 0}
    assert coverage["missing"] == 5 and not coverage["complete"]
    counts = {row["degree"]: row["n"] for row in coverage["degrees"]}
    assert counts[72] == 4 and counts[71] == 3 and len(counts) == 46


def test_candidates_fill_gaps_first_and_the_staff_can_promote_them(staff) -> None:  # noqa: ANN001
    for _ in range(3):
        StandardFactory(inclination=50.0)  # 50° is covered; 67° is not
    gap_filler = _settled([66.0, 66.5, 67.0], inc_e=2.0)
    other = _settled([50.0, 50.1, 50.2], inc_e=0.1)
    _settled([70.0, 75.0, 80.0])  # no three agree: not a candidate
    _settled([70.0, 70.5, 71.0], inc_e=4.0)  # too scattered
    coverage = staff.get(reverse("labeling:api-staff-standard-coverage")).json()
    ids = [c["galaxy_id"] for c in coverage["candidates"]]
    assert ids == [gap_filler.id, other.id]
    assert coverage["candidates"][0]["fills_gap"] and coverage["coverage"]["gaps"]
    response = staff.post(reverse("labeling:api-staff-standard-promote"), {"galaxy_id": gap_filler.id}, format="json")
    assert response.status_code == 201 and response.json()["inclination"] == pytest.approx(66.5)
    again = staff.post(reverse("labeling:api-staff-standard-promote"), {"galaxy_id": gap_filler.id}, format="json")
    assert again.status_code == 400 and again.json()["status"] == "failed"
    for body in ({"galaxy_id": "x"}, {}, {"galaxy_id": -1}):
        assert staff.post(reverse("labeling:api-staff-standard-promote"), body, format="json").status_code == 400
    missing = staff.post(reverse("labeling:api-staff-standard-promote"), {"galaxy_id": 10**12}, format="json")
    assert missing.status_code == 404
    # The page: the gaps, the candidate list and its Promote button.
    page = staff.get(reverse("labeling:staff-standards")).content.decode()
    assert "Gaps" in page and f'value="{other.id}"' in page
    posted = staff.post(reverse("labeling:staff-standards"), {"galaxy_id": str(other.id)})
    assert posted.status_code == 302 and Standard.objects.filter(galaxy=other).exists()
    assert staff.post(reverse("labeling:staff-standards"), {"galaxy_id": "²"}).status_code == 400
    assert staff.post(reverse("labeling:staff-standards"), {"galaxy_id": "9" * 30}).status_code == 400
    # The staff report shows the gaps too.
    report = staff.get(reverse("labeling:report")).content.decode()
    assert 'id="standards-coverage"' in report and "Gaps" in report


def test_volunteers_cannot_promote(api) -> None:  # noqa: ANN001
    galaxy = _settled([70.0, 71.0, 72.0])
    assert api.post(reverse("labeling:api-staff-standard-promote"), {"galaxy_id": galaxy.id},
                    format="json").status_code == 403
    assert api.get(reverse("labeling:api-staff-standard-coverage")).status_code == 403
    assert api.post(reverse("labeling:staff-standards"), {"galaxy_id": galaxy.id}).status_code == 403
    assert not Standard.objects.exists()


def test_fill_gaps_promotes_until_each_degree_has_three(staff) -> None:  # noqa: ANN001
    for value in range(45, 91):
        for _ in range(3 if value not in (61, 75) else 2 if value == 61 else 0):
            StandardFactory(inclination=float(value) - 0.2 * (value == 90))
    at_61 = [_settled([60.6, 61.0, 61.3], inc_e=k * 0.5) for k in (1, 2)]  # only the tighter one is needed
    at_75 = [_settled([74.8, 75.0, 75.1], inc_e=1.0) for _ in range(4)]  # three of four are needed
    _settled([50.0, 50.2, 50.4])  # 50° is full: not promoted
    response = staff.post(reverse("labeling:staff-standards"), {"fill_gaps": "1"})
    assert response.status_code == 302 and response["Location"].endswith("filled=4")
    assert selectors.standard_coverage()["complete"]
    assert Standard.objects.filter(galaxy=at_61[0]).exists() and not Standard.objects.filter(galaxy=at_61[1]).exists()
    assert Standard.objects.filter(galaxy__in=at_75).count() == 3
    assert Standard.objects.filter(method=StandardMethod.CROWD).count() == 4
