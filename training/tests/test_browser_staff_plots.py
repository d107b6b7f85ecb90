"""Staff evaluation plots carry titles and open full size on click (issue 15 point 5), in Chromium."""
from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.test import Client
from PIL import Image

from labeling.tests.factories import UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 220, 240)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_plots_have_titles_and_open_full_size(live_server, settings, page) -> None:  # noqa: ANN001
    from tests.ensembles import write_tiny_ensemble
    from training.registry import ensemble_register

    folder = Path(settings.MODEL_STORE) / "ensembles" / "plots-1"
    write_tiny_ensemble(folder, version="plots-1", families=1, flavours=1, rejects=False)
    (folder / "plots").mkdir()
    (folder / "plots" / "ensemble_scatter.png").write_bytes(_png(1320, 990))
    (folder / "plots" / "history_model4.png").write_bytes(_png(1100, 440))
    ensemble = ensemble_register(folder=folder)

    client = Client()
    client.force_login(UserFactory(is_staff=True))
    page.context.add_cookies([{"name": django_settings.SESSION_COOKIE_NAME,
                               "value": client.cookies[django_settings.SESSION_COOKIE_NAME].value,
                               "url": live_server.url}])
    page.goto(f"{live_server.url}/staff/training/ensembles/{ensemble.pk}/")
    captions = page.locator("#plots figcaption").all_text_contents()
    assert captions == ["Ensemble median against the true inclination", "Loss and MAE per epoch: model4"]
    link = page.locator("#plots a.plot-link").first
    assert link.get_attribute("title") == "Open full size: Ensemble median against the true inclination"
    with page.context.expect_page() as opened:
        link.click()
    full = opened.value
    full.wait_for_load_state()
    assert full.url.endswith("/plots/ensemble_scatter.png")
    assert full.evaluate("document.images[0].naturalWidth") == 1320  # the file itself, not a thumbnail
