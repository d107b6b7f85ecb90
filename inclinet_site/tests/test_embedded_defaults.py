"""With no environment at all the site runs on SQLite and a filesystem Celery broker, for real."""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def bare_env(var_dir: Path, **extra: str) -> dict[str, str]:
    keep = {"PATH", "HOME", "LANG", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"}
    env = {key: value for key, value in os.environ.items() if key in keep}
    env.update({"VAR_DIR": str(var_dir), "TF_CPP_MIN_LOG_LEVEL": "2", **extra})
    return env


def run_manage(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.mark.integration
def test_zero_config_uses_sqlite_and_a_real_filesystem_worker(tmp_path: Path) -> None:
    env = bare_env(tmp_path)
    run_manage(env, "migrate", "--noinput", "-v0")
    assert (tmp_path / "inclinet.sqlite3").exists()
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "inclinet_site", "worker", "-Q", "default", "--concurrency", "1",
         "--without-gossip", "--without-mingle", "--loglevel", "INFO"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        probe = (
            "import json; from django.test import Client; from django.contrib.auth.models import User; "
            "c = Client(); c.force_login(User.objects.get_or_create(username='probe', is_staff=True)[0]); "
            "print(json.dumps(c.get('/healthz').json()))"
        )
        deadline, body = time.monotonic() + 90, {}
        while time.monotonic() < deadline:
            body = json.loads(run_manage(env, "shell", "-c", probe).strip().splitlines()[-1])
            if body["checks"]["worker"]["ok"]:
                break
        assert body["checks"]["database"]["vendor"] == "sqlite"
        assert "filesystem" in body["checks"]["broker"]["transport"].lower()
        assert body["checks"]["worker"]["ok"] is True
    finally:
        worker.terminate()
        worker.wait(timeout=30)


def test_webroot_serves_the_site_under_a_sub_path(tmp_path: Path) -> None:
    env = bare_env(tmp_path, WEBROOT="inclinet")
    run_manage(env, "migrate", "--noinput", "-v0")
    run_manage(env, "collectstatic", "--noinput", "-v0")  # DEBUG is off: pages link the hashed static files
    probe = (
        "import json; from django.test import Client; from django.urls import reverse; c = Client(); "
        "print(json.dumps([c.get('/inclinet/').status_code, c.get('/').status_code, "
        "c.get('/inclinet/api/schema/').status_code, reverse('healthz'), "
        "'/inclinet/static/' in c.get('/inclinet/').content.decode()]))"
    )
    home, root, schema, healthz_url, static_prefixed = json.loads(run_manage(env, "shell", "-c", probe).strip().splitlines()[-1])
    assert (home, root, schema) == (200, 404, 200)
    assert healthz_url == "/inclinet/healthz"
    assert static_prefixed


def test_production_settings_refuse_a_missing_secret_key(tmp_path: Path) -> None:
    # Only embedded mode (SQLite) makes itself a key (tests/test_deploy_settings.py); PostgreSQL needs one passed.
    env = bare_env(tmp_path, DEBUG="false", DATABASE_URL="postgres://inclinet@127.0.0.1:5432/inclinet")
    done = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "SECRET_KEY must be set" in done.stderr
