"""Browser-test helpers that work under the site's Content-Security-Policy."""
from __future__ import annotations

import time
from typing import Any

from playwright.sync_api import Page

_UNSET = object()


def wait_for_js(page: Page, expression: str, arg: Any = _UNSET, *, timeout: float = 30_000,
                interval_s: float = 0.1) -> Any:
    """Poll a JavaScript predicate until it is truthy and return its value.

    Playwright's ``wait_for_function`` compiles the predicate with ``new Function`` inside the page, which
    the site's CSP (``script-src 'self'``, no ``unsafe-eval``) refuses; ``page.evaluate`` goes through the
    DevTools protocol, which the CSP does not govern."""
    deadline = time.monotonic() + timeout / 1000
    while True:
        value = page.evaluate(expression) if arg is _UNSET else page.evaluate(expression, arg)
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"Timed out after {timeout:.0f} ms waiting for {expression!r}")
        time.sleep(interval_s)
