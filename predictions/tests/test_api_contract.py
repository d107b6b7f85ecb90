"""The prediction API keeps the original JSON contract, and bad input always gets the failed shape."""
import io

import numpy as np
import pytest
from django.urls import reverse
from PIL import Image

from tests.fake_services import galaxy_jpeg

pytestmark = pytest.mark.django_db


def assert_prediction_shape(body: dict) -> None:
    assert body["status"] == "success"
    inclinations = body["inclinations"]
    assert set(inclinations) == {"Group_0", "Group_1", "Group_2", "summary"}
    assert list(inclinations["Group_0"]) == ["model4", "model41", "model42", "model43"]
    assert list(inclinations["Group_1"]) == ["model5", "model51", "model52", "model53"]
    assert list(inclinations["Group_2"]) == ["model6", "model61", "model62", "model63"]
    values = [v for g in ("Group_0", "Group_1", "Group_2") for v in inclinations[g].values()]
    assert all(isinstance(v, float) and 45 <= v <= 90 and v == round(v) for v in values)
    assert set(inclinations["summary"]) == {"mean", "median", "stdev"}
    assert inclinations["summary"]["median"] == pytest.approx(float(np.median(values)))
    assert inclinations["summary"]["stdev"] == pytest.approx(float(np.std(values)), abs=0.01)
    rejection = body["rejection_likelihood"]
    assert set(rejection) == {"model4-binary", "model5-binary", "model6-binary", "summary"}
    assert all(0 <= rejection[k] <= 100 for k in ("model4-binary", "model5-binary", "model6-binary"))
    assert body["model_version"] == "tiny-1"
    assert isinstance(body["alarm"], bool) and isinstance(body["alarm_reason"], str)
    assert body["image_url"].endswith(".png")
    # Orientation and the physics cross-check (issue 12).
    assert body["pa_measured"] is None or (isinstance(body["pa_measured"], float) and 0 <= body["pa_measured"] < 180)
    assert body["pa_source"] in ("catalogue", "measured", "manual", "none")
    assert body["axial_ratio_inclination"] is None or 0 <= body["axial_ratio_inclination"] <= 90
    assert body["axial_ratio"] is None or 0 < body["axial_ratio"] <= 1


def assert_failed(response, code: int) -> dict:  # noqa: ANN001
    assert response.status_code == code, response.content
    body = response.json()
    assert body["status"] == "failed" and isinstance(body["message"], str) and body["message"]
    return body


def test_pgc_endpoint(client, catalogue, fake_services, active_tiny_ensemble) -> None:
    body = client.get(reverse("api-pgc", args=["5818"])).json()
    assert_prediction_shape(body)
    assert body["galaxy"] == {"pgc": "5818", "ra": "23.4620 deg", "dec": "30.6602 deg", "fov": "93.14 arcmin",
                              "pa": "23.0 deg", "objname": "NGC0598"}
    params = fake_services.last_params["sdss"]
    assert (float(params["scale"]), params["width"]) == (4.0, str(int(93.135 * 60 / 4.0)))  # doubled until <= 2048


def test_objname_endpoint_returns_an_integer_pgc(client, catalogue, fake_services, active_tiny_ensemble) -> None:
    body = client.get(reverse("api-objname", args=["M33"])).json()
    assert_prediction_shape(body)
    assert body["galaxy"]["pgc"] == 5818 and body["galaxy"]["objname"] == "M33"


def test_coords_endpoint(client, catalogue, fake_services, active_tiny_ensemble) -> None:
    body = client.get(reverse("api-coords"), {"ra": "194.1825", "dec": "21.682", "fov": "15.71"}).json()
    assert_prediction_shape(body)
    assert body["galaxy"]["fov"] == "15.71 arcmin"


def test_file_endpoint_and_cache(client, active_tiny_ensemble) -> None:
    upload = io.BytesIO(galaxy_jpeg(300, 200))
    upload.name = "andromeda.jpg"
    body = client.post(reverse("api-file"), {"file": upload}).json()
    assert_prediction_shape(body)
    assert body["filename"] == "andromeda.jpg" and "galaxy" not in body
    assert body["pa_source"] == "measured" and body["pa_measured"] == pytest.approx(60, abs=3)
    upload.seek(0)
    again = client.post(reverse("api-file"), {"file": upload}).json()
    assert again["inclinations"] == body["inclinations"]


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def named(data: bytes, name: str) -> io.BytesIO:
    handle = io.BytesIO(data)
    handle.name = name
    return handle


@pytest.mark.parametrize(
    ("data", "name", "code"),
    [
        (b"", "empty.png", 400),
        (b"this is text", "notes.png", 400),
        (b"\xff\xd8\xff" + b"\0" * (1024 * 1024 + 100_000), "big.jpg", 413),
        (b"%PDF-1.4 not an image", "paper.pdf", 400),
    ],
)
def test_bad_uploads_get_the_failed_json(client, active_tiny_ensemble, data: bytes, name: str, code: int) -> None:
    body = assert_failed(client.post(reverse("api-file"), {"file": named(data, name)}), code)
    assert body["filename"] == name and "no larger than 1 MB" in body["message"]


def test_animated_gif_is_refused(client, active_tiny_ensemble) -> None:
    frames = [Image.new("RGB", (16, 16), c) for c in ((255, 0, 0), (0, 0, 255))]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:])
    assert "Animated" in assert_failed(client.post(reverse("api-file"), {"file": named(buffer.getvalue(), "a.gif")}), 400)["message"]


@pytest.mark.parametrize("image", [
    Image.fromarray((np.arange(64 * 64, dtype=np.uint16).reshape(64, 64) * 16)),  # 16-bit PNG
    Image.new("LA", (40, 30), (200, 128)),  # grey with alpha
])
def test_unusual_but_valid_pngs_are_evaluated(client, active_tiny_ensemble, image: Image.Image) -> None:
    assert_prediction_shape(client.post(reverse("api-file"), {"file": named(png_bytes(image), "x.png")}).json())


def test_cmyk_jpeg_is_evaluated(client, active_tiny_ensemble) -> None:
    buffer = io.BytesIO()
    Image.new("CMYK", (50, 40), (10, 200, 30, 0)).save(buffer, format="JPEG")
    assert_prediction_shape(client.post(reverse("api-file"), {"file": named(buffer.getvalue(), "c.jpg")}).json())


def test_missing_file_field(client, active_tiny_ensemble) -> None:
    assert_failed(client.post(reverse("api-file"), {}), 400)


@pytest.mark.parametrize(("path", "code"), [
    ("/api/pgc/999999999", 404), ("/api/pgc/-5", 400), ("/api/pgc/0", 400),
    ("/api/objname/%3Cscript%3Ealert(1)%3C%2Fscript%3E", 404),
    ("/api/objname/x%27%3B%20DROP%20TABLE%20catalog_galaxy%3B--", 404),
    ("/api/coords?ra=400&dec=10&fov=5", 400), ("/api/coords?ra=10&dec=10&fov=0", 400),
    ("/api/coords?ra=abc&dec=10&fov=5", 400), ("/api/coords?ra=10&dec=10", 400),
])
def test_bad_lookups_get_the_failed_json(client, catalogue, active_tiny_ensemble, path: str, code: int) -> None:
    response = client.get(path)
    assert_failed(response, code)
    # A hostile name may be echoed in the message, but only inside JSON that no browser will sniff as HTML.
    assert response["Content-Type"].startswith("application/json")
    assert response["X-Content-Type-Options"] == "nosniff"


def test_unknown_pgc_message_matches_the_original(client, catalogue) -> None:
    body = assert_failed(client.get("/api/pgc/999999999"), 404)
    assert body["message"] == "Could not find PGC999999999 in the database."


def test_no_active_model_is_503(client, catalogue, fake_services) -> None:
    body = assert_failed(client.get(reverse("api-pgc", args=["5818"])), 503)
    assert "No model ensemble is active" in body["message"]


def test_image_service_down_is_502(client, catalogue, offline_services, active_tiny_ensemble) -> None:
    body = assert_failed(client.get(reverse("api-pgc", args=["5818"])), 502)
    assert "Could not get an image of NGC0598" in body["message"]


def test_unknown_name_with_resolvers_down_says_so(client, catalogue, offline_services, active_tiny_ensemble) -> None:
    # 503, not 404: the name may well exist; nobody could be asked (issue 16, finding 9).
    body = assert_failed(client.get(reverse("api-objname", args=["UGC 99999"])), 503)
    assert "remote name resolvers are unreachable" in body["message"]
