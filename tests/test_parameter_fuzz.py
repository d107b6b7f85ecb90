"""Hostile values in every parameter of every route, for every role: never a 5xx (issue 16, finding 1).

``tests/test_authorization.py`` walks the URL configuration but sends no parameters, which is how
``?q=²`` (``"²".isdigit()`` is true, ``int("²")`` fails), ``?seed=abc`` and a 400-digit JSON angle reached
500s. This test walks the same patterns and, for anonymous, volunteer, expert and staff, sends each
parameter the view reads with each value of ``HOSTILE``: Unicode digits, NaN, ±inf, huge numbers, a
negative, empty and a 5 kB string (and, in JSON bodies, the bare literals ``NaN``, ``Infinity``, ``1e400``
and a 400-digit integer).

Where the parameters come from:

- API operations: the OpenAPI schema (drf-spectacular's ``SchemaGenerator``): path and query parameters and
  the properties of JSON, form and multipart bodies; ``API_EXTRA_PARAMS`` adds what a view reads without
  documenting it.
- Every other route: ``PAGE_PARAMS`` below. A pattern with neither a schema operation nor an entry fails
  ``test_every_route_has_its_parameters_declared`` (as an unclassified route fails test_authorization), so a
  new page cannot ship unfuzzed. The Django admin (Django's own views) gets ``ADMIN_PARAMS`` at once.
- Path converters that take a value (``int``, ``str``, ``slug``, ``path``, regex groups) get each value in
  the path, URL-quoted; a value the converter refuses is the resolver's 404.
- Query and form keys the views actually read (``QueryDict.get`` and friends, recorded while fuzzing as
  staff, the role every view lets in) must all be declared; an undeclared one is named (admin excepted).

Roles a route refuses get each value in all its parameters at once (they are refused before any is read);
the admin, Django's own code, gets a shorter value list. About 10,000 requests, 1.5-2.5 minutes on 2 cores.

Failures: 500, 502, 504 and every other 5xx, except 503 in the documented failed JSON shape
(``{"status": "failed", "message": ...}``), which is how "no model is active" answers; no ensemble is
installed, so nothing runs inference. The remote services are the local fakes and throttle rates are
out of reach (the throttles have their own tests), so every request reaches its view. Celery sends wait for
a commit, which the test's transaction never makes.
"""
from __future__ import annotations

import copy
import functools
import json
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.http import QueryDict
from django.test import Client
from django.urls import Resolver404, resolve
from rest_framework.throttling import SimpleRateThrottle

from tests.test_authorization import (  # noqa: F401 - role_users is a fixture
    ALLOWED, OPTIONAL, ROLES, _webroot, endpoints, policy_for, role_users, sample_path,
)

HOSTILE: list[str] = ["²", "٣", "NaN", "inf", "-inf", "1e400", str(10**30), "-1", "", "x" * 5000]
# The Django admin is Django's code, with 113 routes here: one value of each kind keeps the run short.
ADMIN_HOSTILE: list[str] = ["²", "NaN", str(10**30), "-1", "", "x" * 5000]
# Bare JSON literals (Python's json module reads NaN, Infinity and 1e400 as floats, the last as inf).
JSON_LITERALS: list[str] = ["NaN", "Infinity", "-Infinity", "1e400", str(10**30), "-1", "1" + "0" * 400]

# Non-API routes: method -> where -> parameter names ("query", "form", "json", "file"). Path converters are
# read from the route itself. An empty dict: the view reads no parameters (it is still requested once).
PAGE_PARAMS: dict[str, dict[str, dict[str, list[str]]]] = {
    "": {},
    "healthz": {},
    "api/schema/": {"GET": {"query": ["format", "lang", "version"]}},
    "api/docs": {},
    "api/docs/": {},
    "api/redoc/": {},
    "zoo/": {},
    "zoo/tutorial/": {},
    "zoo/me/": {},
    "zoo/guide/": {},
    "zoo/guide/<slug:name>.png": {"GET": {}},
    "zoo/staff/report/": {"GET": {"query": ["seed"]}},
    "zoo/staff/report.png": {"GET": {"query": ["seed"]}},
    "zoo/staff/ingest/": {"POST": {"form": ["mode", "value"]}},
    "zoo/staff/standards/": {"GET": {"query": ["promoted", "filled"]},
                             "POST": {"form": ["galaxy_id", "fill_gaps"], "query": ["promoted", "filled"]}},
    "zoo/signup/": {"POST": {"form": ["username", "password1", "password2"]}},
    "zoo/login/": {"GET": {"query": ["next"]}, "POST": {"form": ["username", "password", "next"]}},
    "zoo/logout/": {"POST": {"form": ["next"]}},
    "zoo/img/<int:image_id>": {"GET": {}},
    "zoo/task/<int:task_id>/img/<str:kind>/<str:token>": {"GET": {}},
    "predict/": {"GET": {"query": ["pgc", "name", "ra", "dec", "fov"]}},
    "predict/batch/": {},
    "predict/galaxy/<int:pgc>": {"GET": {}},
    "predict/cutout": {"GET": {"query": ["ra", "dec", "fov"]}},
    "predict/upload": {"POST": {"file": ["file"]}},
    "predict/evaluate": {"POST": {"json": ["angle", "scale", "auto", "catalogue", "upload_id", "ra", "dec", "fov"]}},
    "staff/training/": {"POST": {"form": ["snapshot", "synthetic", "profile", "architectures", "flavours",
                                          "reject_architectures", "epochs", "steps_per_epoch", "batch_size",
                                          "queue", "promote"]}},
    "staff/training/api/jobs": {"GET": {"query": ["job"]}},
    "staff/training/api/runs/<int:run_id>": {"GET": {}},
    "staff/training/runs/<int:run_id>/": {"GET": {}},
    "staff/training/ensembles/": {"GET": {"query": ["message"]}},
    "staff/training/ensembles/rollback": {"POST": {}},
    "staff/training/ensembles/<int:ensemble_id>/": {"GET": {}},
    "staff/training/ensembles/<int:ensemble_id>/promote": {"POST": {}},
    "staff/training/ensembles/<int:ensemble_id>/plots/<str:name>": {"GET": {}},
    "^media/(?P<path>.*)$": {"GET": {}},
}
# API views that read a parameter their schema does not list.
API_EXTRA_PARAMS: dict[str, dict[str, dict[str, list[str]]]] = {
    "zoo/api/staff/report": {"GET": {"query": ["seed"]}},
    "zoo/api/tutorial": {"GET": {"query": ["step", "low", "target"]}},
}
# The Django admin's own query parameters (search, page, ordering, pop-ups, filters), sent together.
ADMIN_PARAMS = {"GET": {"query": ["q", "p", "o", "e", "_popup", "_to_field", "_changelist_filters"]}}
ADMIN_LOGIN_PARAMS = {"GET": {"query": ["next"]}, "POST": {"form": ["username", "password", "next"]}}
# Keys every view reads through Django or DRF themselves, not parameters of ours.
FRAMEWORK_KEYS = {"csrfmiddlewaretoken", "format", "_method"}
# Valid neighbours for the fuzzed field, so that it is not refused for a missing sibling before it is read.
BASELINES: dict[tuple[str, str], dict[str, Any]] = {
    ("predict/evaluate", "POST"): {"ra": "10.68", "dec": "41.27", "fov": "3"},
    ("predict/cutout", "GET"): {"ra": "10.68", "dec": "41.27", "fov": "3"},
    ("api/coords", "GET"): {"ra": "194.1825", "dec": "21.682", "fov": "15.7"},
    ("api/catalog/resolve", "GET"): {"q": "M33"},
}
FIVE_XX_ALLOWED = {503}  # only in the failed JSON shape, checked below


@dataclass
class Operation:
    route: str
    method: str
    sample_path: str
    params: dict[str, list[str]] = field(default_factory=dict)  # where -> names
    path_params: list[str] = field(default_factory=list)


def _norm(route: str) -> str:
    return route.replace("^", "")


@functools.cache
def _schema_operations() -> dict[tuple[str, str], dict[str, list[str]]]:
    """(route, METHOD) -> where -> names, from the OpenAPI schema, keyed by the URL pattern each path resolves to."""
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    components = schema.get("components", {}).get("schemas", {})
    webroot = _webroot()
    found: dict[tuple[str, str], dict[str, list[str]]] = {}
    for path, operations in schema["paths"].items():
        concrete = re.sub(r"\{(\w+)\}", lambda m: "csv" if m.group(1) == "fmt" else
                          str(uuid.UUID(int=1)) if "job" in m.group(1) else "1", path)
        match = resolve(webroot.rstrip("/") + concrete)
        for method, operation in operations.items():
            params: dict[str, list[str]] = {}
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "query":
                    params.setdefault("query", []).append(parameter["name"])
            content = operation.get("requestBody", {}).get("content", {})
            for content_type, where in (("application/json", "json"), ("multipart/form-data", "multipart")):
                if content_type not in content:
                    continue
                body = content[content_type]["schema"]
                body = components.get(body.get("$ref", "").rsplit("/", 1)[-1], body)
                for name, prop in body.get("properties", {}).items():
                    kind = "file" if prop.get("format") == "binary" else where
                    params.setdefault(kind, []).append(name)
                break  # one encoding per operation: JSON where offered
            found[(_norm(match.route), method.upper())] = params
    return found


def _declared(route: str, schema_ops: dict) -> dict[str, dict[str, list[str]]] | None:
    """METHOD -> where -> names for a route, or None when nobody declared its parameters."""
    methods = {m: p for (r, m), p in schema_ops.items() if r == _norm(route)}
    if methods:
        for method, extra in API_EXTRA_PARAMS.get(route, {}).items():
            for where, names in extra.items():
                methods.setdefault(method, {}).setdefault(where, []).extend(names)
        return methods
    if route in PAGE_PARAMS:
        return PAGE_PARAMS[route]
    if route.startswith("admin/"):
        return ADMIN_LOGIN_PARAMS if route == "admin/login/" else ADMIN_PARAMS
    return None


def _path_params(route: str) -> list[str]:
    names = re.findall(r"<(?:(?:int|str|slug|path):)?(\w+)>", route)
    names += [n for n, body in re.findall(r"\(\?P<(\w+)>((?:[^()]|\([^()]*\))*)\)", route)
              if not re.fullmatch(r"[\w|]+", body)]  # a fixed word list (csv|json) takes no free value
    return [n for n in names if not re.search(rf"<uuid:{n}>", route)]  # uuid takes none of the values


def operations() -> Iterator[Operation]:
    schema_ops = _schema_operations()  # cached: the schema is generated once per session
    for endpoint in endpoints():
        if endpoint.route in OPTIONAL:
            continue
        declared = _declared(endpoint.route, schema_ops) or {}
        for method, params in (declared or {"GET": {}}).items():
            yield Operation(route=endpoint.route, method=method, sample_path=endpoint.sample_path,
                            params=params, path_params=_path_params(endpoint.route))


def _path_with(route: str, name: str, value: str) -> str:
    """A concrete path for ``route`` whose converter or group ``name`` holds ``value`` (URL-quoted); the other
    converters get test_authorization's sample values."""
    marker = "FUZZMARKER"
    marked = re.sub(rf"\(\?P<{name}>((?:[^()]|\([^()]*\))*)\)", marker, route)
    marked = re.sub(rf"<(?:\w+:)?{name}>", marker, marked)
    return sample_path(marked).replace(marker, quote(value, safe="") or "%20")


def _requests(op: Operation, allowed: bool) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(label, path, client kwargs) for each hostile request of one operation and role."""
    webroot = _webroot()
    baseline = BASELINES.get((op.route, op.method), {})
    names = [(where, n) for where, ns in op.params.items() for n in ns]
    combined = op.route.startswith("admin/") or not allowed  # refused before any parameter is read
    for value in ADMIN_HOSTILE if op.route.startswith("admin/") else HOSTILE:
        for name in op.path_params:
            yield f"path {name}={value[:12]!r}", webroot + _path_with(op.route, name, value), {}
        groups = [names] if combined else [[n] for n in names]
        for group in groups if names else []:
            yield (f"{','.join(n for _, n in group)}={value[:12]!r}", webroot + op.sample_path,
                   _payload(op, group, value, baseline))
    json_names = [n for where, n in names if where == "json"]
    for literal in JSON_LITERALS if json_names else []:
        for name in ([json_names] if combined else [[n] for n in json_names]):
            body = {**baseline}
            text = json.dumps(body)[:-1] + ("," if body else "") + ",".join(f'"{n}": {literal}' for n in name) + "}"
            yield f"json {','.join(name)}={literal[:12]}", webroot + op.sample_path, {
                "data": text, "content_type": "application/json"}


def _payload(op: Operation, group: list[tuple[str, str]], value: str, baseline: dict[str, Any]) -> dict[str, Any]:
    wheres = {where for where, _ in group}
    if wheres <= {"query"} or op.method == "GET":
        return {"data": {**baseline, **{n: value for _, n in group}}}
    if "json" in wheres or op.method != "POST":  # PATCH/DELETE: DRF reads JSON too
        return {"data": json.dumps({**baseline, **{n: value for _, n in group}}), "content_type": "application/json"}
    data: dict[str, Any] = {**baseline}
    for where, name in group:
        if where == "file":
            data[name] = SimpleUploadedFile("hostile.png", value.encode(), content_type="image/png")
        else:
            data[name] = value
    return {"data": data}


def _bad(response: Any) -> str | None:  # noqa: ANN401
    status = response.status_code
    if status < 500:
        return None
    exc_info = getattr(response, "exc_info", None)
    if exc_info:
        return f"{status} from {exc_info[0].__name__}: {str(exc_info[1])[:160]}"
    if status in FIVE_XX_ALLOWED:
        try:
            body = json.loads(response.content)
        except ValueError:
            return f"{status} that is not JSON"
        if isinstance(body, dict) and body.get("status") == "failed" and isinstance(body.get("message"), str):
            return None
        return f"{status} without the failed JSON shape: {response.content[:120]!r}"
    return f"{status}: {response.content[:160]!r}"


class _ReadRecorder:
    """Records the keys views look up in QueryDicts (request.GET, request.POST, DRF form data)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.keys: set[str] = set()
        for name in ("get", "__getitem__", "__contains__", "getlist"):
            original = getattr(QueryDict, name)
            monkeypatch.setattr(QueryDict, name, self._wrap(original))

    def _wrap(self, original: Any) -> Any:  # noqa: ANN401
        def wrapped(qd: QueryDict, key: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: ANN401
            if isinstance(key, str):
                self.keys.add(key)
            return original(qd, key, *args, **kwargs)

        return wrapped


@pytest.fixture
def fuzz_site(role_users: dict[str, Any], fake_services: Any, monkeypatch: pytest.MonkeyPatch,  # noqa: ANN401, F811
              settings: Any) -> dict[str, Any]:  # noqa: ANN401
    """The four roles, the local fake remote services, no active model, throttle rates out of reach."""
    import inclinet_site.health as health

    monkeypatch.setattr(health, "WORKER_TIMEOUT_S", 0.2, raising=False)
    endpoints()  # imports every view module, so that every throttle class exists below
    pending = [SimpleRateThrottle]
    while pending:  # every throttle class, including those with a get_rate of their own
        throttle_class = pending.pop()
        pending.extend(throttle_class.__subclasses__())
        if throttle_class is SimpleRateThrottle or "get_rate" in vars(throttle_class):
            monkeypatch.setattr(throttle_class, "get_rate", lambda self: "1000000/min")
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"  # no session row per request
    return role_users


def test_every_route_has_its_parameters_declared() -> None:
    """A route that is neither a schema operation nor in PAGE_PARAMS (nor admin) fails here, by name."""
    schema_ops = _schema_operations()
    missing = sorted(e.route for e in endpoints() if e.route not in OPTIONAL and _declared(e.route, schema_ops) is None)
    assert not missing, f"declare the parameters of these routes in tests/test_parameter_fuzz.py PAGE_PARAMS: {missing}"


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
def test_hostile_parameter_values_never_get_a_5xx(fuzz_site: dict[str, Any], role: str,  # noqa: ANN401
                                                  monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> None:
    recorder = _ReadRecorder(monkeypatch)
    user = fuzz_site[role]
    failures: list[str] = []
    sent = 0
    started = time.monotonic()
    reads: dict[tuple[str, str], set[str]] = {}
    spent: dict[str, float] = {}
    signed_in = Client(raise_request_exception=False)
    if user is not None:
        signed_in.force_login(user)
    for op in operations():
        allowed = role in ALLOWED[policy_for(op.route) or "staff"]
        for label, path, kwargs in _requests(op, allowed):
            client = Client(raise_request_exception=False)
            if user is not None and "logout" in op.route:
                client.force_login(user)  # its own session: logging out must not sign the others out
            elif user is not None:
                client.cookies = copy.copy(signed_in.cookies)  # one session for the rest: force_login is slow
            recorder.keys.clear()
            began = time.monotonic()
            response = getattr(client, op.method.lower())(path, **kwargs)
            spent[op.route.split("/")[0]] = spent.get(op.route.split("/")[0], 0.0) + time.monotonic() - began
            sent += 1
            reads.setdefault((op.route, op.method), set()).update(recorder.keys)
            problem = _bad(response)
            if problem:
                failures.append(f"{op.method} {op.route} [{label}] as {role}: {problem}")
    request.node.user_properties.append(("requests", sent))
    print(f"{role}: {sent} requests in {time.monotonic() - started:.1f} s", {k: round(v, 1) for k, v in spent.items()})
    assert sent > 500, f"only {sent} requests: the walk found too little"
    assert not failures, f"{len(failures)} of {sent} requests failed:\n" + "\n".join(failures[:60])
    if role == "staff":  # the role that reaches every view
        undeclared = []
        schema_ops = _schema_operations()
        for (route, method), keys in sorted(reads.items()):
            if route.startswith("admin/"):
                continue  # Django's admin reads its own keys
            declared = {n for ns in (_declared(route, schema_ops) or {}).get(method, {}).values() for n in ns}
            extra = keys - declared - FRAMEWORK_KEYS
            if extra:
                undeclared.append(f"{method} {route} reads {sorted(extra)}")
        assert not undeclared, "declare these parameters (PAGE_PARAMS or API_EXTRA_PARAMS):\n" + "\n".join(undeclared)


def test_path_substitution_hits_the_pattern_under_test() -> None:
    """The hostile path values land in the converter they are meant for (else the fuzz tests nothing)."""
    webroot = _webroot()
    route = "zoo/task/<int:task_id>/img/<str:kind>/<str:token>"
    assert _path_with(route, "token", "²") == "zoo/task/1/img/x/%C2%B2"
    assert _path_with("api/^pgc/(?P<pgc_id>-?\\d+)$", "pgc_id", "٣") == "api/pgc/%D9%A3"
    assert _norm(resolve(webroot + unquote(_path_with("api/^pgc/(?P<pgc_id>-?\\d+)$", "pgc_id", "٣"))).route) == \
        "api/pgc/(?P<pgc_id>-?\\d+)$"
    try:
        match = resolve(webroot + "api/objname/" + quote("x" * 50, safe=""))
    except Resolver404:  # pragma: no cover - the route exists
        pytest.fail("api/objname did not resolve")
    assert _norm(match.route) == "api/objname/<path:objname>"
