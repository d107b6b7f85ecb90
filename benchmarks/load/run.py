"""One command for the load benchmark: ``python benchmarks/load/run.py`` (about 3 minutes by default).

It builds a scratch PostgreSQL database (``inclinet_load``) with the Zoo demo data, 2 000 catalogue
galaxies and an active tiny ensemble, points the image services at a local fake SDSS, starts gunicorn
with production settings (DEBUG=0) on loopback, as docker-compose does (gthread workers), and runs
locust headless at 8, 32 and 128 users for ``--seconds`` each, then cached ``/api/pgc`` alone at 32
users. It prints requests/s, p50/p95/p99 and the error rate per stage and per endpoint, and writes them
to ``var/load/results.json``.

Volunteers are signed in before the measured window (a session row per volunteer, as a log-in leaves
it; Zoo sessions last two weeks, so a log-in is a one-off): the stages measure labeling, not a ramp of
PBKDF2 runs. ``--login-in-window`` puts the log-in form back into each stage; the setup prints what one
log-in's password check costs.

Options: --seconds N (per stage, default 30), --workers N and --threads N (gunicorn, default 2 × 8),
--users 8,32,128, --only-pgc (the cached /api/pgc stage alone), --login-in-window, --keep (leave the database),
--prediction-processes 0,1 (every stage with predictions on a niced thread in the web process, the baseline,
then in one niced prediction process per web process, as ``make run`` and compose serve). Needs PostgreSQL on DATABASE_ADMIN_URL (default postgres://postgres@127.0.0.1:5432)
and Redis (LOAD_REDIS_URL, default redis://127.0.0.1:6379/9; that logical database is flushed).
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
PY = sys.executable
LOCUST = str(Path(PY).with_name("locust"))
OUT = ROOT / "var" / "load"
PASSWORD = "load-test-pw-93"
PGC_MIN, PGC_MAX = 1_000_001, 1_002_000


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def sh(args: list[str], env: dict[str, str], **kwargs: object) -> None:
    subprocess.run(args, cwd=ROOT, env=env, check=True, **kwargs)  # noqa: S603 - our own commands


SETUP = f"""
import random
from django.contrib.auth import get_user_model
from catalog.models import Galaxy, GalaxySource
from catalog.names import normalise_name
from labeling.profiles import profile_update
from tests.ensembles import write_tiny_ensemble
from training.registry import ensemble_promote, ensemble_register
from django.conf import settings
rng = random.Random(7)
Galaxy.objects.bulk_create([Galaxy(pgc=p, name=f"PGC{{p}}", name_key=normalise_name(f"PGC{{p}}"),
    ra=rng.uniform(0, 359), dec=rng.uniform(-20, 60), d25_arcmin=rng.uniform(1, 4), pa=rng.uniform(0, 180),
    source=GalaxySource.LEDA) for p in range({PGC_MIN}, {PGC_MAX} + 1)], ignore_conflicts=True)
User = get_user_model()
from django.contrib.auth.hashers import make_password
names = [f"loadvol{{i}}" for i in range(300)]
hashed = make_password("{PASSWORD}")  # one hash for all: 300 PBKDF2 runs would take minutes on 2 cores
User.objects.bulk_create([User(username=name, password=hashed) for name in names])
import time
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore
from django.utils import timezone
from labeling.models import VolunteerProfile
started = time.process_time()
assert User.objects.get(username=names[0]).check_password("{PASSWORD}")
print(f"one log-in's password check (PBKDF2): {{1000 * (time.process_time() - started):.0f}} ms of CPU")
lines = []
for user in User.objects.filter(username__in=names):
    profile_update(user=user, tutorial_done=True)
    # volunteers past the tutorial, so /zoo/ opens the measure page as for a regular volunteer
    VolunteerProfile.objects.filter(user=user).update(tutorial_passed_at=timezone.now())
    # What django.contrib.auth.login() stores, without 300 PBKDF2 runs.
    session = SessionStore()
    session.update({{SESSION_KEY: str(user.pk), BACKEND_SESSION_KEY: settings.AUTHENTICATION_BACKENDS[0],
                    HASH_SESSION_KEY: user.get_session_auth_hash()}})
    session.create()
    lines.append(f"{{user.username}} {{session.session_key}}")
open(settings.VAR_DIR / "volunteers.txt", "w").write("\\n".join(lines))
folder = settings.MODEL_STORE / "ensembles" / "tiny-load"
write_tiny_ensemble(folder, version="tiny-load")
ensemble_promote(ensemble=ensemble_register(folder=folder))
"""


def prepare(env: dict[str, str], admin_url: str, dbname: str) -> None:
    import psycopg

    with psycopg.connect(admin_url + "/postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{dbname}"')
    import redis

    redis.Redis.from_url(env["REDIS_URL"]).flushdb()
    sh([PY, "manage.py", "migrate", "--noinput", "-v0"], env)
    sh([PY, "manage.py", "collectstatic", "--noinput", "-v0"], env)
    sh([PY, "manage.py", "zoo_seed_demo", "--targets", "600", "--per-degree", "1", "--size", "48"], env,
       stdout=subprocess.DEVNULL)
    sh([PY, "manage.py", "shell", "-c", SETUP], env)
    images = Path(env["LOAD_IMAGES_DIR"])
    images.mkdir(parents=True, exist_ok=True)
    from PIL import Image

    rng = np.random.default_rng(3)
    for i in range(20):
        Image.fromarray(rng.integers(0, 255, (96, 128, 3), dtype=np.uint8)).save(images / f"galaxy{i}.png")


def wait_http(url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):  # noqa: S310 - loopback
                return
        except Exception:  # noqa: BLE001 - not up yet
            time.sleep(0.5)
    raise RuntimeError(f"{url} did not answer within {timeout:g} s")


def _ms(value: str) -> float:
    """Locust writes N/A for an endpoint that completed no request in the stage."""
    return float(value) if value not in ("", "N/A") else float("nan")


def run_stage(label: str, classes: list[str], users: int, seconds: int, host: str, env: dict[str, str]) -> dict:
    prefix = OUT / label.replace(" ", "_")
    # locust exits 1 when any request failed; the failures are what we report, so no check here.
    subprocess.run([LOCUST, "-f", "benchmarks/load/locustfile.py", "--headless", "-u", str(users), "-r", str(max(users // 2, 4)),
        "--run-time", f"{seconds}s", "--host", host, "--csv", str(prefix), "--only-summary", "--loglevel", "WARNING",
        *classes], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)  # noqa: S603
    rows = list(csv.DictReader(io.StringIO(Path(f"{prefix}_stats.csv").read_text())))
    result = {"label": label, "users": users, "seconds": seconds, "endpoints": {},
              "load_average_1min": round(os.getloadavg()[0], 2)}
    for row in rows:
        count = int(row["Request Count"])
        entry = {"requests": count, "failures": int(row["Failure Count"]), "rps": round(float(row["Requests/s"]), 1),
                 "p50_ms": _ms(row["50%"]), "p95_ms": _ms(row["95%"]), "p99_ms": _ms(row["99%"]),
                 "error_rate": round(int(row["Failure Count"]) / count, 4) if count else 0.0}
        if row["Name"] == "Aggregated":
            result["total"] = entry
        else:
            result["endpoints"][row["Name"]] = entry
    return result


def show(result: dict) -> None:
    total = result["total"]
    print(f"\n== {result['label']}: {result['users']} users, {result['seconds']} s: {total['rps']} req/s, "
          f"p50 {total['p50_ms']:.0f} ms, p95 {total['p95_ms']:.0f} ms, p99 {total['p99_ms']:.0f} ms, "
          f"errors {total['failures']}/{total['requests']} ({100 * total['error_rate']:.2f} %); "
          f"load average {result['load_average_1min']}")
    for name, entry in sorted(result["endpoints"].items()):
        print(f"   {name:32s} {entry['rps']:7.1f} req/s  p50 {entry['p50_ms']:6.0f}  p95 {entry['p95_ms']:6.0f}  "
              f"p99 {entry['p99_ms']:6.0f} ms  errors {entry['failures']}/{entry['requests']}")


def serve_and_measure(env: dict[str, str], args: argparse.Namespace, processes: int) -> list[dict]:
    """Start gunicorn with ``PREDICTION_PROCESSES=processes`` and run every stage against it."""
    port = free_port()
    host = f"http://127.0.0.1:{port}"
    mode = f"processes={processes}" if processes else "thread"
    gunicorn = subprocess.Popen(  # noqa: S603
        [str(Path(PY).with_name("gunicorn")), "inclinet_site.wsgi", "-w", str(args.workers), "--threads", str(args.threads),
         "-b", f"127.0.0.1:{port}", "--preload", "--timeout", "60", "--log-level", "warning"],
        cwd=ROOT, env={**env, "PREDICTION_PROCESSES": str(processes)},
        stdout=(OUT / f"gunicorn-{mode}.log").open("wb"), stderr=subprocess.STDOUT)
    results = []
    try:
        wait_http(f"{host}/zoo/login/", 60)
        # Warm every worker's ensemble and the cached PGCs, so the stages measure serving, not first loads.
        for _ in range(4 * args.workers):
            for pgc in range(PGC_MIN, PGC_MIN + 5):
                urllib.request.urlopen(f"{host}/api/pgc/{pgc}", timeout=120).read()  # noqa: S310
        for users in [] if args.only_pgc else [int(u) for u in args.users.split(",")]:
            results.append({**run_stage(f"mix {users} [{mode}]", ["Volunteer", "Astronomer"], users, args.seconds,
                                        host, env), "predictions": mode})
            show(results[-1])
        results.append({**run_stage(f"pgc cached 32 [{mode}]", ["PgcCached"], 32, args.seconds, host, env),
                        "predictions": mode})
        show(results[-1])
    finally:
        gunicorn.send_signal(signal.SIGTERM)
        gunicorn.wait(timeout=60)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--users", default="8,32,128")
    parser.add_argument("--only-pgc", action="store_true")
    parser.add_argument("--login-in-window", action="store_true")
    parser.add_argument("--keep", action="store_true")
    # Where predictions run (predictions/heavy.py): 0 = a niced thread in each web process (the baseline),
    # 1 = one niced prediction process per web process (make run and compose). Both by default, same data.
    parser.add_argument("--prediction-processes", default="0,1")
    args = parser.parse_args()

    from tests.fake_services import FakeAstroServices

    admin_url = os.environ.get("DATABASE_ADMIN_URL", "postgres://postgres@127.0.0.1:5432")
    dbname = "inclinet_load"
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)
    fake = FakeAstroServices().__enter__()
    env = {
        **os.environ, "DEBUG": "0", "SECRET_KEY": secrets.token_urlsafe(50), "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE_SSL_REDIRECT": "0", "SESSION_COOKIE_SECURE": "0", "CSRF_COOKIE_SECURE": "0",
        "SECURE_HSTS_SECONDS": "0", "DATABASE_URL": f"{admin_url}/{dbname}",
        "REDIS_URL": os.environ.get("LOAD_REDIS_URL", "redis://127.0.0.1:6379/9"),
        "VAR_DIR": str(OUT / "var"), "MODEL_STORE": str(OUT / "var" / "model_store"),
        "MEDIA_ROOT": str(OUT / "var" / "media"), "STATIC_ROOT": str(OUT / "var" / "static"),
        # One client address generates all the traffic here: the per-address throttles would measure themselves.
        "API_ANON_RATE": "10000000/min", "API_USER_RATE": "10000000/min", "LOGIN_RATE": "100000/min",
        "REMOTE_RESOLVERS_ENABLED": "0", "REMOTE_RETRIES": "0", "TF_CPP_MIN_LOG_LEVEL": "2", "LOG_LEVEL": "WARNING",
        "SDSS_CUTOUT_URL": fake.url("sdss"), "LEGACY_SURVEY_CUTOUT_URL": fake.url("legacy"),
        "LOAD_USERS_FILE": str(OUT / "var" / "volunteers.txt"), "LOAD_IMAGES_DIR": str(OUT / "images"),
        "LOAD_PGC_MIN": str(PGC_MIN), "LOAD_PGC_MAX": str(PGC_MAX), "LABELING_SERVE_MEDIA_DIRECTLY": "0",
        "LOAD_LOGIN": "window" if args.login_in_window else "before",
    }
    (OUT / "var").mkdir(parents=True)
    started = time.monotonic()
    prepare(env, admin_url, dbname)
    print(f"prepared in {time.monotonic() - started:.0f} s")
    results = []
    try:
        for processes in [int(p) for p in args.prediction_processes.split(",")]:
            results += serve_and_measure(env, args, processes)
    finally:
        fake.__exit__(None, None, None)
        if not args.keep:
            import psycopg

            with psycopg.connect(admin_url + "/postgres", autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
    (OUT / "results.json").write_text(json.dumps({"workers": args.workers, "threads": args.threads, "cpus": os.cpu_count(),
                                                  "login": env["LOAD_LOGIN"], "load_average": os.getloadavg(),
                                                  "stages": results}, indent=2))
    print(f"\nresults in {OUT / 'results.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
