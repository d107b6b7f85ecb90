"""The volunteer experience on the server: graded feedback wording, the tutorial that must be passed (checked
and recorded server-side), personal statistics in words, the field guide, the sign-up throttle that counts
only successful sign-ups, the styled 403/404/429 pages, the favicon, and no inline code in the templates."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from inclinet_site.security import SignupRateThrottle
from labeling import tutorial
from labeling.feedback import known_answer_feedback
from labeling.models import Standard, VolunteerProfile

from .factories import MeasurementFactory, ProfileFactory, UserFactory

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("truth", "value", "face_on", "reasons", "grade", "words"), [
    (65.0, 66, False, [], "spot_on", "Spot on: you said 66°, the accepted value is 65°."),
    (65.0, 60, False, [], "close", "Close: you said 60°, the accepted value is 65°. It is more edge-on"),
    (65.0, 80, False, [], "off", "Off by 15°: you said 80°, the accepted value is 65°. It is more face-on"),
    (65.0, 50.5, False, [], "off", "Off by 14.5°: you said 50.5°"),
    (45.0, None, False, ["disturbed"], "wrong_reject", "This was a clean 45° galaxy, not Disturbed."),
    (42.0, None, True, [], "spot_on", "Spot on: this galaxy is face-on (42°)"),
    (70.0, None, True, [], "wrong_face_on", "This galaxy is 70°, not face-on"),
    (42.0, 47, False, [], "wrong_placement", "this galaxy is face-on (42°)"),
])
def test_feedback_is_graded_and_worded_for_each_kind_of_answer(truth, value, face_on, reasons, grade, words) -> None:  # noqa: ANN001
    feedback = known_answer_feedback(truth=truth, value=value, face_on=face_on, reasons=reasons)
    assert feedback["grade"] == grade
    assert words in feedback["message"]
    assert "a little too" not in feedback["message"]


def test_a_rejected_gold_standard_is_told_it_was_clean_and_saved_equals_said(settings, grid, targets) -> None:  # noqa: ANN001
    settings.LABELING_GOLD_START = settings.LABELING_GOLD_MIN = 1.0
    targets(1)
    client = APIClient()
    client.force_login(UserFactory())
    task = client.post(reverse("labeling:api-next")).json()["task"]
    answer = client.post(reverse("labeling:api-submit", args=[task["id"]]), {"reasons": ["disturbed"]},
                         format="json").json()
    truth = Standard.objects.get(galaxy_id=task["galaxy"]["id"]).inclination
    assert answer["feedback"]["message"] == f"This was a clean {truth:g}° galaxy, not Disturbed."
    # A placed gold answer: the feedback grades the stored (rounded) value, the one the page shows as "Saved".
    task = client.post(reverse("labeling:api-next")).json()["task"]
    low = 60
    step2 = client.post(reverse("labeling:api-standards", args=[task["id"]]), {"step": 2, "low": low},
                        format="json").json()["standards"]
    body = {"left_standard": step2[3]["id"], "right_standard": step2[4]["id"], "step1_low": low}
    answer = client.post(reverse("labeling:api-submit", args=[task["id"]]), body, format="json").json()
    saved = answer["measurement"]["inclination"]
    assert f"you said {saved}°" in answer["feedback"]["message"]


def _answer_all(client: APIClient, *, right: bool) -> dict:
    """Answer every question of the session's quiz, all right or all wrong."""
    state = client.session["zoo_tutorial"]
    body = None
    for index, question in enumerate(state["questions"]):
        if question["kind"] == "reject":
            payload = {"reasons": [question["reason"]] if right else ["HI"]}
        elif question["kind"] == "face_on":
            payload = {"face_on": True} if right else {"left_standard": Standard.objects.get(inclination=89).id,
                                                       "right_standard": Standard.objects.get(inclination=90).id}
        else:
            truth = question["truth"]
            near = float(min(int(truth), 89)) if right else (45.0 if truth > 67 else 89.0)
            payload = {"left_standard": Standard.objects.get(inclination=near).id,
                       "right_standard": Standard.objects.get(inclination=near + 1).id}
        response = client.post(reverse("labeling:api-tutorial-check"), {"question": index, **payload}, format="json")
        assert response.status_code == 200, response.content
        body = response.json()
        assert body["feedback"]["message"]
    return body


def test_the_tutorial_must_be_passed_and_is_checked_on_the_server(grid) -> None:  # noqa: ANN001
    user = UserFactory()
    client = APIClient()
    client.force_login(user)
    assert client.get(reverse("labeling:measure")).url == reverse("labeling:tutorial")
    quiz = client.get(reverse("labeling:api-tutorial")).json()
    assert len(quiz["questions"]) == 6 and len(quiz["standards"]) == 9
    # The page never gets the answers: no inclination, standard id or galaxy name for a question.
    assert not re.search(r"inclination|truth|standard_id|galaxy|reason", str(quiz["questions"]))
    # A PATCH of the old preference flag does not pass it.
    client.patch(reverse("labeling:api-preferences"), {"tutorial_done": True}, format="json")
    assert client.get(reverse("labeling:measure")).status_code == 302

    failed = _answer_all(client, right=False)["summary"]
    assert failed["passed"] is False and failed["median_error"] > tutorial.PASS_MEDIAN_ERROR_DEG
    assert len(failed["missing"]) == 3
    profile = VolunteerProfile.objects.get(user=user)
    assert profile.tutorial_attempts == 1 and profile.tutorial_passed_at is None
    assert client.get(reverse("labeling:measure")).status_code == 302
    # Answering twice is refused; a fresh quiz (POST) starts over.
    again = client.post(reverse("labeling:api-tutorial-check"), {"question": 0, "face_on": True}, format="json")
    assert again.status_code == 409 and again.json()["status"] == "failed"
    fresh = client.post(reverse("labeling:api-tutorial")).json()
    assert fresh["summary"] is None and not any(q["answered"] for q in fresh["questions"])

    passed = _answer_all(client, right=True)["summary"]
    assert passed["passed"] is True and passed["median_error"] <= 1.0 and not passed["missing"]
    profile.refresh_from_db()
    assert profile.tutorial_attempts == 2 and profile.tutorial_passed_at is not None
    assert client.get(reverse("labeling:measure")).status_code == 200


def test_tutorial_refuses_bad_input_with_clear_4xx(grid) -> None:  # noqa: ANN001
    client = APIClient()
    client.force_login(UserFactory())
    url = reverse("labeling:api-tutorial-check")
    assert client.post(url, {"question": 0, "face_on": True}, format="json").status_code == 409  # not started
    client.get(reverse("labeling:api-tutorial"))
    for body in ({"question": 99, "face_on": True}, {"question": 0}, {"question": "x"},
                 {"question": 0, "reasons": ["nope"]}, {"question": 0, "left_standard": 10**9}):
        response = client.post(url, body, format="json")
        assert response.status_code == 400 and response.json()["status"] == "failed", body
    assert client.get(reverse("labeling:api-tutorial") + "?step=2&low=47").status_code == 400
    assert client.get(reverse("labeling:api-tutorial") + "?step=2").status_code == 400
    assert len(client.get(reverse("labeling:api-tutorial") + "?step=2&low=60").json()["standards"]) == 9


def test_statistics_in_words_on_me_and_the_measure_page(grid) -> None:  # noqa: ANN001
    user = ProfileFactory(tutorial_passed_at=timezone.now()).user
    other = UserFactory()
    s60, s70 = Standard.objects.get(inclination=60), Standard.objects.get(inclination=70)
    MeasurementFactory(user=user, galaxy=s60.galaxy, is_gold=True, inclination=63, inclination_raw=62.5)
    MeasurementFactory(user=user, galaxy=s70.galaxy, is_gold=True, inclination=70, inclination_raw=70.5)
    MeasurementFactory(user=other, galaxy=s70.galaxy, is_gold=True, inclination=80, inclination_raw=80.5)
    client = Client()
    client.force_login(user)
    words = "Your median error on known galaxies: 1.5° over 2 of them; the crowd&#x27;s: 3°."
    assert words in client.get(reverse("labeling:me")).content.decode()
    page = client.get(reverse("labeling:measure")).content.decode()
    assert words in page and 'id="count-total">2<' in page and 'id="count-session"' in page
    assert 'href="/zoo/guide/"' in page  # the field guide stays reachable
    assert 'value="face_on"' not in page and "Face-on (&lt; 45°)" in page  # one way to say face-on


def test_field_guide_and_its_examples(db) -> None:  # noqa: ANN001
    page = Client().get(reverse("labeling:guide")).content.decode()
    for words in ("Face-on: less than 45°", "Disturbed", "Multiple objects", "Not a spiral", "Bad HI / confused"):
        assert words in page
    png = Client().get(reverse("labeling:guide-example", args=["reject-multiple"]))
    assert png.status_code == 200 and png.content[:4] == b"\x89PNG"
    assert Client().get(reverse("labeling:guide-example", args=["nope"])).status_code == 404


def test_signup_throttle_counts_only_successful_signups(monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setattr(SignupRateThrottle, "THROTTLE_RATES", {"signup": "2/hour"})
    client = Client()
    for n in range(4):  # failed forms (mismatched passwords) do not use up the sign-up allowance
        assert client.post("/zoo/signup/", {"username": f"x{n}", "password1": "Galaxy-incl-93!",
                                            "password2": "other"}).status_code == 200
    for n in range(2):
        assert client.post("/zoo/signup/", {"username": f"new{n}", "password1": "Galaxy-incl-93!",
                                            "password2": "Galaxy-incl-93!"}).status_code == 302
        client.logout()
    refused = client.post("/zoo/signup/", {"username": "new9", "password1": "Galaxy-incl-93!",
                                           "password2": "Galaxy-incl-93!"})
    assert refused.status_code == 429 and int(refused["Retry-After"]) > 0
    text = refused.content.decode()
    assert re.search(r"Try again in \d+ minutes?\.", text) and 'href="/zoo/login/"' in text
    assert 'rel="icon"' in text


def test_failed_signups_have_their_own_limit(monkeypatch) -> None:  # noqa: ANN001
    from labeling import views

    monkeypatch.setattr(views.SignupFailureThrottle, "rate", "3/hour")
    client = Client()
    for n in range(3):
        assert client.post("/zoo/signup/", {"username": f"x{n}", "password1": "a", "password2": "b"}).status_code == 200
    assert client.post("/zoo/signup/", {"username": "x9", "password1": "a", "password2": "b"}).status_code == 429
    # Reading the form is never refused.
    assert client.get("/zoo/signup/").status_code == 200


def test_styled_403_404_and_login_429_pages(grid, monkeypatch) -> None:  # noqa: ANN001
    from inclinet_site.security import LoginRateThrottle

    volunteer = UserFactory()
    client = Client()
    client.force_login(volunteer)
    forbidden = client.get(reverse("labeling:report"))
    assert forbidden.status_code == 403 and "error-403" in forbidden.content.decode()
    anonymous = Client()
    missing = anonymous.get("/zoo/no-such-page/")
    assert missing.status_code == 404 and 'href="/zoo/login/"' in missing.content.decode()
    monkeypatch.setattr(LoginRateThrottle, "THROTTLE_RATES", {"login": "1/min"})
    anonymous.post("/zoo/login/", {"username": "a", "password": "b"})
    refused = anonymous.post("/zoo/login/", {"username": "a", "password": "b"})
    assert refused.status_code == 429 and "Try again in 1 minute." in refused.content.decode()
    assert int(refused["Retry-After"]) > 0
    # API clients keep the JSON shape.
    api = anonymous.post("/zoo/login/", {"username": "a", "password": "b"}, HTTP_ACCEPT="application/json")
    assert api.status_code == 429 and api.json()["status"] == "failed"


def test_favicon_and_no_inline_code_in_the_templates(db) -> None:  # noqa: ANN001
    page = Client().get(reverse("labeling:login")).content.decode()
    assert re.search(r'<link rel="icon" type="image/svg\+xml" href="[^"]*favicon[^"]*\.svg"', page)
    assert (ROOT / "static" / "favicon.svg").read_text().startswith("<svg")
    written = [*sorted((ROOT / "labeling" / "templates" / "labeling").glob("*.html")),
               *(ROOT / "templates" / name for name in ("403.html", "404.html", "429.html"))]
    for path in written:
        text = path.read_text()
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text), path
        assert "<style" not in text and not re.search(r"\son[a-z]+\s*=", text), path
        assert "style=" not in text, path
