"""Image sources behind one interface: SDSS ImgCutout, Legacy Survey cut-outs, local files, a cache.

Every remote call has a timeout and retries with back-off on connection errors, time-outs and 5xx
answers; failures become ``ImageSourceError`` with a message for people. ``fetch_cutout`` tries the
configured sources in order (SDSS first, then Legacy Survey for the southern sky) through a cache in
Django storage.
"""
from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import requests

logger = logging.getLogger(__name__)

SDSS_BASE_PIXEL_SCALE = 0.25  # arcsec per pixel, as the original requested
SDSS_MAX_NPIX = 2048
SDSS_MIN_NPIX = 64
LEGACY_NATIVE_PIXEL_SCALE = 0.262
LEGACY_MAX_NPIX = 512


class ImageSourceError(Exception):
    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


@dataclass(frozen=True)
class FetchedImage:
    data: bytes
    content_type: str
    source: str
    pixel_scale_arcsec: float
    npix: int
    url: str


class ImageSource(Protocol):
    name: str

    def fetch(self, *, ra: float, dec: float, fov_arcmin: float) -> FetchedImage: ...


def sdss_cutout_params(*, fov_arcmin: float) -> tuple[float, int]:
    """The original rule: 0.25″/px, doubled until the image is at most 2048 px; at least 64 px."""
    pixel_scale = SDSS_BASE_PIXEL_SCALE
    npix = int(fov_arcmin * 60 / pixel_scale)
    while npix > SDSS_MAX_NPIX:
        pixel_scale *= 2
        npix = int(fov_arcmin * 60 / pixel_scale)
    return pixel_scale, max(npix, SDSS_MIN_NPIX)


def legacy_cutout_params(*, fov_arcmin: float) -> tuple[float, int]:
    """Native 0.262″/px when the field fits in 512 px, otherwise a coarser scale so it does."""
    npix = int(round(fov_arcmin * 60 / LEGACY_NATIVE_PIXEL_SCALE))
    if npix <= LEGACY_MAX_NPIX:
        return LEGACY_NATIVE_PIXEL_SCALE, max(npix, SDSS_MIN_NPIX)
    return fov_arcmin * 60 / LEGACY_MAX_NPIX, LEGACY_MAX_NPIX


def _is_blank(data: bytes) -> bool:
    """A uniform image (no sky noise at all) carries no data."""
    import io

    import numpy as np
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            image.draft("L", (128, 128))  # JPEG decodes at reduced size: cheap
            return float(np.asarray(image.convert("L"), dtype=float).std()) < 1.0
    except OSError:
        return False


class HttpImageSource:
    """Shared HTTP behaviour: timeout, retries with back-off, and checking that a JPEG came back."""

    name = "http"
    label = "image service"

    def __init__(self, base_url: str, *, timeout: float = 10.0, retries: int = 2, session: requests.Session | None = None,
                 backoff: float = 0.5) -> None:
        self.base_url = base_url
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.session = session or requests.Session()

    def _get(self, params: dict[str, str | float | int]) -> requests.Response:
        last_error: ImageSourceError | None = None
        for attempt in range(self.retries + 1):
            try:
                response = self.session.get(self.base_url, params=params, timeout=self.timeout)
            except requests.Timeout:
                last_error = ImageSourceError(f"The {self.label} did not answer within {self.timeout:g} s.", retryable=True)
            except requests.RequestException as exc:
                last_error = ImageSourceError(f"The {self.label} cannot be reached ({type(exc).__name__}).", retryable=True)
            else:
                if response.status_code < 500:
                    return response
                last_error = ImageSourceError(f"The {self.label} failed (HTTP {response.status_code}).", retryable=True)
            if attempt < self.retries:
                time.sleep(self.backoff * 2**attempt)
        assert last_error is not None
        logger.warning("image source failed", extra={"source": self.name, "error": str(last_error)})
        raise last_error

    def _checked(self, response: requests.Response, *, pixel_scale: float, npix: int) -> FetchedImage:
        if response.status_code != 200:
            raise ImageSourceError(f"The {self.label} has no image here (HTTP {response.status_code}).")
        data = response.content
        if not data.startswith(b"\xff\xd8\xff") and not data.startswith(b"\x89PNG"):
            raise ImageSourceError(f"The {self.label} returned something that is not an image.")
        content_type = "image/png" if data.startswith(b"\x89PNG") else "image/jpeg"
        return FetchedImage(data=data, content_type=content_type, source=self.name, pixel_scale_arcsec=pixel_scale,
                            npix=npix, url=response.url)


class SdssCutoutSource(HttpImageSource):
    """SDSS SkyServer ImgCutout ``getjpeg`` (northern sky and the SDSS footprint)."""

    name = "sdss"
    label = "SDSS image service"

    def fetch(self, *, ra: float, dec: float, fov_arcmin: float) -> FetchedImage:
        pixel_scale, npix = sdss_cutout_params(fov_arcmin=fov_arcmin)
        response = self._get({"ra": f"{ra:.6f}", "dec": f"{dec:.6f}", "scale": pixel_scale, "width": npix, "height": npix})
        fetched = self._checked(response, pixel_scale=pixel_scale, npix=npix)
        if _is_blank(fetched.data):
            # Outside its footprint SkyServer answers 200 with a uniform image.
            raise ImageSourceError("This position is outside the SDSS footprint.")
        return fetched


class LegacySurveySource(HttpImageSource):
    """Legacy Survey viewer ``jpeg-cutout`` (covers much of the southern sky too)."""

    name = "legacysurvey"
    label = "Legacy Survey image service"

    def __init__(self, base_url: str, *, layer: str = "ls-dr10", **kwargs: object) -> None:
        super().__init__(base_url, **kwargs)  # type: ignore[arg-type]
        self.layer = layer

    def fetch(self, *, ra: float, dec: float, fov_arcmin: float) -> FetchedImage:
        pixel_scale, npix = legacy_cutout_params(fov_arcmin=fov_arcmin)
        response = self._get({"ra": f"{ra:.6f}", "dec": f"{dec:.6f}", "layer": self.layer,
                              "pixscale": f"{pixel_scale:.4f}", "size": npix})
        return self._checked(response, pixel_scale=pixel_scale, npix=npix)


class LocalFileSource:
    """Files on disk under one root, looked up by name (uploads, synthetic galaxies, offline sets)."""

    name = "local"

    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()

    def read(self, relative: str) -> bytes:
        path = (self.root / relative).resolve()
        if self.root not in path.parents:
            raise ImageSourceError("Refusing a path outside the image folder.")
        if not path.is_file():
            raise ImageSourceError(f"No image named {relative!r}.")
        return path.read_bytes()


class CachedSource:
    """Keeps fetched bytes in Django storage, keyed by source and rounded request parameters."""

    def __init__(self, inner: ImageSource, *, storage=None) -> None:  # noqa: ANN001
        from django.core.files.storage import default_storage

        self.inner = inner
        self.name = inner.name
        self.storage = storage or default_storage

    def _key(self, ra: float, dec: float, fov_arcmin: float) -> str:
        digest = hashlib.sha256(f"{self.inner.name}:{ra:.5f}:{dec:.5f}:{fov_arcmin:.3f}".encode()).hexdigest()
        return f"cutouts/{self.inner.name}/{digest[:2]}/{digest}.img"

    def fetch(self, *, ra: float, dec: float, fov_arcmin: float) -> FetchedImage:
        from django.core.files.base import ContentFile

        key = self._key(ra, dec, fov_arcmin)
        if self.storage.exists(key):
            with self.storage.open(key, "rb") as handle:
                data = handle.read()
            content_type = "image/png" if data.startswith(b"\x89PNG") else "image/jpeg"
            return FetchedImage(data=data, content_type=content_type, source=self.inner.name, pixel_scale_arcsec=0.0,
                                npix=0, url=f"cache:{key}")
        fetched = self.inner.fetch(ra=ra, dec=dec, fov_arcmin=fov_arcmin)
        self.storage.save(key, ContentFile(fetched.data))
        return fetched


def image_source(name: str) -> ImageSource:
    from django.conf import settings

    common = {"timeout": settings.REMOTE_TIMEOUT_S, "retries": settings.REMOTE_RETRIES}
    if name == "sdss":
        return SdssCutoutSource(settings.SDSS_CUTOUT_URL, **common)
    if name == "legacysurvey":
        return LegacySurveySource(settings.LEGACY_SURVEY_CUTOUT_URL, **common)
    raise ValueError(f"Unknown image source {name!r}.")


def fetch_cutout(*, ra: float, dec: float, fov_arcmin: float, order: list[str] | None = None) -> FetchedImage:
    """Try each configured source in order; the first image wins, the errors are reported together."""
    from django.conf import settings

    errors = []
    for name in order or settings.IMAGE_SOURCE_ORDER:
        try:
            return CachedSource(image_source(name)).fetch(ra=ra, dec=dec, fov_arcmin=fov_arcmin)
        except ImageSourceError as exc:
            errors.append(str(exc))
    raise ImageSourceError(" ".join(errors) or "No image source is configured.",
                           retryable=any("did not answer" in e or "cannot be reached" in e for e in errors))
