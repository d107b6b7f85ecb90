"""The settings as each way of running IncliNET gives them: docker compose (HTTPS-only, secrets required) and
``make run``'s embedded mode (no environment: DEBUG off, a generated key, plain http that still logs in).

Settings are module-level, so every case imports them in a fresh subprocess with exactly its environment.
The compose environment comes from docker-compose.yml itself (tests/compose.py).
"""
from __future__ import annotations

import json
import os
import re
import secrets
import stat
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from tests.compose import (ROOT, ComposeError, command_text, compose_config, depends_on, published_ports,
                           service_environment)
from tests.ports import free_port

# What an operator puts in .env beside docker-compose.yml.
OPERATOR_ENV = {
    "SECRET_KEY": secrets.token_urlsafe(50),
    "POSTGRES_PASSWORD": "pg" + secrets.token_hex(12),
    "REDIS_PASSWORD": "rd" + secrets.token_hex(12),
}
APP_SERVICES = ("init", "web", "worker", "worker-train", "beat")
SECURITY_NAMES = [
    "DEBUG", "EMBEDDED", "INSECURE_HTTP", "SECURE_SSL_REDIRECT", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE",
    "SECURE_HSTS_SECONDS", "SECURE_HSTS_INCLUDE_SUBDOMAINS", "SECURE_HSTS_PRELOAD", "SECURE_PROXY_SSL_HEADER",
    "SERVE_MEDIA", "ALLOWED_HOSTS", "SECRET_KEY", "STORAGES",
]


def process_env(var_dir: Path, extra: dict[str, str]) -> dict[str, str]:
    """Only what a container or a bare shell would have, plus ``extra``; state goes to ``var_dir``."""
    keep = {"PATH", "HOME", "LANG", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"}
    env = {key: value for key, value in os.environ.items() if key in keep}
    # The compose paths (/data/...) do not exist here; nothing in these checks writes to them.
    return {**env, "TF_CPP_MIN_LOG_LEVEL": "2", "VAR_DIR": str(var_dir), **extra}


def load_settings(env: dict[str, str], names: list[str] = SECURITY_NAMES) -> dict:
    code = (
        "import json, django; from django.conf import settings; django.setup(); "
        f"print(json.dumps({{n: getattr(settings, n, None) for n in {names!r}}}, default=str))"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**env, "DJANGO_SETTINGS_MODULE": "inclinet_site.settings"})
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def web_env(tmp_path: Path, **operator: str) -> dict[str, str]:
    config = compose_config({**OPERATOR_ENV, **operator})
    return process_env(tmp_path, service_environment(config, "web"))


# --- docker compose ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("missing", sorted(OPERATOR_ENV))
def test_compose_refuses_to_start_without_each_secret(missing: str) -> None:
    env = {key: value for key, value in OPERATOR_ENV.items() if key != missing}
    with pytest.raises(ComposeError, match=missing):
        compose_config(env)


def test_postgres_and_redis_are_internal_and_password_protected() -> None:
    config = compose_config(OPERATOR_ENV)
    for name in ("postgres", "redis"):
        assert published_ports(config, name) == [], f"{name} must not be published on the host"
    assert service_environment(config, "postgres")["POSTGRES_PASSWORD"] == OPERATOR_ENV["POSTGRES_PASSWORD"]
    redis_command = config["services"]["redis"]["command"]
    assert redis_command[redis_command.index("--requirepass") + 1] == OPERATOR_ENV["REDIS_PASSWORD"]
    assert redis_command[redis_command.index("--appendonly") + 1] == "yes"  # queued tasks survive a restart
    for name in APP_SERVICES:
        env = service_environment(config, name)
        database, redis = urlsplit(env["DATABASE_URL"]), urlsplit(env["REDIS_URL"])
        assert (database.hostname, database.password) == ("postgres", OPERATOR_ENV["POSTGRES_PASSWORD"])
        assert (redis.hostname, redis.password) == ("redis", OPERATOR_ENV["REDIS_PASSWORD"])
        assert env["SECRET_KEY"] == OPERATOR_ENV["SECRET_KEY"]
    # No usable default password is written in the file.
    raw = (ROOT / "docker-compose.yml").read_text()
    assert "inclinet:inclinet@" not in raw and not re.search(r"POSTGRES_PASSWORD:\s*\w", raw)


def test_only_the_web_port_is_published_and_on_loopback_by_default() -> None:
    config = compose_config(OPERATOR_ENV)
    assert published_ports(config, "web") == ["127.0.0.1:8000:8000"]
    assert "0.0.0.0:8000" in command_text(config, "web")
    published = [name for name in config["services"] if published_ports(config, name)]
    assert published == ["web"]
    assert published_ports(compose_config({**OPERATOR_ENV, "WEB_BIND": "0.0.0.0", "WEB_PORT": "80"}), "web") == [
        "0.0.0.0:80:8000"]


def test_init_runs_once_before_every_application_service() -> None:
    config = compose_config(OPERATOR_ENV)
    init = config["services"]["init"]
    assert init["restart"] == "no"
    assert depends_on(config, "init") == {"postgres": "service_healthy", "redis": "service_healthy"}
    script_path = re.search(r"docker/\S+\.sh", command_text(config, "init")).group(0)
    steps = [line.split()[:3] for line in (ROOT / script_path).read_text().splitlines()
             if line.startswith("python manage.py")]
    assert [step[2] for step in steps] == ["migrate", "import_openngc", "install_shipped_ensemble", "reconcile_active_model",
                                        "ensure_staff"]
    assert "set -eu" in (ROOT / script_path).read_text()  # a failed step fails init, and nothing starts
    for name in ("web", "worker", "worker-train", "beat"):
        assert depends_on(config, name)["init"] == "service_completed_successfully", name
        assert "migrate" not in command_text(config, name)


def test_training_has_its_own_worker_and_every_queue_is_served() -> None:
    from django.conf import settings

    config = compose_config(OPERATOR_ENV)
    queues = {name: set(re.search(r"-Q (\S+)", command_text(config, name)).group(1).split(","))
              for name in ("worker", "worker-train")}
    assert queues == {"worker": {"default", "predict"}, "worker-train": {"train"}}
    assert set(settings.CELERY_TASK_QUEUES_NAMES) == queues["worker"] | queues["worker-train"]
    assert " beat " in f" {command_text(config, 'beat')} "


def test_check_deploy_is_clean_with_the_compose_environment(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"], cwd=ROOT,
                          env=web_env(tmp_path), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "System check identified no issues" in done.stdout, done.stdout + done.stderr


def test_compose_environment_is_https_only(tmp_path: Path) -> None:
    values = load_settings(web_env(tmp_path))
    assert values["DEBUG"] is False and values["EMBEDDED"] is False and values["INSECURE_HTTP"] is False
    assert values["SECURE_SSL_REDIRECT"] and values["SESSION_COOKIE_SECURE"] and values["CSRF_COOKIE_SECURE"]
    assert values["SECURE_HSTS_SECONDS"] >= 31536000
    assert values["SECURE_HSTS_INCLUDE_SUBDOMAINS"] and values["SECURE_HSTS_PRELOAD"]
    # gunicorn is reached directly unless a proxy is configured: a client's own X-Forwarded-Proto means nothing.
    assert values["SECURE_PROXY_SSL_HEADER"] is None
    assert values["SERVE_MEDIA"] is True  # no web server in front of MEDIA_ROOT in compose
    assert values["SECRET_KEY"] == OPERATOR_ENV["SECRET_KEY"]
    assert values["STORAGES"]["staticfiles"]["BACKEND"] == "inclinet_site.storage.StaticStorage"
    assert not (tmp_path / "secret_key").exists()  # production never makes up its own key


def test_compose_behind_a_tls_proxy_trusts_its_header(tmp_path: Path) -> None:
    values = load_settings(web_env(tmp_path, SECURE_PROXY_SSL_HEADER="HTTP_X_FORWARDED_PROTO,https"))
    assert values["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert values["SECURE_SSL_REDIRECT"] is True


def test_compose_plain_http_override_for_a_local_try(tmp_path: Path) -> None:
    values = load_settings(web_env(tmp_path, INSECURE_HTTP="1"))
    assert values["DEBUG"] is False
    assert not (values["SECURE_SSL_REDIRECT"] or values["SESSION_COOKIE_SECURE"] or values["CSRF_COOKIE_SECURE"])
    assert values["SECURE_HSTS_SECONDS"] == 0


def test_a_malformed_proxy_header_setting_is_refused(tmp_path: Path) -> None:
    env = web_env(tmp_path, SECURE_PROXY_SSL_HEADER="X-Forwarded-Proto")
    done = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode != 0 and "SECURE_PROXY_SSL_HEADER must look like" in done.stderr


# --- embedded mode (make run) -----------------------------------------------------------------------------

def test_no_environment_means_debug_off_plain_http_and_a_kept_random_key(tmp_path: Path) -> None:
    env = process_env(tmp_path, {})
    first = load_settings(env)
    assert first["DEBUG"] is False and first["EMBEDDED"] is True and first["INSECURE_HTTP"] is True
    assert not (first["SECURE_SSL_REDIRECT"] or first["SESSION_COOKIE_SECURE"] or first["CSRF_COOKIE_SECURE"])
    assert first["SECURE_HSTS_SECONDS"] == 0 and first["SERVE_MEDIA"] is True
    assert {"127.0.0.1", "localhost"} <= set(first["ALLOWED_HOSTS"])
    key_file = tmp_path / "secret_key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert first["SECRET_KEY"] == key_file.read_text().strip() and len(first["SECRET_KEY"]) >= 50
    assert first["SECRET_KEY"] != "dev-only-insecure-key-change-me"
    assert load_settings(env)["SECRET_KEY"] == first["SECRET_KEY"]  # reused: sessions survive a restart
    assert load_settings(process_env(tmp_path / "other", {}))["SECRET_KEY"] != first["SECRET_KEY"]


def test_debug_only_when_asked(tmp_path: Path) -> None:
    assert load_settings(process_env(tmp_path, {"DEBUG": "true"}))["DEBUG"] is True
    assert load_settings(process_env(tmp_path, {"DEBUG": "0"}))["DEBUG"] is False


def test_an_explicit_secret_key_file_is_used_outside_embedded_mode(tmp_path: Path) -> None:
    key_file = tmp_path / "keys" / "inclinet"
    env = process_env(tmp_path, {"DATABASE_URL": "postgres://inclinet@127.0.0.1:5432/inclinet",
                                 "SECRET_KEY_FILE": str(key_file)})
    values = load_settings(env)
    assert values["SECRET_KEY"] == key_file.read_text().strip()
    assert values["EMBEDDED"] is False and values["SECURE_SSL_REDIRECT"] is True


@pytest.mark.integration
def test_embedded_gunicorn_over_plain_http_under_a_webroot(tmp_path: Path) -> None:
    """``make run``'s set-up for real: gunicorn, DEBUG off, http://127.0.0.1, WEBROOT /inclinet/.

    Log-in with CSRF works over plain http (requests, like a browser, withholds Secure cookies from http);
    static files come hashed from whitenoise, the API docs load their scripts from here, the public media
    folders are served and the private ones are not, and errors are friendly pages (JSON under /api/).
    """
    env = process_env(tmp_path, {"WEBROOT": "/inclinet/", "STAFF_PASSWORD": "s3cret-" + secrets.token_hex(6)})
    for args in (["migrate", "--noinput", "-v0"], ["collectstatic", "--noinput", "-v0"], ["ensure_staff"]):
        done = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
    media = tmp_path / "media"
    (media / "model_inputs" / "ab").mkdir(parents=True)
    (media / "model_inputs" / "ab" / "abc.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"0" * 64)
    (media / "labeling" / "exports").mkdir(parents=True)
    (media / "labeling" / "exports" / "private.csv").write_text("volunteer,answer\n")

    port = free_port()
    base = f"http://127.0.0.1:{port}/inclinet/"
    server = subprocess.Popen([sys.executable, "-m", "gunicorn", "inclinet_site.wsgi", "-b", f"127.0.0.1:{port}",
                               "--workers", "1", "--threads", "4"], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        web = requests.Session()
        deadline = time.monotonic() + 90
        while True:
            try:
                home = web.get(base, timeout=10)
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline and server.poll() is None, "gunicorn did not start"
                time.sleep(0.5)
        assert home.status_code == 200 and "Strict-Transport-Security" not in home.headers
        for link in ("/inclinet/api/docs/", "/inclinet/api/redoc/", "/inclinet/api/schema/"):
            assert f'href="{link}"' in home.text
        css = re.search(r'href="(/inclinet/static/css/site\.[0-9a-f]{12}\.css)"', home.text).group(1)
        assert web.get(f"http://127.0.0.1:{port}{css}", timeout=10).status_code == 200

        for page, script in (("api/docs/", r"swagger-ui-dist/swagger-ui-bundle\.[0-9a-f]{12}\.js"),
                             ("api/redoc/", r"redoc/bundles/redoc\.standalone\.[0-9a-f]{12}\.js")):
            html = web.get(base + page, timeout=10)
            assert html.status_code == 200 and "cdn.jsdelivr.net" not in html.text and "googleapis" not in html.text
            src = re.search(rf'src="(/inclinet/static/drf_spectacular_sidecar/{script})"', html.text).group(1)
            assert web.get(f"http://127.0.0.1:{port}{src}", timeout=10).status_code == 200
            assert "/inclinet/api/schema/" in html.text

        png = web.get(base + "media/model_inputs/ab/abc.png", timeout=10)
        assert png.status_code == 200 and png.headers["Content-Type"] == "image/png"
        for private in ("media/labeling/exports/private.csv", "media/model_inputs/%2e%2e/labeling/exports/private.csv"):
            assert web.get(base + private, timeout=10).status_code == 404, private

        missing = web.get(base + "no-such-page", timeout=10)
        assert missing.status_code == 404 and "Not found" in missing.text and "Traceback" not in missing.text
        assert missing.headers["Content-Type"].startswith("text/html")
        api_missing = web.get(base + "api/no-such-endpoint", timeout=10)
        assert api_missing.status_code == 404 and api_missing.json()["status"] == "failed"

        login_page = web.get(base + "admin/login/", timeout=10)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login_page.text).group(1)
        assert "csrftoken" in web.cookies
        signed_in = web.post(base + "admin/login/?next=/inclinet/admin/", timeout=10, allow_redirects=False, data={
            "csrfmiddlewaretoken": token, "username": "staff", "password": env["STAFF_PASSWORD"]})
        assert signed_in.status_code == 302, signed_in.text[:2000]
        assert signed_in.headers["Location"] == "/inclinet/admin/"
        admin = web.get(base + "admin/", timeout=10)
        assert admin.status_code == 200 and "Site administration" in admin.text
    finally:
        server.terminate()
        _, errors = server.communicate(timeout=30)
    assert b"Traceback" not in errors, errors.decode(errors="replace")[-3000:]


# --- error pages ------------------------------------------------------------------------------------------

@pytest.mark.django_db
def test_a_crash_is_a_friendly_page_for_people_and_json_for_api_clients(monkeypatch: pytest.MonkeyPatch) -> None:
    from django.test import Client

    import catalog.api
    import inclinet_site.views

    def explode(*args: object, **kwargs: object) -> None:
        raise ZeroDivisionError("internal detail that must not reach the visitor")

    monkeypatch.setattr(inclinet_site.views, "catalogue_counts", explode)
    monkeypatch.setattr(catalog.api, "galaxy_get_or_fetch_by_pgc", explode)
    client = Client(raise_request_exception=False)
    page = client.get("/")
    body = page.content.decode()
    assert page.status_code == 500 and page["Content-Type"].startswith("text/html")
    assert "Something went wrong" in body and "internal detail" not in body and "Traceback" not in body
    api = client.get("/api/catalog/pgc/5818")
    assert api.status_code == 500 and api.json()["status"] == "failed"
    assert "internal detail" not in api.content.decode()


def test_the_image_has_postgresql_tools_matching_the_compose_server() -> None:
    """`manage.py backup` runs pg_dump/pg_restore in the web container; they must match the server's major."""
    config = compose_config(OPERATOR_ENV)
    major = re.fullmatch(r"postgres:(\d+)(\.\d+)*(-\S+)?", config["services"]["postgres"]["image"]).group(1)
    assert f"postgresql-client-{major}" in (ROOT / "Dockerfile").read_text()
