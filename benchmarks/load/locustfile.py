"""Locust traffic mix for IncliNET (driven by ``benchmarks/load/run.py``; loopback only).

- ``Volunteer``: signed in before the run (``LOAD_LOGIN=before``: a session run.py created) or logs in
  through the form first (``LOAD_LOGIN=window``), then takes a Zoo task, draws the step-2 standards of a 5° interval and
  places the galaxy between two of them (75 %), or says face-on (15 %) or gives a reject reason (10 %).
- ``Astronomer``: ``/api/pgc/<id>`` for a few famous galaxies (cached) and random catalogue ones (first
  call uncached: image fetch from the local fake SDSS + ensemble inference), and image uploads to /api/file.
- ``PgcCached``: only cached ``/api/pgc`` calls (issue 5's 300 req/s target), run alone (the last stage,
  or ``run.py --only-pgc``).

Settings come from the environment that run.py sets: LOAD_USERS_FILE (volunteer name and session key per
line), LOAD_LOGIN, LOAD_PGC_MIN/MAX, LOAD_IMAGES_DIR.
"""
from __future__ import annotations

import os
import random
import re
import secrets
import string
from pathlib import Path

from locust import HttpUser, between, task

VOLUNTEERS = [line.split() for line in Path(os.environ.get("LOAD_USERS_FILE", "/dev/null")).read_text().splitlines() if line]
LOGIN_IN_WINDOW = os.environ.get("LOAD_LOGIN", "before") == "window"
PGC_MIN, PGC_MAX = int(os.environ.get("LOAD_PGC_MIN", "1")), int(os.environ.get("LOAD_PGC_MAX", "1000"))
CACHED_PGCS = list(range(PGC_MIN, PGC_MIN + 5))
IMAGES = sorted(Path(os.environ.get("LOAD_IMAGES_DIR", "/nonexistent")).glob("*.png"))
PASSWORD = "load-test-pw-93"


class Volunteer(HttpUser):
    weight = 3
    wait_time = between(0.5, 1.5)  # people look at the images between clicks

    def on_start(self) -> None:
        self.username, session_key = VOLUNTEERS.pop() if VOLUNTEERS else (f"extra{random.randrange(10**9)}", "")
        if not LOGIN_IN_WINDOW and session_key:
            # A returning volunteer: browser holds the session and CSRF cookies (Django checks the
            # X-CSRFToken header against the cookie's 32-character secret).
            self.csrf = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(32))
            self.client.cookies.set("sessionid", session_key)
            self.client.cookies.set("csrftoken", self.csrf)
            return
        page = self.client.get("/zoo/login/", name="/zoo/login/ [GET]")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
        self.client.post("/zoo/login/", {"username": self.username, "password": PASSWORD,
                                         "csrfmiddlewaretoken": token.group(1) if token else ""},
                         name="/zoo/login/ [POST]")
        self.csrf = self.client.cookies.get("csrftoken", "")

    def _headers(self) -> dict[str, str]:
        return {"X-CSRFToken": self.csrf, "Referer": self.host}

    @task(5)
    def measure(self) -> None:
        with self.client.post("/zoo/api/tasks/next", headers=self._headers(), name="zoo: next task",
                              catch_response=True) as answer:
            if answer.status_code == 404:  # no task left for this volunteer: a valid answer
                answer.success()
                return
            if answer.status_code != 200:
                answer.failure(f"{answer.status_code} {answer.text[:100]}")
                return
        task = answer.json()["task"]
        roll = random.random()
        if roll < 0.15:  # face-on: left of the first standard shown in step 1
            body = {"face_on": True, "right_standard": task["standards"][0]["id"]}
        elif roll < 0.25:
            body = {"reasons": ["not_sure"], "note": "load test"}
        else:  # step 1 picks a 5° interval, step 2 shows its standards, the galaxy goes between two of them
            low = random.choice(range(45, 90, 5))
            drawn = self.client.post(f"/zoo/api/tasks/{task['id']}/standards", json={"step": 2, "low": low},
                                     headers=self._headers(), name="zoo: step-2 standards")
            if drawn.status_code != 200:
                return
            ids = [s["id"] for s in drawn.json()["standards"]]
            i = random.randrange(len(ids) + 1)
            pair = ([None, *ids][i], [*ids, None][i])
            body = {"left_standard": pair[0], "right_standard": pair[1], "step1_low": low}
        with self.client.post(f"/zoo/api/tasks/{task['id']}/submit", json=body, headers=self._headers(),
                              name="zoo: submit", catch_response=True) as submitted:
            if submitted.status_code == 409:  # the galaxy retired meanwhile: the documented answer
                submitted.success()
            elif submitted.status_code != 200:
                submitted.failure(f"{submitted.status_code} {submitted.text[:100]}")

    @task(1)
    def stats(self) -> None:
        self.client.get("/zoo/api/me/stats", name="zoo: my stats")


class Astronomer(HttpUser):
    weight = 2
    wait_time = between(0.2, 1.0)

    @task(6)
    def pgc_cached(self) -> None:
        self.client.get(f"/api/pgc/{random.choice(CACHED_PGCS)}", name="api: pgc (cached)")

    @task(2)
    def pgc_uncached(self) -> None:
        self.client.get(f"/api/pgc/{random.randint(PGC_MIN + 5, PGC_MAX)}", name="api: pgc (mostly uncached)")

    @task(1)
    def upload(self) -> None:
        image = random.choice(IMAGES)
        self.client.post("/api/file", files={"file": (image.name, image.read_bytes(), "image/png")},
                         name="api: file upload")


class PgcCached(HttpUser):
    """Run alone (``run.py --only-pgc``): no think time, cached answers only."""

    weight = 1  # run.py always names the classes it wants, so this one never mixes in by accident
    wait_time = between(0, 0)

    @task
    def pgc(self) -> None:
        self.client.get(f"/api/pgc/{random.choice(CACHED_PGCS)}", name="api: pgc (cached)")
