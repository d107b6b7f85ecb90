"""The astronomer and staff-plot templates carry no inline script, style or event handler (the site's CSP
allows scripts and styles from 'self' only), and the page routes answer."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.urls import reverse

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = sorted([*(ROOT / "predictions" / "templates").rglob("*.html"), *(ROOT / "training" / "templates").rglob("*.html")])
INLINE = [
    (re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I), "inline <script>"),
    (re.compile(r"<style\b", re.I), "<style> element"),
    (re.compile(r"\sstyle\s*=", re.I), "style= attribute"),
    (re.compile(r"\son[a-z]+\s*=", re.I), "on*= event handler"),
    (re.compile(r"javascript:", re.I), "javascript: URL"),
]


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_inline_script_or_style(template: Path) -> None:
    text = template.read_text()
    found = [what for pattern, what in INLINE if pattern.search(text)]
    assert not found, f"{template.relative_to(ROOT)}: {', '.join(found)}"


@pytest.mark.django_db
def test_pages_render_with_their_scripts(client, settings) -> None:  # noqa: ANN001
    page = client.get(reverse("predict-page"))
    assert page.status_code == 200 and b"predictions/predict" in page.content
    # No model is active in this test: the banner is shown from the start.
    assert b'data-model-ready="false"' in page.content
    assert not re.search(rb'id="model-banner"[^>]*\shidden', page.content)
    batch = client.get(reverse("predict-batch-page"))
    assert batch.status_code == 200 and b"predictions/batch" in batch.content


@pytest.mark.django_db
def test_catalogue_inclination_helper(client, catalogue) -> None:  # noqa: ANN001
    from catalog.models import Galaxy

    galaxy = Galaxy.objects.filter(pgc__isnull=False).first()
    Galaxy.objects.filter(pk=galaxy.pk).update(leda_inclination=62.04)
    body = client.get(reverse("predict-galaxy", args=[galaxy.pgc])).json()
    assert body == {"status": "success", "pgc": galaxy.pgc, "catalog_inclination": 62.0}
    missing = client.get(reverse("predict-galaxy", args=[999999999]))
    assert missing.status_code == 404 and missing.json()["status"] == "failed"
