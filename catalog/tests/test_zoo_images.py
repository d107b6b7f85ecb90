"""The Zoo's images of catalogue galaxies: Legacy Survey FITS cut-outs (fake service) turned into colour and
g, r, i images, aligned by the catalogue PA, at least 256 px, resumable, with a JPEG fallback and a rate limit."""
from __future__ import annotations

import io
import math
import time

import numpy as np
import pytest
from PIL import Image

from catalog.models import GalaxyImage
from catalog.services import galaxy_fetch_zoo_images, zoo_images_present
from catalog.sources import ImageSourceError, RateLimiter, legacy_fits_source, read_fits_bands
from tests.fake_fits import FakeLegacyFitsService, FakeSkyGalaxy, fits_cutout_bytes

from .factories import GalaxyFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def fits_fake(settings):  # noqa: ANN001, ANN201
    with FakeLegacyFitsService() as fake:
        fake.configure(settings)
        settings.REMOTE_RETRIES = 1
        settings.REMOTE_TIMEOUT_S = 5.0
        yield fake


def _pixels(image: GalaxyImage) -> np.ndarray:
    with image.file.open("rb") as handle:
        return np.asarray(Image.open(io.BytesIO(handle.read())))


def _major_axis(grey: np.ndarray) -> tuple[float, float]:
    """Angle of the bright region's major axis from horizontal (degrees, on screen) and its axis ratio."""
    yy, xx = np.mgrid[0:grey.shape[0], 0:grey.shape[1]]
    central = np.hypot(yy - grey.shape[0] / 2, xx - grey.shape[1] / 2) < grey.shape[0] / 3  # not the field star
    mask = central & (grey.astype(float) > np.percentile(grey[central], 95))
    ys, xs = np.nonzero(mask)
    xs, ys = xs - xs.mean(), ys - ys.mean()
    cov = np.cov(np.vstack([xs, ys]))
    values, vectors = np.linalg.eigh(cov)
    major = vectors[:, 1]
    angle = math.degrees(math.atan2(-major[1], major[0])) % 180
    return min(angle, 180 - angle), math.sqrt(values[0] / values[1])


def test_fits_bands_are_read_in_display_orientation() -> None:
    galaxy = FakeSkyGalaxy(ra=10, dec=10, pa=0.0, inclination=80)  # major axis north-south
    bands = read_fits_bands(fits_cutout_bytes(galaxy=galaxy, npix=64, pixscale=2.0, bands="gri", observed="gr"),
                            requested="gri")
    assert set(bands) == {"g", "r"}  # i not observed: a zero plane, left out
    r = bands["r"]
    assert r.shape == (64, 64) and r.dtype == np.float32
    # The field star sits up and to the right of the centre on screen: row 0 is north after reading.
    peak_row, peak_col = np.unravel_index(np.argmax(np.where(np.abs(np.arange(64) - 31.5)[None, :] > 10, r, 0)),
                                          r.shape)
    assert peak_row < 32 and peak_col > 32
    with pytest.raises(ImageSourceError):
        read_fits_bands(b"<html>down</html>", requested="gri")
    with pytest.raises(ImageSourceError):
        read_fits_bands(b"SIMPLE  = T broken", requested="gri")


@pytest.mark.parametrize("pa", [0.0, 30.0, 125.0])
def test_zoo_images_are_aligned_sized_and_resumable(fits_fake, pa) -> None:  # noqa: ANN001
    galaxy = GalaxyFactory(ra=150.0, dec=2.0, pa=pa, d25_arcmin=1.2)
    fits_fake.sky.append(FakeSkyGalaxy(ra=150.0, dec=2.0, pa=pa, inclination=75, d25_arcmin=1.2))
    report = galaxy_fetch_zoo_images(galaxy=galaxy, size=256)
    assert not report.skipped and report.bands == "gri" and sorted(report.kinds) == ["colour", "g", "i", "r"]
    images = {image.kind: image for image in GalaxyImage.objects.filter(galaxy=galaxy)}
    assert set(images) == {"colour", "g", "r", "i"}
    for kind, image in images.items():
        pixels = _pixels(image)
        assert pixels.shape[:2] == (256, 256) and (image.width, image.height) == (256, 256)
        assert pixels.ndim == (3 if kind == "colour" else 2)
        assert image.source == "zoo-legacysurvey" and image.rotation_deg == pytest.approx((pa + 90) % 180)
        assert image.fov_arcmin == pytest.approx(3.6)
    angle, ratio = _major_axis(_pixels(images["r"]))
    assert angle < 6, f"major axis {angle:.1f}° from horizontal"
    assert ratio < 0.6  # an inclined disk, not a round blob
    colour = _pixels(images["colour"]).astype(int)
    assert colour[..., 0].mean() > colour[..., 2].mean()  # redder in i than in g, as the galaxy is
    # The FITS request: the catalogue field widened for the turn, ``bands=gri``.
    assert fits_fake.params[0]["bands"] == "gri"
    assert int(fits_fake.params[0]["size"]) >= (256 if pa % 180 == 90 else 364)
    # Again: nothing is fetched or stored twice.
    before = len(fits_fake.request_times)
    assert galaxy_fetch_zoo_images(galaxy=galaxy, size=256).skipped
    assert len(fits_fake.request_times) == before and GalaxyImage.objects.filter(galaxy=galaxy).count() == 4


def test_without_i_the_bands_come_from_grz(fits_fake) -> None:  # noqa: ANN001
    fits_fake.observed = "grz"
    galaxy = GalaxyFactory(ra=20.0, dec=-5.0, pa=10.0, d25_arcmin=1.0)
    report = galaxy_fetch_zoo_images(galaxy=galaxy, size=256)
    assert report.bands == "grz" and [p["bands"] for p in fits_fake.params] == ["gri", "grz"]
    assert set(GalaxyImage.objects.filter(galaxy=galaxy).values_list("kind", flat=True)) == {"colour", "g", "r"}


def test_outside_the_fits_footprint_the_colour_jpeg_is_used(fits_fake, fake_services) -> None:  # noqa: ANN001
    fits_fake.dec_footprint = (-90.0, -30.0)
    galaxy = GalaxyFactory(ra=200.0, dec=40.0, pa=60.0, d25_arcmin=1.0)
    report = galaxy_fetch_zoo_images(galaxy=galaxy, size=256)
    assert report.kinds == ["colour"] and report.source == "sdss"
    (image,) = GalaxyImage.objects.filter(galaxy=galaxy)
    assert image.source == "zoo-sdss" and _pixels(image).shape == (256, 256, 3)
    assert zoo_images_present(galaxy_id=galaxy.id)


def test_no_image_anywhere_is_an_error(fits_fake, fake_services) -> None:  # noqa: ANN001
    fits_fake.dec_footprint = (-90.0, -30.0)
    for service in ("sdss", "legacy"):
        fake_services.behaviours[service].dec_footprint = (-90.0, -30.0)
    galaxy = GalaxyFactory(ra=200.0, dec=40.0)
    with pytest.raises(ImageSourceError):
        galaxy_fetch_zoo_images(galaxy=galaxy, size=256)
    assert not GalaxyImage.objects.filter(galaxy=galaxy).exists()
    with pytest.raises(ValueError):
        galaxy_fetch_zoo_images(galaxy=galaxy, size=128)


def test_rate_limiter_spaces_requests(fits_fake) -> None:  # noqa: ANN001
    source = legacy_fits_source(limiter=RateLimiter(8.0))
    started = time.monotonic()
    for _ in range(5):
        source.fetch_bands(ra=1.0, dec=1.0, pixel_scale=1.0, npix=32, bands="gri")
    assert time.monotonic() - started >= 4 / 8.0 - 0.02
    gaps = np.diff(fits_fake.request_times)
    assert gaps.min() >= 1 / 8.0 - 0.02
    assert RateLimiter(0).wait() == 0.0  # no limit
