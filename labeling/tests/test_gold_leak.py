"""Issue 16 finding 2: gold answers must not be visible before voting.

A gold task's target is a standard. It must not be recognisable from what any volunteer can read: not by its
image URL (tutorial and step grids list standards with their inclination and URL), not by its image bytes, and
not by its name ("SYN-STD-90-0"). Practice standards (the tutorial's examples) are never gold tasks.
"""
from __future__ import annotations

import hashlib
import io
import random
from datetime import timedelta

import numpy as np
import pytest
from django.urls import reverse
from django.utils import timezone
from PIL import Image
from rest_framework.test import APIClient

from labeling import selectors
from labeling.api import task_payload
from labeling.assignment import Task, _gold_galaxy
from labeling.demo import seed_standards
from labeling.models import Assignment, Measurement, Standard

from .factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def gold_only(settings):  # noqa: ANN001, ANN201
    """Every task is a gold task."""
    settings.LABELING_GOLD_START = 1.0
    settings.LABELING_GOLD_MIN = 1.0
    return settings


@pytest.fixture
def named_standards(db):  # noqa: ANN001, ANN201
    """The demo's standards, named as the demo names them (SYN-STD-<inclination>-<k>)."""
    return seed_standards(per_value=1, size=16)


def _client(user):  # noqa: ANN001, ANN202
    client = APIClient()
    client.force_login(user)
    return client


def _gold_task(client) -> dict:  # noqa: ANN001
    response = client.post(reverse("labeling:api-next"))
    assert response.status_code == 200, response.content
    task = response.json()["task"]
    assert Assignment.objects.get(pk=task["id"]).is_gold
    return task


def _image_urls_in(body) -> set[str]:  # noqa: ANN001
    """Every value of every ``images`` object anywhere in a JSON answer."""
    if isinstance(body, dict):
        found = set(body["images"].values()) if isinstance(body.get("images"), dict) else set()
        return found.union(*(_image_urls_in(v) for v in body.values()))
    if isinstance(body, list):
        return set().union(*(_image_urls_in(v) for v in body))
    return set()


def _every_listed_standard_url(client) -> set[str]:  # noqa: ANN001
    """Every image URL the tutorial hands a volunteer: its quiz, step 1 and step 2 at every interval."""
    urls: set[str] = set()
    for params in [{}, {"step": 1}] + [{"step": 2, "low": low, "target": 0} for low in range(45, 90, 5)]:
        response = client.get(reverse("labeling:api-tutorial"), params)
        assert response.status_code == 200, response.content
        urls |= _image_urls_in(response.json())
    assert len(urls) > 20
    return urls


@pytest.mark.parametrize("direct_media", [False, True], ids=["zoo-img-view", "media-urls-as-with-debug"])
def test_gold_target_urls_match_no_listed_standard(named_standards, gold_only, settings, direct_media) -> None:  # noqa: ANN001
    settings.LABELING_SERVE_MEDIA_DIRECTLY = direct_media
    client = _client(UserFactory())
    listed = _every_listed_standard_url(client)
    for _ in range(5):
        task = _gold_task(client)
        target_urls = set(task["images"].values())
        assert not target_urls & listed, "a gold target's image URL equals a standard's URL from the tutorial"
        grid_urls = {u for s in task["standards"] for u in s["images"].values()}
        assert not target_urls & grid_urls
        assert not any("SYN-STD" in url for url in target_urls)
        Assignment.objects.filter(pk=task["id"]).update(status="skipped")


def test_gold_target_name_does_not_give_its_answer(named_standards, gold_only) -> None:  # noqa: ANN001
    user = UserFactory()
    client = _client(user)
    task = _gold_task(client)
    standard = Standard.objects.get(galaxy_id=task["galaxy"]["id"])
    assert "SYN" not in task["galaxy"]["name"] and "STD" not in task["galaxy"]["name"]
    assert f"{standard.inclination:.0f}" not in task["galaxy"]["name"].replace(str(task["galaxy"]["id"]), "")
    # And after the vote, the volunteer's own list does not name it either.
    first = task["standards"][0]["id"]
    submitted = client.post(reverse("labeling:api-submit", args=[task["id"]]),
                            {"face_on": True, "right_standard": first}, format="json")
    assert submitted.status_code == 200, submitted.content
    listed = selectors.measurement_list_for_user(user=user)
    assert listed and all("SYN-STD" not in row["galaxy"] for row in listed)


def test_each_assignment_has_its_own_target_urls(named_standards) -> None:  # noqa: ANN001
    galaxy = named_standards[10].galaxy
    tasks = []
    for _ in range(2):
        assignment = Assignment.objects.create(user=UserFactory(), galaxy=galaxy, is_gold=True, queue="gold",
                                               leased_until=timezone.now() + timedelta(minutes=5))
        tasks.append(task_payload(Task(assignment=assignment, standards=[], queue="gold")))
    assert set(tasks[0]["images"].values()).isdisjoint(tasks[1]["images"].values())


def test_target_image_is_served_to_its_volunteer_only_and_not_as_stored(named_standards, gold_only) -> None:  # noqa: ANN001
    owner = UserFactory()
    client = _client(owner)
    task = _gold_task(client)
    url = task["images"]["colour"]
    response = client.get(url)
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    served = response.content
    stored = Standard.objects.get(galaxy_id=task["galaxy"]["id"]).galaxy.images.get(kind="colour")
    with stored.file.open("rb") as handle:
        stored_bytes = handle.read()
    assert hashlib.sha256(served).digest() != hashlib.sha256(stored_bytes).digest()
    shown = np.asarray(Image.open(io.BytesIO(served)).convert("RGB"))
    original = np.asarray(Image.open(io.BytesIO(stored_bytes)).convert("RGB"))
    assert shown.shape == original.shape and not np.array_equal(shown, original)
    assert any(np.array_equal(shown, flipped) for flipped in (original[:, ::-1], original[::-1], original[::-1, ::-1]))
    assert client.get(url).content == served  # the same picture again (from the cache)
    # Missing bands are served as the colour image.
    assert client.get(task["images"]["g"]).status_code == 200
    # Anybody else: nothing. A forged or altered token: nothing. Anonymous: to the log-in page.
    assert _client(UserFactory()).get(url).status_code == 404
    assert client.get(url[:-4] + "0000").status_code == 404
    assert client.get(url.replace("/colour/", "/x/")).status_code == 404
    anonymous = APIClient().get(url)
    assert anonymous.status_code == 302 and "login" in anonymous["Location"]


def test_practice_standards_are_never_gold(named_standards) -> None:  # noqa: ANN001
    practice = {s.galaxy_id for s in Standard.objects.all() if selectors.is_practice_standard(s.id)}
    assert practice
    user = UserFactory()
    rng = random.Random(3)
    drawn = {_gold_galaxy(user=user, rng=rng) for _ in range(400)}
    assert drawn and not drawn & practice


def test_gold_votes_still_count_as_gold(named_standards, gold_only) -> None:  # noqa: ANN001
    """The hiding changes nothing downstream: a gold vote is stored as gold with feedback."""
    client = _client(UserFactory())
    task = _gold_task(client)
    first = task["standards"][0]["id"]
    response = client.post(reverse("labeling:api-submit", args=[task["id"]]),
                           {"face_on": True, "right_standard": first}, format="json")
    assert response.status_code == 200 and "feedback" in response.json()
    assert Measurement.objects.get(assignment_id=task["id"]).is_gold


@pytest.mark.django_db
def test_the_tutorial_quiz_uses_practice_standards_only(named_standards) -> None:  # noqa: ANN001
    """A quiz question shows a standard with its answer afterwards; a gold-eligible one could then be matched."""
    from labeling.tutorial import tutorial_new

    for seed in range(20):
        quiz = tutorial_new(rng=random.Random(seed))
        ids = [q["standard_id"] for q in quiz["questions"] if "standard_id" in q]
        assert ids and all(selectors.is_practice_standard(i) for i in ids), ids
