"""Authorisation for every role on every endpoint, generated from the URL configuration.

The test walks ``django.urls.get_resolver()`` and asks every pattern, as anonymous, volunteer, expert
and staff, with every method its view answers. Each pattern must be classified in ``POLICY`` below:
a new endpoint that nobody classified fails ``test_every_pattern_is_classified``, so it cannot ship
unchecked; a classified pattern that no longer exists fails too, so the table stays true.

"Refused" means 401/403, or a redirect to a login page carrying ``next=``. "Reached" means anything
else except a 500 (404 for a missing object, 405, 400 for an empty body and 503 without a model are
all answers of the view itself, past its permission check).
"""
from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.core.cache import cache
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, resolve

from labeling.tests.factories import ProfileFactory, UserFactory

# Access classes, from most open to most closed.
PUBLIC = "public"  # anyone, including anonymous visitors and API clients
LOGIN = "login"  # any signed-in volunteer
EXPERT = "expert"  # Zoo experts and staff
STAFF = "staff"  # Zoo staff (profile role staff, or Django staff)
ADMIN = "admin"  # the Django admin: Django ``is_staff`` users only

ROLES = ("anonymous", "volunteer", "expert", "staff")
ALLOWED: dict[str, set[str]] = {
    PUBLIC: set(ROLES),
    LOGIN: {"volunteer", "expert", "staff"},
    EXPERT: {"expert", "staff"},
    STAFF: {"staff"},
    ADMIN: {"staff"},
}

# Every URL pattern of the site, by its route as ``get_resolver`` spells it (WEBROOT prefix removed).
# Patterns under ``admin/`` default to ADMIN (see ``policy_for``); only the exceptions are listed.
POLICY: dict[str, str] = {
    "": PUBLIC,
    "healthz": PUBLIC,
    "api/schema/": PUBLIC,
    "api/docs": PUBLIC,
    "api/docs/": PUBLIC,
    "api/redoc/": PUBLIC,
    # catalogue
    "api/catalog/pgc/<int:pgc>": PUBLIC,
    "api/catalog/resolve": PUBLIC,
    # Zoo pages
    "zoo/": LOGIN,
    "zoo/tutorial/": LOGIN,
    "zoo/guide/": PUBLIC,  # the field guide: reading it needs no account
    "zoo/guide/<slug:name>.png": PUBLIC,
    "zoo/me/": LOGIN,
    "zoo/staff/report/": STAFF,
    "zoo/staff/report.png": STAFF,
    "zoo/staff/ingest/": STAFF,
    "zoo/staff/standards/": STAFF,
    "zoo/signup/": PUBLIC,
    "zoo/login/": PUBLIC,
    "zoo/logout/": PUBLIC,
    "zoo/img/<int:image_id>": PUBLIC,  # galaxy images are public (cache_control public)
    "zoo/task/<int:task_id>/img/<str:kind>/<str:token>": LOGIN,  # a task's target: its volunteer (or staff) only
    # Zoo API
    "zoo/api/tasks/next": LOGIN,
    "zoo/api/tasks/<int:task_id>/standards": LOGIN,
    "zoo/api/tasks/<int:task_id>/submit": LOGIN,
    "zoo/api/tasks/<int:task_id>/skip": LOGIN,
    "zoo/api/me/stats": LOGIN,
    "zoo/api/me/preferences": LOGIN,
    "zoo/api/exports": LOGIN,
    "zoo/api/exports/<uuid:job_id>": LOGIN,
    "zoo/api/exports/<uuid:job_id>/download": LOGIN,
    "zoo/api/tutorial": LOGIN,
    "zoo/api/tutorial/check": LOGIN,
    "zoo/api/standards/proposals": EXPERT,
    "zoo/api/staff/galaxies/<int:galaxy_id>/retire": STAFF,
    "zoo/api/staff/galaxies/<int:galaxy_id>": STAFF,
    "zoo/api/staff/standards": STAFF,
    "zoo/api/staff/standards/<int:standard_id>": STAFF,
    "zoo/api/staff/standards/promote": STAFF,
    "zoo/api/staff/standards/coverage": STAFF,
    "zoo/api/staff/report": STAFF,
    # prediction API: open to anonymous astronomers, throttled (see test_security)
    "api/^pgc/(?P<pgc_id>-?\\d+)$": PUBLIC,
    "api/objname/<path:objname>": PUBLIC,
    "api/coords": PUBLIC,
    "api/file": PUBLIC,
    "api/batch": PUBLIC,
    "api/batch/<uuid:job_id>": PUBLIC,  # the random job id is the capability
    "api/^batch/(?P<job_id>[0-9a-f-]{36})/result\\.(?P<fmt>csv|json)$": PUBLIC,
    # astronomer page
    "predict/": PUBLIC,
    "predict/cutout": PUBLIC,
    "predict/upload": PUBLIC,
    "predict/evaluate": PUBLIC,
    "predict/batch/": PUBLIC,
    "predict/galaxy/<int:pgc>": PUBLIC,
    # staff retraining pages (issue 6; their behaviour is covered by the training tests)
    "staff/training/": STAFF,
    "staff/training/api/jobs": STAFF,
    "staff/training/api/runs/<int:run_id>": STAFF,
    "staff/training/ensembles/": STAFF,
    "staff/training/ensembles/<int:ensemble_id>/": STAFF,
    "staff/training/ensembles/<int:ensemble_id>/plots/<str:name>": STAFF,
    "staff/training/ensembles/<int:ensemble_id>/promote": STAFF,
    "staff/training/ensembles/rollback": STAFF,
    "staff/training/runs/<int:run_id>/": STAFF,
    # the admin's own public doors
    "admin/login/": PUBLIC,
    "admin/logout/": PUBLIC,
}
# Views that let staff in and then refuse on their own terms, with why. Staff get exactly this status.
STAFF_VIEW_REFUSALS: dict[str, tuple[int, str]] = {
    "admin/autocomplete/": (403, "autocomplete refuses a request without its term/app/model parameters"),
    "admin/labeling/measurement/<path:object_id>/delete/": (403, "measurements are append-only"),
}
# Present only in some configurations (SERVE_MEDIA: Django serves the public media folders).
OPTIONAL = {"^media/(?P<path>.*)$"}


@dataclass(frozen=True)
class Endpoint:
    route: str  # the pattern, prefix stripped: the key of POLICY
    callback: Any
    sample_path: str  # a concrete path that resolves to this pattern


def _webroot() -> str:
    from django.conf import settings

    return settings.WEBROOT


def _route_text(pattern: Any) -> str:
    return str(pattern)


def walk(resolver: URLResolver | None = None, prefix: str = "") -> Iterator[tuple[str, URLPattern]]:
    """Every leaf pattern with its full route text."""
    resolver = resolver or get_resolver()
    for entry in resolver.url_patterns:
        text = prefix + _route_text(entry.pattern)
        if isinstance(entry, URLResolver):
            yield from walk(entry, text)
        else:
            yield text, entry


_SAMPLE_BY_CONVERTER = {"int": "1", "uuid": str(uuid.UUID(int=1)), "path": "M33", "str": "x", "slug": "x"}


def _sample_group(name: str, body: str) -> str:
    """A value for one named regex group: the first alternative of a word list, or a plausible value."""
    if re.fullmatch(r"[\w|]+", body):
        return body.split("|")[0]
    if "0-9a-f" in body:
        return str(uuid.UUID(int=1))
    if r"\d" in body:
        return "1"
    return "x"


def sample_path(route: str) -> str:
    """A concrete path for a route, e.g. ``api/catalog/pgc/<int:pgc>`` -> ``api/catalog/pgc/1``."""
    # Regex groups first: their ``(?P<name>`` would otherwise look like a route converter.
    path = re.sub(r"\(\?P<(\w+)>((?:[^()]|\([^()]*\))*)\)", lambda m: _sample_group(m.group(1), m.group(2)), route)
    path = re.sub(r"<(?:(\w+):)?\w+>", lambda m: _SAMPLE_BY_CONVERTER[m.group(1) or "str"], path)
    return path.replace("^", "").replace("$", "").replace("\\.", ".").replace("\\", "")


def endpoints() -> list[Endpoint]:
    prefix = _webroot().lstrip("/")
    found = []
    for text, entry in walk():
        route = text[len(prefix):] if prefix and text.startswith(prefix) else text
        found.append(Endpoint(route=route, callback=entry.callback, sample_path=sample_path(route)))
    return found


def policy_for(route: str) -> str | None:
    if route in POLICY:
        return POLICY[route]
    if route.startswith("admin/"):
        return ADMIN
    return None


def methods_for(callback: Any) -> list[str]:
    """The methods a class-based view implements; GET and POST for function views."""
    view_class = getattr(callback, "view_class", None) or getattr(callback, "cls", None)
    if view_class is None:
        return ["get"] if getattr(callback, "admin_site", None) or "admin" in callback.__module__ else ["get", "post"]
    return [m for m in ("get", "post", "put", "patch", "delete") if callable(getattr(view_class, m, None))]


@pytest.fixture
def role_users(db, settings) -> dict[str, Any]:  # noqa: ANN001
    """One user per role (None for anonymous); Zoo staff are also Django staff (the admin is theirs)."""
    settings.REMOTE_RESOLVERS_ENABLED = False
    users: dict[str, Any] = {"anonymous": None}
    for role in ("volunteer", "expert"):
        users[role] = ProfileFactory(role=role).user
    users["staff"] = UserFactory(is_staff=True, is_superuser=True)
    ProfileFactory(user=users["staff"], role="staff")
    return users


def client_for(user: Any) -> Client:
    """A fresh client per request: a logout pattern earlier in the walk must not sign the next one out."""
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


def refused(response: Any) -> bool:
    if response.status_code in (401, 403):
        return True
    location = response.get("Location", "") if response.status_code in (301, 302, 303) else ""
    return "login" in location and "next=" in location


def test_every_pattern_is_classified() -> None:
    """A new URL pattern must be added to POLICY (or fall under admin/) before this test passes."""
    routes = {e.route for e in endpoints()}
    unclassified = sorted(r for r in routes if policy_for(r) is None and r not in OPTIONAL)
    assert not unclassified, f"classify these URL patterns in tests/test_authorization.py POLICY: {unclassified}"
    stale = sorted(r for r in POLICY if r not in routes)
    assert not stale, f"POLICY lists patterns that no longer exist: {stale}"


def test_sample_paths_resolve_to_their_own_pattern() -> None:
    """The generated paths really hit the pattern under test (otherwise the matrix would test nothing)."""
    webroot = _webroot()
    for endpoint in endpoints():
        if endpoint.route in OPTIONAL:
            continue
        match = resolve(webroot + endpoint.sample_path)
        assert match.func == endpoint.callback, (endpoint.route, endpoint.sample_path, match.route)


@pytest.mark.django_db
def test_authorisation_matrix(role_users: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """Every pattern × role × method: refused exactly when the policy says so, and never a 500."""
    import inclinet_site.health as health

    monkeypatch.setattr(health, "WORKER_TIMEOUT_S", 0.2)  # no worker runs here; don't wait 5 s for one
    cache.clear()  # fresh throttle counters
    webroot = _webroot()
    failures: list[str] = []
    checked = 0
    for endpoint in endpoints():
        if endpoint.route in OPTIONAL:
            continue
        access = policy_for(endpoint.route)
        for role in ROLES:
            for method in methods_for(endpoint.callback):
                response = getattr(client_for(role_users[role]), method)(webroot + endpoint.sample_path)
                checked += 1
                expect_allowed = role in ALLOWED[access]
                if role == "staff" and endpoint.route in STAFF_VIEW_REFUSALS:
                    expected_status = STAFF_VIEW_REFUSALS[endpoint.route][0]
                    if response.status_code != expected_status:
                        failures.append(f"{method.upper()} {endpoint.route} as staff: {response.status_code}, "
                                        f"expected the view's own {expected_status}")
                elif response.status_code >= 500 and response.status_code not in (502, 503):
                    failures.append(f"{method.upper()} {endpoint.route} as {role}: {response.status_code}")
                elif refused(response) == expect_allowed:
                    failures.append(f"{method.upper()} {endpoint.route} as {role}: {response.status_code} "
                                    f"{response.get('Location', '')} but policy is {access}")
    assert checked > 4 * 40, f"only {checked} requests: the URL walk found too little"
    assert not failures, "\n".join(failures)


@pytest.mark.django_db
def test_zoo_staff_role_without_django_staff_gets_zoo_staff_pages_but_not_the_admin(settings) -> None:  # noqa: ANN001
    """The profile role staff opens the Zoo's staff pages; the Django admin still needs ``is_staff``."""
    client = Client()
    client.force_login(ProfileFactory(role="staff").user)
    webroot = _webroot()
    assert client.get(f"{webroot}zoo/api/staff/standards").status_code == 200
    admin = client.get(f"{webroot}admin/")
    assert refused(admin), admin.status_code
