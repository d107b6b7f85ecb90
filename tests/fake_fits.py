"""A local Legacy Survey viewer ``fits-cutout`` server for the Zoo's ingestion tests: FITS cubes of synthetic
inclined galaxies in nanomaggies, with bands missing, a footprint and failures on request."""
from __future__ import annotations

import io
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from tests.fake_services import FakeServer, QuietHandler


@dataclass
class FakeSkyGalaxy:
    """A galaxy the fake FITS service draws at its position: astronomical PA (north through east), inclination
    (Holmberg axis ratio, q0 = 0.2) and D25 in arcmin."""

    ra: float
    dec: float
    pa: float = 30.0
    inclination: float = 60.0
    d25_arcmin: float = 1.0


def fits_cutout_bytes(*, galaxy: FakeSkyGalaxy, npix: int, pixscale: float, bands: str,
                      observed: str = "griz", seed: int = 0) -> bytes:
    """A Legacy-Survey-like ``fits-cutout``: a (bands, npix, npix) float32 cube in nanomaggies, rows bottom-up
    (FITS order), headers ``BANDS`` and ``BAND0``…; a band outside ``observed`` is all zeros, as the viewer sends.

    The galaxy is an exponential disk (scale length D25 / 6.4) with a bulge, redder in i and z, at ``pa`` measured
    from north (up) towards east (left), plus a field star and sky noise."""
    from astropy.io import fits

    y, x = np.mgrid[0:npix, 0:npix].astype(np.float64)
    x -= (npix - 1) / 2
    y -= (npix - 1) / 2  # display orientation: y grows downwards (south)
    pa = np.radians(galaxy.pa)
    along = -x * np.sin(pa) - y * np.cos(pa)  # towards the PA: up and to the left
    across = -x * np.cos(pa) + y * np.sin(pa)
    cos_i = np.cos(np.radians(galaxy.inclination))
    q = np.sqrt(cos_i**2 * (1 - 0.04) + 0.04)
    scale_px = galaxy.d25_arcmin * 60.0 / 6.4 / pixscale
    disk = 3.0 * np.exp(-np.hypot(along, across / q) / scale_px)
    bulge = 6.0 * np.exp(-(np.hypot(along, across / max(q, 0.6)) / (0.15 * scale_px)) ** 2)
    star = 20.0 * np.exp(-((x - npix * 0.3) ** 2 + (y + npix * 0.28) ** 2) / 4.0)
    colour = {"g": (0.55, 0.4), "r": (1.0, 1.0), "i": (1.25, 1.5), "z": (1.4, 1.8)}
    rng = np.random.default_rng(seed)
    planes = []
    for band in bands:
        disk_k, bulge_k = colour.get(band, (1.0, 1.0))
        plane = disk_k * disk + bulge_k * bulge + star + rng.normal(0.0, 0.03, (npix, npix))
        planes.append(plane if band in observed else np.zeros((npix, npix)))
    cube = np.asarray(planes, dtype=np.float32)[:, ::-1, :]  # FITS rows run bottom-up
    header = fits.Header()
    header["BANDS"] = bands
    for k, band in enumerate(bands):
        header[f"BAND{k}"] = band
    header["PIXSCALE"] = pixscale
    buffer = io.BytesIO()
    fits.PrimaryHDU(data=np.ascontiguousarray(cube), header=header).writeto(buffer)
    return buffer.getvalue()


class _FitsHandler(QuietHandler):
    """The Legacy Survey viewer's ``fits-cutout``, for ``FakeLegacyFitsService``."""

    def do_GET(self) -> None:  # noqa: N802
        path, params = self._query()
        if not path.endswith("/fits-cutout"):
            self._not_found()
            return
        fake = self.fake
        with fake._lock:
            fake.request_times.append(time.monotonic())
            fake.params.append(params)
            fail = fake.failures_before_success > 0
            fake.failures_before_success -= int(fail)
        if fail:
            self._send(500, b"<html>Internal Server Error</html>", "text/html")
            return
        try:
            ra, dec = float(params["ra"]), float(params["dec"])
            npix, pixscale = int(params.get("size", 256)), float(params.get("pixscale", 0.262))
            bands = params.get("bands", "grz")
        except (KeyError, ValueError):
            self._send(400, b"<html>bad request</html>", "text/html")
            return
        if not 0 < npix <= 3000 or not bands or any(b not in "grizy" for b in bands):
            self._send(400, b"<html>bad size or bands</html>", "text/html")
            return
        low, high = fake.dec_footprint
        observed = fake.observed if low <= dec <= high else ""
        body = fits_cutout_bytes(galaxy=fake.galaxy_at(ra, dec), npix=npix, pixscale=pixscale, bands=bands,
                                 observed=observed, seed=int(abs(ra * 1000 + dec * 10)) % 2**31)
        self._send(200, body, "image/fits")


@dataclass
class FakeLegacyFitsService(FakeServer):
    """The Legacy Survey viewer's ``GET /viewer/fits-cutout?ra=&dec=&layer=&pixscale=&size=&bands=`` on its own
    local server. Galaxies in ``sky`` are drawn where they are (nearest within 1′), elsewhere a default one.

    ``observed`` names the bands that have data (the rest come back as zero planes), ``dec_footprint`` the sky
    with any data (outside it: all planes zero), ``failures_before_success`` answers HTTP 500 first. Every
    request's time is kept in ``request_times`` (rate-limit checks) and its parameters in ``params``.

    Use it as ``with FakeLegacyFitsService() as fits_fake: fits_fake.configure(settings)``.
    """

    sky: list[FakeSkyGalaxy] = field(default_factory=list)
    observed: str = "griz"
    dec_footprint: tuple[float, float] = (-90.0, 90.0)
    failures_before_success: int = 0
    request_times: list[float] = field(default_factory=list)
    params: list[dict] = field(default_factory=list)
    handler: ClassVar[type[QuietHandler]] = _FitsHandler

    def __post_init__(self) -> None:
        self._serve()

    def galaxy_at(self, ra: float, dec: float) -> FakeSkyGalaxy:
        for galaxy in self.sky:
            if abs(galaxy.dec - dec) < 1 / 60 and abs((galaxy.ra - ra + 180) % 360 - 180) < 1 / 60:
                return galaxy
        return FakeSkyGalaxy(ra=ra, dec=dec)

    @property
    def url(self) -> str:
        return f"{self.base}/viewer/fits-cutout"

    def configure(self, settings: Any) -> None:
        settings.LEGACY_SURVEY_FITS_URL = self.url
