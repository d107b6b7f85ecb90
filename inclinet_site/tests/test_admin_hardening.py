"""Issue 16: an empty ``?_to_field=`` on an admin change or delete page is a 400, not Django 5.2's 500."""
from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings

from labeling.tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("page", ["change", "delete"])
def test_empty_to_field_is_a_400(client: Any, page: str) -> None:  # noqa: ANN401
    staff = UserFactory(is_staff=True, is_superuser=True)
    client.force_login(staff)
    response = client.get(f"{settings.WEBROOT}admin/auth/user/{staff.pk}/{page}/", {"_to_field": ""})
    assert response.status_code == 400
    assert client.get(f"{settings.WEBROOT}admin/auth/user/{staff.pk}/{page}/").status_code == 200
