"""The API documentation in headless Chromium: Swagger UI and ReDoc list the operations with nothing loaded from
another host (their scripts come from drf-spectacular-sidecar's static files, not a CDN)."""
from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from conftest import save_screenshot
from tests.browser import wait_for_js

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def offline_page(page, live_server):  # noqa: ANN001, ANN201
    """The page, with every request to a host other than the live server recorded and refused."""
    own = urlsplit(live_server.url).netloc
    elsewhere: list[str] = []

    def route(request_route) -> None:  # noqa: ANN001
        url = request_route.request.url
        if urlsplit(url).scheme in ("http", "https", "ws", "wss") and urlsplit(url).netloc != own:
            elsewhere.append(url)
            request_route.abort()
        else:
            request_route.continue_()

    page.context.route("**/*", route)
    page.elsewhere = elsewhere
    return page


def test_swagger_ui_lists_the_operations_from_this_server_alone(offline_page, live_server, tmp_path) -> None:  # noqa: ANN001
    page = offline_page
    seen: list[str] = []
    page.on("request", lambda request: seen.append(request.url))
    response = page.goto(live_server.url + "/api/docs/")
    # The browser itself refuses any other host (ReDoc's bundle always asks cdn.redoc.ly for a logo).
    assert "default-src 'self'" in response.headers["content-security-policy"]
    page.wait_for_selector(".opblock-summary-path", timeout=30_000)
    paths = page.locator(".opblock-summary-path").evaluate_all(
        "els => els.map(e => e.dataset.path || e.textContent.replace(/\\u200b/g, ''))")
    assert "/api/pgc/{pgc_id}" in paths and "/api/file" in paths, paths
    assert page.locator(".swagger-ui .info .title").inner_text().startswith("IncliNET API")
    # The schema and the scripts really came from the live server.
    assert any(url.endswith("/api/schema/") for url in seen), seen
    assert any("/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle" in url for url in seen), seen
    assert page.elsewhere == [], page.elsewhere
    # The bar above links the other documents and the site.
    for href in ("/api/redoc/", "/api/schema/", "/"):
        assert page.locator(f'nav a[href="{href}"]').count() == 1, href
    save_screenshot(page, "api-docs-swagger", tmp_path)


def test_redoc_lists_the_operations_from_this_server_alone(offline_page, live_server, tmp_path) -> None:  # noqa: ANN001
    page = offline_page
    seen: list[str] = []
    page.on("request", lambda request: seen.append(request.url))
    response = page.goto(live_server.url + "/api/redoc/")
    # The browser itself refuses any other host (ReDoc's bundle always asks cdn.redoc.ly for a logo).
    assert "default-src 'self'" in response.headers["content-security-policy"]
    page.wait_for_selector('[data-section-id^="operation/"]', timeout=30_000)
    wait_for_js(page, "document.body.textContent.includes('/api/pgc/{pgc_id}')")
    assert page.locator('[data-section-id^="operation/"]').count() >= 8
    assert any("/static/drf_spectacular_sidecar/redoc/bundles/redoc.standalone" in url for url in seen), seen
    assert page.elsewhere == [], page.elsewhere
    assert page.locator('nav a[href="/api/docs/"]').count() == 1
    save_screenshot(page, "api-docs-redoc", tmp_path)


def test_the_site_links_all_three_api_documents(offline_page, live_server) -> None:  # noqa: ANN001
    page = offline_page
    page.goto(live_server.url + "/")
    footer = page.locator("footer")
    for label, href in (("Swagger UI", "/api/docs/"), ("ReDoc", "/api/redoc/"), ("OpenAPI schema", "/api/schema/")):
        assert footer.locator(f'a[href="{href}"]').inner_text() == label
    page.locator('footer a[href="/api/redoc/"]').click()
    page.wait_for_selector('[data-section-id^="operation/"]', timeout=30_000)
    assert page.elsewhere == [], page.elsewhere
