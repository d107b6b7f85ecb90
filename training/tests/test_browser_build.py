"""Playwright: the staff page's poller (runs.js) keeps an ensemble build's box current: its progress bar
and stage move while it runs, and its failure appears with the error. The job row is driven directly, so
no worker is needed."""
from __future__ import annotations

import pytest
from django.conf import settings as django_settings
from django.test import Client

from labeling.tests.factories import UserFactory
from training.builds import ensemble_build_create
from training.models import RetrainJob
from tests.browser import wait_for_js

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_page_follows_a_build_until_it_fails(live_server, page) -> None:  # noqa: ANN001
    job = ensemble_build_create(profile="tiny")
    RetrainJob.objects.filter(pk=job.pk).update(status="running", stage="generating 48 synthetic galaxies",
                                                progress=0.02)
    client = Client()
    client.force_login(UserFactory(is_staff=True))
    page.context.add_cookies([{"name": django_settings.SESSION_COOKIE_NAME,
                               "value": client.cookies[django_settings.SESSION_COOKIE_NAME].value,
                               "url": live_server.url}])
    page.goto(live_server.url + "/staff/training/")
    box = f"#job-{job.pk}"
    assert page.text_content(f"{box} h3") == f"Build #{job.pk} · tiny · running"
    assert page.is_hidden(f"{box} .build-error")

    RetrainJob.objects.filter(pk=job.pk).update(stage="training compact1 on 15 galaxies", progress=0.45)
    wait_for_js(page, "(b) => document.querySelector(b + ' progress').value > 0.4", arg=box, timeout=15_000)
    assert "training compact1" in page.text_content(f"{box} .jobmeta")
    assert page.text_content(f"{box} .pct") == "45 %"

    RetrainJob.objects.filter(pk=job.pk).update(status="failed", error="RuntimeError: out of memory")
    wait_for_js(page, "(b) => document.querySelector(b + ' h3').textContent.endsWith('failed')", arg=box,
                           timeout=15_000)
    assert page.is_visible(f"{box} .build-error")
    assert page.text_content(f"{box} .build-error") == "RuntimeError: out of memory"
