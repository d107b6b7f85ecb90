"""docker-compose.yml and the Dockerfile agree with the settings module (Docker cannot run here)."""
import re
from pathlib import Path

import dj_database_url
import yaml

from tests.compose import command_text, compose_config

ROOT = Path(__file__).resolve().parents[2]
# Settings read most variables; the staff account's come from the ensure_staff command that init runs, and each
# app's tunables (<PREFIX>_<NAME>) from its conf.py through inclinet_site.conf.AppSettings.
READERS = [ROOT / "inclinet_site" / "settings.py", ROOT / "catalog" / "management" / "commands" / "ensure_staff.py"]


def app_setting_names() -> set[str]:
    from catalog.conf import legacy_survey_setting
    from labeling.conf import zoo_setting
    from predictions.conf import prediction_setting
    from training.conf import training_setting

    return {f"{conf.prefix}_{name}" for conf in (legacy_survey_setting, zoo_setting, prediction_setting,
                                                 training_setting) for name in conf.defaults}


def load_compose() -> dict:
    """Resolved as docker compose would, with the secrets an operator must supply."""
    return compose_config({"SECRET_KEY": "k" * 50, "POSTGRES_PASSWORD": "pgpass", "REDIS_PASSWORD": "redispass"})


def test_compose_has_every_service() -> None:
    assert set(load_compose()["services"]) == {"init", "web", "worker", "worker-train", "beat", "postgres", "redis"}


def test_app_services_share_an_environment_the_settings_understand() -> None:
    services = load_compose()["services"]
    settings_source = "".join(path.read_text() for path in READERS)
    app_settings = app_setting_names()
    for name in ("init", "web", "worker", "worker-train", "beat"):
        env = services[name]["environment"]
        for key in env:
            assert f'"{key}"' in settings_source or key in app_settings, f"{name}: {key} is not read by settings.py"
        database = dj_database_url.parse(env["DATABASE_URL"])
        postgres_env = services["postgres"]["environment"]
        assert database["HOST"] == "postgres" and database["PORT"] == 5432
        assert (database["USER"], database["PASSWORD"], database["NAME"]) == (
            postgres_env["POSTGRES_USER"], postgres_env["POSTGRES_PASSWORD"], postgres_env["POSTGRES_DB"])
        assert env["REDIS_URL"].startswith("redis://:redispass@redis:6379")


def test_ports_match_the_processes() -> None:
    services = load_compose()["services"]
    # PostgreSQL and Redis are reached over the compose network only (tests/test_deploy_settings.py).
    assert "ports" not in services["postgres"] and "ports" not in services["redis"]
    container_port = services["web"]["ports"][0].rsplit(":", 1)[1]
    assert f"0.0.0.0:{container_port}" in services["web"]["command"]
    assert re.search(rf"EXPOSE {container_port}\b", (ROOT / "Dockerfile").read_text())


def test_init_migrates_before_start_and_the_workers_serve_every_queue() -> None:
    config = load_compose()
    assert "migrate" in (ROOT / "docker" / "init.sh").read_text() and "docker/init.sh" in command_text(config, "init")
    queues = set()
    for name in ("worker", "worker-train"):
        queues |= set(re.search(r"-Q (\S+)", command_text(config, name)).group(1).split(","))
    assert queues == {"default", "train", "predict"}


def test_dockerfile_uses_slim_python_and_pinned_requirements() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.\d+-slim", dockerfile, re.M)
    assert "pip install -r requirements.txt" in dockerfile
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            assert "==" in line, f"unpinned requirement: {line}"


def test_redis_persists_queued_tasks_and_secret_key_is_required() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())  # as written, before interpolation
    redis = compose["services"]["redis"]
    assert "--appendonly" in redis["command"] and redis["command"][redis["command"].index("--appendonly") + 1] == "yes"
    assert any(volume.endswith(":/data") for volume in redis["volumes"])
    # Compose refuses to start without SECRET_KEY instead of running with a guessable one.
    assert compose["x-app-env"]["SECRET_KEY"].startswith("${SECRET_KEY:?")
