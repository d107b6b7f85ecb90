"""The astronomer page in headless Chromium: load by PGC and by name from a local fake image server,
upload a file, rotate and zoom, evaluate and read the results."""
import pytest

from conftest import save_screenshot
from tests.fake_services import galaxy_jpeg
from tests.browser import wait_for_js

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def wait_results(page) -> None:  # noqa: ANN001
    page.wait_for_selector("#results:not([hidden])", timeout=60_000)


def test_load_by_pgc_and_evaluate(live_server, catalogue, fake_services, active_tiny_ensemble, page, tmp_path) -> None:
    page.goto(live_server.url + "/predict/")
    page.fill("#pgc", "5818")
    page.click("#pgc-form button")
    wait_for_js(page, "document.getElementById('sky').naturalWidth > 0")
    assert "NGC0598 (PGC 5818)" in page.text_content("#target-info")
    assert page.text_content("#angle-readout") == "113"  # PA 23 + 90, as the original
    assert "catalogue" in page.text_content("#align-mode")
    page.click("#evaluate")
    wait_results(page)
    assert page.text_content("#pa-source") == "catalogue PA + 90°"
    assert page.text_content("#model-version") == "tiny-1"
    assert page.locator("#per-model tr").count() == 15
    median = float(page.text_content("#inc-median"))
    assert 45 <= median <= 90
    save_screenshot(page, "predict-pgc", tmp_path)


def test_load_by_name_shows_errors_in_the_page(live_server, catalogue, fake_services, active_tiny_ensemble, page) -> None:
    page.goto(live_server.url + "/predict/")
    page.fill("#objname", "NoSuchGalaxy999")
    page.click("#name-form button")
    page.wait_for_selector("#error:not([hidden])")
    assert "Could not find object NoSuchGalaxy999" in page.text_content("#error")
    page.fill("#objname", "Triangulum Galaxy")
    page.click("#name-form button")
    wait_for_js(page, "document.getElementById('sky').naturalWidth > 0")
    assert page.is_hidden("#error")
    assert "PGC 5818" in page.text_content("#target-info")


def test_upload_rotate_zoom_and_evaluate(live_server, active_tiny_ensemble, page, tmp_path) -> None:
    image = tmp_path / "andromeda.jpg"
    image.write_bytes(galaxy_jpeg(320, 240, angle_deg=20))
    page.goto(live_server.url + "/predict/")
    page.set_input_files("#file", str(image))
    wait_for_js(page, "document.getElementById('sky').naturalWidth > 0")
    # The viewer starts turned by the measured angle: the disk lies 20° clockwise of +x (PA 70°, turn 160°).
    assert page.text_content("#angle-readout") == "160"
    assert "measured" in page.text_content("#align-mode")
    page.click("#rot-cw")
    page.click("#rot-cw")
    page.click("#zoom-in")
    page.focus("#viewer")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowUp")
    assert page.text_content("#angle-readout") == "163"
    assert "by hand" in page.text_content("#align-mode")
    assert page.text_content("#scale-readout") == f"{(10 / 9) ** 2:.2f}"
    page.mouse.move(300, 400)
    page.click("#evaluate")
    wait_results(page)
    assert page.get_attribute("#model-input", "src").endswith(".png")
    assert page.locator("#per-model tr").count() == 15
    assert page.text_content("#pa-source") == "by hand"
    assert page.text_content("#pa-measured").endswith("°")
    assert "b/a" in page.text_content("#axial-inclination")
    save_screenshot(page, "predict-upload", tmp_path)


def test_text_file_upload_is_refused_in_the_page(live_server, active_tiny_ensemble, page, tmp_path) -> None:
    fake = tmp_path / "notes.png"
    fake.write_text("not an image")
    page.goto(live_server.url + "/predict/")
    page.set_input_files("#file", str(fake))
    page.wait_for_selector("#error:not([hidden])")
    assert "not a PNG, JPEG or GIF image" in page.text_content("#error")
