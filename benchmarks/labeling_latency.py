"""Benchmark: p50/p95 latency and query count of the Zoo's "next task" and "submit" with a large table.

Builds (or reuses) a separate database ``inclinet_bench_labeling`` filled with INSERT … SELECT generate_series:
N galaxies in the queue (90% retired with 5-6 votes, the rest open with 0-2), M measurements with one assignment each
(volunteers with ~M/users past tasks each), and 102 standards. Then it times requests through Django's full
stack (test client: middleware, session auth, DRF, services) for volunteers who already have a long history.
A database with the requested sizes is reused: each run first removes the leases and measurements earlier
runs added and restores the queue rows they touched. ``--first-visit`` times volunteers without a profile.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/inclinet_bench_labeling \\
        .venv/bin/python benchmarks/labeling_latency.py --galaxies 1000000 --measurements 5000000

Results go to stdout and ``benchmarks/out/labeling_latency.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "out"
DB_NAME = "inclinet_bench_labeling"
sys.path.insert(0, str(ROOT))


def _setup_django() -> None:
    url = os.environ.get("DATABASE_URL", f"postgres://postgres@127.0.0.1:5432/{DB_NAME}")
    if not url.rstrip("/").endswith(DB_NAME):
        raise SystemExit(f"Refusing to run outside the {DB_NAME} database (DATABASE_URL={url}).")
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "inclinet_site.settings")
    # The test client speaks plain http; outside embedded mode the settings are HTTPS-only (301 to https).
    os.environ.setdefault("INSECURE_HTTP", "1")
    os.environ.setdefault("SECRET_KEY", "labeling-latency-benchmark-only")
    import psycopg

    admin = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DB_NAME]).fetchone():
            conn.execute(f"CREATE DATABASE {DB_NAME}")
    import django

    django.setup()


def _insert_select(model, count_sql: str, overrides: dict[str, str], cursor) -> None:  # noqa: ANN001
    """INSERT INTO table SELECT … FROM generate_series(1, n) AS s(i), filling unlisted columns with defaults."""
    from django.db.models import NOT_PROVIDED

    columns, values = [], []
    for field in model._meta.concrete_fields:
        if field.primary_key and field.column not in overrides:
            continue
        columns.append(f'"{field.column}"')
        if field.column in overrides:
            values.append(overrides[field.column])
        elif getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
            values.append("now()")
        elif field.default is not NOT_PROVIDED and not callable(field.default):
            default = field.default
            values.append("'" + str(default).replace("'", "''") + "'" if isinstance(default, str) else
                          ("true" if default is True else "false" if default is False else repr(default)))
        elif field.default is dict:
            values.append("'{}'::jsonb")
        elif field.null:
            values.append("NULL")
        else:
            raise ValueError(f"{model.__name__}.{field.name} needs a value")
    cursor.execute(f"INSERT INTO {model._meta.db_table} ({', '.join(columns)}) "
                   f"SELECT {', '.join(values)} FROM {count_sql}")


def populate(*, galaxies: int, measurements: int, users: int, first_visit: bool = False) -> dict:
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection

    from catalog.models import Galaxy
    from labeling.models import Assignment, Consensus, Measurement, Standard

    call_command("migrate", verbosity=0)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM labeling_measurement")
        have = cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM catalog_galaxy")
        have_galaxies = cursor.fetchone()[0]
    if have >= measurements and have_galaxies == galaxies:
        with connection.cursor() as cursor:
            _reset(galaxies=galaxies, measurements=measurements, first_visit=first_visit, cursor=cursor)
        return {"reused": True}
    timings = {}
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE labeling_measurement, labeling_assignment, labeling_consensus, labeling_standard, "
                       "labeling_volunteercalibration, labeling_volunteerprofile, catalog_galaxyimage, "
                       "catalog_galaxy, auth_user CASCADE")
        started = time.monotonic()
        _insert_select(Galaxy, f"generate_series(1, {galaxies}) AS s(i)", {
            "id": "i", "pgc": "i", "name": "'PGC' || i", "name_key": "'pgc' || i", "ra": "(i * 0.000137) % 360",
            "dec": "((i * 0.0071) % 170) - 85", "source": "'leda'",
            "labeling_priority": "CASE WHEN i % 10 = 0 THEN random() ELSE 0 END",
        }, cursor)
        timings["galaxies_s"] = time.monotonic() - started
        _insert_select(get_user_model(), f"generate_series(1, {users}) AS s(i)", {
            "id": "i", "password": "'!'", "username": "'bench' || i", "date_joined": "now()",
            "first_name": "''", "last_name": "''", "email": "''",
        }, cursor)
        # 102 standards: two per degree 40-90.
        _insert_select(Standard, "generate_series(1, 102) AS s(i)", {
            "galaxy_id": "i", "inclination": "40 + (i - 1) / 2",
        }, cursor)
        per, n_retired = _layout(galaxies=galaxies, measurements=measurements)
        started = time.monotonic()
        _insert_select(Consensus, f"generate_series(103, {galaxies}) AS s(i)", {
            "galaxy_id": "i",
            "n_votes": f"CASE WHEN i < {103 + n_retired} THEN {per} ELSE i % 3 END",
            "retired": f"i < {103 + n_retired}",
            "status": f"CASE WHEN i < {103 + n_retired} THEN 'A' ELSE '' END",
            "retire_reason": f"CASE WHEN i < {103 + n_retired} THEN 'consensus' ELSE '' END",
            "inc": f"CASE WHEN i < {103 + n_retired} THEN 45 + (i % 45) ELSE NULL END",
            "random_key": "random()",
            "priority": "CASE WHEN i % 10 = 0 THEN random() ELSE 0 END",
        }, cursor)
        timings["consensus_s"] = time.monotonic() - started
        # Measurement k of galaxy g belongs to user ((g * 7 + k * 1013) % users) + 1: distinct users per galaxy.
        started = time.monotonic()
        _insert_select(Assignment, f"generate_series(0, {measurements - 1}) AS s(i)", {
            "id": "i + 1", "user_id": f"((((103 + i / {per}) * 7 + (i % {per}) * 1013) % {users}) + 1)",
            "galaxy_id": f"103 + i / {per}", "status": "'done'", "leased_until": "now() - interval '1 day'",
            "shown": "'{}'::jsonb",
        }, cursor)
        timings["assignments_s"] = time.monotonic() - started
        started = time.monotonic()
        _insert_select(Measurement, f"generate_series(0, {measurements - 1}) AS s(i)", {
            "user_id": f"((((103 + i / {per}) * 7 + (i % {per}) * 1013) % {users}) + 1)",
            "galaxy_id": f"103 + i / {per}", "assignment_id": "i + 1",
            "inclination_raw": "45.5 + (i % 44)", "inclination": "46 + (i % 44)",
        }, cursor)
        timings["measurements_s"] = time.monotonic() - started
        for table in ("catalog_galaxy", "auth_user", "labeling_assignment"):
            cursor.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
        _reset(galaxies=galaxies, measurements=measurements, first_visit=first_visit, cursor=cursor)
        cursor.execute("ANALYZE")
    return timings


def _layout(*, galaxies: int, measurements: int) -> tuple[int, int]:
    """Votes per settled galaxy so that the measurements fit on 90% of the queue (5-6 at the default sizes),
    and how many galaxies that settles."""
    per = max(5, -(-measurements // int((galaxies - 102) * 0.9)))
    return per, -(-measurements // per)


def _reset(*, galaxies: int, measurements: int, first_visit: bool, cursor) -> None:  # noqa: ANN001
    """Undo what earlier timing runs wrote, so the database is reused instead of rebuilt (7 min at 1M).

    Assignments and measurements beyond the generated ones go, the queue rows they touched get their generated
    values back, and every volunteer gets a profile whose ``tasks_served`` is their past tasks (as a volunteer
    with ~500 tasks behind them has: gold on the schedule's floor, no profile created on the timed request).
    With ``first_visit`` nobody has a profile: each timed request creates one and gold comes at its 40% rate.
    """
    per, n_retired = _layout(galaxies=galaxies, measurements=measurements)
    settled = 103 + n_retired
    cursor.execute(
        "UPDATE labeling_consensus c SET "
        f"n_votes = CASE WHEN c.galaxy_id < {settled} THEN {per} ELSE c.galaxy_id %% 3 END, "
        f"retired = c.galaxy_id < {settled}, "
        f"status = CASE WHEN c.galaxy_id < {settled} THEN 'A' ELSE '' END, "
        f"retire_reason = CASE WHEN c.galaxy_id < {settled} THEN 'consensus' ELSE '' END, "
        f"inc = CASE WHEN c.galaxy_id < {settled} THEN 45 + (c.galaxy_id %% 45) ELSE NULL END, "
        "inc_e = NULL, n_reject = 0, n_face_on = 0, reject_fraction = 0, face_on_fraction = 0, "
        "retired_at = NULL, retired_by_id = NULL "
        "WHERE c.galaxy_id IN (SELECT galaxy_id FROM labeling_assignment WHERE id > %s)", [measurements])
    cursor.execute("DELETE FROM labeling_measurement WHERE assignment_id > %s OR assignment_id IS NULL",
                   [measurements])
    cursor.execute("DELETE FROM labeling_assignment WHERE id > %s", [measurements])
    cursor.execute("SELECT setval(pg_get_serial_sequence('labeling_assignment', 'id'), %s)", [measurements])
    cursor.execute("SELECT setval(pg_get_serial_sequence('labeling_measurement', 'id'), "
                   "(SELECT max(id) FROM labeling_measurement))")
    cursor.execute("DELETE FROM labeling_volunteerprofile")
    if not first_visit:
        from labeling.models import VolunteerProfile

        _insert_select(VolunteerProfile, "(SELECT user_id, count(*) AS n FROM labeling_assignment "
                       "GROUP BY user_id) AS s", {"user_id": "s.user_id", "tasks_served": "s.n"}, cursor)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def measure(*, requests: int, users: int) -> dict:
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.urls import reverse

    from labeling.synthetic import place

    user_model = get_user_model()
    timings = {"next": [], "submit": [], "step2": []}
    queries = {"next": [], "submit": [], "step2": []}
    # Volunteers with a long history (~measurements/users past tasks each), cycling through them.
    pool = list(user_model.objects.filter(id__lte=users).order_by("id")[:requests])
    clients = []
    for user in pool:
        client = Client()
        client.force_login(user)
        clients.append(client)
    for index in range(requests):
        client = clients[index % len(clients)]
        with CaptureQueriesContext(connection) as ctx:
            started = time.perf_counter()
            response = client.post(reverse("labeling:api-next"))
            timings["next"].append(time.perf_counter() - started)
        queries["next"].append(len(ctx.captured_queries))
        if response.status_code != 200:
            raise SystemExit(f"next task failed: {response.status_code} {response.content[:200]!r}")
        task = response.json()["task"]
        with CaptureQueriesContext(connection) as ctx:
            started = time.perf_counter()
            step2 = client.post(reverse("labeling:api-standards", args=[task["id"]]), {"step": 2, "low": 65},
                                content_type="application/json")
            timings["step2"].append(time.perf_counter() - started)
        queries["step2"].append(len(ctx.captured_queries))
        left, right = place(value=67.3, standards=step2.json()["standards"])
        body = {"left_standard": left, "right_standard": right, "step1_low": 65}
        with CaptureQueriesContext(connection) as ctx:
            started = time.perf_counter()
            submitted = client.post(reverse("labeling:api-submit", args=[task["id"]]), body,
                                    content_type="application/json")
            timings["submit"].append(time.perf_counter() - started)
        queries["submit"].append(len(ctx.captured_queries))
        if submitted.status_code != 200:
            raise SystemExit(f"submit failed: {submitted.status_code} {submitted.content[:200]!r}")
    result = {}
    for name, values in timings.items():
        warm = values[5:] if len(values) > 20 else values  # the first requests warm caches and connections
        result[name] = {
            "p50_ms": round(statistics.median(warm) * 1000, 2), "p95_ms": round(_percentile(warm, 0.95) * 1000, 2),
            "max_ms": round(max(warm) * 1000, 2), "queries": max(queries[name]), "n": len(warm),
        }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--galaxies", type=int, default=1_000_000)
    parser.add_argument("--measurements", type=int, default=5_000_000)
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--first-visit", action="store_true",
                        help="no volunteer profiles: every timed request is the volunteer's first (gold at 40%%)")
    args = parser.parse_args()
    _setup_django()
    from django.db import connection

    started = time.monotonic()
    build = populate(galaxies=args.galaxies, measurements=args.measurements, users=args.users,
                     first_visit=args.first_visit)
    build["total_s"] = round(time.monotonic() - started, 1)
    with connection.cursor() as cursor:
        cursor.execute("SELECT (SELECT count(*) FROM catalog_galaxy), (SELECT count(*) FROM labeling_measurement), "
                       "(SELECT count(*) FROM labeling_consensus WHERE NOT retired)")
        n_galaxies, n_measurements, n_open = cursor.fetchone()
    latency = measure(requests=args.requests, users=args.users)
    report = {"galaxies": n_galaxies, "measurements": n_measurements, "open_galaxies": n_open,
              "users": args.users, "first_visit": args.first_visit, "build": build, "latency": latency}
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "labeling_latency.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
