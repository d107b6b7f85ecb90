"""Image preparation in one place, used by labeling, training and prediction alike (Django-free).

Reading is by content, never by file name: PNG, JPEG, GIF and FITS are recognised from their bytes,
and the pixel count is checked from the header before anything is decoded, so a decompression bomb
is refused without being allocated. Grey bands get an asinh stretch and colour composites a Lupton
stretch (astropy). Alignment rotates, zooms by centre crop or pad, pads to a square (never stretching,
so the axial ratio that carries the inclination is preserved) and resizes with a Lanczos filter.
"""
from __future__ import annotations

import io
import warnings
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, UnidentifiedImageError

MODEL_SIZE = 128
FITS_MAGIC = b"SIMPLE  ="


class ImageError(ValueError):
    """An image that cannot be used. ``message`` is for people, ``code`` for programs."""

    def __init__(self, message: str, *, code: str) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


@dataclass
class LoadedImage:
    pixels: np.ndarray  # uint8 (H, W, 3) for display images; float32 (H, W) for a FITS band
    format: str
    width: int
    height: int
    notes: list[str] = field(default_factory=list)


def _sniff_format(data: bytes) -> str | None:
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "GIF"
    if data.startswith(FITS_MAGIC):
        return "FITS"
    return None


def _extension_format(filename: str | None) -> str | None:
    if not filename or "." not in filename:
        return None
    suffix = filename.rsplit(".", 1)[1].lower()
    return {"png": "PNG", "jpg": "JPEG", "jpeg": "JPEG", "gif": "GIF", "fits": "FITS", "fit": "FITS"}.get(suffix)


def load_image(
    data: bytes,
    *,
    filename: str | None = None,
    max_bytes: int = 1_048_576,
    max_pixels: int = 25_000_000,
    allowed_formats: tuple[str, ...] = ("PNG", "JPEG", "GIF", "FITS"),
) -> LoadedImage:
    """Decode an image safely, or raise ImageError saying exactly what is wrong with it."""
    if not data:
        raise ImageError("The file is empty.", code="empty")
    if len(data) > max_bytes:
        raise ImageError(f"The file is {len(data):,} bytes; the limit is {max_bytes:,} bytes.", code="too_large_bytes")
    kind = _sniff_format(data)
    claimed = _extension_format(filename)
    if kind is None:
        detail = f" although its name says {claimed}" if claimed else ""
        raise ImageError(f"The file is not a PNG, JPEG, GIF or FITS image{detail}.", code="unsupported_format")
    if kind not in allowed_formats:
        raise ImageError(f"{kind} files are not accepted here; use {', '.join(allowed_formats)}.", code="unsupported_format")
    notes = [f"the file name says {claimed} but the content is {kind}; read as {kind}"] if claimed and claimed != kind else []
    if kind == "FITS":
        return _load_fits(data, max_pixels=max_pixels, notes=notes)
    return _load_raster(data, kind=kind, max_pixels=max_pixels, notes=notes)


def _load_raster(data: bytes, *, kind: str, max_pixels: int, notes: list[str]) -> LoadedImage:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))  # reads the header only
            width, height = image.size
            if width * height > max_pixels:
                raise ImageError(
                    f"The image is {width} × {height} pixels; at most {max_pixels:,} pixels are accepted.",
                    code="too_many_pixels",
                )
            if getattr(image, "n_frames", 1) > 1:
                raise ImageError("Animated images are not accepted; upload a single frame.", code="animated")
            image.load()
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError("The image would decompress to too many pixels.", code="decompression_bomb") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageError(f"The {kind} file is corrupt or truncated ({exc}).", code="corrupt") from None
    if width == 0 or height == 0:
        raise ImageError("The image has no pixels.", code="empty")
    pixels = _to_rgb_uint8(image, notes)
    return LoadedImage(pixels=pixels, format=kind, width=width, height=height, notes=notes)


def _to_rgb_uint8(image: Image.Image, notes: list[str]) -> np.ndarray:
    """Every mode (16-bit, CMYK, palette, grey + alpha, RGBA) becomes 8-bit RGB."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        array = np.asarray(image, dtype=np.float64)
        low, high = np.percentile(array, [0.5, 99.9])
        scaled = np.clip((array - low) / max(high - low, 1e-9), 0, 1)
        notes.append(f"{image.mode} image scaled to 8 bits")
        grey = (scaled * 255).round().astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if image.mode == "CMYK":
        image = image.convert("RGB")
        notes.append("CMYK converted to RGB")
    elif image.mode in ("LA", "RGBA", "PA") or (image.mode == "P" and "transparency" in image.info):
        # Composite on black, the sky background; the alpha channel carries no galaxy light.
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        image = Image.alpha_composite(background, rgba)
        notes.append("transparency flattened onto black")
    return np.asarray(image.convert("RGB"), dtype=np.uint8).copy()


def _load_fits(data: bytes, *, max_pixels: int, notes: list[str]) -> LoadedImage:
    from astropy.io import fits

    try:
        with fits.open(io.BytesIO(data), memmap=False) as hdus:
            hdu = next((h for h in hdus if getattr(h, "data", None) is not None and h.header.get("NAXIS", 0) >= 2), None)
            if hdu is None:
                raise ImageError("The FITS file holds no image.", code="empty")
            shape = tuple(hdu.header.get(f"NAXIS{i}", 0) for i in range(1, hdu.header["NAXIS"] + 1))
            if int(np.prod(shape)) > max_pixels:
                raise ImageError(f"The FITS image has {int(np.prod(shape)):,} pixels; at most {max_pixels:,}.", code="too_many_pixels")
            array = np.asarray(hdu.data, dtype=np.float32)
    except ImageError:
        raise
    except (OSError, ValueError, TypeError, IndexError) as exc:
        raise ImageError(f"The FITS file is corrupt or truncated ({exc}).", code="corrupt") from None
    while array.ndim > 2:
        array = array[0]
    array = np.nan_to_num(array[::-1], nan=0.0)  # FITS rows run bottom-up
    return LoadedImage(pixels=array, format="FITS", width=array.shape[1], height=array.shape[0], notes=notes)


# --- stretches ------------------------------------------------------------------------------

def asinh_stretch(band: np.ndarray, *, a: float = 0.1, lower_percentile: float = 1.0, upper_percentile: float = 99.8) -> np.ndarray:
    """A grey band as the Galaxy Inclination Zoo showed it: percentile interval, then asinh."""
    from astropy.visualization import AsinhStretch, AsymmetricPercentileInterval

    interval = AsymmetricPercentileInterval(lower_percentile, upper_percentile)
    scaled = AsinhStretch(a=a)(interval(np.asarray(band, dtype=np.float64), clip=True), clip=True)
    return (np.clip(scaled, 0, 1) * 255).round().astype(np.uint8)


def lupton_rgb(g: np.ndarray, r: np.ndarray, i: np.ndarray, *, stretch: float = 0.5, q: float = 8.0) -> np.ndarray:
    """An SDSS-like colour composite (i → red, r → green, g → blue)."""
    from astropy.visualization import make_lupton_rgb

    return make_lupton_rgb(np.asarray(i, float), np.asarray(r, float), np.asarray(g, float), stretch=stretch, Q=q)


def fits_band_to_rgb(band: np.ndarray) -> np.ndarray:
    grey = asinh_stretch(band)
    return np.repeat(grey[:, :, None], 3, axis=2)


# --- inversion ------------------------------------------------------------------------------

def _border(image: np.ndarray, width: int) -> np.ndarray:
    grey = image.mean(axis=2) if image.ndim == 3 else image
    return np.concatenate([grey[:width].ravel(), grey[-width:].ravel(), grey[:, :width].ravel(), grey[:, -width:].ravel()])


def is_inverted(image: np.ndarray) -> bool:
    """Black-on-white: the sky (border) is brighter than the galaxy at the centre."""
    grey = image.mean(axis=2) if image.ndim == 3 else image.astype(float)
    h, w = grey.shape
    width = max(1, min(h, w) // 16)
    sky = float(np.median(_border(image, width)))
    centre = float(np.median(grey[h // 2 - max(1, h // 16): h // 2 + max(1, h // 16) + 1,
                                  w // 2 - max(1, w // 16): w // 2 + max(1, w // 16) + 1]))
    return sky > 127 and sky > centre


def normalise_inversion(image: np.ndarray) -> tuple[np.ndarray, bool]:
    """White-on-black for every image, so models and standards see one convention."""
    if image.dtype == np.uint8 and is_inverted(image):
        return 255 - image, True
    return image, False


# --- geometry -------------------------------------------------------------------------------

def _as_rgb(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        if image.dtype != np.uint8:
            return fits_band_to_rgb(image)
        return np.repeat(image[:, :, None], 3, axis=2)
    if image.shape[2] == 4:
        return image[:, :, :3]
    return image


def rotate(image: np.ndarray, angle_deg: float, *, fill: int = 0) -> np.ndarray:
    """Rotate clockwise on screen by ``angle_deg`` (as CSS ``rotate()``), keeping the whole image."""
    if angle_deg % 360 == 0:
        return image
    pil = Image.fromarray(image)
    fill_value = (fill,) * 3 if image.ndim == 3 else fill
    return np.asarray(pil.rotate(-angle_deg, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=fill_value))


def crop_or_pad(image: np.ndarray, scale: float, *, fill: int = 0) -> np.ndarray:
    """Zoom about the centre: ``scale`` > 1 crops to size/scale, < 1 pads to size/scale with ``fill``."""
    if scale <= 0:
        raise ValueError("scale must be positive")
    h, w = image.shape[:2]
    side = max(h, w)
    target = max(1, int(round(side / scale)))
    if scale >= 1:
        top, left = max(0, (h - target) // 2), max(0, (w - target) // 2)
        return image[top: top + min(target, h), left: left + min(target, w)]
    return _pad_to(image, target, target, fill=fill)


def _pad_to(image: np.ndarray, height: int, width: int, *, fill: int) -> np.ndarray:
    h, w = image.shape[:2]
    out = np.full((max(h, height), max(w, width)) + image.shape[2:], fill, dtype=image.dtype)
    top, left = (out.shape[0] - h) // 2, (out.shape[1] - w) // 2
    out[top: top + h, left: left + w] = image
    return out


def pad_to_square(image: np.ndarray, *, fill: int = 0) -> np.ndarray:
    """Pad the short side (centred); never stretch, so the galaxy's axial ratio is unchanged."""
    side = max(image.shape[:2])
    return _pad_to(image, side, side, fill=fill)


def resize(image: np.ndarray, size: int = MODEL_SIZE) -> np.ndarray:
    if image.shape[0] == size and image.shape[1] == size:
        return image
    return np.asarray(Image.fromarray(image).resize((size, size), Image.Resampling.LANCZOS))


def prepare_model_input(image: np.ndarray, *, angle_deg: float = 0.0, scale: float = 1.0, size: int = MODEL_SIZE) -> np.ndarray:
    """The one path from any image to the networks' input: uint8 (size, size, 3), white-on-black.

    Inversion is normalised first, so padding and rotation corners are filled with the sky colour.
    """
    rgb, _ = normalise_inversion(_as_rgb(np.asarray(image)))
    rotated = rotate(np.ascontiguousarray(rgb), angle_deg, fill=0)
    zoomed = crop_or_pad(rotated, scale, fill=0)
    return resize(pad_to_square(zoomed, fill=0), size)


def encode_png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(array, dtype=np.uint8)).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def encode_jpeg(array: np.ndarray, *, quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(array, dtype=np.uint8)).convert("RGB").save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()
