"""The measurement page in headless Chromium: log in, step 1 by keys and by dragging (pointer events), step 2,
submit, reject with reasons, face-on by its button and confirmation, redraw, inversion, sign-up leading to the
tutorial, and failed or empty answers (message, Retry, automatic retry with backoff). The new volunteer's
whole first session (tutorial, phone layout) is in test_browser_volunteer.py.

Screenshots go to ``docs/screenshots/labeling-*.png`` with SAVE_SCREENSHOTS=1 (otherwise to the test's tmp dir).
"""
from __future__ import annotations

import json
import time

import pytest
from django.db import connection
from django.utils import timezone

from conftest import save_screenshot
from labeling import assignment
from labeling.assignment import queue_add
from labeling.models import Assignment, Measurement
from labeling.synthetic import MORPHOLOGIES, synthetic_galaxy
from tests.browser import wait_for_js

from .factories import ProfileFactory, StandardFactory, UserFactory

PASSWORD = "pw-zoo-123"

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def world(settings):  # noqa: ANN001, ANN201
    """Two standards per degree 40-90° and a few targets with colour and g/r/i images."""
    settings.LABELING_GOLD_START = 0.0
    settings.LABELING_GOLD_MIN = 0.0
    for value in range(40, 91):
        for k in range(2):
            morphology = MORPHOLOGIES[(value + k) % 4]
            galaxy = synthetic_galaxy(name=f"SYN-BSTD-{value}-{k}", inclination=value, seed=value * 7 + k,
                                      morphology=morphology, bands=("colour",), size=64)
            StandardFactory(galaxy=galaxy, inclination=float(value), morphology=morphology)
    targets = [synthetic_galaxy(name=f"SYN-BTGT-{k}", inclination=52 + 7 * k, seed=500 + k, size=64,
                                morphology=MORPHOLOGIES[k % 4], bands=("colour", "g", "r", "i"))
               for k in range(5)]
    queue_add(galaxy_ids=[g.id for g in targets])
    user = UserFactory(username="stargazer")
    ProfileFactory(user=user, tutorial_passed_at=timezone.now())  # the tutorial is tested in test_browser_volunteer.py
    return user


def _submit_login(page, live_server, username: str = "stargazer") -> None:  # noqa: ANN001
    page.goto(live_server.url + "/zoo/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("#btn-login")


def _login(page, live_server, username: str = "stargazer") -> None:  # noqa: ANN001
    _submit_login(page, live_server, username)
    page.wait_for_selector("#target")
    wait_for_js(page, "document.querySelectorAll('#strip .panel.std img').length === 9")


def _shot(page, tmp_path, name: str) -> None:  # noqa: ANN001
    save_screenshot(page, f"labeling-{name}", tmp_path)


def _wait_new_task(page, old_task: int) -> None:  # noqa: ANN001
    """Dismiss the feedback (Enter) and wait for the next galaxy, drawn unplaced."""
    page.keyboard.press("Enter")
    wait_for_js(page, "(old) => document.querySelector('#zoo').dataset.task !== String(old) "
                "&& document.querySelector('#message').textContent === '' "
                "&& document.querySelectorAll('#strip .panel.std img').length === 9", old_task)


def _wait_feedback(page) -> str:  # noqa: ANN001
    page.wait_for_selector("#feedback:not([hidden])")
    return page.locator("#feedback-text").inner_text()


def _drag(page, source: str, target: str, x_share: float) -> None:  # noqa: ANN001
    """Drag with the mouse (pointer events) onto ``target`` at ``x_share`` of its width."""
    box = page.locator(source).bounding_box()
    to = page.locator(target).bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(to["x"] + to["width"] * x_share, to["y"] + to["height"] / 2, steps=8)
    page.mouse.up()


def test_measure_by_keys_then_drag_then_face_on(live_server, page, world, tmp_path) -> None:  # noqa: ANN001
    _login(page, live_server)
    _shot(page, tmp_path, "step1")
    # Nothing is placed at first (no anchoring); Confirm waits for a placement.
    assert page.locator("#position").get_attribute("data-pos") == ""
    assert page.locator("#btn-confirm").is_disabled()
    # Step 1 by keys: the first key places it in the middle gap, the second moves it: between 70° and 75°.
    page.keyboard.press("d")
    page.keyboard.press("D")
    assert page.locator("#position").get_attribute("data-pos") == "6"
    assert "70° and 75°" in page.locator("#position").inner_text()
    page.click("#btn-confirm")
    page.wait_for_selector("#btn-submit:not([hidden])")
    labels = page.locator("#strip .panel.std .label").all_inner_texts()
    assert labels == [f"{v}°" for v in range(68, 77)]
    page.click("#btn-zoom-in")
    page.click("#btn-rot-right")
    page.keyboard.press("a")
    _shot(page, tmp_path, "step2")
    position = page.locator("#position").inner_text()
    page.click("#btn-submit")
    text = _wait_feedback(page)
    m = Measurement.objects.get(user=world)
    assert f"Saved: {m.inclination}°." in text
    assert (m.step1_low, m.step1_high) == (70, 75)
    assert position == f"Placed between {m.left_standard.inclination:.0f}° and {m.right_standard.inclination:.0f}°."
    assert m.zoom == pytest.approx(1.2) and m.angle == 15
    assert "Chrom" in m.user_agent and m.started_at and m.finished_at
    first_task = m.assignment_id

    # Step 1 by dragging the target onto the right half of the 8th standard (80°): the gap after it.
    _wait_new_task(page, first_task)
    _drag(page, "#target-img", "#strip .panel.std[data-index='7']", 0.8)
    wait_for_js(page, "document.querySelector('#position').dataset.pos === '8'")
    _shot(page, tmp_path, "drag")
    page.click("#btn-confirm")
    page.wait_for_selector("#btn-submit:not([hidden])")
    page.click("#strip .slot[data-pos='4']")
    page.click("#btn-submit")
    _wait_feedback(page)
    second = Measurement.objects.filter(user=world).exclude(assignment_id=first_task).get()
    assert second.step1_low == 80 and 78 <= second.inclination_raw <= 90

    # Face-on: its own button and a confirmation; step 2 is skipped.
    _wait_new_task(page, second.assignment_id)
    assert page.locator("#strip .slot[data-pos='0']").count() == 0  # no face-on gap left of 45°
    page.click("#btn-faceon")
    assert "Step 1 of 2." in page.locator("#help").inner_text() and page.locator("#faceon-confirm").is_visible()
    _shot(page, tmp_path, "faceon")
    page.click("#btn-faceon-yes")
    assert "Saved: face-on" in _wait_feedback(page)
    assert page.locator("#btn-submit").is_hidden()
    third = Measurement.objects.filter(user=world, face_on=True).get()
    assert third.inclination is None and third.step1_low is None
    assert Assignment.objects.filter(user=world, status="done").count() == 3


def test_reject_redraw_invert_and_bands(live_server, page, world, tmp_path) -> None:  # noqa: ANN001
    _login(page, live_server)
    before = page.locator("#strip .panel.std").evaluate_all("els => els.map(e => e.dataset.id).join(',')")
    for _ in range(5):
        page.click("#btn-redraw")
        page.wait_for_selector(".zoo-message.info")
        after = page.locator("#strip .panel.std").evaluate_all("els => els.map(e => e.dataset.id).join(',')")
        if after != before:
            break
    assert after != before  # two standards per degree: a redraw picks others
    page.click("button.mode[data-display='r']")
    src = page.locator("#target img").get_attribute("src")
    assert page.locator("#target img").evaluate("e => e.style.filter").startswith("grayscale")
    page.click("#btn-invert")
    assert "invert(1)" in page.locator("#target img").evaluate("e => e.style.filter")
    assert page.locator("#btn-invert").get_attribute("aria-pressed") == "true"
    assert page.evaluate("(s) => fetch(s).then(r => r.status)", src) == 200
    _shot(page, tmp_path, "inverted")
    page.click("#reject summary")
    page.check("input[value=bad_TF]")
    page.check("input[value=multiple]")
    page.fill("#note", "bright star on the disc")
    _shot(page, tmp_path, "reject")
    page.click("#btn-reject")
    assert "Saved: rejected (Not a good TF galaxy, Multiple objects)." in _wait_feedback(page)
    m = Measurement.objects.get(user=world)
    assert m.rejected and m.bad_TF and m.multiple and not m.HI and m.note == "bright star on the disc"
    assert (m.display_mode, m.inverted) == ("r", True)
    assert len(Assignment.objects.get(pk=m.assignment_id).shown["1"]) >= 2


def test_signup_leads_to_the_tutorial_first(live_server, page, world, tmp_path) -> None:  # noqa: ANN001
    """Sign-up opens the tutorial, and the measuring page waits until it is passed (the quiz itself is in
    test_browser_volunteer.py)."""
    page.goto(live_server.url + "/zoo/signup/")
    page.fill("input[name=username]", "newcomer")
    page.fill("input[name=password1]", "a-Long-pass-4321")
    page.fill("input[name=password2]", "a-Long-pass-4321")
    page.click("#signup-form button[type=submit]")
    page.wait_for_url("**/zoo/tutorial/")
    page.goto(live_server.url + "/zoo/")
    page.wait_for_url("**/zoo/tutorial/")
    _shot(page, tmp_path, "tutorial")
    page.goto(live_server.url + "/zoo/me/")
    assert page.locator("#count").inner_text() == "0"


def _message(page) -> str:  # noqa: ANN001
    return page.locator("#message").inner_text()


def _wait_message(page, text: str, timeout_ms: int = 15_000) -> str:  # noqa: ANN001
    wait_for_js(page, "(t) => { const m = document.querySelector('#message'); "
                           "return !!m && m.textContent.includes(t); }", arg=text, timeout=timeout_ms)
    return _message(page)


def test_failed_and_empty_next_task_answers_retry_with_backoff(live_server, page, world, tmp_path) -> None:  # noqa: ANN001
    """503 with Retry-After 3, then an empty 200, then 503 with Retry-After 60 (Retry now), then the server."""
    unavailable = json.dumps({"status": "failed", "message": "The database is briefly unavailable; please retry."})
    answers = [
        {"status": 503, "headers": {"Retry-After": "3"}, "body": unavailable},
        {"status": 200, "headers": {}, "body": json.dumps({"task": None})},
        {"status": 503, "headers": {"Retry-After": "60"}, "body": unavailable},
    ]
    asked_at: list[float] = []
    page_errors: list[str] = []
    page.on("pageerror", lambda exc: page_errors.append(str(exc)))

    def next_task(route) -> None:  # noqa: ANN001
        asked_at.append(time.monotonic())
        if answers:
            answer = answers.pop(0)
            route.fulfill(status=answer["status"], headers=answer["headers"], content_type="application/json",
                          body=answer["body"])
        else:
            route.continue_()

    page.route("**/zoo/api/tasks/next", next_task)
    _submit_login(page, live_server)
    text = _wait_message(page, "briefly unavailable")
    assert "Trying again in 3 s" in text  # Retry-After (3 s) outweighs the first backoff step (2 s)
    assert page.locator(".zoo-message.error").count() == 1 and page.locator("#btn-retry").is_visible()
    assert page.locator("#strip .panel").count() == 0 and page.locator("#position").inner_text() == ""
    _shot(page, tmp_path, "retry")
    assert "Trying again in 4 s" in _wait_message(page, "incomplete task")  # empty answer; backoff doubled
    assert "Trying again in 60 s" in _wait_message(page, "briefly unavailable")
    page.click("#btn-retry")  # no need to wait a minute
    page.wait_for_selector("#target", timeout=15_000)
    wait_for_js(page, "document.querySelectorAll('#strip .panel.std img').length === 9")
    assert _message(page) == "" and page.locator("#btn-retry").is_hidden()
    assert len(asked_at) == 4
    gaps = [later - earlier for earlier, later in zip(asked_at, asked_at[1:], strict=False)]
    assert gaps[0] >= 2.9 and gaps[1] >= 3.9 and gaps[2] < 30, gaps
    assert not page_errors, page_errors


def test_a_server_side_sql_error_is_shown_and_retried_until_it_is_fixed(live_server, page, world,  # noqa: ANN001
                                                                       monkeypatch) -> None:  # noqa: ANN001
    """The real server answers 500 (the other vendor's SQL, as SQLite once got PostgreSQL's): a message, not
    an endless "Loading…"; once the fault is gone the automatic retry brings the galaxy."""
    page_errors: list[str] = []
    page.on("pageerror", lambda exc: page_errors.append(str(exc)))
    real = assignment._candidates_sql
    other_vendor = "postgresql" if connection.vendor == "sqlite" else "sqlite"
    monkeypatch.setattr(assignment, "_candidates_sql", lambda queue, vendor: real(queue, other_vendor))
    _submit_login(page, live_server)
    text = _wait_message(page, "Internal error; it has been logged.")
    assert "Trying again in" in text and page.locator("#btn-retry").is_visible()
    assert not Assignment.objects.filter(user=world).exists()
    monkeypatch.setattr(assignment, "_candidates_sql", real)
    wait_for_js(page, "document.querySelectorAll('#strip .panel.std img').length === 9", timeout=20_000)
    assert _message(page) == "" and page.locator("#btn-retry").is_hidden()
    assert Assignment.objects.filter(user=world, is_gold=False).count() == 1
    assert not page_errors, page_errors
