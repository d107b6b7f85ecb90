"""Server-rendered pages: login redirect, the measurement page, my measurements, staff report, images, demo seed."""
from __future__ import annotations

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from catalog.models import GalaxyImage
from labeling.models import Consensus, Standard, VolunteerProfile

from .factories import MeasurementFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_pages_need_login_and_render(grid) -> None:  # noqa: ANN001
    client = Client()
    response = client.get(reverse("labeling:measure"))
    assert response.status_code == 302 and reverse("labeling:login") in response["Location"]
    user = UserFactory()
    client.force_login(user)
    # A volunteer measures once the tutorial is passed (labeling/tests/test_volunteer_experience.py).
    assert client.get(reverse("labeling:measure"))["Location"] == reverse("labeling:tutorial")
    VolunteerProfile.objects.filter(user=user).update(tutorial_passed_at=timezone.now())
    page = client.get(reverse("labeling:measure"))
    assert page.status_code == 200 and b'id="strip"' in page.content and "csrftoken" in page.cookies
    MeasurementFactory(user=user)
    me = client.get(reverse("labeling:me"))
    assert me.status_code == 200 and b'id="count">1<' in me.content
    assert client.get(reverse("labeling:report")).status_code == 403


def test_staff_report_and_plot(grid, targets, no_gold) -> None:  # noqa: ANN001
    from labeling.calibration import calibration_fit

    (galaxy,) = targets(1)
    for value in (60.5, 61.5, 63.5, 62.5):
        MeasurementFactory(galaxy=galaxy, inclination_raw=value, inclination=int(value))
    calibration_fit()
    staff = UserFactory(is_staff=True)
    client = Client()
    client.force_login(staff)
    page = client.get(reverse("labeling:report"))
    assert page.status_code == 200 and b"A/B agreement" in page.content
    png = client.get(reverse("labeling:report-png"))
    assert png["Content-Type"] == "image/png" and png.content[:8] == b"\x89PNG\r\n\x1a\n"


def test_image_view_serves_the_file(grid) -> None:  # noqa: ANN001
    image = GalaxyImage.objects.first()
    response = Client().get(reverse("labeling:image", args=[image.pk]))
    assert response.status_code == 200
    assert b"".join(response.streaming_content)[:4] == b"\x89PNG"
    assert Client().get(reverse("labeling:image", args=[10**9])).status_code == 404


def test_demo_seed_command(db) -> None:  # noqa: ANN001
    call_command("zoo_seed_demo", targets=5, size=16, per_degree=1)
    assert Standard.objects.filter(inclination__gte=45, inclination__lte=90).count() == 46
    assert Consensus.objects.count() == 5
