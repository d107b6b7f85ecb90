"""docker-compose.yml and the Dockerfile agree with the settings module (Docker cannot run here)."""
import re
from pathlib import Path

import dj_database_url
import yaml

ROOT = Path(__file__).resolve().parents[2]


def load_compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_has_every_service() -> None:
    assert set(load_compose()["services"]) == {"web", "worker", "beat", "postgres", "redis"}


def test_app_services_share_an_environment_the_settings_understand() -> None:
    services = load_compose()["services"]
    settings_source = (ROOT / "inclinet_site" / "settings.py").read_text()
    for name in ("web", "worker", "beat"):
        env = services[name]["environment"]
        for key in env:
            assert f'"{key}"' in settings_source, f"{name}: {key} is not read by settings.py"
        database = dj_database_url.parse(env["DATABASE_URL"])
        postgres_env = services["postgres"]["environment"]
        assert database["HOST"] == "postgres" and database["PORT"] == 5432
        assert (database["USER"], database["PASSWORD"], database["NAME"]) == (
            postgres_env["POSTGRES_USER"], postgres_env["POSTGRES_PASSWORD"], postgres_env["POSTGRES_DB"])
        assert env["REDIS_URL"].startswith("redis://redis:6379")


def test_ports_match_the_processes() -> None:
    services = load_compose()["services"]
    assert "5432:5432" in services["postgres"]["ports"] and "6379:6379" in services["redis"]["ports"]
    web_port = services["web"]["ports"][0].split(":")[1]
    assert f"0.0.0.0:{web_port}" in services["web"]["command"]
    assert re.search(rf"EXPOSE {web_port}\b", (ROOT / "Dockerfile").read_text())


def test_web_migrates_on_start_and_worker_serves_every_queue() -> None:
    services = load_compose()["services"]
    assert "migrate" in services["web"]["command"]
    queues = re.search(r"-Q (\S+)", services["worker"]["command"]).group(1).split(",")
    assert set(queues) == {"default", "train", "predict"}


def test_dockerfile_uses_slim_python_and_pinned_requirements() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.\d+-slim", dockerfile, re.M)
    assert "pip install -r requirements.txt" in dockerfile
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            assert "==" in line, f"unpinned requirement: {line}"


def test_redis_persists_queued_tasks_and_secret_key_is_required() -> None:
    compose = load_compose()
    redis = compose["services"]["redis"]
    assert "--appendonly" in redis["command"] and redis["command"][redis["command"].index("--appendonly") + 1] == "yes"
    assert any(volume.endswith(":/data") for volume in redis["volumes"])
    # Compose refuses to start without SECRET_KEY instead of running with a guessable one.
    assert compose["x-app-env"]["SECRET_KEY"].startswith("${SECRET_KEY:?")
