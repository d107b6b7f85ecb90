"""A new volunteer's first session in headless Chromium, on a desktop (1366×900) and a phone (390×844, touch):
sign up; the tutorial, failed and then passed; a known galaxy rejected (and told it was clean); then real
catalogue galaxies, added by ``manage.py zoo_add_galaxies`` from the local fake Legacy Survey FITS service (the
only galaxies in the queue): one placed by dragging, one answered face-on with its confirmation, one rejected;
feedback read and dismissed with Next/Enter; images magnified by click and by long-press; the session and total
counters; the field guide and my statistics.

Screenshots (palette PNGs, < 150 KB each) go to ``docs/screenshots/zoo-*-{desktop,phone}.png`` with
SAVE_SCREENSHOTS=1, otherwise to the test's tmp dir.
"""
from __future__ import annotations

import io
import os
import re
from pathlib import Path

import pytest
from django.contrib.sessions.backends.db import SessionStore
from django.core.management import call_command
from PIL import Image

from catalog.models import GalaxyImage
from catalog.tests.factories import GalaxyFactory
from labeling.models import Assignment, Consensus, Measurement, VolunteerProfile
from labeling.synthetic import MORPHOLOGIES, synthetic_galaxy
from tests.browser import wait_for_js
from tests.fake_fits import FakeLegacyFitsService, FakeSkyGalaxy

from .factories import StandardFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
DEVICES = {
    "desktop": {"viewport": {"width": 1366, "height": 900}},
    "phone": {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True,
              "device_scale_factor": 1},
}
MAX_PNG_BYTES = 150_000


# Real (fake-service) catalogue galaxies and what the volunteer does with each: PGC → (inclination drawn, action).
REAL_GALAXIES = {760_000: (62.0, "place"), 760_001: (30.0, "face_on"), 760_002: (80.0, "reject")}


@pytest.fixture
def zoo_world(settings, fake_services):  # noqa: ANN001, ANN201
    """Two standards per degree 40–90° at 96 px (as the demo data), and the Zoo's queue filled by
    ``zoo_add_galaxies`` with the catalogue galaxies of ``REAL_GALAXIES`` from the fake FITS service."""
    settings.LABELING_GOLD_START = settings.LABELING_GOLD_MIN = 1.0  # the first task is a known galaxy
    settings.LABELING_RANDOM_SHARE = settings.LABELING_PRIORITY_SHARE = 0.0
    for value in range(40, 91):
        for k in range(2):
            morphology = MORPHOLOGIES[(value + k) % 4]
            galaxy = synthetic_galaxy(name=f"SYN-VSTD-{value}-{k}", inclination=value, seed=value * 7 + k,
                                      morphology=morphology, bands=("colour",), size=96)
            StandardFactory(galaxy=galaxy, inclination=float(value), morphology=morphology)
    with FakeLegacyFitsService() as fits_fake:
        fits_fake.configure(settings)
        settings.LABELING_INGEST_IMAGE_SIZE = 256
        settings.LABELING_INGEST_REQUESTS_PER_S = 0  # no limit: a fast test (the limit has its own test)
        for k, (pgc, (inclination, _)) in enumerate(REAL_GALAXIES.items()):
            ra, dec, pa = 151.0 + 0.05 * k, 2.0 + 0.02 * k, 20.0 + 50.0 * k
            GalaxyFactory(pgc=pgc, name=f"PGC{pgc}", ra=ra, dec=dec, pa=pa, d25_arcmin=1.0)
            fits_fake.sky.append(FakeSkyGalaxy(ra=ra, dec=dec, pa=pa, inclination=inclination, d25_arcmin=1.0))
        out = io.StringIO()
        call_command("zoo_add_galaxies", "--pgc", ",".join(map(str, REAL_GALAXIES)), "--no-progress", stdout=out)
    assert f"{len(REAL_GALAXIES)} added" in out.getvalue(), out.getvalue()
    # The queue holds the ingested galaxies and nothing else, each with its colour and g, r, i images.
    queued = set(Consensus.objects.values_list("galaxy__pgc", flat=True))
    assert queued == set(REAL_GALAXIES), queued
    for pgc in REAL_GALAXIES:
        assert set(GalaxyImage.objects.filter(galaxy__pgc=pgc).values_list("kind", flat=True)) == {
            "colour", "g", "r", "i"}
    return settings


def _shot(page, device: str, name: str, tmp_path: Path, *, full_page: bool = False) -> None:  # noqa: ANN001
    folder = SCREENSHOTS if os.environ.get("SAVE_SCREENSHOTS") == "1" else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    raw = Image.open(io.BytesIO(page.screenshot(full_page=full_page))).convert("RGB")
    for colours in (96, 64, 32):
        buffer = io.BytesIO()
        raw.quantize(colors=colours, method=Image.Quantize.MEDIANCUT).save(buffer, format="PNG", optimize=True)
        if buffer.tell() < MAX_PNG_BYTES:
            break
    assert 5_000 < buffer.tell() < MAX_PNG_BYTES, (name, buffer.tell())
    (folder / f"zoo-{name}-{device}.png").write_bytes(buffer.getvalue())


def _fits(page, device: str) -> None:  # noqa: ANN001
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= DEVICES[device]["viewport"]["width"], width


def _press(page, device: str, selector: str) -> None:  # noqa: ANN001
    locator = page.locator(selector)
    if device == "phone":  # a finger's tap, through the same touch channel as the drags
        locator.scroll_into_view_if_needed()
        x, y = _centre(page, selector)
        _touch(page, "touchStart", x, y)
        _touch(page, "touchEnd", x, y)
    else:
        locator.click()


def _touch(page, kind: str, x: float, y: float) -> None:  # noqa: ANN001
    """A real touch event (Chromium turns it into pointer events with pointerType "touch")."""
    points = [] if kind == "touchEnd" else [{"x": x, "y": y}]
    if not hasattr(page, "_zoo_cdp"):  # one session: a touch sequence must stay on one
        page._zoo_cdp = page.context.new_cdp_session(page)
    page._zoo_cdp.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": points})


def _centre(page, selector: str) -> tuple[float, float]:  # noqa: ANN001
    box = page.locator(selector).bounding_box()
    return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2


def _drag_target_to(page, device: str, pos: int) -> None:  # noqa: ANN001
    """Desktop: drag the large target with the mouse into gap ``pos``. Phone: tap a gap next to it, then drag the
    placed target along the strip with a finger (pointer events from touch)."""
    slot = f"#strip .slot[data-pos='{pos}']"
    page.locator(slot).scroll_into_view_if_needed()
    if device == "desktop":
        page.locator("#target-img").scroll_into_view_if_needed()
        x0, y0 = _centre(page, "#target-img")
        x1, y1 = _centre(page, slot)
        page.mouse.move(x0, y0)
        page.mouse.down()
        page.mouse.move((x0 + x1) / 2, (y0 + y1) / 2, steps=5)
        page.mouse.move(x1, y1, steps=5)
        page.mouse.up()
    else:
        start = pos - 1 if pos > 1 else pos + 1
        _press(page, device, f"#strip .slot[data-pos='{start}']")
        page.locator(slot).scroll_into_view_if_needed()
        x0, y0 = _centre(page, "#strip .slot.placed")
        x1, y1 = _centre(page, slot)
        _touch(page, "touchStart", x0, y0)
        for k in range(1, 7):  # a finger's pace, then still before lifting (a fast flick would start a fling)
            _touch(page, "touchMove", x0 + (x1 - x0) * k / 6, y0 + (y1 - y0) * k / 6)
            page.wait_for_timeout(40)
        page.wait_for_timeout(150)
        _touch(page, "touchEnd", x1, y1)
        page.wait_for_timeout(400)  # let the gesture end before the next tap
    wait_for_js(page, "(p) => document.querySelector('#position').dataset.pos === String(p)", pos)


def _served_pgc(page) -> int:  # noqa: ANN001
    """The catalogue number of the galaxy the page shows now (the page names the task, not the galaxy)."""
    return Assignment.objects.select_related("galaxy").get(pk=int(page.locator("#zoo").get_attribute("data-task"))
                                                           ).galaxy.pgc


def _session_quiz(page) -> list[dict]:  # noqa: ANN001
    key = next(c["value"] for c in page.context.cookies() if c["name"] == "sessionid")
    return SessionStore(session_key=key).load()["zoo_tutorial"]["questions"]


def _step2_inclinations(page) -> list[float]:  # noqa: ANN001
    return page.locator("#strip .panel.std").evaluate_all("els => els.map(e => parseFloat(e.dataset.inclination))")


def _answer(page, device: str, question: dict, *, right: bool, drag: bool = False) -> str:  # noqa: ANN001
    """Answer one tutorial question through the page, all right or all wrong; return the feedback read."""
    kind = question["kind"]
    if right and kind == "reject":
        page.locator("#reject summary").click()
        page.check(f"input[name=reason][value={question['reason']}]")
        _press(page, device, "#btn-reject")
    elif right and kind == "face_on":
        _press(page, device, "#btn-faceon")
        _press(page, device, "#btn-faceon-yes")
    else:
        truth = question.get("truth", 60.0)
        first = min(9, int((truth - 45) // 5) + 1) if right else (9 if truth < 67 else 1)
        if drag:
            _drag_target_to(page, device, first)
        else:
            _press(page, device, f"#strip .slot[data-pos='{first}']")
        _press(page, device, "#btn-confirm")
        page.wait_for_selector("#btn-submit:not([hidden])")
        values = _step2_inclinations(page)
        if right:
            pos = next(p for p in range(1, len(values)) if values[p - 1] <= truth <= values[p])
        else:
            pos = len(values) if truth < 67 else page.evaluate(
                "Math.min(...Array.from(document.querySelectorAll('#strip .slot')).map(s => +s.dataset.pos))")
        _press(page, device, f"#strip .slot[data-pos='{pos}']")
        _press(page, device, "#btn-submit")
    page.wait_for_selector("#feedback:not([hidden])")
    return page.locator("#feedback-text").inner_text()


def _next(page, device: str) -> None:  # noqa: ANN001
    shown = page.locator("#zoo").get_attribute("data-task")
    if device == "desktop":
        page.keyboard.press("Enter")
    else:
        _press(page, device, "#btn-next")
    page.wait_for_selector("#feedback", state="hidden")
    # The next galaxy or question is drawn unplaced.
    wait_for_js(page, "(shown) => document.querySelector('#zoo').dataset.task !== shown "
                "&& document.querySelector('#position').textContent.startsWith('Not placed yet')", shown)


@pytest.mark.parametrize("device", ["desktop", "phone"])
def test_first_session_of_a_new_volunteer(live_server, chromium_browser, zoo_world, tmp_path, device: str) -> None:  # noqa: ANN001
    context = chromium_browser.new_context(**DEVICES[device])
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        _first_session(page, live_server, zoo_world, tmp_path, device)
    finally:
        context.close()
    assert not errors, errors


def _first_session(page, live_server, settings, tmp_path, device: str) -> None:  # noqa: ANN001
    name = f"ada-{device}"
    _sign_up_into_the_tutorial(page, live_server, device, name, tmp_path)
    profile = _fail_the_quiz(page, device, name, tmp_path)
    _pass_the_quiz(page, device, profile, tmp_path)
    _first_task_magnified_and_rejected(page, device, name, tmp_path)
    _measure_the_real_galaxies(page, settings, device, name, tmp_path)
    _my_measurements_and_the_guide(page, live_server, device, tmp_path)


def _sign_up_into_the_tutorial(page, live_server, device: str, name: str, tmp_path: Path) -> None:  # noqa: ANN001
    # Sign up: straight into the tutorial; the measuring page stays closed until it is passed.
    page.goto(live_server.url + "/zoo/signup/")
    page.fill("input[name=username]", name)
    page.fill("input[name=password1]", "a-Long-pass-4321")
    page.fill("input[name=password2]", "a-Long-pass-4321")
    _press(page, device, "#signup-form button[type=submit]")
    page.wait_for_url("**/zoo/tutorial/")
    assert "Before measuring real galaxies" in page.locator("#tutorial-required").inner_text()
    for words in ("What inclination looks like", "Face-on: less than 45°", "When to reject", "Disturbed",
                  "Multiple objects", "Not a spiral"):
        assert words in page.locator("#lessons").inner_text()
    _fits(page, device)
    _shot(page, device, "tutorial-lessons", tmp_path)
    page.goto(live_server.url + "/zoo/")
    page.wait_for_url("**/zoo/tutorial/")


def _fail_the_quiz(page, device: str, name: str, tmp_path: Path) -> VolunteerProfile:  # noqa: ANN001
    # The quiz, failed: every answer wrong. The end screen is a summary with a retry, no live measuring button.
    _press(page, device, "#btn-start-quiz")
    page.wait_for_selector("#quiz:not([hidden]) #strip .slot")
    assert page.locator("#btn-confirm").is_disabled()  # nothing placed: nothing to confirm
    assert "Not placed yet" in page.locator("#position").inner_text()
    questions = _session_quiz(page)
    for index, question in enumerate(questions):
        assert page.locator("#quiz-progress").inner_text() == f"Question {index + 1} of {len(questions)}."
        text = _answer(page, device, question, right=False)
        assert text and "Spot on" not in text
        if index == 0:
            _shot(page, device, "tutorial-feedback", tmp_path)
        if index < len(questions) - 1:
            _next(page, device)
    _press(page, device, "#btn-next")  # "See your result"
    page.wait_for_selector("#tutorial-summary:not([hidden])")
    assert page.locator("#summary-title").inner_text() == "Not passed yet"
    assert "median error of at most 8°" in page.locator("#summary-text").inner_text()
    assert page.locator("#summary-list li").count() == len(questions)
    assert page.locator("#btn-retry-tutorial").is_visible() and not page.locator("#btn-confirm").is_visible()
    assert not page.locator("#summary-start").is_visible()
    _fits(page, device)
    _shot(page, device, "tutorial-failed", tmp_path)
    profile = VolunteerProfile.objects.get(user__username=name)
    assert profile.tutorial_attempts == 1 and profile.tutorial_passed_at is None
    return profile


def _pass_the_quiz(page, device: str, profile: VolunteerProfile, tmp_path: Path) -> None:  # noqa: ANN001
    # The quiz again, passed: new galaxies, every answer right (one placed by dragging).
    _press(page, device, "#btn-retry-tutorial")
    page.wait_for_selector("#quiz:not([hidden]) #strip .slot")
    questions = _session_quiz(page)
    dragged = False
    for index, question in enumerate(questions):
        drag = not dragged and question["kind"] == "placement"
        dragged = dragged or drag
        text = _answer(page, device, question, right=True, drag=drag)
        assert text.startswith(("Spot on", "Close", "Right")), text
        if index < len(questions) - 1:
            _next(page, device)
    _press(page, device, "#btn-next")
    page.wait_for_selector("#tutorial-summary.passed")
    assert page.locator("#summary-title").inner_text() == "Tutorial passed"
    assert page.locator("#summary-start").is_visible() and not page.locator("#btn-retry-tutorial").is_visible()
    _shot(page, device, "tutorial-passed", tmp_path)
    profile.refresh_from_db()
    assert profile.tutorial_attempts == 2 and profile.tutorial_passed_at is not None


def _first_task_magnified_and_rejected(page, device: str, name: str, tmp_path: Path) -> None:  # noqa: ANN001
    # Measuring. The first task is a known galaxy; rejecting it as Disturbed is answered in the right words.
    _press(page, device, "#summary-start")
    page.wait_for_url("**/zoo/")
    page.wait_for_selector("#strip .slot")
    wait_for_js(page, "document.querySelector('#target-img').complete && document.querySelector('#target-img').naturalWidth > 0")
    assert page.locator("#count-session").inner_text() == "0" and page.locator("#count-total").inner_text() == "0"
    assert page.locator("#btn-confirm").is_disabled() and page.locator("#strip .slot.placed").count() == 0
    assert page.locator("#target-img").bounding_box()["width"] >= 256
    assert min(page.locator("#strip .panel.std .frame").evaluate_all(
        "els => els.map(e => e.getBoundingClientRect().width)")) >= 120
    assert page.locator(".key-hint").first.is_visible() is (device == "desktop")  # no key hints on touch screens
    assert page.locator("#link-guide").is_visible()
    _fits(page, device)
    _shot(page, device, "measure", tmp_path)
    # Magnify: a click on a standard (desktop) or a long-press on the target (phone) opens the full image.
    if device == "desktop":
        page.locator("#strip .panel.std").nth(4).click()
    else:
        page.locator("#target-img").scroll_into_view_if_needed()
        x, y = _centre(page, "#target-img")
        _touch(page, "touchStart", x, y)
        page.wait_for_timeout(800)
        _touch(page, "touchEnd", x, y)
    page.wait_for_selector("#lightbox:not([hidden])")
    wait_for_js(page, "document.querySelector('#lightbox-img').naturalWidth > 0")
    natural, shown = page.locator("#lightbox-img").evaluate("e => [e.naturalWidth, e.getBoundingClientRect().width]")
    assert natural == 96 and shown >= 300  # the whole 96-px file, enlarged
    _shot(page, device, "magnify", tmp_path)
    _press(page, device, "#lightbox-close")
    page.wait_for_selector("#lightbox", state="hidden")

    page.locator("#reject summary").click()
    page.check("input[name=reason][value=disturbed]")
    _press(page, device, "#btn-reject")
    page.wait_for_selector("#feedback:not([hidden])")
    feedback = page.locator("#feedback-text").inner_text()
    gold = Measurement.objects.get(user__username=name)
    truth = gold.galaxy.zoo_standard.inclination
    assert "Saved: rejected (Disturbed)." in feedback
    assert f"This was a clean {truth:g}° galaxy, not Disturbed." in feedback
    assert page.locator("#count-session").inner_text() == "1" and page.locator("#count-total").inner_text() == "1"
    page.wait_for_timeout(1500)  # feedback stays until Next
    assert page.locator("#feedback").is_visible()
    _fits(page, device)
    _shot(page, device, "feedback-reject", tmp_path)


def _measure_the_real_galaxies(page, settings, device: str, name: str, tmp_path: Path) -> None:  # noqa: ANN001
    # The real galaxies, in the order the queue serves them (breadth first, fresh ones at random): each answered
    # as REAL_GALAXIES says, every one a galaxy the ingestion added.
    settings.LABELING_GOLD_START = settings.LABELING_GOLD_MIN = 0.0
    done: list[str] = []
    for _ in REAL_GALAXIES:
        _next(page, device)
        page.wait_for_selector("#strip .slot")
        wait_for_js(page, "document.querySelector('#target-img').complete "
                    "&& document.querySelector('#target-img').naturalWidth > 0")
        pgc = _served_pgc(page)
        assert pgc in REAL_GALAXIES and pgc not in done, (pgc, done)
        # The ingested 256-px image, shown at 256 px or more.
        assert page.locator("#target-img").evaluate("e => e.naturalWidth") >= 256
        assert page.locator("#target-img").bounding_box()["width"] >= 256
        action = REAL_GALAXIES[pgc][1]
        done.append(pgc)
        if len(done) == 1:
            _fits(page, device)
            page.evaluate("window.scrollTo(0, 0)")  # the target in view, on the phone too
            _shot(page, device, "measure-real", tmp_path)
        if action == "place":
            _place_real(page, device, name, tmp_path)
        elif action == "face_on":
            _face_on_real(page, device, name, tmp_path)
        else:
            _reject_real(page, device, name, tmp_path)
        assert Measurement.objects.filter(user__username=name, galaxy__pgc=pgc).count() == 1
        count = str(1 + len(done))
        assert page.locator("#count-session").inner_text() == count
        assert page.locator("#count-total").inner_text() == count
    assert set(done) == set(REAL_GALAXIES)
    assert Measurement.objects.filter(user__username=name, is_gold=False).count() == len(REAL_GALAXIES)


def _my_measurements_and_the_guide(page, live_server, device: str, tmp_path: Path) -> None:  # noqa: ANN001
    # My measurements: the statistics in words; the field guide.
    page.goto(live_server.url + "/zoo/me/")
    words = page.locator("#stats-words").inner_text()
    assert re.search(r"Your median error on known galaxies|Your accuracy appears after", words), words
    assert page.locator("#count").inner_text() == str(1 + len(REAL_GALAXIES))
    _fits(page, device)
    _shot(page, device, "me", tmp_path)
    page.goto(live_server.url + "/zoo/guide/")
    assert "Field guide" in page.locator("h1").inner_text()
    _fits(page, device)
    _shot(page, device, "guide", tmp_path)


def _place_real(page, device: str, name: str, tmp_path: Path) -> None:  # noqa: ANN001
    """Placed by dragging, then step 2: "Saved" says the stored value."""
    _drag_target_to(page, device, 4)
    assert "between 60° and 65°" in page.locator("#position").inner_text()
    rows = len(set(page.locator("#strip .panel.std").evaluate_all(
        "els => els.map(e => Math.round(e.getBoundingClientRect().top))")))
    assert rows == (1 if device == "desktop" else 5)  # one row on the desktop; two standards a row on the phone
    _press(page, device, "#btn-confirm")
    page.wait_for_selector("#btn-submit:not([hidden])")
    assert page.locator("#btn-submit").is_disabled()  # step 2 also starts unplaced
    _press(page, device, "#strip .slot[data-pos='4']")
    _press(page, device, "#btn-submit")
    page.wait_for_selector("#feedback:not([hidden])")
    placed = Measurement.objects.get(user__username=name, is_gold=False, inclination__isnull=False)
    assert f"Saved: {placed.inclination}°." in page.locator("#feedback-text").inner_text()
    assert placed.step1_low == 60 and 60 <= placed.inclination <= 65
    _shot(page, device, "feedback-saved", tmp_path)


def _face_on_real(page, device: str, name: str, tmp_path: Path) -> None:  # noqa: ANN001
    """One button, and a confirmation before anything is sent."""
    before = Measurement.objects.filter(user__username=name).count()
    _press(page, device, "#btn-faceon")
    assert page.locator("#faceon-confirm").is_visible()
    assert Measurement.objects.filter(user__username=name).count() == before
    _shot(page, device, "faceon-confirm", tmp_path)
    _press(page, device, "#btn-faceon-yes")
    page.wait_for_selector("#feedback:not([hidden])")
    assert "Saved: face-on (< 45°)." in page.locator("#feedback-text").inner_text()
    face_on = Measurement.objects.get(user__username=name, face_on=True)
    assert face_on.inclination is None and face_on.step1_low is None and not face_on.is_gold


def _reject_real(page, device: str, name: str, tmp_path: Path) -> None:  # noqa: ANN001
    """Rejected as "Multiple objects": saved as said, with no verdict (nobody knows the answer yet)."""
    page.locator("#reject summary").click()
    page.check("input[name=reason][value=multiple]")
    _press(page, device, "#btn-reject")
    page.wait_for_selector("#feedback:not([hidden])")
    feedback = page.locator("#feedback-text").inner_text()
    label = page.locator("input[name=reason][value=multiple]").evaluate("e => e.parentElement.textContent.trim()")
    assert f"Saved: rejected ({label})." in feedback, feedback
    assert "This was a clean" not in feedback
    rejected = Measurement.objects.get(user__username=name, is_gold=False, multiple=True)
    assert rejected.inclination is None and not rejected.face_on
    _fits(page, device)
    _shot(page, device, "feedback-reject-real", tmp_path)
