"""Issue 16: catalogue look-ups with hostile digits answer a 4xx in the failed shape, never a 500."""
from __future__ import annotations

import pytest
from django.conf import settings

from catalog.selectors import GalaxyNotFound, target_resolve

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("query", ["²", "³12", "٣", "١٢٣", "⁵⁵"])
def test_resolve_with_unicode_digits_is_a_4xx_not_a_500(client, query: str) -> None:  # noqa: ANN001
    """``"²".isdigit()`` is true but ``int("²")`` fails: the search box must not take it for a PGC number."""
    response = client.get(f"{settings.WEBROOT}api/catalog/resolve", {"q": query})
    assert 400 <= response.status_code < 500, response.content[:300]
    assert response.json()["status"] == "failed" and response.json()["message"]


def test_target_resolve_reads_only_ascii_digits_as_a_pgc_number() -> None:
    with pytest.raises(GalaxyNotFound):
        target_resolve(query="²")


# --- downscaled decoding (load_image(max_side=...)) -------------------------------------------------

def _encoded(size: tuple[int, int], fmt: str, mode: str = "RGB") -> bytes:
    import io

    from PIL import Image, ImageDraw

    image = Image.new(mode, size, 0)
    ImageDraw.Draw(image).ellipse((size[0] // 4, size[1] // 3, 3 * size[0] // 4, 2 * size[1] // 3), fill=200)
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()


@pytest.mark.parametrize(("fmt", "mode"), [("PNG", "L"), ("PNG", "RGB"), ("JPEG", "RGB"), ("GIF", "P")])
def test_load_image_downscales_a_large_raster_to_max_side(fmt: str, mode: str) -> None:
    from catalog.imaging import load_image

    image = load_image(_encoded((3000, 2000), fmt, mode), max_bytes=1 << 26, max_side=1024)
    assert max(image.width, image.height) <= 1024 and image.pixels.shape == (image.height, image.width, 3)
    assert image.width >= 512 and abs(image.width / image.height - 1.5) < 0.02  # aspect ratio kept
    assert any("from 3,000 × 2,000" in note for note in image.notes)


def test_load_image_leaves_small_images_and_callers_without_max_side_alone() -> None:
    from catalog.imaging import load_image

    data = _encoded((600, 400), "PNG")
    assert load_image(data, max_side=1024).pixels.shape == (400, 600, 3)
    big = _encoded((3000, 2000), "PNG")
    assert load_image(big, max_bytes=1 << 26).pixels.shape == (2000, 3000, 3)
