"""Staff pages and endpoints: 403 for volunteers and anonymous visitors, form validation as 400 with a
message, promote and roll back by POST with CSRF, plots served only from the ensemble's folder."""
from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from labeling.tests.factories import UserFactory
from tests.ensembles import write_tiny_ensemble
from training.models import Ensemble, RetrainJob
from training.registry import ensemble_promote, ensemble_register

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_ensembles(settings):  # noqa: ANN001, ANN201
    store = settings.MODEL_STORE
    made = []
    for version in ("v1", "v2"):
        write_tiny_ensemble(store / "ensembles" / version, version=version, families=1, flavours=2)
        made.append(ensemble_register(folder=store / "ensembles" / version))
    (store / "ensembles" / "v2" / "plots").mkdir()
    (store / "ensembles" / "v2" / "plots" / "ensemble_scatter.png").write_bytes(b"\x89PNG fake")
    ensemble_promote(ensemble=made[0])
    return made


def staff_urls(ensemble: Ensemble) -> list[tuple[str, str]]:
    return [
        ("get", reverse("training:dashboard")), ("post", reverse("training:dashboard")),
        ("get", reverse("training:api-jobs")), ("get", reverse("training:api-run", args=[1])),
        ("get", reverse("training:run", args=[1])), ("get", reverse("training:ensembles")),
        ("get", reverse("training:ensemble", args=[ensemble.pk])),
        ("get", reverse("training:ensemble-plot", args=[ensemble.pk, "ensemble_scatter.png"])),
        ("post", reverse("training:promote", args=[ensemble.pk])), ("post", reverse("training:rollback")),
    ]


def test_volunteers_and_visitors_get_403_everywhere(two_ensembles) -> None:  # noqa: ANN001
    volunteer = Client()
    volunteer.force_login(UserFactory())
    for client in (volunteer, Client()):
        for method, url in staff_urls(two_ensembles[1]):
            response = getattr(client, method)(url)
            assert response.status_code == 403, (method, url, response.status_code)
    assert Ensemble.objects.get(version="v1").status == "active"  # the POSTs changed nothing


@pytest.fixture
def staff() -> Client:
    client = Client()
    client.force_login(UserFactory(is_staff=True))
    return client


def test_staff_see_the_pages(staff, two_ensembles) -> None:  # noqa: ANN001
    v1, v2 = two_ensembles
    page = staff.get(reverse("training:dashboard"))
    assert page.status_code == 200 and b'id="retrain-form"' in page.content
    assert staff.get(reverse("training:ensembles")).status_code == 200
    detail = staff.get(reverse("training:ensemble", args=[v2.pk]))
    assert detail.status_code == 200 and b"ensemble_scatter.png" in detail.content
    plot = staff.get(reverse("training:ensemble-plot", args=[v2.pk, "ensemble_scatter.png"]))
    assert plot.status_code == 200 and plot["Content-Type"] == "image/png"
    assert staff.get(reverse("training:ensemble-plot", args=[v2.pk, "..%2Fmanifest.json"])).status_code == 404
    assert staff.get(reverse("training:ensemble-plot", args=[v1.pk, "ensemble_scatter.png"])).status_code == 404
    assert staff.get(reverse("training:api-jobs") + "?job=abc").status_code == 400
    assert staff.get(reverse("training:api-run", args=[999])).status_code == 404


def test_retrain_form_rejects_bad_input_with_a_message(staff) -> None:  # noqa: ANN001
    base = {"snapshot": "new", "profile": "tiny", "architectures": ["compact"], "flavours": ["0"], "queue": "train"}
    too_small = staff.post(reverse("training:dashboard"), base)  # one network: no spread to learn from
    assert too_small.status_code == 400 and b"at least two networks" in too_small.content
    bad_epochs = staff.post(reverse("training:dashboard"), {**base, "flavours": ["0", "1"], "epochs": "0"})
    assert bad_epochs.status_code == 400 and b"greater than or equal to 1" in bad_epochs.content
    bad_queue = staff.post(reverse("training:dashboard"), {**base, "flavours": ["0", "1"], "queue": "gpu9"})
    assert bad_queue.status_code == 400 and b"gpu9" in bad_queue.content
    missing = staff.post(reverse("training:dashboard"), {**base, "flavours": ["0", "1"], "snapshot": "12345"})
    assert missing.status_code == 400
    assert RetrainJob.objects.count() == 0
    ok = staff.post(reverse("training:dashboard"), {**base, "flavours": ["0", "1"], "epochs": "2",
                                                   "reject_architectures": ["compact"]})
    assert ok.status_code == 302
    job = RetrainJob.objects.get()
    assert job.status == RetrainJob.Status.SNAPSHOT
    assert [m["name"] for m in job.params["members"]] == ["compact", "compact1", "compact-binary"]
    assert {m["epochs"] for m in job.params["members"]} == {2}


def test_promote_and_rollback_need_post_and_csrf(two_ensembles) -> None:  # noqa: ANN001
    v1, v2 = two_ensembles
    user = UserFactory(is_staff=True)
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(user)
    assert strict.post(reverse("training:promote", args=[v2.pk])).status_code == 403  # no CSRF token
    assert strict.get(reverse("training:promote", args=[v2.pk])).status_code == 405
    page = strict.get(reverse("training:ensemble", args=[v2.pk]))
    token = page.cookies["csrftoken"].value
    promoted = strict.post(reverse("training:promote", args=[v2.pk]), {"csrfmiddlewaretoken": token})
    assert promoted.status_code == 302
    assert Ensemble.objects.get(pk=v2.pk).status == "active"
    listing = strict.get(reverse("training:ensembles"))
    assert b"Roll back to v1" in listing.content
    rolled = strict.post(reverse("training:rollback"), {"csrfmiddlewaretoken": token})
    assert rolled.status_code == 302
    assert Ensemble.objects.get(pk=v1.pk).status == "active"
    again = strict.post(reverse("training:rollback"), {"csrfmiddlewaretoken": token})
    assert again.status_code == 409 and b"no previous ensemble" in again.content


def test_admin_actions_promote_and_roll_back(two_ensembles) -> None:  # noqa: ANN001
    v1, v2 = two_ensembles
    admin = get_user_model().objects.create_superuser("boss", "boss@example.org", "pw-boss-123")
    client = Client()
    client.force_login(admin)
    url = reverse("admin:training_ensemble_changelist")
    client.post(url, {"action": "promote", "_selected_action": [v2.pk]})
    assert Ensemble.objects.get(pk=v2.pk).status == "active"
    client.post(url, {"action": "rollback", "_selected_action": [v2.pk]})
    assert Ensemble.objects.get(pk=v1.pk).status == "active"
