"""The landing page in a real browser: resolve a galaxy name from the search box."""
import pytest

from conftest import save_screenshot
from tests.browser import wait_for_js


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_home_page_resolves_a_name(live_server, catalogue, page, tmp_path) -> None:
    page.goto(live_server.url + "/")
    assert page.title() == "IncliNET"
    page.fill("#resolve-q", "Triangulum Galaxy")
    page.click("text=Resolve")
    wait_for_js(page, "document.getElementById('resolve-out').textContent.includes('pgc')")
    output = page.text_content("#resolve-out")
    assert '"pgc": 5818' in output and "NGC0598" in output
    save_screenshot(page, "home-resolve", tmp_path)


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_home_page_shows_a_clear_error_for_an_unknown_name(live_server, catalogue, page) -> None:
    page.goto(live_server.url + "/")
    page.fill("#resolve-q", "<b>NoSuchGalaxy</b>")
    page.click("text=Resolve")
    wait_for_js(page, "document.getElementById('resolve-out').textContent.includes('failed')")
    assert "Could not find object <b>NoSuchGalaxy</b>" in page.text_content("#resolve-out")
    assert page.locator("#resolve-out b").count() == 0  # shown as text, never as markup
