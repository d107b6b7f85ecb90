"""Issue 16, finding 9 (part): Content-Security-Policy without inline scripts or styles, a per-account log-in
lock-out with back-off, and Zoo exports under /media/ for their owner and staff only."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from django.core.cache import cache
from django.core.files.base import ContentFile
from django.urls import reverse

from inclinet_site import security
from labeling.models import ExportJob
from labeling.tests.factories import ProfileFactory, UserFactory

REPO_ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "pw-zoo-123"  # the factories' password


# --- Content-Security-Policy ----------------------------------------------------------------------------

INLINE = [
    ("inline <script>", re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I)),
    ("<style> block", re.compile(r"<style\b", re.I)),
    ("style= attribute", re.compile(r"""\sstyle\s*=\s*["']""", re.I)),
    ("on*= handler", re.compile(r"""\son[a-z]+\s*=\s*["']""", re.I)),
]


def _site_templates() -> list[Path]:
    # The API docs pages (templates/drf_spectacular) keep drf-spectacular's inline code under their own policy.
    found = [*REPO_ROOT.glob("templates/*.html"), *REPO_ROOT.glob("*/templates/**/*.html")]
    return [path for path in found if "drf_spectacular" not in path.parts and ".venv" not in path.parts]


def test_no_template_has_inline_scripts_or_styles() -> None:
    offences = [f"{path.relative_to(REPO_ROOT)}: {what}" for path in _site_templates()
                for what, pattern in INLINE if pattern.search(path.read_text())]
    assert len(_site_templates()) > 10
    assert offences == []


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/", "/zoo/login/", "/predict/", "/healthz", "/api/catalog/resolve?q=M33"])
def test_every_response_carries_a_policy_without_inline_code(client, url: str) -> None:
    policy = client.get(url)["Content-Security-Policy"]
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";") if part.strip())
    assert directives["script-src"] == "'self'" and directives["style-src"] == "'self'"
    assert "unsafe" not in policy and directives["object-src"] == "'none'"


@pytest.mark.django_db
def test_the_api_docs_keep_their_own_policy(client) -> None:
    from inclinet_site.api_docs import DOCS_CSP

    assert client.get("/api/docs/")["Content-Security-Policy"] == DOCS_CSP


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_pages_run_under_the_policy_in_chromium(live_server: Any, page: Any) -> None:
    UserFactory(username="csp-vol")
    violations: list[str] = []
    page.on("console", lambda message: violations.append(message.text)
            if "Content Security Policy" in message.text else None)
    page.goto(f"{live_server.url}/")
    assert page.evaluate("window.WEBROOT") == "/"  # static/js/webroot.js ran
    page.fill("#resolve-q", "PGC 5818")
    page.click("#resolve-form button[type=submit]")
    page.wait_for_selector("#resolve-out:not(:empty)")  # home.js ran
    page.goto(f"{live_server.url}/zoo/login/")
    page.fill("input[name=username]", "csp-vol")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state("networkidle")
    for path in ("/zoo/", "/predict/"):
        page.goto(f"{live_server.url}{path}", wait_until="networkidle")
    assert violations == []


# --- per-account lock-out -----------------------------------------------------------------------------


@pytest.fixture
def lockout(settings, monkeypatch) -> dict:  # noqa: ANN001
    settings.LOGIN_LOCKOUT_THRESHOLD = 3
    settings.LOGIN_LOCKOUT_BASE_S = 30
    settings.LOGIN_LOCKOUT_MAX_S = 3600
    clock = {"now": 1_800_000_000.0}
    monkeypatch.setattr(security.time, "time", lambda: clock["now"])
    cache.clear()
    yield clock
    cache.clear()


def _login(client, url: str, username: str, password: str, address: int):  # noqa: ANN001, ANN202
    # A new address per attempt: the per-address LOGIN_RATE is not what is tested here.
    return client.post(url, {"username": username, "password": password}, REMOTE_ADDR=f"10.9.0.{address}")


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/zoo/login/", "/admin/login/"])
def test_repeated_failures_lock_the_account_with_doubling_waits(client, lockout, url: str) -> None:
    victim = UserFactory(username="victim", is_staff=True)
    UserFactory(username="bystander", is_staff=True)
    for attempt in range(3):
        assert _login(client, url, "victim", "wrong", attempt).status_code == 200
    refused = _login(client, url, "victim", PASSWORD, 10)  # the right password, but locked
    assert refused.status_code == 429 and refused["Retry-After"] == "30"
    assert "Too many failed log-ins for this account. Try again in 30 s." in refused.content.decode()
    assert "_auth_user_id" not in client.session
    assert 'id="login-form"' in refused.content.decode()  # the styled log-in page, with the message
    # Another account is not affected.
    assert _login(client, url, "bystander", PASSWORD, 11).status_code == 302
    client.logout()

    lockout["now"] += 31
    assert _login(client, url, "victim", "wrong", 12).status_code == 200  # one more failure: 60 s now
    again = _login(client, url, "victim", PASSWORD, 13)
    assert again.status_code == 429 and again["Retry-After"] == "60"

    lockout["now"] += 61
    assert _login(client, url, "victim", PASSWORD, 14).status_code == 302  # in; the count starts over
    assert int(client.session["_auth_user_id"]) == victim.pk
    client.logout()
    for attempt in range(2):
        assert _login(client, url, "victim", "wrong", 20 + attempt).status_code == 200
    assert _login(client, url, "victim", PASSWORD, 30).status_code == 302


# --- exports under /media/ --------------------------------------------------------------------------


@pytest.fixture
def export_file(settings) -> tuple[ExportJob, str]:  # noqa: ANN001
    owner = ProfileFactory(role="volunteer").user
    job = ExportJob.objects.create(requested_by=owner, fmt="csv", status="done")
    job.file.save("zoo-consensus-test.csv", ContentFile(b"pgc,inc\n1,70\n"), save=True)
    return job, f"{settings.MEDIA_URL}{job.file.name}"


@pytest.mark.django_db
def test_an_export_file_is_served_to_its_owner_and_staff_only(client, export_file, settings) -> None:
    settings.DEBUG = True
    job, url = export_file
    assert client.get(url).status_code == 404  # anonymous
    client.force_login(ProfileFactory(role="volunteer").user)
    assert client.get(url).status_code == 404  # another volunteer
    client.force_login(job.requested_by)
    mine = client.get(url)
    assert mine.status_code == 200 and b"".join(mine.streaming_content) == b"pgc,inc\n1,70\n"
    assert "private" in mine["Cache-Control"] and "no-store" in mine["Cache-Control"]
    client.force_login(UserFactory(is_staff=True))
    assert client.get(url).status_code == 200
    client.force_login(ProfileFactory(role="staff").user)
    assert client.get(url).status_code == 200


@pytest.mark.django_db
def test_batch_files_stay_private_under_media(client, settings) -> None:
    from predictions.batch import batch_job_create

    job = batch_job_create(kind="csv", filename="x.csv", data=b"5818\n")
    client.force_login(UserFactory(is_staff=True))
    assert client.get(f"{settings.MEDIA_URL}{job.input_file.name}").status_code == 404
