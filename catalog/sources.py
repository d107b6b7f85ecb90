"""Image sources behind one interface: SDSS ImgCutout, Legacy Survey cut-outs, local files, a cache.

A sky source answers ``fetch(ra=, dec=, fov_arcmin=) -> FetchedImage``. Remote calls have a timeout
(to connect and between bytes, plus a ceiling on the whole download) and retry with exponential
back-off on connection errors, time-outs, 429 and 5xx answers. What comes back must be a JPEG or PNG
of the requested size that is not blank (SkyServer and the Legacy Survey viewer answer outside their
footprints with a uniform image); anything else becomes ``ImageSourceError`` with a message for people.

``fetch_cutout`` tries the sources named in ``settings.IMAGE_SOURCE_ORDER`` (SDSS first, then the Legacy
Survey, which also covers much of the southern sky), each through a cache in Django storage.

``LegacySurveyFitsSource`` asks the Legacy Survey viewer's ``fits-cutout`` for calibrated band images
(``bands=gri`` or ``grz``), read with astropy; the Zoo's ingestion builds its g, r, i and colour images from
them. Bulk work passes a ``RateLimiter`` so a long run stays polite towards the services.
"""
from __future__ import annotations

import hashlib
import io
import json
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Protocol

import requests
from urllib3.exceptions import ReadTimeoutError

logger = logging.getLogger(__name__)

SDSS_BASE_PIXEL_SCALE = 0.25  # arcsec per pixel, as the original requested
SDSS_MAX_NPIX = 2048  # SkyServer's limit on width and height
SDSS_MIN_NPIX = 64
LEGACY_NATIVE_PIXEL_SCALE = 0.262  # DECam / Legacy Surveys native arcsec per pixel
LEGACY_MAX_NPIX = 512  # the viewer allows 3000; 512 keeps cut-outs fast and is 4× the model input
MAX_RESPONSE_BYTES = 20 * 1024 * 1024
USER_AGENT = "IncliNET/1.0 (galaxy inclinations; +https://github.com/ekourkchi/inclinet_project)"
IMAGE_TYPES = {b"\xff\xd8\xff": "image/jpeg", b"\x89PNG\r\n\x1a\n": "image/png"}


class RateLimiter:
    """At most ``per_second`` requests per second from this process (all threads): each ``wait()`` sleeps until
    its slot. ``per_second`` <= 0 means no limit."""

    def __init__(self, per_second: float) -> None:
        self.interval = 1.0 / per_second if per_second > 0 else 0.0
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> float:
        """Block until the next request may go; returns the seconds slept."""
        if not self.interval:
            return 0.0
        with self._lock:
            now = time.monotonic()
            slot = max(self._next, now)
            self._next = slot + self.interval
        delay = slot - now
        if delay > 0:
            time.sleep(delay)
        return max(delay, 0.0)


class ImageSourceError(Exception):
    """An image could not be fetched. ``message`` is for people; ``retryable`` says a later try may work."""

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable


@dataclass(frozen=True)
class FetchedImage:
    data: bytes
    content_type: str
    source: str
    pixel_scale_arcsec: float
    npix: int
    url: str
    from_cache: bool = False


class ImageSource(Protocol):
    name: str

    def fetch(self, *, ra: float, dec: float, fov_arcmin: float) -> FetchedImage: ...


def sdss_cutout_params(*, fov_arcmin: float) -> tuple[float, int]:
    """The original rule: 0.25″/px; while the image would exceed 2048 px, double the pixel scale; ≥ 64 px."""
    if not fov_arcmin > 0:
        raise ValueError("The field of view must be positive.")
    pixel_scale = SDSS_BASE_PIXEL_SCALE
    npix = int(fov_arcmin * 60 / pixel_scale)
    while npix > SDSS_MAX_NPIX:
        pixel_scale *= 2
        npix = int(fov_arcmin * 60 / pixel_scale)
    return pixel_scale, max(npix, SDSS_MIN_NPIX)


def legacy_cutout_params(*, fov_arcmin: float) -> tuple[float, int]:
    """Native 0.262″/px when the field fits in 512 px, otherwise a coarser scale so it does; ≥ 64 px."""
    if not fov_arcmin > 0:
        raise ValueError("The field of view must be positive.")
    npix = int(round(fov_arcmin * 60 / LEGACY_NATIVE_PIXEL_SCALE))
    if npix <= LEGACY_MAX_NPIX:
        return LEGACY_NATIVE_PIXEL_SCALE, max(npix, SDSS_MIN_NPIX)
    return fov_arcmin * 60 / LEGACY_MAX_NPIX, LEGACY_MAX_NPIX


def _check_position(ra: float, dec: float) -> float:
    if not -90.0 <= dec <= 90.0:
        raise ValueError(f"Dec {dec} is outside -90…+90 degrees.")
    return ra % 360.0


_sessions = threading.local()


def _thread_session() -> requests.Session:
    """One pooled session per thread (sessions are not thread-safe), reused across requests."""
    session = getattr(_sessions, "session", None)
    if session is None:
        session = requests.Session()
        session.headers["User-Agent"] = USER_AGENT
        _sessions.session = session
    return session


def _image_info(data: bytes) -> tuple[int, int, float] | None:
    """Width, height and grey-level spread of a JPEG/PNG, decoded cheaply; None when it cannot be read."""
    import numpy as np
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data), formats=["JPEG", "PNG"]) as image:
            width, height = image.size
            if width * height > 64_000_000:
                return width, height, 255.0  # never decode something absurd just to check it
            image.draft("L", (128, 128))  # JPEG decodes at 1/2…1/8 size: cheap
            thumb = image.convert("L")
            thumb.thumbnail((256, 256))
            return width, height, float(np.asarray(thumb, dtype=np.float64).std())
    except Exception:  # noqa: BLE001 - any decoder failure means "not an image we can use"
        return None


class HttpImageSource:
    """Shared HTTP behaviour: timeouts, retries with back-off, and checking that a real image came back."""

    name = "http"
    label = "image service"
    footprint = "this survey"

    def __init__(
        self, base_url: str, *, timeout: float = 10.0, retries: int = 2, session: requests.Session | None = None,
        backoff: float = 0.5, total_timeout: float | None = None, max_bytes: int = MAX_RESPONSE_BYTES,
        limiter: RateLimiter | None = None,
    ) -> None:
        self.base_url = base_url
        self.timeout = float(timeout)
        self.retries = max(0, int(retries))
        self.backoff = backoff
        # The whole download, retries excluded: a big cut-out may take longer than the first byte.
        self.total_timeout = float(total_timeout) if total_timeout is not None else 3 * self.timeout
        self.max_bytes = max_bytes
        self.session = session
        self.limiter = limiter  # every attempt, retries included, waits for its slot

    @property
    def identity(self) -> str:
        """What a cached image depends on besides the position: the service (and its data release)."""
        return self.name

    def _download(self, params: dict[str, Any]) -> tuple[requests.Response, bytes]:
        session = self.session or _thread_session()
        if self.limiter is not None:
            self.limiter.wait()
        started = time.monotonic()
        with session.get(self.base_url, params=params, timeout=self.timeout, stream=True,
                         headers={"User-Agent": USER_AGENT}) as response:
            chunks, size = [], 0
            for chunk in response.iter_content(64 * 1024):
                size += len(chunk)
                if size > self.max_bytes:
                    raise ImageSourceError(f"The {self.label} sent more than {self.max_bytes // 2**20} MB; refused.")
                if time.monotonic() - started > self.total_timeout:
                    raise requests.Timeout("download too slow")
                chunks.append(chunk)
        return response, b"".join(chunks)

    def _get(self, params: dict[str, Any]) -> tuple[requests.Response, bytes]:
        """GET with retries; returns the first answer that is not a retryable failure."""
        last_error = ImageSourceError(f"The {self.label} could not be asked.", retryable=True)
        for attempt in range(self.retries + 1):
            wait = self.backoff * 2**attempt
            try:
                response, body = self._download(params)
            except requests.Timeout:
                last_error = ImageSourceError(
                    f"The {self.label} did not answer within {self.timeout:g} s.", retryable=True)
            except requests.ConnectionError as exc:
                # A stall while reading the body arrives as a ConnectionError wrapping urllib3's ReadTimeoutError.
                stalled = any(isinstance(arg, ReadTimeoutError) for arg in exc.args)
                last_error = ImageSourceError(
                    f"The {self.label} did not answer within {self.timeout:g} s." if stalled
                    else f"The {self.label} cannot be reached.", retryable=True)
            except requests.RequestException as exc:
                last_error = ImageSourceError(f"The {self.label} failed ({type(exc).__name__}).", retryable=True)
            else:
                if response.status_code != 429 and response.status_code < 500:
                    return response, body
                tries = f" after {attempt + 1} tries" if attempt else ""
                last_error = ImageSourceError(
                    f"The {self.label} failed (HTTP {response.status_code}){tries}.", retryable=True)
                retry_after = response.headers.get("Retry-After", "")
                if retry_after.isdigit():
                    wait = min(float(retry_after), 5.0)  # honour the service, but keep the page responsive
            logger.info("image source attempt failed",
                        extra={"source": self.name, "attempt": attempt + 1, "error": last_error.message})
            if attempt < self.retries:
                time.sleep(wait)
        logger.warning("image source failed", extra={"source": self.name, "error": last_error.message})
        raise last_error

    def _checked(self, response: requests.Response, body: bytes, *, pixel_scale: float, npix: int) -> FetchedImage:
        status = response.status_code
        if status != 200:
            raise ImageSourceError(f"The {self.label} refused the request (HTTP {status}).")
        content_type = next((kind for magic, kind in IMAGE_TYPES.items() if body.startswith(magic)), None)
        if content_type is None:
            declared = response.headers.get("Content-Type", "").split(";")[0].strip()
            what = "a web page" if "html" in declared or body.lstrip()[:1] == b"<" else f"'{declared or 'unknown'}' data"
            raise ImageSourceError(f"The {self.label} returned {what} instead of an image.")
        info = _image_info(body)
        if info is None:
            raise ImageSourceError(f"The {self.label} returned a damaged image.", retryable=True)
        width, height, spread = info
        if (width, height) != (npix, npix):
            # SkyServer answers some failures with a small error picture instead of the cut-out.
            raise ImageSourceError(
                f"The {self.label} returned a {width} × {height} image instead of {npix} × {npix}; "
                f"this position is probably outside {self.footprint}.")
        if spread < 1.0:
            # Outside the footprint both services answer 200 with a uniform (blank) image.
            raise ImageSourceError(f"This position is outside {self.footprint}: the {self.label} has no data here.")
        return FetchedImage(data=body, content_type=content_type, source=self.name, pixel_scale_arcsec=pixel_scale,
                            npix=npix, url=response.url)


class SdssCutoutSource(HttpImageSource):
    """SDSS SkyServer ImgCutout ``getjpeg?ra=&dec=&scale=&width=&height=`` (SDSS footprint, mostly north)."""

    name = "sdss"
    label = "SDSS image service"
    footprint = "the SDSS footprint"

    def fetch(self, *, ra: float, dec: float, fov_arcmin: float) -> FetchedImage:
        ra = _check_position(ra, dec)
        pixel_scale, npix = sdss_cutout_params(fov_arcmin=fov_arcmin)
        params = {"ra": f"{ra:.6f}", "dec": f"{dec:.6f}", "scale": f"{pixel_scale:g}", "width": npix, "height": npix}
        response, body = self._get(params)
        return self._checked(response, body, pixel_scale=pixel_scale, npix=npix)


class LegacySurveySource(HttpImageSource):
    """Legacy Survey viewer ``jpeg-cutout?ra=&dec=&layer=&pixscale=&size=`` (DECaLS/DES reach the south)."""

    name = "legacysurvey"
    label = "Legacy Survey image service"
    footprint = "the Legacy Survey footprint"

    def __init__(self, base_url: str, *, layer: str = "ls-dr10", **kwargs: Any) -> None:
        super().__init__(base_url, **kwargs)
        self.layer = layer

    @property
    def identity(self) -> str:
        return f"{self.name}-{self.layer}"

    def fetch(self, *, ra: float, dec: float, fov_arcmin: float) -> FetchedImage:
        ra = _check_position(ra, dec)
        pixel_scale, npix = legacy_cutout_params(fov_arcmin=fov_arcmin)
        params = {"ra": f"{ra:.6f}", "dec": f"{dec:.6f}", "layer": self.layer, "pixscale": f"{pixel_scale:.4f}",
                  "size": npix}
        response, body = self._get(params)
        return self._checked(response, body, pixel_scale=pixel_scale, npix=npix)


@dataclass(frozen=True)
class FetchedBands:
    """Calibrated band images of one cut-out: ``{band: float32 (npix, npix)}``, north up, east left."""

    bands: dict[str, Any]
    source: str
    pixel_scale_arcsec: float
    npix: int
    url: str


def _fits_band_names(header: Any, count: int, requested: str) -> list[str]:
    """The band of each plane: the viewer writes ``BAND0``, ``BAND1``, …; else ``BANDS``; else the request."""
    names = [str(header.get(f"BAND{k}", "")).strip().lower() for k in range(count)]
    if all(names):
        return names
    listed = str(header.get("BANDS", "")).strip().lower()
    if len(listed) == count:
        return list(listed)
    return list(requested[:count])


def read_fits_bands(data: bytes, *, requested: str) -> dict[str, Any]:
    """A multi-band FITS cut-out as ``{band: float32 array}`` in display orientation (row 0 = north).

    Planes that hold no data (all zeros or non-finite: the band is not observed there) are left out.
    Raises ImageSourceError for anything that is not a readable FITS image.
    """
    import numpy as np
    from astropy.io import fits

    if not data.startswith(b"SIMPLE  ="):
        raise ImageSourceError("The Legacy Survey FITS service returned something that is not FITS.")
    try:
        with fits.open(io.BytesIO(data), memmap=False) as hdus:
            hdu = next((h for h in hdus if h.data is not None and h.data.ndim in (2, 3)), None)
            if hdu is None:
                raise ImageSourceError("The Legacy Survey FITS cut-out holds no image.")
            cube = np.asarray(hdu.data, dtype=np.float32)
            header = hdu.header
    except ImageSourceError:
        raise
    except Exception as exc:  # noqa: BLE001 - astropy raises many types on damaged files
        raise ImageSourceError("The Legacy Survey FITS cut-out is damaged.", retryable=True) from exc
    if cube.ndim == 2:
        cube = cube[None]
    names = _fits_band_names(header, cube.shape[0], requested)
    bands: dict[str, Any] = {}
    for name, plane in zip(names, cube, strict=True):
        finite = np.isfinite(plane)
        if not finite.any() or float(np.abs(plane[finite]).max()) == 0.0:
            continue  # not observed in this band here
        plane = np.where(finite, plane, np.float32(np.median(plane[finite])))
        bands[name] = np.ascontiguousarray(plane[::-1])  # FITS rows run bottom-up
    return bands


class LegacySurveyFitsSource(HttpImageSource):
    """Legacy Survey viewer ``fits-cutout?ra=&dec=&layer=&pixscale=&size=&bands=`` (calibrated nanomaggies)."""

    name = "legacysurvey-fits"
    label = "Legacy Survey FITS service"
    footprint = "the Legacy Survey footprint"

    def __init__(self, base_url: str, *, layer: str = "ls-dr10", **kwargs: Any) -> None:
        kwargs.setdefault("max_bytes", 4 * MAX_RESPONSE_BYTES)  # 3 float32 planes of up to 1000² pixels
        super().__init__(base_url, **kwargs)
        self.layer = layer

    def fetch_bands(self, *, ra: float, dec: float, pixel_scale: float, npix: int, bands: str) -> FetchedBands:
        ra = _check_position(ra, dec)
        params = {"ra": f"{ra:.6f}", "dec": f"{dec:.6f}", "layer": self.layer, "pixscale": f"{pixel_scale:.4f}",
                  "size": npix, "bands": bands}
        response, body = self._get(params)
        if response.status_code != 200:
            raise ImageSourceError(f"The {self.label} refused the request (HTTP {response.status_code}).")
        found = read_fits_bands(body, requested=bands)
        if not found:
            raise ImageSourceError(f"This position is outside {self.footprint}: the {self.label} has no data here.")
        shapes = {plane.shape for plane in found.values()}
        if shapes != {(npix, npix)}:
            raise ImageSourceError(f"The {self.label} returned planes of {sorted(shapes)} instead of {npix} × {npix}.")
        return FetchedBands(bands=found, source=self.name, pixel_scale_arcsec=pixel_scale, npix=npix,
                            url=response.url)


def legacy_fits_url() -> str:
    """``LEGACY_SURVEY_FITS_URL`` when set, else the JPEG cut-out URL's sibling ``…/fits-cutout``."""
    from django.conf import settings

    from .conf import legacy_survey_setting

    explicit = legacy_survey_setting("FITS_URL")
    return explicit or settings.LEGACY_SURVEY_CUTOUT_URL.replace("jpeg-cutout", "fits-cutout")


def legacy_fits_source(*, limiter: RateLimiter | None = None) -> LegacySurveyFitsSource:
    from django.conf import settings

    from .conf import legacy_survey_setting

    return LegacySurveyFitsSource(legacy_fits_url(), layer=legacy_survey_setting("LAYER"),
                                  timeout=settings.REMOTE_TIMEOUT_S, retries=settings.REMOTE_RETRIES, limiter=limiter)


class LocalFileSource:
    """Image files on disk under one root, looked up by a relative name (uploads, synthetic sets, offline
    collections). A name without an extension also finds ``name.jpg``, ``.png``, ``.gif`` or ``.fits``."""

    name = "local"
    extensions = (".jpg", ".jpeg", ".png", ".gif", ".fits", ".fit")

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root).resolve()

    def path_for(self, name: str) -> Path:
        relative = PurePosixPath(str(name).replace("\\", "/"))
        if not str(name).strip() or "\x00" in str(name) or relative.is_absolute() or ".." in relative.parts:
            raise ImageSourceError("Refusing a path outside the image folder.")
        candidates = [self.root / relative]
        if not relative.suffix:
            candidates += [self.root / relative.with_suffix(ext) for ext in self.extensions]
        for candidate in candidates:
            resolved = candidate.resolve()
            if resolved != self.root and self.root not in resolved.parents:
                raise ImageSourceError("Refusing a path outside the image folder.")  # e.g. a symlink out
            if resolved.is_file():
                return resolved
        raise ImageSourceError(f"No image named {str(name)!r} in the image folder.")

    def read(self, name: str) -> bytes:
        return self.path_for(name).read_bytes()

    def fetch_file(self, name: str) -> FetchedImage:
        path = self.path_for(name)
        data = path.read_bytes()
        content_type = next((kind for magic, kind in IMAGE_TYPES.items() if data.startswith(magic)),
                            "application/fits" if data.startswith(b"SIMPLE  =") else "image/gif"
                            if data.startswith(b"GIF8") else "application/octet-stream")
        return FetchedImage(data=data, content_type=content_type, source=self.name, pixel_scale_arcsec=0.0, npix=0,
                            url=path.as_uri())


class CachedSource:
    """Keeps fetched cut-outs in Django storage, keyed by a SHA-256 of the source and the rounded request.

    The image and a small JSON of its metadata are stored side by side; the JSON is written last, so a
    half-written entry is never served.
    """

    def __init__(self, inner: ImageSource, *, storage: Any = None) -> None:
        if storage is None:
            from django.core.files.storage import default_storage as storage
        self.inner = inner
        self.name = inner.name
        self.storage = storage

    def key(self, *, ra: float, dec: float, fov_arcmin: float) -> str:
        identity = getattr(self.inner, "identity", self.inner.name)
        # 1e-5 deg ≈ 0.04″ and 1e-3′ ≈ 0.06″: far below a pixel, so equal requests share one entry.
        request = f"{identity}|ra={ra % 360.0:.5f}|dec={dec:.5f}|fov={fov_arcmin:.3f}"
        digest = hashlib.sha256(request.encode()).hexdigest()
        return f"cutouts/{self.inner.name}/{digest[:2]}/{digest}"

    def _read(self, key: str) -> FetchedImage | None:
        try:
            if not self.storage.exists(f"{key}.json"):
                return None
            with self.storage.open(f"{key}.json", "rb") as handle:
                meta = json.loads(handle.read())
            with self.storage.open(meta["file"], "rb") as handle:
                data = handle.read()
        except (OSError, ValueError, KeyError) as exc:
            logger.warning("unreadable cache entry ignored", extra={"key": key, "error": str(exc)})
            return None
        meta.pop("file")
        return FetchedImage(data=data, **{**meta, "from_cache": True})

    def _write(self, key: str, fetched: FetchedImage) -> None:
        from django.core.files.base import ContentFile

        if self.storage.exists(f"{key}.json"):
            return  # another worker stored it meanwhile
        suffix = ".png" if fetched.content_type == "image/png" else ".jpg"
        try:
            if not self.storage.exists(key + suffix):
                stored = self.storage.save(key + suffix, ContentFile(fetched.data))
            else:
                stored = key + suffix
            meta = {k: v for k, v in asdict(fetched).items() if k not in ("data", "from_cache")}
            self.storage.save(f"{key}.json", ContentFile(json.dumps({**meta, "file": stored}).encode()))
        except OSError as exc:  # a full disk must not turn a good image into an error
            logger.warning("could not cache a cut-out", extra={"key": key, "error": str(exc)})

    def fetch(self, *, ra: float, dec: float, fov_arcmin: float) -> FetchedImage:
        key = self.key(ra=ra, dec=dec, fov_arcmin=fov_arcmin)
        cached = self._read(key)
        if cached is not None:
            return cached
        fetched = self.inner.fetch(ra=ra, dec=dec, fov_arcmin=fov_arcmin)
        self._write(key, fetched)
        return fetched


SOURCE_NAMES = ("sdss", "legacysurvey")


def image_source(name: str, *, limiter: RateLimiter | None = None) -> ImageSource:
    """One uncached sky source built from Django settings."""
    from django.conf import settings

    from .conf import legacy_survey_setting

    common = {"timeout": settings.REMOTE_TIMEOUT_S, "retries": settings.REMOTE_RETRIES, "limiter": limiter}
    key = name.strip().lower()
    if key == "sdss":
        return SdssCutoutSource(settings.SDSS_CUTOUT_URL, **common)
    if key in ("legacysurvey", "legacy"):
        layer = legacy_survey_setting("LAYER")
        return LegacySurveySource(settings.LEGACY_SURVEY_CUTOUT_URL, layer=layer, **common)
    raise ValueError(f"Unknown image source {name!r} in IMAGE_SOURCE_ORDER; use {', '.join(SOURCE_NAMES)}.")


def image_source_chain(order: Sequence[str] | None = None, *, cached: bool = True,
                       limiter: RateLimiter | None = None) -> list[ImageSource]:
    """The sky sources in the configured order (``settings.IMAGE_SOURCE_ORDER``), each behind the cache."""
    from django.conf import settings

    names = list(order if order is not None else settings.IMAGE_SOURCE_ORDER)
    sources = [image_source(name, limiter=limiter) for name in names]
    return [CachedSource(source) for source in sources] if cached else sources


def fetch_cutout(*, ra: float, dec: float, fov_arcmin: float, order: Sequence[str] | None = None,
                 limiter: RateLimiter | None = None) -> FetchedImage:
    """Try each source in order; the first image wins. When all fail, one error tells what each said."""
    chain = image_source_chain(order, limiter=limiter)
    if not chain:
        raise ImageSourceError("No image source is configured.")
    errors: list[ImageSourceError] = []
    for source in chain:
        try:
            return source.fetch(ra=ra, dec=dec, fov_arcmin=fov_arcmin)
        except ImageSourceError as exc:
            logger.info("image source gave no image, trying the next",
                        extra={"source": source.name, "error": exc.message})
            errors.append(exc)
    raise ImageSourceError(" ".join(e.message for e in errors), retryable=any(e.retryable for e in errors))
