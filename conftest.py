"""Project-wide pytest fixtures: isolated media and model store, real Celery workers, the catalogue."""
from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.workers import CeleryWorker, worker_env

pytest_plugins = ["tests.fixtures_services"]

REPO_ROOT = Path(__file__).resolve().parent

# Builds and retrain jobs judge their ensemble on the independent family before promoting it: a handful of
# images in tests (the default 240 + 80 takes minutes), in this process and in the workers tests start.
os.environ.setdefault("TRAINING_INDEPENDENT_N", "6")
os.environ.setdefault("TRAINING_INDEPENDENT_REJECTS", "5")


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix: None,
                                 request: pytest.FixtureRequest) -> None:
    """On SQLite the test database is a file next to the configured one, not Django's in-memory default:
    threads (the Zoo's concurrency test, the live server) and worker processes need their own connections
    to the same database, with SQLite's file locks between them."""
    from django.conf import settings

    db = settings.DATABASES["default"]
    if db["ENGINE"] == "django.db.backends.sqlite3" and not db.setdefault("TEST", {}).get("NAME"):
        worker = getattr(request.config, "workerinput", {}).get("workerid")  # pytest-xdist
        db["TEST"]["NAME"] = f"{db['NAME']}.test{'-' + worker if worker else ''}"


@pytest.fixture(autouse=True)
def _isolated_storage(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    """Every test writes media and models under its own temporary folder."""
    if not request.config.pluginmanager.hasplugin("django"):
        return  # the Django-free ML core can be tested with -p no:django
    settings = request.getfixturevalue("settings")
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.MODEL_STORE = tmp_path / "model_store"
    settings.TRAINING_INDEPENDENT_DIR = str(tmp_path / "independent")
    settings.REMOTE_RESOLVERS_ENABLED = False
    # Each test starts with an empty cache: no throttle counters or cached predictions from earlier tests.
    from django.core.cache import cache

    cache.clear()


@pytest.fixture(scope="session")
def openngc_catalogue(django_db_setup, django_db_blocker) -> None:  # noqa: ANN001
    """The real OpenNGC catalogue, imported once per session into the test database."""
    from catalog.models import Galaxy, GalaxySource
    from catalog.services import catalogue_import_openngc

    with django_db_blocker.unblock():
        if not Galaxy.objects.filter(source=GalaxySource.OPENNGC).exists():
            catalogue_import_openngc()


@pytest.fixture
def catalogue(openngc_catalogue, django_db_blocker, db) -> None:  # noqa: ANN001
    """Re-import when a transactional test has flushed the tables in between."""
    from catalog.models import Galaxy, GalaxySource
    from catalog.services import catalogue_import_openngc

    if not Galaxy.objects.filter(source=GalaxySource.OPENNGC).exists():
        catalogue_import_openngc()


@pytest.fixture
def celery_worker_process(tmp_path: Path, settings) -> Iterator[CeleryWorker]:  # noqa: ANN001
    """A real worker on the test's Redis broker and test database, started and stopped per test."""
    from django.db import connection

    db_url = os.environ.get("DATABASE_URL", "")
    env_extra = {"MEDIA_ROOT": str(settings.MEDIA_ROOT), "MODEL_STORE": str(settings.MODEL_STORE)}
    # Remote services as this test configured them (e.g. the local fake servers).
    for name in ("SDSS_CUTOUT_URL", "LEGACY_SURVEY_CUTOUT_URL", "SESAME_URL", "NED_LOOKUP_URL", "HYPERLEDA_URL",
                 "REMOTE_TIMEOUT_S", "REMOTE_RETRIES"):
        env_extra[name] = str(getattr(settings, name))
    env_extra["REMOTE_RESOLVERS_ENABLED"] = "true" if settings.REMOTE_RESOLVERS_ENABLED else "false"
    if db_url.startswith("postgres"):
        # Point the worker at the test database that pytest-django created.
        env_extra["DATABASE_URL"] = db_url.rsplit("/", 1)[0] + "/" + connection.settings_dict["NAME"]
    elif connection.vendor == "sqlite":
        env_extra["DATABASE_URL"] = f"sqlite:///{connection.settings_dict['NAME']}"  # the test file
    worker = CeleryWorker(env=worker_env(env_extra), queues="default,train,predict", log_path=tmp_path / "worker.log")
    worker.start()
    yield worker
    worker.stop()


CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]
SCREENSHOT_DIR = REPO_ROOT / "docs" / "screenshots"


def save_screenshot(page, name: str, tmp_path: Path) -> Path:  # noqa: ANN001
    """Screenshots go to docs/screenshots only with SAVE_SCREENSHOTS=1, so a test run leaves git clean."""
    folder = SCREENSHOT_DIR if os.environ.get("SAVE_SCREENSHOTS") == "1" else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10_000  # a real rendered page, not a blank one
    return path


@pytest.fixture(scope="session")
def chromium_browser():  # noqa: ANN201
    """Debian's Chromium driven by Playwright (no browser download at run time)."""
    from playwright.sync_api import sync_playwright

    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's sync API runs an event loop
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(chromium_browser):  # noqa: ANN001, ANN201
    context = chromium_browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def fake_services(settings):  # noqa: ANN001, ANN201
    """Local SDSS / Legacy Survey / Sesame / NED servers, with the settings pointed at them."""
    from django.core.cache import cache

    from tests.fake_services import FakeAstroServices

    with FakeAstroServices() as fake:
        fake.configure(settings)
        settings.REMOTE_RESOLVERS_ENABLED = True
        cache.clear()
        yield fake
        cache.clear()


@pytest.fixture
def active_tiny_ensemble(settings, db):  # noqa: ANN001, ANN201
    """A registered and promoted ensemble of tiny real Keras networks, named like the original's 12 + 3."""
    from tests.ensembles import write_tiny_ensemble
    from training.registry import ensemble_promote, ensemble_register

    folder = settings.MODEL_STORE / "ensembles" / "tiny-1"
    write_tiny_ensemble(folder, version="tiny-1")
    return ensemble_promote(ensemble=ensemble_register(folder=folder))
