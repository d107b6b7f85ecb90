"""Hypothesis fuzzing of ``catalog.imaging.load_image``: whatever the bytes, only ``ImageError`` escapes.

Inputs are hostile in the ways uploads and broken image services are: random bytes (bare, and behind
each accepted format's magic number), valid files truncated or with flipped bytes, decompression bombs,
and headers that announce huge dimensions over a few bytes of data. A decoded image must respect the
pixel limit, and every call must finish quickly (a bomb refused from its header, never decoded).

``benchmarks/fuzz_images.py`` runs the same generators for a bounded wall-clock time (the long run).
"""
from __future__ import annotations

import io
import struct
import time
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from catalog.imaging import ImageError, LoadedImage, load_image

MAX_PIXELS = 4_000_000  # small, so "huge" is cheap to announce and the limit is really exercised
MAX_BYTES = 1_048_576
SECONDS_PER_CALL = 3.0  # generous for a shared 2-core machine; a decoded bomb would take far longer
FORMATS = ("PNG", "JPEG", "GIF", "FITS")
MAGIC = {"PNG": b"\x89PNG\r\n\x1a\n", "JPEG": b"\xff\xd8\xff", "GIF": b"GIF89a", "FITS": b"SIMPLE  ="}

# Damaged FITS files make astropy warn before it raises; the warning is expected noise here.
pytestmark = pytest.mark.filterwarnings("ignore:File may have been truncated")

FUZZ = settings(max_examples=150, deadline=None, database=None, derandomize=False,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


# --- builders of hostile files (shared with benchmarks/fuzz_images.py) -----------------------------

def valid_file(fmt: str, width: int, height: int, seed: int) -> bytes:
    """A small valid image in ``fmt`` with noisy content."""
    rng = np.random.default_rng(seed)
    if fmt == "FITS":
        from astropy.io import fits

        buffer = io.BytesIO()
        fits.PrimaryHDU(rng.normal(size=(height, width)).astype(np.float32)).writeto(buffer)
        return buffer.getvalue()
    pixels = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=fmt)
    return buffer.getvalue()


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def png_declaring(width: int, height: int, *, idat: bytes | None = None, colour_type: int = 2) -> bytes:
    """A PNG whose header announces width × height (CRCs valid), over a tiny (or given) IDAT."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0)
    data = idat if idat is not None else zlib.compress(b"\x00" * 64)
    return MAGIC["PNG"] + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", data) + _png_chunk(b"IEND", b"")


def png_bomb(width: int, height: int) -> bytes:
    """A real decompression bomb: all-zero scanlines of width × height compress to almost nothing."""
    compressor = zlib.compressobj(9)
    row = b"\x00" * (1 + width)  # grey, filter byte + one byte per pixel
    data = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    return png_declaring(width, height, idat=data, colour_type=0)


def jpeg_declaring(width: int, height: int) -> bytes:
    """A valid small JPEG with its SOF frame header patched to announce width × height."""
    data = bytearray(valid_file("JPEG", 16, 16, seed=1))
    for marker in (b"\xff\xc0", b"\xff\xc2"):
        at = data.find(marker)
        if at >= 0:
            struct.pack_into(">HH", data, at + 5, height, width)
            break
    return bytes(data)


def gif_declaring(width: int, height: int) -> bytes:
    """A valid small GIF with its logical screen and first image descriptor patched to width × height."""
    data = bytearray(valid_file("GIF", 16, 16, seed=2))
    struct.pack_into("<HH", data, 6, width, height)
    at = data.find(b"\x2c", 13)  # image separator after the header and colour table
    if at >= 0:
        struct.pack_into("<HH", data, at + 5, width, height)
    return bytes(data)


def fits_declaring(width: int, height: int, planes: int = 1) -> bytes:
    """A FITS header announcing a width × height (× planes) float image, with almost no data behind it."""
    cards = ["SIMPLE  =                    T", "BITPIX  =                  -32",
             f"NAXIS   =                    {3 if planes > 1 else 2}", f"NAXIS1  = {width:20d}",
             f"NAXIS2  = {height:20d}"]
    if planes > 1:
        cards.append(f"NAXIS3  = {planes:20d}")
    cards.append("END")
    header = "".join(card.ljust(80) for card in cards).ljust(2880).encode("ascii")
    return header + b"\x00" * 2880


DECLARING = {"PNG": png_declaring, "JPEG": jpeg_declaring, "GIF": gif_declaring, "FITS": fits_declaring}


# --- the property ------------------------------------------------------------------------------------

def check_load(data: bytes, *, max_pixels: int = MAX_PIXELS) -> LoadedImage | ImageError:
    """Load untrusted bytes; only ImageError may escape, a result respects the limits, and it is quick."""
    started = time.perf_counter()
    try:
        result: LoadedImage | ImageError = load_image(data, max_bytes=MAX_BYTES, max_pixels=max_pixels)
    except ImageError as exc:
        assert exc.code and exc.message, "every refusal says what and why"
        result = exc
    elapsed = time.perf_counter() - started
    assert elapsed < SECONDS_PER_CALL, f"load_image took {elapsed:.1f} s on {len(data)} bytes"
    if isinstance(result, LoadedImage):
        pixels = result.pixels
        assert pixels.shape[0] * pixels.shape[1] <= max_pixels
        assert (pixels.dtype == np.uint8 and pixels.ndim == 3 and pixels.shape[2] == 3) or \
            (pixels.dtype == np.float32 and pixels.ndim == 2 and np.isfinite(pixels).all())
    return result


sizes = st.integers(min_value=1, max_value=48)
formats = st.sampled_from(FORMATS)


@FUZZ
@given(st.binary(min_size=0, max_size=4096))
def test_random_bytes(data: bytes) -> None:
    check_load(data)


@FUZZ
@given(formats, st.binary(min_size=0, max_size=4096))
def test_random_bytes_behind_a_valid_magic_number(fmt: str, tail: bytes) -> None:
    check_load(MAGIC[fmt] + tail)


@FUZZ
@given(formats, sizes, sizes, st.integers(0, 2**16), st.floats(0.0, 1.0))
def test_truncated_valid_files(fmt: str, width: int, height: int, seed: int, keep: float) -> None:
    data = valid_file(fmt, width, height, seed)
    check_load(data[: int(len(data) * keep)])


@FUZZ
@given(formats, sizes, sizes, st.integers(0, 2**16), st.lists(st.tuples(st.floats(0.0, 1.0), st.integers(0, 255)),
                                                             min_size=1, max_size=16))
def test_valid_files_with_flipped_bytes(fmt: str, width: int, height: int, seed: int,
                                        flips: list[tuple[float, int]]) -> None:
    data = bytearray(valid_file(fmt, width, height, seed))
    for where, value in flips:
        data[min(int(where * len(data)), len(data) - 1)] = value
    check_load(bytes(data))


@FUZZ
@given(formats, st.integers(1, 65_535), st.integers(1, 65_535))
def test_huge_dimensions_with_tiny_bytes(fmt: str, width: int, height: int) -> None:
    result = check_load(DECLARING[fmt](width, height))
    if width * height > MAX_PIXELS:
        # Announced pixels beyond the limit must be refused before decoding, whatever else is wrong.
        assert isinstance(result, ImageError), f"{fmt} {width}×{height} was decoded"
        assert result.code in {"too_many_pixels", "decompression_bomb", "corrupt"}, result.code


@pytest.mark.parametrize(("width", "height"), [(8_000, 8_000), (30_000, 1_000), (4_001, 1_001)])
def test_png_decompression_bombs_are_refused_from_the_header(width: int, height: int) -> None:
    bomb = png_bomb(width, height)
    assert len(bomb) < 200_000  # megapixels in a few kilobytes
    result = check_load(bomb)
    assert isinstance(result, ImageError) and result.code in {"too_many_pixels", "decompression_bomb"}


def test_fits_cube_bomb_is_refused() -> None:
    result = check_load(fits_declaring(1_000, 1_000, planes=100_000))
    assert isinstance(result, ImageError) and result.code == "too_many_pixels"


@pytest.mark.parametrize("fmt", FORMATS)
def test_the_builders_make_loadable_files(fmt: str) -> None:
    """The generators start from files the loader accepts, so the fuzzing above mutates real images."""
    result = check_load(valid_file(fmt, 20, 12, seed=3))
    assert isinstance(result, LoadedImage) and (result.width, result.height) == (20, 12)
