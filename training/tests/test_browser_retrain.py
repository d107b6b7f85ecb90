"""Playwright: staff press Retrain and watch the progress bars and the loss curves move while a real Celery
worker trains; the candidate's evaluation page shows its plots. A volunteer gets 403 on every staff page
and endpoint in the browser too. Screenshots go to docs/screenshots with SAVE_SCREENSHOTS=1."""
from __future__ import annotations

import pytest
from django.conf import settings as django_settings
from django.test import Client
from django.urls import reverse

from conftest import save_screenshot
from labeling.tests.factories import UserFactory
from training.models import Ensemble, RetrainJob
from tests.browser import wait_for_js

from .helpers import labelled_galaxies

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def _login_as(page, live_server, user) -> None:  # noqa: ANN001
    client = Client()
    client.force_login(user)
    page.context.add_cookies([{"name": django_settings.SESSION_COOKIE_NAME,
                               "value": client.cookies[django_settings.SESSION_COOKIE_NAME].value,
                               "url": live_server.url}])


def _canvas(page) -> str:  # noqa: ANN001
    return page.evaluate("document.querySelector('.run canvas').toDataURL()")


def test_staff_retrain_and_watch_progress(live_server, celery_worker_process, page, tmp_path) -> None:  # noqa: ANN001
    labelled_galaxies(24, rejects=6)
    _login_as(page, live_server, UserFactory(is_staff=True))
    page.goto(live_server.url + "/staff/training/")
    page.select_option("#id_snapshot", "new")
    page.select_option("#id_profile", "tiny")
    for flavour in ("2", "3"):
        page.uncheck(f"#id_flavours input[value='{flavour}']")
    page.fill("#id_epochs", "2")
    page.fill("#id_steps_per_epoch", "25")
    page.fill("#id_batch_size", "8")
    page.check("#id_promote")
    page.click("#retrain")
    page.wait_for_url("**/staff/training/?job=*")
    job = RetrainJob.objects.get()

    # The first run starts: its bar fills and its curve gets drawn, then both move on.
    wait_for_js(page, "() => { const p = document.querySelector('.run progress'); return p && p.value > 0.1; }",
                           timeout=120_000)
    first_value = page.evaluate("document.querySelector('.run progress').value")
    first_curve = _canvas(page)
    save_screenshot(page, "retrain-progress", tmp_path)
    wait_for_js(page, "(v) => document.querySelector('.run progress').value > v + 0.2", arg=first_value,
                           timeout=120_000)
    assert _canvas(page) != first_curve  # the curve moved with the progress
    assert "epoch" in page.text_content(".run .detail")

    wait_for_js(page, "() => document.querySelector('#job-%d h3').textContent.includes('done') "
                           "|| document.querySelector('#job-%d h3').textContent.includes('failed')" % (job.pk, job.pk),
                           timeout=240_000)
    job.refresh_from_db()
    assert job.status == RetrainJob.Status.DONE, job.error
    assert page.locator(".run").count() == 3
    assert page.evaluate("[...document.querySelectorAll('.run progress')].every(p => p.value === 1)")
    # Epoch curves: every run shows two loss points after two epochs.
    save_screenshot(page, "retrain-done", tmp_path)

    page.click(f"#job-{job.pk} .jobmeta a")
    page.wait_for_selector("#plots img")
    assert page.locator("#plots img").count() >= 4
    # The plots arrive after the page: wait until each has finished loading (a broken one finishes too, at 0 px).
    wait_for_js(page, "[...document.querySelectorAll('#plots img')].every(i => i.complete)", timeout=30_000)
    assert page.evaluate("[...document.querySelectorAll('#plots img')].every(i => i.naturalWidth > 100)")
    assert Ensemble.objects.get(pk=job.ensemble_id).status == Ensemble.Status.ACTIVE
    save_screenshot(page, "retrain-ensemble", tmp_path)


def test_volunteer_gets_403_in_the_browser(live_server, page, active_tiny_ensemble) -> None:  # noqa: ANN001
    _login_as(page, live_server, UserFactory())
    ensemble = active_tiny_ensemble
    for url in (reverse("training:dashboard"), reverse("training:api-jobs"), reverse("training:api-run", args=[1]),
                reverse("training:run", args=[1]), reverse("training:ensembles"),
                reverse("training:ensemble", args=[ensemble.pk]),
                reverse("training:ensemble-plot", args=[ensemble.pk, "ensemble_scatter.png"])):
        response = page.goto(live_server.url + url)
        assert response.status == 403, url
        assert "staff only" in page.content()
    for url in (reverse("training:dashboard"), reverse("training:promote", args=[ensemble.pk]),
                reverse("training:rollback")):
        status = page.evaluate("async (u) => (await fetch(u, {method: 'POST'})).status", live_server.url + url)
        assert status == 403, url
    page.goto(live_server.url + "/")
    assert "Retrain" not in page.text_content("header nav")  # no link to pages they cannot open
