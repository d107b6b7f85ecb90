"""Services: standards draws, assignment queues, submission rules, consensus, retirement and calibration."""
from __future__ import annotations

import random
import statistics
from datetime import timedelta

import pytest
from django.utils import timezone

from core.errors import InvalidInput
from labeling import errors
from labeling.assignment import assignment_draw_standards, assignment_next, gold_rate, queue_add, queue_sync_priorities
from labeling.calibration import calibration_fit
from labeling.consensus import consensus_retire, consensus_unretire
from labeling.export import consensus_export
from labeling.models import Assignment, Consensus, Measurement, VolunteerCalibration
from labeling.selectors import standards_draw, step_values
from labeling.standards import standard_propose
from labeling.stats import round_random, weighted_median
from labeling.submission import Placement, measurement_submit

from .factories import ImagedGalaxyFactory, MeasurementFactory, UserFactory

pytestmark = pytest.mark.django_db


def _vote(user, *, value: float, rng=None, reasons=(), face_on=False):  # noqa: ANN001, ANN202
    """Take a task and place it next to the standards around ``value``; returns the measurement."""
    rng = rng or random.Random(1)
    task = assignment_next(user=user, rng=rng)
    if face_on:
        placement = Placement(left_id=None, right_id=task.standards[0].id, step1_low=None, face_on=True)
    else:
        low = min(max(int(value // 5 * 5), 45), 85)
        seq = assignment_draw_standards(user=user, assignment_id=task.assignment.id, step=2, low=low, rng=rng)
        left = max((s for s in seq if s.inclination <= value), key=lambda s: s.inclination)
        right = next((s for s in seq if s.inclination > left.inclination), None)
        placement = Placement(left_id=left.id, right_id=right.id if right else None, step1_low=low, face_on=False)
    return measurement_submit(user=user, assignment_id=task.assignment.id, placement=placement,
                              reasons=reasons, rng=rng).measurement


def test_weighted_median_and_random_rounding() -> None:
    assert weighted_median([1, 2, 3, 4]) == 2.5
    data = random.Random(5)
    for n in range(1, 9):
        values = [data.uniform(45, 90) for _ in range(n)]
        assert weighted_median(values) == pytest.approx(statistics.median(values))
        assert weighted_median(values, [2.0] * n) == pytest.approx(statistics.median(values))
    # A heavier vote pulls the answer toward it smoothly, instead of jumping onto one vote.
    assert weighted_median([60, 62, 64, 66], [1, 1.1, 1, 1]) == pytest.approx(62.0 + 2 * 0.5 / 1.05)
    assert weighted_median([1, 2, 10], [1, 1, 5]) == pytest.approx(2 + 8 * 2 / 3)
    assert 9.5 < weighted_median([1, 2, 10], [1, 1, 50]) < 10
    assert weighted_median([5.0], [0.0]) is None
    rng = random.Random(3)
    assert {round_random(64.5, rng) for _ in range(50)} == {64, 65}
    assert round_random(64.2, rng) == 64


def test_step_grids_and_draws_are_sorted(grid) -> None:  # noqa: ANN001
    rng = random.Random(0)
    step1 = standards_draw(step=1, low=None, exclude_galaxy_id=None, rng=rng)
    assert [round(s.inclination) for s in step1] == list(range(45, 90, 5))
    step2 = standards_draw(step=2, low=60, exclude_galaxy_id=None, rng=rng)
    assert [round(s.inclination) for s in step2] == list(range(58, 67))
    assert step_values(step=2, low=85) == list(range(82, 91))
    assert step_values(step=2, low=45) == list(range(45, 54))


def test_result_is_mean_of_neighbours_rounded_at_random(grid, targets, no_gold) -> None:  # noqa: ANN001
    targets(1)
    m = _vote(UserFactory(), value=63.2)
    assert m.inclination_raw == 63.5
    assert m.inclination in (63, 64)
    assert (m.step1_low, m.step1_high) == (60, 65)
    assert m.left_standard.inclination == 63 and m.right_standard.inclination == 64
    assert m.counted and not m.is_gold


def test_breadth_first_prefers_started_galaxies(grid, targets, no_gold) -> None:  # noqa: ANN001
    fresh, started = targets(2)
    MeasurementFactory(galaxy=started)
    Consensus.objects.filter(galaxy=started).update(n_votes=1)
    task = assignment_next(user=UserFactory())
    assert task.assignment.galaxy_id == started.id
    assert task.queue == "breadth"


def test_never_the_same_galaxy_twice(grid, targets, no_gold) -> None:  # noqa: ANN001
    targets(2)
    user = UserFactory()
    first = _vote(user, value=70)
    second = _vote(user, value=70)
    assert first.galaxy_id != second.galaxy_id
    with pytest.raises(errors.NoTaskAvailable):
        assignment_next(user=user)


def test_held_lease_is_returned_again(grid, targets, no_gold) -> None:  # noqa: ANN001
    targets(2)
    user = UserFactory()
    first = assignment_next(user=user)
    again = assignment_next(user=user)
    assert again.assignment.id == first.assignment.id and again.queue == "held"
    assert [s.id for s in again.standards] == [s.id for s in first.standards]


def test_last_slot_goes_to_one_volunteer(grid, targets, no_gold, settings) -> None:  # noqa: ANN001
    settings.LABELING_MIN_VOTES = 3
    (galaxy,) = targets(1)
    for _ in range(2):
        MeasurementFactory(galaxy=galaxy, inclination_raw=50.5)
    Consensus.objects.filter(galaxy=galaxy).update(n_votes=2)
    assignment_next(user=UserFactory())
    with pytest.raises(errors.NoTaskAvailable):
        assignment_next(user=UserFactory())


def test_gold_schedule_decays_and_serves_standards(grid, targets) -> None:  # noqa: ANN001
    assert gold_rate(tasks_served=0) == pytest.approx(0.4)
    assert gold_rate(tasks_served=60) < 0.16
    assert gold_rate(tasks_served=10_000) == pytest.approx(0.05)
    targets(1)
    user = UserFactory()
    rng = random.Random(0)
    rng.random = lambda: 0.0  # the roll falls inside the gold share
    task = assignment_next(user=user, rng=rng)
    assert task.assignment.is_gold and task.queue == "gold"
    assert task.assignment.galaxy_id not in {s.galaxy_id for s in task.standards}


def test_gold_answer_gets_feedback_and_no_consensus(grid, settings) -> None:  # noqa: ANN001
    settings.LABELING_GOLD_START = 1.0
    user = UserFactory()
    task = assignment_next(user=user)
    assert task.assignment.is_gold
    placement = Placement(left_id=None, right_id=task.standards[0].id, step1_low=None, face_on=True)
    result = measurement_submit(user=user, assignment_id=task.assignment.id, placement=placement)
    assert result.measurement.is_gold and result.feedback is not None
    assert "correct" in result.feedback
    assert not Consensus.objects.filter(galaxy_id=task.assignment.galaxy_id).exists()


def test_priority_queue_reads_the_galaxy_priority(grid, targets, no_gold, settings) -> None:  # noqa: ANN001
    settings.LABELING_PRIORITY_SHARE = 1.0
    low, high = targets(2)
    high.labeling_priority = 5.0
    high.save()
    assert queue_sync_priorities() == 1
    task = assignment_next(user=UserFactory())
    assert task.assignment.galaxy_id == high.id and task.queue == "priority"


def test_three_agreeing_votes_retire_with_reason(grid, targets, no_gold) -> None:  # noqa: ANN001
    (galaxy,) = targets(1)
    for value in (70.2, 71.3, 72.1):
        _vote(UserFactory(), value=value)
    c = Consensus.objects.get(galaxy=galaxy)
    assert c.retired and c.retire_reason == "consensus" and c.status == "A"
    assert c.n_votes == 3 and 70 <= c.inc <= 72.5 and c.inc_e is not None


def test_disagreement_goes_to_max_votes(grid, targets, no_gold, settings) -> None:  # noqa: ANN001
    settings.LABELING_MAX_VOTES = 4
    settings.LABELING_AGREE_SPREAD = 2.0
    (galaxy,) = targets(1)
    for value in (50.2, 60.2, 70.2, 80.2):
        _vote(UserFactory(), value=value)
    c = Consensus.objects.get(galaxy=galaxy)
    assert c.retired and c.retire_reason == "max_votes" and c.n_votes == 4


def test_majority_rejects_give_J_and_face_on_gives_F(grid, targets, no_gold) -> None:  # noqa: ANN001
    rejected, face_on = targets(2)
    for _ in range(3):
        user = UserFactory()
        task = assignment_next(user=user)
        measurement_submit(user=user, assignment_id=task.assignment.id, placement=None,
                           reasons=["bad_TF", "disturbed"])
    # The first three volunteers took the breadth-first galaxy; the next three take the other one.
    for _ in range(3):
        _vote(UserFactory(), value=40, face_on=True)
    by_galaxy = {c.galaxy_id: c for c in Consensus.objects.all()}
    statuses = sorted((c.status, c.retire_reason) for c in by_galaxy.values())
    assert statuses == [("F", "face_on"), ("J", "rejected")]


def test_submit_refusals_leave_nothing_behind(grid, targets, no_gold) -> None:  # noqa: ANN001
    targets(2)
    user, other = UserFactory(), UserFactory()
    task = assignment_next(user=user)
    seq = assignment_draw_standards(user=user, assignment_id=task.assignment.id, step=2, low=60)
    good = Placement(left_id=seq[2].id, right_id=seq[3].id, step1_low=60, face_on=False)
    forged = Placement(left_id=seq[2].id, right_id=seq[5].id, step1_low=60, face_on=False)
    with pytest.raises(errors.ForgedNeighbours):
        measurement_submit(user=user, assignment_id=task.assignment.id, placement=forged)
    with pytest.raises(errors.NotAssigned):
        measurement_submit(user=other, assignment_id=task.assignment.id, placement=good)
    assert Measurement.objects.count() == 0
    measurement_submit(user=user, assignment_id=task.assignment.id, placement=good)
    with pytest.raises(errors.AlreadySubmitted):
        measurement_submit(user=user, assignment_id=task.assignment.id, placement=good)
    assert Measurement.objects.count() == 1
    assert Consensus.objects.get(galaxy_id=task.assignment.galaxy_id).n_votes == 1


def test_expired_lease_and_retired_galaxy_are_refused(grid, targets, no_gold) -> None:  # noqa: ANN001
    targets(2)
    user = UserFactory()
    task = assignment_next(user=user)
    Assignment.objects.filter(pk=task.assignment.pk).update(leased_until=timezone.now() - timedelta(seconds=1))
    placement = Placement(left_id=None, right_id=task.standards[0].id, step1_low=None, face_on=True)
    with pytest.raises(errors.LeaseExpired):
        measurement_submit(user=user, assignment_id=task.assignment.id, placement=placement)
    task2 = assignment_next(user=user)
    consensus_retire(galaxy_id=task2.assignment.galaxy_id, by=UserFactory(is_staff=True))
    placement = Placement(left_id=None, right_id=task2.standards[0].id, step1_low=None, face_on=True)
    with pytest.raises(errors.GalaxyRetired):
        measurement_submit(user=user, assignment_id=task2.assignment.id, placement=placement)
    assert Measurement.objects.count() == 0
    consensus_unretire(galaxy_id=task2.assignment.galaxy_id, by=UserFactory(is_staff=True))
    assert not Consensus.objects.get(galaxy_id=task2.assignment.galaxy_id).retired


def test_only_the_first_measurement_counts(grid, targets) -> None:  # noqa: ANN001
    (galaxy,) = targets(1)
    user = UserFactory()
    MeasurementFactory(user=user, galaxy=galaxy)
    second = MeasurementFactory.build(user=user, galaxy=galaxy)
    from django.db import IntegrityError, transaction

    with pytest.raises(IntegrityError), transaction.atomic():
        second.save()  # a second counted row for the same volunteer and galaxy is refused by the database
    MeasurementFactory(user=user, galaxy=galaxy, counted=False)
    assert Measurement.objects.filter(galaxy=galaxy, counted=True).count() == 1


def test_expert_agreement_adopts_the_median(db) -> None:  # noqa: ANN001
    galaxy = ImagedGalaxyFactory(inclination=70)
    experts = [UserFactory() for _ in range(3)]
    assert standard_propose(expert=experts[0], galaxy_id=galaxy.id, inclination=70) is None
    assert standard_propose(expert=experts[1], galaxy_id=galaxy.id, inclination=72.5) is None
    standard = standard_propose(expert=experts[2], galaxy_id=galaxy.id, inclination=71)
    assert standard is not None and standard.inclination == 71 and standard.method == "experts"
    assert standard.chosen_by.count() == 3


def test_calibration_recovers_a_linear_bias(grid, targets, no_gold, settings) -> None:  # noqa: ANN001
    settings.LABELING_CALIBRATION_MIN_N = 10
    rng = random.Random(5)
    users = [UserFactory() for _ in range(4)]
    biased = users[0]
    galaxies = [ImagedGalaxyFactory(inclination=50 + k) for k in range(30)]
    queue_add(galaxy_ids=[g.id for g in galaxies])
    for g in galaxies:
        truth = g.truth["inclination"]
        for user in users:
            value = truth + 6.0 if user == biased else truth + rng.gauss(0, 0.7)
            MeasurementFactory(user=user, galaxy=g, inclination_raw=value, inclination=round(value))
    report = calibration_fit()
    calibration = VolunteerCalibration.objects.get(user=biased)
    assert report.calibrated == 4
    assert report.converged and report.iterations < 12  # it settles, not just stops at the cap
    assert calibration.adjust(66.0) == pytest.approx(60.0, abs=1.0)
    identity = VolunteerCalibration.objects.get(user=users[1])
    assert identity.adjust(60.0) == pytest.approx(60.0, abs=1.0)
    # The consensus was recomputed with the calibrated values.
    c = Consensus.objects.get(galaxy=galaxies[10])
    assert c.inc == pytest.approx(60.0, abs=1.5)


def test_calibration_identity_below_the_minimum(grid, targets, settings) -> None:  # noqa: ANN001
    settings.LABELING_CALIBRATION_MIN_N = 50
    galaxies = targets(3)
    user = UserFactory()
    for g in galaxies:
        MeasurementFactory(user=user, galaxy=g, inclination_raw=80.5, inclination=80)
        MeasurementFactory(galaxy=g, inclination_raw=60.5, inclination=60)
    calibration_fit()
    c = VolunteerCalibration.objects.get(user=user)
    assert (c.a, c.b) == (1.0, 0.0)


def test_export_csv_and_json_columns(grid, targets, no_gold) -> None:  # noqa: ANN001
    targets(1)
    for value in (70.2, 71.3, 72.1):
        _vote(UserFactory(), value=value)
    data, n = consensus_export(fmt="csv")
    lines = data.decode().splitlines()
    assert n == 1 and lines[0] == "pgc,inc,inc_e,inc_flg,inc_n,inc_note"
    assert lines[1].split(",")[3:5] == ["0", "3"]
    data, n = consensus_export(fmt="json")
    import json

    (row,) = json.loads(data)
    assert set(row) == {"pgc", "inc", "inc_e", "inc_flg", "inc_n", "inc_note"} and 70 <= row["inc"] <= 72
    with pytest.raises(InvalidInput):
        consensus_export(fmt="xml")
