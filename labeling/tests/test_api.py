"""The Zoo API over HTTP: the volunteer flow, every refusal as a clear 4xx, staff endpoints, export, schema."""
from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from labeling.models import Assignment, Consensus, ExportJob, Measurement, Standard

pytestmark = pytest.mark.django_db


def _next(api):  # noqa: ANN001, ANN202
    response = api.post(reverse("labeling:api-next"))
    assert response.status_code == 200, response.content
    return response.json()["task"]


def _step2(api, task, low):  # noqa: ANN001, ANN202
    response = api.post(reverse("labeling:api-standards", args=[task["id"]]), {"step": 2, "low": low}, format="json")
    assert response.status_code == 200, response.content
    return response.json()["standards"]


def _submit(api, task, body):  # noqa: ANN001, ANN202
    return api.post(reverse("labeling:api-submit", args=[task["id"]]), body, format="json")


def _failed(response, status: int, code: str) -> None:  # noqa: ANN001
    assert response.status_code == status, response.content
    body = response.json()
    assert body["status"] == "failed" and body["message"] and body.get("code") == code


def test_full_flow_through_the_api(api, grid, targets, no_gold) -> None:  # noqa: ANN001
    targets(1)
    task = _next(api)
    assert len(task["standards"]) == 9
    assert [s["inclination"] for s in task["standards"]] == sorted(s["inclination"] for s in task["standards"])
    assert set(task["images"]) == {"colour", "g", "r", "i"}
    # Only a colour image exists: each band's (one-off) URL serves it.
    assert api.get(task["images"]["g"]).content == api.get(task["images"]["colour"]).content
    assert "votes" not in str(task) and "consensus" not in str(task)  # blind: nothing about other answers
    seq = _step2(api, task, 70)
    body = {"left_standard": seq[3]["id"], "right_standard": seq[4]["id"], "step1_low": 70,
            "display_mode": "r", "inverted": True, "zoom": 1.5, "angle": 30,
            "started_at": (timezone.now() - timedelta(seconds=40)).isoformat()}
    response = api.post(reverse("labeling:api-submit", args=[task["id"]]), body, format="json",
                        HTTP_USER_AGENT="pytest-browser/1.0")
    assert response.status_code == 200, response.content
    out = response.json()["measurement"]
    assert out["inclination_raw"] == (seq[3]["inclination"] + seq[4]["inclination"]) / 2
    m = Measurement.objects.get()
    assert (m.display_mode, m.inverted, m.zoom, m.angle) == ("r", True, 1.5, 30)
    assert m.user_agent == "pytest-browser/1.0" and m.started_at < m.finished_at
    assert not m.shown_other_votes and not m.shown_model
    stats = api.get(reverse("labeling:api-stats")).json()
    assert stats["measurements"] == 1


def test_anonymous_gets_json_403(db) -> None:  # noqa: ANN001
    client = APIClient()
    for name, args in (("labeling:api-next", []), ("labeling:api-submit", [1]), ("labeling:api-stats", [])):
        method = client.get if name == "labeling:api-stats" else client.post
        response = method(reverse(name, args=args))
        assert response.status_code in (401, 403)
        assert response.json()["status"] == "failed"


def test_bad_inputs_are_clear_4xx_and_nothing_counted_twice(api, grid, targets, no_gold, volunteer) -> None:  # noqa: ANN001
    targets(3)
    task = _next(api)
    seq = _step2(api, task, 60)
    forged = {"left_standard": seq[1]["id"], "right_standard": seq[4]["id"], "step1_low": 60}
    _failed(_submit(api, task, forged), 400, "forged_neighbours")
    # A pair that was never shown with that step-1 interval is forged too.
    _failed(_submit(api, task, {**forged, "right_standard": seq[2]["id"], "step1_low": 65}), 400, "forged_neighbours")
    _failed(_submit(api, task, {"reasons": ["no_such_reason"]}), 400, "invalid")
    _failed(_submit(api, task, {}), 400, "invalid")
    _failed(_submit(api, task, {"zoom": "big", "reasons": ["HI"]}), 400, "invalid")
    _failed(api.post(reverse("labeling:api-submit", args=[999999]), {"reasons": ["HI"]}, format="json"),
            404, "not_assigned")
    good = {"left_standard": seq[1]["id"], "right_standard": seq[2]["id"], "step1_low": 60}
    assert _submit(api, task, good).status_code == 200
    _failed(_submit(api, task, good), 409, "already_submitted")
    assert Measurement.objects.filter(user=volunteer).count() == 1
    assert Consensus.objects.get(galaxy_id=task["galaxy"]["id"]).n_votes == 1

    # Expired lease.
    task = _next(api)
    Assignment.objects.filter(pk=task["id"]).update(leased_until=timezone.now() - timedelta(seconds=1))
    _failed(_submit(api, task, {"face_on": True, "right_standard": task["standards"][0]["id"]}), 409, "lease_expired")

    # Retired while the volunteer was measuring.
    task = _next(api)
    Consensus.objects.filter(galaxy_id=task["galaxy"]["id"]).update(retired=True, retire_reason="staff")
    _failed(_submit(api, task, {"face_on": True, "right_standard": task["standards"][0]["id"]}), 409, "retired")
    # Face-on must be left of the first standard actually shown.
    assert Measurement.objects.filter(user=volunteer).count() == 1


def test_face_on_needs_the_first_standard(api, grid, targets, no_gold) -> None:  # noqa: ANN001
    targets(1)
    task = _next(api)
    _failed(_submit(api, task, {"face_on": True, "right_standard": task["standards"][3]["id"]}), 400,
            "forged_neighbours")
    response = _submit(api, task, {"face_on": True, "right_standard": task["standards"][0]["id"]})
    assert response.status_code == 200 and response.json()["measurement"]["face_on"] is True


def test_reject_with_reasons_and_note(api, grid, targets, no_gold) -> None:  # noqa: ANN001
    targets(1)
    task = _next(api)
    response = _submit(api, task, {"reasons": ["bad_TF", "multiple", "face_on"], "note": "a star on the disc"})
    assert response.status_code == 200
    m = Measurement.objects.get()
    assert m.rejected and m.reasons() == ["bad_TF", "face_on", "multiple"] and m.note == "a star on the disc"
    assert m.inclination is None


def test_skip_and_step2_validation(api, grid, targets, no_gold) -> None:  # noqa: ANN001
    targets(2)
    task = _next(api)
    response = api.post(reverse("labeling:api-standards", args=[task["id"]]), {"step": 2, "low": 61}, format="json")
    _failed(response, 400, "invalid")
    response = api.post(reverse("labeling:api-standards", args=[task["id"]]), {"step": 3}, format="json")
    _failed(response, 400, "invalid")
    assert api.post(reverse("labeling:api-skip", args=[task["id"]])).status_code == 200
    _failed(api.post(reverse("labeling:api-skip", args=[task["id"]])), 409, "already_submitted")
    assert _next(api)["galaxy"]["id"] != task["galaxy"]["id"]


def test_redraw_records_every_sequence(api, grid, targets, no_gold) -> None:  # noqa: ANN001
    # Two standards per inclination, so a redraw can differ.
    from .factories import standard_grid

    standard_grid(low=45, high=90)
    targets(1)
    task = _next(api)
    drawn = [api.post(reverse("labeling:api-standards", args=[task["id"]]), {"step": 1}, format="json")
             .json()["standards"] for _ in range(6)]
    assert len({tuple(s["id"] for s in seq) for seq in drawn}) > 1
    shown = Assignment.objects.get(pk=task["id"]).shown
    assert len(shown["1"]) == 7


def test_staff_endpoints(staff, api, grid, targets) -> None:  # noqa: ANN001
    (galaxy,) = targets(1)
    url = reverse("labeling:api-retire", args=[galaxy.id])
    assert api.post(url).status_code == 403
    response = staff.post(url)
    assert response.status_code == 200 and response.json()["retire_reason"] == "staff"
    assert staff.delete(url).json()["retired"] is False
    assert staff.post(reverse("labeling:api-retire", args=[987654])).status_code == 404

    standards = staff.get(reverse("labeling:api-staff-standards")).json()["standards"]
    assert len(standards) == Standard.objects.count()
    from .factories import ImagedGalaxyFactory

    new = ImagedGalaxyFactory(inclination=77)
    response = staff.post(reverse("labeling:api-staff-standards"),
                          {"galaxy_id": new.id, "inclination": 77, "morphology": "Sc"}, format="json")
    assert response.status_code == 201
    sid = response.json()["id"]
    response = staff.patch(reverse("labeling:api-staff-standard", args=[sid]), {"active": False}, format="json")
    assert response.json()["active"] is False
    bad = staff.post(reverse("labeling:api-staff-standards"), {"galaxy_id": new.id, "inclination": 120}, format="json")
    _failed(bad, 400, "invalid")
    report = staff.get(reverse("labeling:api-report")).json()
    assert "agreement" in report and "progress" in report
    assert api.get(reverse("labeling:api-report")).status_code == 403


def test_expert_proposals(expert_clients, api) -> None:  # noqa: ANN001
    from .factories import ImagedGalaxyFactory

    galaxy = ImagedGalaxyFactory(inclination=66)
    url = reverse("labeling:api-proposals")
    assert api.post(url, {"galaxy_id": galaxy.id, "inclination": 66}, format="json").status_code == 403
    answers = [c.post(url, {"galaxy_id": galaxy.id, "inclination": v}, format="json").json()
               for c, v in zip(expert_clients, (65, 66, 67.5), strict=True)]
    assert [a["adopted"] for a in answers] == [False, False, True]
    assert answers[-1]["standard"]["inclination"] == 66


def test_tutorial_practice_feedback(api, grid) -> None:  # noqa: ANN001
    """One tutorial answer gets graded feedback; the whole quiz is in test_volunteer_experience.py."""
    body = api.get(reverse("labeling:api-tutorial")).json()
    assert len(body["questions"]) == 6 and len(body["standards"]) == 9
    question = next(q for q in api.session["zoo_tutorial"]["questions"] if q["kind"] == "placement")
    index = api.session["zoo_tutorial"]["questions"].index(question)
    truth = question["truth"]
    low = min(int(truth), 89)  # a 90° truth sits in the grid's last interval, 89-90 (there is no 91° standard)
    left = Standard.objects.get(inclination=float(low))
    right = Standard.objects.get(inclination=float(low + 1))
    check = api.post(reverse("labeling:api-tutorial-check"),
                     {"question": index, "left_standard": left.id, "right_standard": right.id}, format="json")
    assert check.json()["feedback"]["correct"] is True and check.json()["feedback"]["grade"] == "spot_on"


def test_preferences(api) -> None:  # noqa: ANN001
    url = reverse("labeling:api-preferences")
    assert api.patch(url, {"display_mode": "i", "inverted": True}, format="json").json()["display_mode"] == "i"
    _failed(api.patch(url, {"display_mode": "x"}, format="json"), 400, "invalid")
    assert api.get(url).json()["inverted"] is True


def test_schema_documents_the_zoo(db) -> None:  # noqa: ANN001
    response = APIClient().get(reverse("schema"))
    assert response.status_code == 200
    text = response.content.decode()
    for operation in ("zoo_task_next", "zoo_task_submit", "zoo_me_stats", "zoo_export_create", "zoo_staff_retire"):
        assert operation in text


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_export_runs_on_a_real_worker(celery_worker_process, api, grid, targets, no_gold) -> None:  # noqa: ANN001
    from labeling.assignment import assignment_draw_standards, assignment_next
    from labeling.submission import Placement, measurement_submit

    from .factories import UserFactory

    targets(1)
    import random

    for value in (70.2, 71.3, 72.1):
        user = UserFactory()
        task = assignment_next(user=user, rng=random.Random(1))
        seq = assignment_draw_standards(user=user, assignment_id=task.assignment.id, step=2, low=70)
        left = max((s for s in seq if s.inclination <= value), key=lambda s: s.inclination)
        right = next(s for s in seq if s.inclination > left.inclination)
        measurement_submit(user=user, assignment_id=task.assignment.id,
                           placement=Placement(left.id, right.id, 70, False))
    response = api.post(reverse("labeling:api-exports"), {"format": "csv"}, format="json")
    assert response.status_code == 202
    status_url = reverse("labeling:api-export", args=[response.json()["id"]])
    deadline = time.monotonic() + 60
    body = {}
    while time.monotonic() < deadline:
        body = api.get(status_url).json()
        if body["job_status"] in ("done", "failed"):
            break
        time.sleep(0.3)
    assert body.get("job_status") == "done", (body, celery_worker_process.log()[-2000:])
    download = api.get(body["download_url"])
    assert download.status_code == 200
    content = b"".join(download.streaming_content).decode()
    assert content.splitlines()[0] == "pgc,inc,inc_e,inc_flg,inc_n,inc_note"
    assert len(content.splitlines()) == 2
    assert ExportJob.objects.get().n_rows == 1
