"""Hostile input against the whole site: traversal, oversized and malformed bodies, injection, CSRF, throttles,
production settings and secrets.

The schemathesis run over the OpenAPI schema lives in ``predictions/tests/test_schema_fuzz.py``; the image
decoder fuzzing in ``catalog/tests/test_fuzz_imaging.py``; authorisation in ``tests/test_authorization.py``.
"""
from __future__ import annotations

import io
import json
import os
import re
import secrets
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.core.cache import cache
from django.core.exceptions import SuspiciousFileOperation
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone
from PIL import Image
from rest_framework.throttling import SimpleRateThrottle

from catalog.tests.factories import GalaxyFactory
from inclinet_site.security import LoginRateThrottle, SignupRateThrottle
from labeling.tests.factories import MeasurementFactory, ProfileFactory, UserFactory

from .test_authorization import endpoints, methods_for

REPO_ROOT = Path(__file__).resolve().parent.parent
HOSTILE_STRINGS = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "\u202egnp.exe",  # right-to-left override
    "𝔊𝔞𝔩𝔞𝔵𝔶 😀 Ωmega",
    "a\x00b",  # PostgreSQL refuses NUL in text
    "' OR 1=1 --",
    "../../../../etc/passwd",
    "%s%s%s%n",
    "x" * 5000,
]


def png_bytes(width: int = 32, height: int = 24) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (height, width, 3), dtype=np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


def files_under(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()} if root.exists() else set()


def assert_failed_json(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, (response.status_code, response.content[:300])
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    body = response.json()
    assert body["status"] == "failed" and body["message"]
    return body


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    """Throttle counters from other tests must not leak in (they share the cache)."""
    cache.clear()


# --- path traversal ------------------------------------------------------------------------------------

TRAVERSAL_NAMES = ["../../../../tmp/evil.png", "..\\..\\evil.png", "/etc/evil.png", "evil\x00.png",
                   "uploads/../../evil.png", "%2e%2e%2fevil.png"]


@pytest.mark.django_db
@pytest.mark.parametrize("name", TRAVERSAL_NAMES)
def test_upload_names_never_reach_the_file_system(name: str, settings: Any, tmp_path: Path) -> None:
    before = files_under(tmp_path)
    client = Client()
    page_upload = client.post("/predict/upload", {"file": SimpleUploadedFile(name, png_bytes(), "image/png")})
    api_upload = client.post("/api/file", {"file": SimpleUploadedFile(name, png_bytes(), "image/png")})
    assert page_upload.status_code == 200, page_upload.content
    assert api_upload.status_code in (200, 503), api_upload.content  # 503: no ensemble here, still no crash
    created = files_under(tmp_path) - before
    media = Path(settings.MEDIA_ROOT).resolve()
    for path in created:
        assert path.resolve().is_relative_to(media), f"{path} written outside MEDIA_ROOT"
        assert "evil" not in path.name and re.fullmatch(r"[0-9a-f]{32}\.jpg", path.name), path
    upload_id = page_upload.json()["upload_id"]
    assert created == {media / "uploads" / f"{upload_id}.jpg"}


@pytest.mark.django_db
def test_batch_archives_cannot_escape_and_inputs_get_our_names(tmp_path: Path, settings: Any) -> None:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("ok.png", png_bytes())
        zf.writestr("../../evil.png", png_bytes())
    refused = Client().post("/api/batch", {"file": SimpleUploadedFile("x.zip", archive.getvalue())})
    assert_failed_json(refused, 400)
    accepted = Client().post("/api/batch", {"file": SimpleUploadedFile("../../evil.csv", b"pgc\n2557\n")})
    assert accepted.status_code == 202, accepted.content
    from predictions.models import BatchJob

    job = BatchJob.objects.get(pk=accepted.json()["id"])
    assert job.input_file.name == f"batch/input/{job.id}.csv"
    assert not [p for p in files_under(tmp_path) if "evil" in p.name]


def test_storage_itself_refuses_traversal() -> None:
    """Defence in depth: even a code path that passed a client name through would be stopped here."""
    with pytest.raises(SuspiciousFileOperation):
        default_storage.save("../../escape.txt", ContentFile(b"x"))


# --- oversized and malformed bodies -------------------------------------------------------------------

@pytest.fixture
def volunteer_client(db: Any) -> Client:
    client = Client()
    client.force_login(ProfileFactory(role="volunteer").user)
    return client


@pytest.mark.django_db
def test_oversized_json_is_413_json_everywhere(volunteer_client: Client, settings: Any) -> None:
    big = json.dumps({"note": "a" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 10)})
    assert_failed_json(Client().post("/predict/evaluate", big, content_type="application/json"), 413)
    assert_failed_json(volunteer_client.post("/zoo/api/tasks/1/submit", big, content_type="application/json"), 413)
    assert_failed_json(volunteer_client.patch("/zoo/api/me/preferences", big, content_type="application/json"), 413)


@pytest.mark.django_db
def test_oversized_multipart_is_413_before_it_is_read(settings: Any) -> None:
    settings.MAX_REQUEST_BYTES = 200_000
    body = SimpleUploadedFile("big.csv", b"2557\n" * 60_000)
    assert_failed_json(Client().post("/api/batch", {"file": body}), 413)


@pytest.mark.django_db
@pytest.mark.parametrize("body", ["[" * 100_000, "[1, 2]", '"just a string"', "{", "\x00", '{"angle": "NaN"}'])
def test_malformed_json_is_400_not_500(body: str, volunteer_client: Client) -> None:
    assert_failed_json(Client().post("/predict/evaluate", body, content_type="application/json"), 400)
    response = volunteer_client.post("/zoo/api/tasks/1/submit", body, content_type="application/json")
    assert response.status_code in (400, 404), (response.status_code, response.content[:200])
    assert response.json()["status"] == "failed"


# --- unicode and HTML injection ------------------------------------------------------------------------

@pytest.mark.django_db
@pytest.mark.parametrize("text", HOSTILE_STRINGS)
def test_hostile_text_in_api_queries_is_answered_not_crashed(text: str) -> None:
    from urllib.parse import quote

    client = Client()
    for url, data in [(f"/api/objname/{quote(text, safe='')}", None), ("/api/catalog/resolve", {"q": text}),
                      ("/api/coords", {"ra": text, "dec": text, "fov": text})]:
        response = client.get(url, data)
        assert 400 <= response.status_code < 500, (url, text, response.status_code, response.content[:200])
        assert response.json()["status"] == "failed"


@pytest.mark.django_db
@pytest.mark.parametrize("text", HOSTILE_STRINGS)
def test_hostile_text_in_login_and_signup_forms_is_answered_not_crashed(text: str) -> None:
    client = Client()
    assert client.post("/zoo/login/", {"username": text, "password": text}).status_code == 200
    signup = client.post("/zoo/signup/", {"username": text, "password1": text, "password2": text})
    assert signup.status_code in (200, 302)


@pytest.mark.django_db
def test_names_and_notes_are_rendered_escaped(settings: Any) -> None:
    payload = '<img src=x onerror="window.__xss=1">'
    volunteer = UserFactory(username="<b>vol</b>")  # the admin or a factory can bypass the sign-up validator
    galaxy = GalaxyFactory(pgc=None, name=f"NGC {payload} ☃")  # no PGC: the page shows the name
    measurement = MeasurementFactory(user=volunteer, galaxy=galaxy, note=f"note {payload} \u202e")
    client = Client()
    client.force_login(volunteer)
    page = client.get("/zoo/me/").content.decode()
    assert payload not in page and "<b>vol</b>" not in page
    assert "NGC &lt;img src=x onerror=&quot;window.__xss=1&quot;&gt; ☃" in page
    assert "&lt;b&gt;vol&lt;/b&gt;" in page
    staff = UserFactory(is_staff=True, is_superuser=True)
    client.force_login(staff)
    admin_page = client.get(f"/admin/labeling/measurement/{measurement.pk}/change/").content.decode()
    assert payload not in admin_page and "note &lt;img src=x" in admin_page


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_injected_galaxy_name_does_not_run_in_the_browser(live_server: Any, page: Any) -> None:
    payload = '<img src=x onerror="window.__xss=1">'
    volunteer = UserFactory(username="browservol")
    MeasurementFactory(user=volunteer, galaxy=GalaxyFactory(pgc=None, name=f"NGC {payload}"))
    page.goto(f"{live_server.url}/zoo/login/")
    page.fill("input[name=username]", "browservol")
    page.fill("input[name=password]", "pw-zoo-123")
    page.click("button[type=submit], input[type=submit]")
    page.goto(f"{live_server.url}/zoo/me/")
    assert page.evaluate("window.__xss") is None
    assert f"NGC {payload}" in page.inner_text("body")  # shown as text, literally


# --- CSRF ----------------------------------------------------------------------------------------------

FORM_PAGES = [("anonymous", "/"), ("anonymous", "/zoo/signup/"), ("anonymous", "/zoo/login/"),
              ("anonymous", "/admin/login/"), ("anonymous", "/predict/"), ("volunteer", "/zoo/"),
              ("volunteer", "/zoo/me/"), ("staff", "/admin/"), ("staff", "/admin/labeling/standard/add/"),
              ("staff", "/zoo/staff/report/")]
FORM_RE = re.compile(r"<form\b([^>]*)>(.*?)</form>", re.S | re.I)


def _csrf_refused(response: Any) -> bool:
    return response.status_code == 403 and b"CSRF" in response.content


@pytest.mark.django_db
def test_every_html_form_needs_its_csrf_token() -> None:
    users = {"anonymous": None,  # a volunteer past the tutorial, which /zoo/ sends newcomers to first
             "volunteer": ProfileFactory(role="volunteer", tutorial_passed_at=timezone.now()).user,
             "staff": UserFactory(is_staff=True, is_superuser=True)}
    forms_checked = 0
    for role, url in FORM_PAGES:
        client = Client(enforce_csrf_checks=True)
        if users[role]:
            client.force_login(users[role])
        page = client.get(url)
        assert page.status_code == 200, (url, page.status_code)
        for attributes, body in FORM_RE.findall(page.content.decode()):
            if not re.search(r"method=[\"']?post", attributes, re.I):
                continue
            action = re.search(r"action=[\"']([^\"']*)", attributes)
            target = (action.group(1) if action and action.group(1) else url).split("?")[0] or url
            token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', body)
            assert token, f"the POST form on {url} has no CSRF token"
            assert _csrf_refused(client.post(target, {})), f"{target} (form on {url}) accepted a POST without a token"
            with_token = client.post(target, {"csrfmiddlewaretoken": token.group(1)})
            assert not _csrf_refused(with_token), f"{target} refused its own token"
            forms_checked += 1
    assert forms_checked >= 5, forms_checked


@pytest.mark.django_db
def test_every_unsafe_endpoint_refuses_a_session_without_csrf_token(monkeypatch: pytest.MonkeyPatch) -> None:
    """Generated from the URL configuration: with a signed-in (staff) session, no POST/PUT/PATCH/DELETE passes
    without a CSRF token, so a cross-site page cannot act as the user."""
    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", {**SimpleRateThrottle.THROTTLE_RATES,
                                                               "anon": "100000/min", "user": "100000/min"})
    staff = UserFactory(is_staff=True, is_superuser=True)
    not_refused = []
    checked = 0
    for endpoint in endpoints():
        methods = [m for m in methods_for(endpoint.callback) if m in ("post", "put", "patch", "delete")]
        if not methods and (getattr(endpoint.callback, "view_class", None) or getattr(endpoint.callback, "cls", None)):
            continue  # a class-based view with only safe methods: nothing to forge
        methods = methods or ["post"]  # function views: POST is what a forged form would send
        for method in methods:
            client = Client(enforce_csrf_checks=True)
            client.force_login(staff)
            response = getattr(client, method)("/" + endpoint.sample_path, "{}", content_type="application/json")
            checked += 1
            if response.status_code == 405:
                continue  # the route answers no such method: nothing to forge
            if not _csrf_refused(response):
                not_refused.append(f"{method.upper()} {endpoint.route}: {response.status_code}")
    assert checked > 40
    assert not not_refused, "\n".join(not_refused)


# --- throttles -----------------------------------------------------------------------------------------

def _redis_has(key_part: str) -> bool:
    """The counters are in Redis (shared by all gunicorn workers) when REDIS_URL is set."""
    import redis
    from django.conf import settings

    if "RedisCache" not in settings.CACHES["default"]["BACKEND"]:
        return True  # zero-config runs use the file cache; the CI settings use Redis
    return bool(redis.Redis.from_url(settings.REDIS_URL).keys(f"*{key_part}*"))


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/zoo/login/", "/admin/login/"])
def test_login_is_throttled(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(LoginRateThrottle, "THROTTLE_RATES", {"login": "3/min"})
    UserFactory(username="victim")
    client = Client()
    for _ in range(3):
        assert client.post(url, {"username": "victim", "password": "guess"}).status_code == 200
    refused = client.post(url, {"username": "victim", "password": "pw-zoo-123"})
    assert refused.status_code == 429 and int(refused["Retry-After"]) > 0
    assert _redis_has("throttle_login_")
    # Another address is not held up by this one's attempts; reading the form is never throttled.
    assert client.post(url, {"username": "victim", "password": "guess"}, REMOTE_ADDR="10.1.2.3").status_code == 200
    assert client.get(url).status_code == 200


@pytest.mark.django_db
def test_signup_is_throttled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(SignupRateThrottle, "THROTTLE_RATES", {"signup": "2/hour"})
    client = Client()
    for n in range(2):
        answer = client.post("/zoo/signup/", {"username": f"new{n}", "password1": "Galaxy-incl-93!",
                                              "password2": "Galaxy-incl-93!"})
        assert answer.status_code == 302
        client.logout()
    refused = client.post("/zoo/signup/", {"username": "new9", "password1": "Galaxy-incl-93!",
                                           "password2": "Galaxy-incl-93!"})
    assert refused.status_code == 429
    from django.contrib.auth import get_user_model

    assert not get_user_model().objects.filter(username="new9").exists()


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/api/catalog/pgc/1", "/api/pgc/1", "/api/catalog/resolve?q=M33"])
def test_anonymous_api_is_throttled_but_signed_in_users_have_their_own_rate(
        url: str, monkeypatch: pytest.MonkeyPatch, volunteer_client: Client) -> None:
    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", {"anon": "3/min", "user": "1000/min"})
    client = Client()
    for _ in range(3):
        assert client.get(url).status_code != 429
    assert_failed_json(client.get(url), 429)
    assert _redis_has("throttle_anon_")
    assert volunteer_client.get(url).status_code != 429


@pytest.mark.django_db
def test_a_forged_forwarded_for_header_does_not_escape_the_throttles(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", {"anon": "3/min", "user": "1000/min"})
    monkeypatch.setattr(LoginRateThrottle, "THROTTLE_RATES", {"login": "2/min"})
    client = Client()
    for n in range(3):
        assert client.get("/api/pgc/1", HTTP_X_FORWARDED_FOR=f"203.0.113.{n}").status_code != 429
    assert_failed_json(client.get("/api/pgc/1", HTTP_X_FORWARDED_FOR="198.51.100.7"), 429)
    for n in range(2):
        client.post("/zoo/login/", {"username": "x", "password": "y"}, HTTP_X_FORWARDED_FOR=f"192.0.2.{n}")
    assert client.post("/zoo/login/", {"username": "x", "password": "y"},
                       HTTP_X_FORWARDED_FOR="192.0.2.99").status_code == 429


@pytest.mark.django_db
def test_behind_a_trusted_proxy_the_forwarded_address_is_the_client(monkeypatch: pytest.MonkeyPatch,
                                                                    settings: Any) -> None:
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", {"anon": "2/min", "user": "1000/min"})
    client = Client()
    for _ in range(2):
        assert client.get("/api/pgc/1", HTTP_X_FORWARDED_FOR="203.0.113.5").status_code != 429
    assert_failed_json(client.get("/api/pgc/1", HTTP_X_FORWARDED_FOR="203.0.113.5"), 429)
    # The proxy's own address is shared by everyone; another client behind it has its own counter.
    assert client.get("/api/pgc/1", HTTP_X_FORWARDED_FOR="203.0.113.6").status_code != 429


# --- production settings and secrets -------------------------------------------------------------------

def _manage(args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    # The browser fixture sets DJANGO_ALLOW_ASYNC_UNSAFE in this process; a deployment never would.
    dropped = {"SECRET_KEY", "DEBUG", "DJANGO_SETTINGS_MODULE", "DJANGO_ALLOW_ASYNC_UNSAFE"}
    clean = {k: v for k, v in os.environ.items() if k not in dropped}
    return subprocess.run([sys.executable, "manage.py", *args], cwd=REPO_ROOT, env={**clean, **env},
                          capture_output=True, text=True, timeout=120)


PRODUCTION = {"DEBUG": "0", "ALLOWED_HOSTS": "inclinet.example.org", "CSRF_TRUSTED_ORIGINS": "https://inclinet.example.org"}


def test_check_deploy_is_clean_with_production_settings() -> None:
    done = _manage(["check", "--deploy", "--fail-level", "WARNING"], SECRET_KEY=secrets.token_urlsafe(50), **PRODUCTION)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no issues" in done.stdout


def test_https_settings_follow_the_environment() -> None:
    """Turning HTTPS redirection off by env is possible, and check --deploy then says so (the check is real)."""
    done = _manage(["check", "--deploy", "--fail-level", "WARNING"], SECRET_KEY=secrets.token_urlsafe(50),
                   SECURE_SSL_REDIRECT="0", SECURE_HSTS_SECONDS="0", **PRODUCTION)
    assert done.returncode != 0
    assert "security.W008" in done.stderr + done.stdout and "security.W004" in done.stderr + done.stdout


@pytest.mark.parametrize("secret", [None, "", "dev-only-insecure-key-change-me"])
def test_production_refuses_to_start_without_a_secret_from_the_environment(secret: str | None) -> None:
    env = dict(PRODUCTION)
    if secret is not None:
        env["SECRET_KEY"] = secret
    done = _manage(["check"], **env)
    assert done.returncode != 0 and "SECRET_KEY must be set" in done.stderr


def test_no_secret_literals_in_settings() -> None:
    """Passwords and keys come from the environment; the only literal key is the DEBUG-only development one."""
    source = (REPO_ROOT / "inclinet_site" / "settings.py").read_text()
    literals = re.findall(r"(?i)(?:password|secret|token)\w*\s*=\s*[\"']([^\"']{8,})[\"']", source)
    assert literals == ["dev-only-insecure-key-change-me"], literals
