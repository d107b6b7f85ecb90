"""Image preparation in one place, used by labeling, training and prediction alike (Django-free).

Reading (``load_image``) is by content, never by file name: PNG, JPEG, GIF and FITS are recognised from
their first bytes, the decoder is restricted to that format, and the pixel count is checked from the
header before anything is decoded, so a decompression bomb is refused without being allocated. Given
``max_side``, a large raster is decoded downscaled (a JPEG at reduced DCT scale through ``Image.draft``, others
box-reduced by an integer factor), so a few kilobytes announcing 25 megapixels cost a fraction of a second
downstream instead of seconds of alignment on full-size pixels. Every
raster mode (16-bit, CMYK, palette, grey + alpha, RGBA) becomes 8-bit RGB; a FITS image stays a float
band for stretching.

Display: grey bands get an asinh stretch, colour composites a Lupton stretch (astropy.visualization).

Model input (``prepare_model_input``) reproduces what the astronomer page shows: the image is letterboxed
into a square (CSS ``object-fit: contain``), rotated clockwise about its centre and zoomed by ``scale``
(CSS ``rotate() scale()``), then resized to 128 × 128 (``MODEL_SIZE``) with a Lanczos filter. Nothing is
ever stretched, so the axial ratio that carries the inclination is preserved. Black-on-white images are turned
white-on-black first, so padding and rotation corners are filled with the sky level. Given a ``centre``
(a measured galaxy centre), the same field is cut about that point instead of the image's centre.
"""
from __future__ import annotations

import io
import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
from PIL import ExifTags, Image, ImageOps

from core.geometry import MODEL_SIZE

logger = logging.getLogger(__name__)

DEFAULT_FORMATS = ("PNG", "JPEG", "GIF", "FITS")
FITS_MAGIC = b"SIMPLE  ="
Fill = int | tuple[int, ...]

# Formats people upload by mistake, named so the error can say what the file is.
_OTHER_MAGIC = (
    (b"BM", "BMP"), (b"II*\x00", "TIFF"), (b"MM\x00*", "TIFF"), (b"%PDF", "PDF"), (b"PK\x03\x04", "ZIP"),
    (b"\x1f\x8b", "gzip"), (b"<", "HTML or XML text"),
)
_EXTENSIONS = {"png": "PNG", "jpg": "JPEG", "jpeg": "JPEG", "jpe": "JPEG", "jfif": "JPEG", "gif": "GIF",
               "fits": "FITS", "fit": "FITS", "fts": "FITS"}


class ImageError(ValueError):
    """An image that cannot be used. ``message`` is for people, ``code`` for programs."""

    def __init__(self, message: str, *, code: str) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


@dataclass
class LoadedImage:
    """A decoded image: uint8 (H, W, 3) for PNG/JPEG/GIF, float32 (H, W) for a FITS band."""

    pixels: np.ndarray
    format: str
    width: int
    height: int
    notes: list[str] = field(default_factory=list)


# --- reading --------------------------------------------------------------------------------

def sniff_format(data: bytes) -> str | None:
    """The image format from its magic bytes (PNG, JPEG, GIF, FITS), or None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "GIF"
    if data.startswith(FITS_MAGIC):
        return "FITS"
    return None


def _looks_like(data: bytes) -> str | None:
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WebP"
    stripped = data.lstrip()
    return next((name for magic, name in _OTHER_MAGIC if stripped.startswith(magic)), None)


def _extension_format(filename: str | None) -> str | None:
    if not filename or "." not in filename:
        return None
    return _EXTENSIONS.get(filename.rsplit(".", 1)[1].strip().lower())


def _format_list(formats: Iterable[str]) -> str:
    names = list(formats)
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


def load_image(
    data: bytes,
    *,
    filename: str | None = None,
    max_bytes: int = 1_048_576,
    max_pixels: int = 25_000_000,
    allowed_formats: Iterable[str] = DEFAULT_FORMATS,
    max_side: int | None = None,
) -> LoadedImage:
    """Decode an image safely, or raise ImageError saying exactly what is wrong with it.

    ``filename`` is only used for messages: a wrong extension on valid content is accepted and noted.
    ``max_side``: a raster whose longer side exceeds it comes back reduced by the smallest integer factor
    that fits (noted in ``notes``); FITS bands are never resampled.
    """
    allowed = tuple(fmt.upper() for fmt in allowed_formats)
    if not data:
        raise ImageError("The file is empty.", code="empty")
    if len(data) > max_bytes:
        raise ImageError(
            f"The file is {len(data) / 1024:,.0f} KB; the limit is {max_bytes / 1024:,.0f} KB.", code="too_large_bytes"
        )
    kind = sniff_format(data)
    claimed = _extension_format(filename)
    if kind is None:
        actual = _looks_like(data)
        detail = f" (it looks like {actual})" if actual else ""
        named = f", although its name ends in .{filename.rsplit('.', 1)[1]}" if claimed and filename else ""
        raise ImageError(f"This file is not a {_format_list(allowed)} image{detail}{named}.", code="unsupported_format")
    if kind not in allowed:
        raise ImageError(f"{kind} files are not accepted here; please use {_format_list(allowed)}.",
                         code="unsupported_format")
    notes = [f"the file name says {claimed} but the content is {kind}; it was read as {kind}"] \
        if claimed and claimed != kind else []
    if kind == "FITS":
        return _load_fits(data, max_pixels=max_pixels, notes=notes)
    return _load_raster(data, kind=kind, max_pixels=max_pixels, notes=notes, max_side=max_side)


def _too_many(width: int, height: int, max_pixels: int) -> ImageError:
    return ImageError(
        f"The image is {width:,} × {height:,} pixels ({width * height / 1e6:.1f} megapixels); "
        f"at most {max_pixels / 1e6:g} megapixels are accepted.",
        code="too_many_pixels",
    )


def _load_raster(data: bytes, *, kind: str, max_pixels: int, notes: list[str],
                 max_side: int | None = None) -> LoadedImage:
    try:
        # Only the header is read here; the decoder may only be the format the bytes announce.
        image = Image.open(io.BytesIO(data), formats=[kind])
    except Image.DecompressionBombError:
        # Pillow's own process-wide ceiling (2 × Image.MAX_IMAGE_PIXELS) caught it first.
        raise ImageError("The image would decompress to far too many pixels.", code="decompression_bomb") from None
    except Exception as exc:  # noqa: BLE001 - any decoder failure on untrusted bytes means "corrupt"
        raise ImageError(f"The {kind} file is damaged and cannot be read.", code="corrupt") from exc
    width, height = image.size
    if width <= 0 or height <= 0:
        raise ImageError("The image has no pixels.", code="empty")
    if width * height > max_pixels:
        raise _too_many(width, height, max_pixels)
    # GIF/APNG: look for a second frame without decoding any. (A JPEG's extra MPO pictures are ignored.)
    if kind in ("GIF", "PNG") and getattr(image, "is_animated", False):
        raise ImageError("Animated images are not accepted; please upload a single still image.", code="animated")
    downscale = bool(max_side) and max(width, height) > max_side
    try:
        if downscale and kind == "JPEG":
            # The JPEG decoder scales by 1/2, 1/4 or 1/8 while decoding, never below max_side.
            image.draft(None, (max_side, max_side))
        image.load()
        pixels = _to_rgb_uint8(image, notes)
        if downscale:
            if max(pixels.shape[:2]) > max_side:
                pixels = _reduce_to(pixels, max_side)
            notes.append(f"decoded at {pixels.shape[1]:,} × {pixels.shape[0]:,} pixels "
                         f"(from {width:,} × {height:,}) to save time")
    except Image.DecompressionBombError:
        raise ImageError("The image would decompress to far too many pixels.", code="decompression_bomb") from None
    except Exception as exc:  # noqa: BLE001
        raise ImageError(f"The {kind} file is damaged or truncated and cannot be read.", code="corrupt") from exc
    return LoadedImage(pixels=pixels, format=kind, width=pixels.shape[1], height=pixels.shape[0], notes=notes)


def _reduce_to(pixels: np.ndarray, max_side: int) -> np.ndarray:
    """Box-reduce by the smallest integer factor that brings the longer side to ``max_side`` or less."""
    factor = math.ceil(max(pixels.shape[:2]) / max_side)
    return np.asarray(Image.fromarray(np.ascontiguousarray(pixels)).reduce(factor))


def _to_rgb_uint8(image: Image.Image, notes: list[str]) -> np.ndarray:
    """Every mode (16-bit, CMYK, palette, grey + alpha, RGBA) becomes 8-bit RGB."""
    if image.getexif().get(ExifTags.Base.Orientation, 1) not in (0, 1):
        image = ImageOps.exif_transpose(image)  # phone photos store "rotate me" in EXIF
        notes.append("turned upright as its EXIF orientation asks")
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        # Linear, no clipping: the brightest pixel becomes 255 (a 16-bit image using its full range is / 257).
        array = np.asarray(image, dtype=np.float64)
        low = min(float(array.min()), 0.0)
        span = max(float(array.max()) - low, 1e-12)
        grey = np.round((array - low) / span * 255).astype(np.uint8)
        notes.append(f"{'16' if image.mode.startswith('I;16') else '32'}-bit image scaled linearly to 8 bits")
        return np.repeat(grey[:, :, None], 3, axis=2)
    if image.mode == "CMYK":
        notes.append("CMYK converted to RGB")
        return np.asarray(image.convert("RGB"), dtype=np.uint8).copy()
    has_alpha = image.mode in ("LA", "La", "RGBA", "RGBa", "PA") or (
        image.mode in ("P", "L", "RGB") and "transparency" in image.info
    )
    if has_alpha:
        # Flatten onto black, the sky: transparency carries no galaxy light.
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        notes.append("transparency flattened onto black")
        return np.asarray(Image.alpha_composite(background, rgba).convert("RGB"), dtype=np.uint8).copy()
    return np.asarray(image.convert("RGB"), dtype=np.uint8).copy()


def _load_fits(data: bytes, *, max_pixels: int, notes: list[str]) -> LoadedImage:
    from astropy.io import fits

    try:
        with fits.open(io.BytesIO(data), memmap=False, lazy_load_hdus=True) as hdus:
            hdu = None
            for candidate in hdus:
                # Headers only: .shape comes from NAXISn (ZNAXISn when tile-compressed), no data is read.
                if isinstance(candidate, fits.ImageHDU | fits.PrimaryHDU | fits.CompImageHDU) \
                        and len(candidate.shape) >= 2 and all(n > 0 for n in candidate.shape):
                    hdu = candidate
                    break
            if hdu is None:
                raise ImageError("The FITS file holds no image.", code="empty")
            height, width = hdu.shape[-2], hdu.shape[-1]
            planes = int(np.prod(hdu.shape[:-2])) if len(hdu.shape) > 2 else 1
            if width * height > max_pixels:
                raise _too_many(width, height, max_pixels)
            if width * height * planes > 4 * max_pixels:
                raise ImageError("The FITS cube is too large; send a single 2-D image.", code="too_many_pixels")
            array = np.asarray(hdu.data, dtype=np.float32)
    except ImageError:
        raise
    except Exception as exc:  # noqa: BLE001 - astropy raises many types on damaged files
        raise ImageError("The FITS file is damaged or truncated and cannot be read.", code="corrupt") from exc
    if array.ndim > 2:
        notes.append(f"FITS cube of shape {array.shape}; the first plane was used")
        array = array.reshape(-1, height, width)[0]
    if array.shape != (height, width):
        raise ImageError("The FITS file is damaged or truncated and cannot be read.", code="corrupt")
    finite = np.isfinite(array)
    if not finite.any():
        raise ImageError("The FITS image holds no valid pixels.", code="empty")
    if not finite.all():
        # Blank pixels (NaN) take the sky level, so they neither glow nor punch holes after stretching.
        array = np.where(finite, array, np.float32(np.median(array[finite])))
        notes.append("blank (NaN) pixels set to the median level")
    # FITS rows run bottom-up; flip so north is up as on every display image.
    array = np.ascontiguousarray(array[::-1])
    return LoadedImage(pixels=array, format="FITS", width=width, height=height, notes=notes)


# --- stretches ------------------------------------------------------------------------------

def asinh_stretch(
    band: np.ndarray, *, a: float = 0.1, lower_percentile: float = 1.0, upper_percentile: float = 99.8
) -> np.ndarray:
    """A grey band as uint8: percentile interval, then astropy's asinh stretch (``a`` sets the knee)."""
    from astropy.visualization import AsinhStretch, AsymmetricPercentileInterval

    values = np.asarray(band, dtype=np.float64)
    finite = np.isfinite(values)
    if not finite.any():
        return np.zeros(values.shape, dtype=np.uint8)
    values = np.where(finite, values, np.median(values[finite]))
    low, high = AsymmetricPercentileInterval(lower_percentile, upper_percentile).get_limits(values)
    if not high > low:  # a flat image: no contrast to stretch
        return np.zeros(values.shape, dtype=np.uint8)
    scaled = np.clip((values - low) / (high - low), 0.0, 1.0)
    stretched = AsinhStretch(a=a)(scaled, clip=True)
    return np.round(np.clip(stretched, 0.0, 1.0) * 255).astype(np.uint8)


def lupton_rgb(
    g: np.ndarray, r: np.ndarray, i: np.ndarray, *, stretch: float = 0.5, Q: float = 8.0,  # noqa: N803 - astropy's name
    minimum: float = 0.0,
) -> np.ndarray:
    """An SDSS-like colour composite (Lupton et al. 2004): i → red, r → green, g → blue; uint8 RGB."""
    from astropy.visualization import make_lupton_rgb

    bands = [np.nan_to_num(np.asarray(b, dtype=np.float64)) for b in (i, r, g)]
    with np.errstate(invalid="ignore", divide="ignore"):  # astropy divides by zero where all bands are 0
        return make_lupton_rgb(*bands, minimum=minimum, stretch=stretch, Q=Q)


def to_display_rgb(pixels: np.ndarray) -> np.ndarray:
    """Any loaded pixels as uint8 (H, W, 3): float bands are asinh-stretched, grey is repeated, alpha dropped."""
    array = np.asarray(pixels)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim == 2:
        grey = array if array.dtype == np.uint8 else asinh_stretch(array)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if array.ndim != 3 or array.shape[2] not in (3, 4):
        raise ValueError(f"expected a grey or RGB image, got shape {array.shape}")
    array = array[:, :, :3]  # as the original: alpha is dropped
    if array.dtype != np.uint8:
        values = np.nan_to_num(array.astype(np.float64))
        if values.max() <= 1.0:  # floats in 0..1
            values = values * 255
        array = np.round(np.clip(values, 0, 255)).astype(np.uint8)
    return np.ascontiguousarray(array)


# --- inversion ------------------------------------------------------------------------------

def _border(image: np.ndarray) -> np.ndarray:
    """The pixels of a strip 1/16 of the short side wide along all four edges, as (N,) or (N, C)."""
    h, w = image.shape[:2]
    width = max(1, min(h, w) // 16)
    strips = [image[:width], image[-width:], image[:, :width], image[:, -width:]]
    return np.concatenate([strip.reshape((-1,) + image.shape[2:]) for strip in strips])


def is_inverted(image: np.ndarray) -> bool:
    """Black-on-white: the sky (the border) is bright and brighter than the galaxy at the centre.

    A mid-grey border far brighter than the centre also counts, for an inverted galaxy that fills the frame.
    """
    array = np.asarray(image)
    h, w = array.shape[:2]
    border = _border(array).astype(np.float64)
    sky = float(np.median(border.mean(axis=1) if border.ndim == 2 else border))
    dy, dx = max(1, h // 8), max(1, w // 8)
    core = array[h // 2 - dy: h // 2 + dy + 1, w // 2 - dx: w // 2 + dx + 1].astype(np.float64)
    centre = float(np.median(core.mean(axis=2) if core.ndim == 3 else core))
    return (sky >= 128 and sky > centre) or (sky - centre > 64)


def normalise_inversion(image: np.ndarray) -> tuple[np.ndarray, bool]:
    """White-on-black for every uint8 image, so models and standards see one convention."""
    if image.dtype == np.uint8 and is_inverted(image):
        return 255 - image, True
    return image, False


def sky_level(image: np.ndarray) -> Fill:
    """The median border colour: the fill that makes padding and rotation corners look like sky."""
    border = _border(np.asarray(image))
    if border.ndim == 1:
        return int(round(float(np.median(border))))
    return tuple(int(round(float(v))) for v in np.median(border, axis=0))


# --- geometry -------------------------------------------------------------------------------

def _fill_for(image: np.ndarray, fill: Fill) -> Fill:
    if image.ndim == 2:
        return fill if isinstance(fill, int) else int(fill[0])
    return (fill,) * image.shape[2] if isinstance(fill, int) else tuple(fill)


def rotate(image: np.ndarray, angle_deg: float, *, fill: Fill = 0, expand: bool = True) -> np.ndarray:
    """Rotate clockwise on screen by ``angle_deg`` (as CSS ``rotate()`` and the original's
    ``scipy.ndimage.rotate(img, -angle)``). ``expand`` keeps the whole image (a 90° turn swaps the axes);
    otherwise the canvas keeps its size. Corners are filled with ``fill``."""
    if angle_deg % 360 == 0:
        return image
    pil = Image.fromarray(np.ascontiguousarray(image))
    rotated = pil.rotate(-angle_deg, resample=Image.Resampling.BICUBIC, expand=expand, fillcolor=_fill_for(image, fill))
    return np.asarray(rotated)


def _centre_to(image: np.ndarray, height: int, width: int, *, fill: Fill) -> np.ndarray:
    """Crop or pad each axis about the centre to ``height`` × ``width``."""
    h, w = image.shape[:2]
    top, left = (h - height) // 2, (w - width) // 2
    if top >= 0 and left >= 0:
        return image[top: top + height, left: left + width]
    out = np.empty((height, width) + image.shape[2:], dtype=image.dtype)
    out[...] = np.asarray(_fill_for(image, fill), dtype=image.dtype)
    src_top, src_left = max(top, 0), max(left, 0)
    dst_top, dst_left = max(-top, 0), max(-left, 0)
    rows, cols = min(h - src_top, height - dst_top), min(w - src_left, width - dst_left)
    out[dst_top: dst_top + rows, dst_left: dst_left + cols] = image[src_top: src_top + rows, src_left: src_left + cols]
    return out


def pad_to_square(image: np.ndarray, *, fill: Fill = 0) -> np.ndarray:
    """Pad the short side, centred; never stretch, so the galaxy's axial ratio is unchanged."""
    side = max(image.shape[:2])
    return _centre_to(image, side, side, fill=fill)


def resize(image: np.ndarray, size: int = MODEL_SIZE) -> np.ndarray:
    """Scale so the longer side is ``size`` pixels, keeping the aspect ratio (Lanczos, antialiased)."""
    h, w = image.shape[:2]
    if max(h, w) == size:
        return image
    factor = size / max(h, w)
    target = (max(1, round(w * factor)), max(1, round(h * factor)))
    # reducing_gap: a cheap box reduction first when shrinking a lot, then Lanczos for the last step.
    resized = Image.fromarray(np.ascontiguousarray(image)).resize(target, Image.Resampling.LANCZOS, reducing_gap=3.0)
    return np.asarray(resized)


def _view(image: np.ndarray, *, angle_deg: float, window: float, out_side: int, fill: Fill,
          about: tuple[float, float] | None = None) -> np.ndarray:
    """One bicubic resampling: the square ``window`` about the centre (or the point ``about``, x and y in
    Pillow's coordinates: the centre of an n-pixel axis is n / 2), turned clockwise by ``angle_deg``, drawn
    on an ``out_side`` canvas."""
    h, w = image.shape[:2]
    cx, cy = about if about is not None else (w / 2, h / 2)
    k = window / out_side
    t = math.radians(angle_deg)
    a, b, d, e = k * math.cos(t), k * math.sin(t), -k * math.sin(t), k * math.cos(t)
    centre = out_side / 2
    coefficients = (a, b, cx - (a + b) * centre, d, e, cy - (d + e) * centre)
    pil = Image.fromarray(np.ascontiguousarray(image))
    viewed = pil.transform((out_side, out_side), Image.Transform.AFFINE, coefficients,
                           resample=Image.Resampling.BICUBIC, fillcolor=_fill_for(image, fill))
    return np.asarray(viewed)


def prepare_model_input(
    image: np.ndarray, *, angle_deg: float = 0.0, scale: float = 1.0, size: int = MODEL_SIZE,
    centre: tuple[float, float] | None = None,
) -> np.ndarray:
    """The one path from any image to the networks' input: uint8 (size, size, 3), white-on-black.

    Steps: display RGB (grey stacked to 3 channels, FITS asinh-stretched) → normalise inversion →
    pad to a square with the sky level → rotate clockwise by ``angle_deg`` about the centre and zoom by
    ``scale`` (crop when > 1, sky padding when < 1) → Lanczos resize. The rotation and zoom are one
    affine resampling at twice the output resolution, so nothing is interpolated twice and a
    2048-pixel cut-out is not rotated at full size. Padding to a square first makes the result what the
    page's square viewer shows, and a 45° turn does not shrink the galaxy.

    ``centre``: (x, y) in the input's pixels (x right, y down, pixel (0, 0)'s centre at (0, 0)), e.g. a
    measured galaxy centre (``training.ml.orientation``). The field is the same size as without it, but
    centred there, so turning a galaxy about its own centre gives the same view whatever the input's
    orientation; sky fills what lies outside the input.
    """
    if not math.isfinite(angle_deg):
        raise ValueError("angle must be a finite number of degrees")
    if not math.isfinite(scale) or scale <= 0:
        raise ValueError("scale must be a positive number")
    rgb, _ = normalise_inversion(to_display_rgb(image))
    fill = sky_level(rgb)
    if centre is not None:
        return _centred_model_input(rgb, fill=fill, angle_deg=angle_deg, scale=scale, size=size, centre=centre)
    square = pad_to_square(rgb, fill=fill)
    window = square.shape[0] / scale  # the viewer's field of view, in input pixels
    work = 2 * size
    if window > work:
        # Only the window's circumscribed circle can reach the output: cut the rest, then shrink with
        # an antialiasing filter so the affine step never undersamples.
        needed = math.ceil(window * math.sqrt(2)) + 4
        if needed < square.shape[0]:
            needed += (square.shape[0] - needed) % 2  # same parity keeps the centre where it was
            square = _centre_to(square, needed, needed, fill=fill)
        before = square.shape[0]
        square = resize(square, max(1, round(before * work / window)))
        window *= square.shape[0] / before
    viewed = _view(square, angle_deg=angle_deg, window=window, out_side=work, fill=fill)
    return np.ascontiguousarray(resize(viewed, size))


def _crop_at(image: np.ndarray, top: int, left: int, side: int, *, fill: Fill) -> np.ndarray:
    """The ``side`` × ``side`` block whose top-left pixel is (``top``, ``left``), sky where it leaves the image."""
    h, w = image.shape[:2]
    out = np.empty((side, side) + image.shape[2:], dtype=image.dtype)
    out[...] = np.asarray(_fill_for(image, fill), dtype=image.dtype)
    src_top, src_left = max(top, 0), max(left, 0)
    src_bottom, src_right = min(top + side, h), min(left + side, w)
    if src_bottom > src_top and src_right > src_left:
        out[src_top - top: src_bottom - top, src_left - left: src_right - left] = \
            image[src_top:src_bottom, src_left:src_right]
    return out


def _centred_model_input(rgb: np.ndarray, *, fill: Fill, angle_deg: float, scale: float, size: int,
                         centre: tuple[float, float]) -> np.ndarray:
    """``prepare_model_input`` about a given point: the field is the padded square's side / ``scale``."""
    cx, cy = (float(v) for v in centre)
    if not (math.isfinite(cx) and math.isfinite(cy)):
        raise ValueError("centre must be finite pixel coordinates")
    window = max(rgb.shape[:2]) / scale
    work = 2 * size
    # Only the window's circumscribed circle can reach the output: cut a block about the centre.
    side = math.ceil(window * math.sqrt(2)) + 4
    top, left = round(cy + 0.5 - side / 2), round(cx + 0.5 - side / 2)
    block = _crop_at(rgb, top, left, side, fill=fill)
    about = (cx + 0.5 - left, cy + 0.5 - top)  # Pillow coordinates in the block
    if window > work:
        # Shrink with an antialiasing filter first so the affine step never undersamples.
        before = block.shape[0]
        block = resize(block, max(1, round(before * work / window)))
        factor = block.shape[0] / before
        window *= factor
        about = (about[0] * factor, about[1] * factor)
    viewed = _view(block, angle_deg=angle_deg, window=window, out_side=work, fill=fill, about=about)
    return np.ascontiguousarray(resize(viewed, size))


# --- encoding -------------------------------------------------------------------------------

def _encodable(array: np.ndarray) -> Image.Image:
    pixels = np.asarray(array)
    if pixels.dtype != np.uint8:
        pixels = to_display_rgb(pixels)
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[:, :, 0]
    return Image.fromarray(np.ascontiguousarray(pixels))


def encode_png(array: np.ndarray, *, optimize: bool = True) -> bytes:
    """Lossless PNG of a grey or RGB image (float bands are asinh-stretched first); ``optimize=False``
    uses zlib's default level, 3-5× faster for a slightly larger file."""
    buffer = io.BytesIO()
    _encodable(array).save(buffer, format="PNG", optimize=optimize)
    return buffer.getvalue()


def encode_jpeg(array: np.ndarray, quality: int = 90) -> bytes:
    """JPEG of a grey or RGB image; alpha is dropped (float bands are asinh-stretched first)."""
    image = _encodable(array)
    if image.mode not in ("L", "RGB"):
        image = image.convert("RGB")
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=int(quality))
    return buffer.getvalue()
