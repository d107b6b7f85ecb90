"""Issue 16: the retraining JSON endpoints answer failures in the API's shape ``{"status": "failed", ...}``
(they answered ``{"error": ...}``), and a hostile job id is a 400, not a 500."""
from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings

from labeling.tests.factories import ProfileFactory, UserFactory

pytestmark = pytest.mark.django_db

API_PATHS = ["staff/training/api/jobs", "staff/training/api/runs/1"]


def _failed(response: Any) -> str:  # noqa: ANN401
    body = response.json()
    assert set(body) == {"status", "message"} and body["status"] == "failed", body
    return body["message"]


@pytest.mark.parametrize("path", API_PATHS)
@pytest.mark.parametrize("role", ["anonymous", "volunteer", "zoo-staff-without-django-staff"])
def test_training_api_403_is_the_failed_shape(client: Any, path: str, role: str) -> None:  # noqa: ANN401
    if role == "volunteer":
        client.force_login(ProfileFactory(role="volunteer").user)
    elif role != "anonymous":
        client.force_login(ProfileFactory(role="staff").user)
    response = client.get(f"{settings.WEBROOT}{path}")
    assert response.status_code == 403
    assert _failed(response) == "Retraining is for staff only."


@pytest.mark.parametrize("job", ["abc", "²", "٣", "-1", "1e400", "NaN", "9" * 30, "9" * 5000])
def test_training_jobs_with_a_bad_job_id_is_a_400_in_the_failed_shape(client: Any, job: str) -> None:  # noqa: ANN401
    client.force_login(UserFactory(is_staff=True))
    response = client.get(f"{settings.WEBROOT}staff/training/api/jobs", {"job": job})
    assert response.status_code == 400, response.content[:200]
    assert _failed(response) == "job must be a number."
