"""/healthz reports real database, broker and worker state, with a real Celery worker on Redis."""
import time

import pytest
from django.urls import reverse

from inclinet_site import health


@pytest.fixture
def staff_client(client, django_user_model):  # noqa: ANN001, ANN201
    """Error texts and connection details are shown to staff only (issue 16)."""
    client.force_login(django_user_model.objects.create_user("health-staff", is_staff=True))
    return client


@pytest.mark.django_db(transaction=True)
@pytest.mark.integration
def test_healthz_sees_database_broker_and_a_real_worker(staff_client, celery_worker_process) -> None:
    deadline = time.monotonic() + 90
    while True:
        body = staff_client.get(reverse("healthz")).json()
        if body["checks"]["worker"]["ok"] or time.monotonic() > deadline:
            break
    assert body["checks"]["database"] == {**body["checks"]["database"], "ok": True, "vendor": "postgresql"}
    assert body["checks"]["broker"]["ok"] is True
    assert body["checks"]["worker"]["ok"] is True, celery_worker_process.log()[-2000:]
    assert body["checks"]["active_model"]["state"] == "none"
    assert body["status"] == "degraded"  # serving works; prediction waits for a model


@pytest.mark.django_db
def test_healthz_without_a_worker_is_503(staff_client, monkeypatch) -> None:
    monkeypatch.setattr(health, "WORKER_TIMEOUT_S", 0.5)
    from inclinet_site.celery import app

    app.control.purge()  # no worker listens: the ping must go unanswered
    response = staff_client.get(reverse("healthz"))
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "failing" and body["checks"]["worker"]["ok"] is False
    assert "no worker answered" in body["checks"]["worker"]["error"]
    app.control.purge()


@pytest.mark.django_db
def test_healthz_reports_an_active_model(client, settings, monkeypatch) -> None:
    monkeypatch.setattr(health, "_check_worker", lambda: {"ok": True})
    settings.MODEL_STORE.mkdir(parents=True)
    (settings.MODEL_STORE / "active.json").write_text(
        '{"version": "ens-1", "folder": "ensembles/ens-1", "models": [1, 2, 3]}')
    body = client.get(reverse("healthz")).json()
    assert body["checks"]["active_model"] == {"ok": True, "state": "active", "version": "ens-1", "models": 3}
    assert body["status"] == "ok"
