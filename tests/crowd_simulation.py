"""A simulated crowd voting through the Zoo's real HTTP API (Django's test client, in process): a test harness.

Used by ``labeling/tests/test_crowd.py``, ``training/tests/test_retrain_loop.py`` and
``benchmarks/crowd_simulation.py``. Each simulated volunteer has a linear bias and a scatter; RMS figures against
the known truth are reported for the uncalibrated median, the calibrated consensus and the oracle (the same
votes with each volunteer's true bias removed).
"""
from __future__ import annotations

import random
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.test import Client
from django.urls import reverse

from labeling.assignment import queue_add
from labeling.calibration import calibration_fit
from labeling.demo import seed_standards
from labeling.models import Consensus, ConsensusStatus, Measurement, Standard
from labeling.selectors import agreement_ab_report
from labeling.stats import rms, weighted_median
from labeling.synthetic import MORPHOLOGIES, SimulatedVolunteer, draw_volunteers, place, synthetic_galaxy


def vote_once(*, client: Client, volunteer: SimulatedVolunteer, truth: dict[int, float],
              rng: random.Random) -> str:
    """Take the next task, place the target where this volunteer perceives it, submit. Returns what happened."""
    response = client.post(reverse("labeling:api-next"))
    if response.status_code == 404:
        return "empty"
    assert response.status_code == 200, response.content
    task = response.json()["task"]
    perceived = volunteer.perceive(truth[task["galaxy"]["id"]], rng)
    left, right = place(value=perceived, standards=task["standards"])
    if left is None:
        body: dict[str, Any] = {"face_on": True, "right_standard": right}
    else:
        low = int(next(s["inclination"] for s in task["standards"] if s["id"] == left))
        low = min(max(5 * round(low / 5), 45), 85)
        step2 = client.post(reverse("labeling:api-standards", args=[task["id"]]), {"step": 2, "low": low},
                            content_type="application/json")
        assert step2.status_code == 200, step2.content
        left, right = place(value=perceived, standards=step2.json()["standards"])
        if left is None and right is not None and perceived < 45:
            body = {"face_on": True, "right_standard": task["standards"][0]["id"]}
        else:
            body = {"left_standard": left, "right_standard": right, "step1_low": low}
    body.update({"display_mode": rng.choice(["colour", "g", "r", "i"]), "zoom": 1.0, "angle": 0.0})
    submitted = client.post(reverse("labeling:api-submit", args=[task["id"]]), body, content_type="application/json")
    if submitted.status_code == 409:
        return "conflict"
    assert submitted.status_code == 200, submitted.content
    return "voted"


@dataclass
class CrowdResult:
    galaxies: int
    volunteers: int
    votes: int
    gold_votes: int
    seconds: float
    rms_uncalibrated: float
    rms_calibrated: float
    rms_oracle: float
    ab_rms: float
    ab_sigma: float
    ab_expected: float
    ab_n: int
    retired: int
    statuses: dict[str, int] = field(default_factory=dict)

    def lines(self) -> list[str]:
        return [
            f"galaxies={self.galaxies} volunteers={self.volunteers} votes={self.votes} (gold {self.gold_votes}) "
            f"retired={self.retired} statuses={self.statuses} in {self.seconds:.1f}s",
            f"RMS vs truth: uncalibrated median {self.rms_uncalibrated:.2f}°, calibrated consensus "
            f"{self.rms_calibrated:.2f}°, oracle {self.rms_oracle:.2f}° "
            f"(calibrated/oracle = {self.rms_calibrated / self.rms_oracle:.3f})",
            f"A/B: N={self.ab_n} RMS={self.ab_rms:.2f}° σ={self.ab_sigma:.2f}°; "
            f"√(e_A²+e_B²) = {self.ab_expected:.2f}° (ratio {self.ab_rms / self.ab_expected:.2f})",
        ]


def simulate_crowd(*, n_volunteers: int = 30, n_galaxies: int = 500, seed: int = 7, calibrate_every: int = 400,
                   image_size: int = 16, log: Any = None) -> CrowdResult:
    """Create the crowd and the targets, vote until the queue is empty, calibrate, and measure the errors."""
    rng = random.Random(seed)
    started = time.monotonic()
    if not Standard.objects.exists():
        seed_standards(size=image_size)
    truth: dict[int, float] = {}
    with transaction.atomic():
        for k in range(n_galaxies):
            inclination = rng.uniform(48.0, 88.0)
            galaxy = synthetic_galaxy(name=f"SYN-CROWD-{seed}-{k:05d}", inclination=round(inclination, 2),
                                      seed=seed * 100_000 + k, morphology=MORPHOLOGIES[k % 4], bands=("colour",),
                                      size=image_size)
            truth[galaxy.id] = inclination
        queue_add(galaxy_ids=list(truth))
    truth.update(dict(Standard.objects.values_list("galaxy_id", "inclination")))
    volunteers = draw_volunteers(n=n_volunteers, seed=seed)
    users = {}
    clients = {}
    user_model = get_user_model()
    for volunteer in volunteers:
        user, _ = user_model.objects.get_or_create(username=f"{volunteer.username}-{seed}")
        users[volunteer.username] = user
        client = Client()
        client.force_login(user)
        clients[volunteer.username] = client
    active = list(volunteers)
    votes = 0
    while active:
        for volunteer in list(active):
            outcome = vote_once(client=clients[volunteer.username], volunteer=volunteer, truth=truth, rng=rng)
            if outcome == "empty":
                active.remove(volunteer)
            elif outcome == "voted":
                votes += 1
                if votes % calibrate_every == 0:
                    calibration_fit()
                    if log:
                        log(f"  {votes} votes, calibrated")
    calibration_fit()
    return crowd_measure(volunteers=volunteers, users=users, truth=truth, seed=seed, votes=votes,
                         n_galaxies=n_galaxies, seconds=time.monotonic() - started)


def crowd_measure(*, volunteers: list[SimulatedVolunteer], users: dict[str, Any], truth: dict[int, float],
                  seed: int, votes: int, n_galaxies: int, seconds: float) -> CrowdResult:
    """RMS against the truth of the uncalibrated median, the stored (calibrated) consensus and the oracle."""
    by_user = {users[v.username].id: v for v in volunteers}
    targets = _targets(truth)
    rows = list(Measurement.objects.filter(galaxy_id__in=list(targets),
                                           counted=True, is_gold=False, rejected=False, face_on=False,
                                           inclination_raw__isnull=False)
                .values_list("galaxy_id", "user_id", "inclination_raw"))
    raw_by_galaxy: dict[int, list[tuple[int, float]]] = {}
    for galaxy_id, user_id, raw in rows:
        raw_by_galaxy.setdefault(galaxy_id, []).append((user_id, raw))
    consensus = {c.galaxy_id: c for c in Consensus.objects.filter(galaxy_id__in=list(raw_by_galaxy))}
    d_unc, d_cal, d_orc = [], [], []
    for galaxy_id, pairs in raw_by_galaxy.items():
        c = consensus.get(galaxy_id)
        if c is None or c.status != ConsensusStatus.ACCEPTED or c.inc is None:
            continue
        t = truth[galaxy_id]
        d_unc.append(statistics.median(raw for _, raw in pairs) - t)
        d_cal.append(c.inc - t)
        d_orc.append(weighted_median([by_user[u].unbias(raw) for u, raw in pairs]) - t)
    report = agreement_ab_report(seed=seed)
    # Each group's own error against the truth on the shared galaxies: A−B should be √(e_A² + e_B²).
    e_a = rms([a - truth[g] for g, a in zip(report.galaxies, report.inc_a, strict=True)]) or 0.0
    e_b = rms([b - truth[g] for g, b in zip(report.galaxies, report.inc_b, strict=True)]) or 0.0
    statuses: dict[str, int] = {}
    for c in Consensus.objects.filter(galaxy_id__in=list(targets)):
        statuses[c.status or "-"] = statuses.get(c.status or "-", 0) + 1
    return CrowdResult(
        galaxies=n_galaxies, volunteers=len(volunteers), votes=votes,
        gold_votes=Measurement.objects.filter(is_gold=True, user__in=list(users.values())).count(),
        seconds=seconds, rms_uncalibrated=rms(d_unc) or 0.0, rms_calibrated=rms(d_cal) or 0.0,
        rms_oracle=rms(d_orc) or 0.0, ab_rms=report.rms or 0.0, ab_sigma=report.sigma or 0.0,
        ab_expected=(e_a ** 2 + e_b ** 2) ** 0.5, ab_n=report.n,
        retired=Consensus.objects.filter(galaxy_id__in=list(targets), retired=True).count(),
        statuses=statuses,
    )


def _targets(truth: dict[int, float]) -> set[int]:
    standards = set(Standard.objects.values_list("galaxy_id", flat=True))
    return {g for g in truth if g not in standards}
