"""Image reading by content, safety limits, stretches, inversion and alignment."""
import io
import struct
import time
import zlib

import numpy as np
import pytest
from astropy.io import fits
from PIL import Image

from catalog.imaging import (
    ImageError, asinh_stretch, is_inverted, load_image, lupton_rgb, normalise_inversion, pad_to_square,
    prepare_model_input, rotate,
)


def encode(image: Image.Image, fmt: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def ellipse(width: int, height: int, *, a: float, b: float, angle_deg: float = 0.0) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width].astype(float)
    x, y = x - (width - 1) / 2, y - (height - 1) / 2
    t = np.radians(angle_deg)
    xr, yr = x * np.cos(t) + y * np.sin(t), -x * np.sin(t) + y * np.cos(t)
    return (((xr / a) ** 2 + (yr / b) ** 2) <= 1).astype(np.uint8) * 255


def axial_ratio(mask: np.ndarray) -> float:
    """b/a from second moments of a uniform-weight region."""
    ys, xs = np.nonzero(mask > 127)
    cov = np.cov(np.vstack([xs, ys]))
    eigen = np.sort(np.linalg.eigvalsh(cov))
    return float(np.sqrt(eigen[0] / eigen[1]))


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "GIF"])
def test_reads_raster_formats(fmt: str) -> None:
    data = encode(Image.fromarray(ellipse(64, 48, a=20, b=10)).convert("RGB"), fmt)
    image = load_image(data)
    assert image.format == fmt and image.pixels.shape == (48, 64, 3) and image.pixels.dtype == np.uint8


def test_reads_fits_band_and_stretches_it() -> None:
    buffer = io.BytesIO()
    fits.PrimaryHDU(ellipse(40, 30, a=15, b=6).astype(np.float32) * 3.7 + 100).writeto(buffer)
    image = load_image(buffer.getvalue())
    assert image.format == "FITS" and image.pixels.shape == (30, 40)
    stretched = asinh_stretch(image.pixels)
    assert stretched.dtype == np.uint8 and stretched.max() == 255
    assert prepare_model_input(image.pixels).shape == (128, 128, 3)


def test_sixteen_bit_png_cmyk_jpeg_and_grey_alpha_become_rgb() -> None:
    sixteen = Image.fromarray(ellipse(32, 32, a=12, b=6).astype(np.uint16) * 200)
    cmyk = Image.new("CMYK", (20, 20), (0, 255, 255, 0))
    grey_alpha = Image.new("LA", (20, 10), (200, 128))
    for data in (encode(sixteen, "PNG"), encode(cmyk, "JPEG"), encode(grey_alpha, "PNG")):
        image = load_image(data)
        assert image.pixels.ndim == 3 and image.pixels.shape[2] == 3 and image.notes


def test_animated_gif_is_refused() -> None:
    frames = [Image.new("RGB", (10, 10), colour) for colour in ((255, 0, 0), (0, 0, 255))]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:])
    with pytest.raises(ImageError) as excinfo:
        load_image(buffer.getvalue())
    assert excinfo.value.code == "animated"


@pytest.mark.parametrize(
    ("data", "code"),
    [(b"", "empty"), (b"hello, I am text", "unsupported_format"), (b"\x89PNG\r\n\x1a\n" + b"\0" * 40, "corrupt")],
)
def test_bad_bytes_are_refused_with_a_code(data: bytes, code: str) -> None:
    with pytest.raises(ImageError) as excinfo:
        load_image(data, filename="galaxy.png")
    assert excinfo.value.code == code and excinfo.value.message


def test_truncated_jpeg_is_corrupt() -> None:
    data = encode(Image.fromarray(ellipse(200, 200, a=80, b=30)).convert("RGB"), "JPEG")
    with pytest.raises(ImageError) as excinfo:
        load_image(data[: len(data) // 2])
    assert excinfo.value.code == "corrupt"


def png_bomb(width: int, height: int) -> bytes:
    """A valid PNG header claiming width × height pixels, with a few KB of compressed zeros."""
    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF)

    raw = zlib.compress(b"\0" * (width + 1) * 64, 9)
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")


def test_fifty_megapixel_png_bomb_is_refused_quickly() -> None:
    bomb = png_bomb(10_000, 5_000)
    assert len(bomb) < 20_000
    started = time.perf_counter()
    with pytest.raises(ImageError) as excinfo:
        load_image(bomb)
    assert excinfo.value.code in {"too_many_pixels", "decompression_bomb"}
    assert time.perf_counter() - started < 1.0


def test_size_limit_in_bytes() -> None:
    with pytest.raises(ImageError) as excinfo:
        load_image(b"\xff\xd8\xff" + b"\0" * 2000, max_bytes=1000)
    assert excinfo.value.code == "too_large_bytes"


def test_wrong_extension_with_valid_content_is_read_by_content() -> None:
    data = encode(Image.new("RGB", (8, 8)), "PNG")
    image = load_image(data, filename="galaxy.jpg")
    assert image.format == "PNG" and "content is PNG" in image.notes[0]


def test_valid_extension_with_invalid_content_is_refused() -> None:
    with pytest.raises(ImageError, match=r"not a PNG, JPEG, GIF or FITS image, although its name ends in \.png"):
        load_image(b"GIF? no, plain text", filename="galaxy.png")


def test_inversion_is_detected_both_ways() -> None:
    galaxy = np.repeat(ellipse(64, 64, a=20, b=8)[:, :, None], 3, axis=2)
    assert not is_inverted(galaxy)
    inverted = 255 - galaxy
    assert is_inverted(inverted)
    restored, was_inverted = normalise_inversion(inverted)
    assert was_inverted and np.array_equal(restored, galaxy)


def test_rotation_by_90_swaps_axes() -> None:
    image = np.zeros((20, 40, 3), dtype=np.uint8)
    assert rotate(image, 90).shape[:2] == (40, 20)


def test_pad_to_square_and_model_input_keep_the_axial_ratio() -> None:
    mask = ellipse(300, 120, a=100, b=40)
    assert pad_to_square(mask).shape == (300, 300)
    model_input = prepare_model_input(np.repeat(mask[:, :, None], 3, axis=2))
    assert model_input.shape == (128, 128, 3)
    assert axial_ratio(model_input[:, :, 0]) == pytest.approx(0.4, rel=0.01)


def test_lupton_composite_is_rgb() -> None:
    band = ellipse(32, 32, a=10, b=5).astype(float)
    rgb = lupton_rgb(band, band * 1.2, band * 1.5)
    assert rgb.shape == (32, 32, 3) and rgb.dtype == np.uint8 and rgb.max() > 0
