"""Image sources against a local server that speaks SkyServer's and the Legacy Survey's protocols."""
import time

import pytest

from catalog.imaging import load_image
from catalog.sources import (
    CachedSource, ImageSourceError, LegacySurveySource, LocalFileSource, SdssCutoutSource, fetch_cutout,
    legacy_cutout_params, sdss_cutout_params,
)


@pytest.mark.parametrize(
    ("fov", "scale", "npix"),
    [(5.0, 0.25, 1200), (266.74, 8.0, 2000), (0.1, 0.25, 64), (8.6, 0.5, 1032)],
)
def test_sdss_pixel_scale_rule(fov: float, scale: float, npix: int) -> None:
    assert sdss_cutout_params(fov_arcmin=fov) == (scale, npix)


def test_legacy_params_stay_small() -> None:
    assert legacy_cutout_params(fov_arcmin=2.0) == (0.262, 458)
    scale, npix = legacy_cutout_params(fov_arcmin=30.0)
    assert npix == 512 and scale == pytest.approx(30 * 60 / 512)


def test_sdss_client_speaks_getjpeg(fake_services) -> None:
    fetched = SdssCutoutSource(fake_services.url("sdss"), timeout=2).fetch(ra=23.4621, dec=30.66, fov_arcmin=5)
    params = fake_services.last_params["sdss"]
    assert (params["scale"], params["width"], params["height"]) == ("0.25", "1200", "1200")
    assert load_image(fetched.data, max_bytes=10**7).width == 1200 and fetched.source == "sdss"


def test_legacy_client_speaks_jpeg_cutout(fake_services) -> None:
    fetched = LegacySurveySource(fake_services.url("legacy"), timeout=2).fetch(ra=10, dec=-45, fov_arcmin=2)
    assert fake_services.last_params["legacy"]["layer"] == "ls-dr10"
    assert load_image(fetched.data).width == 458


def test_timeout_is_a_clear_error(fake_services) -> None:
    fake_services.behaviours["sdss"].delay_s = 1.5
    source = SdssCutoutSource(fake_services.url("sdss"), timeout=0.3, retries=0)
    started = time.perf_counter()
    with pytest.raises(ImageSourceError, match="did not answer within 0.3 s") as excinfo:
        source.fetch(ra=1, dec=1, fov_arcmin=1)
    assert excinfo.value.retryable and time.perf_counter() - started < 1.4


def test_retries_after_server_errors(fake_services) -> None:
    fake_services.behaviours["sdss"].failures_before_success = 2
    source = SdssCutoutSource(fake_services.url("sdss"), timeout=2, retries=2, backoff=0.01)
    assert source.fetch(ra=1, dec=1, fov_arcmin=1).data.startswith(b"\xff\xd8")
    assert fake_services.requests["sdss"] == 3


def test_garbage_body_is_a_clear_error(fake_services) -> None:
    fake_services.behaviours["sdss"].garbage = True
    with pytest.raises(ImageSourceError, match="returned a web page instead of an image"):
        SdssCutoutSource(fake_services.url("sdss"), timeout=2).fetch(ra=1, dec=1, fov_arcmin=1)


def test_cache_avoids_a_second_request(fake_services) -> None:
    source = CachedSource(SdssCutoutSource(fake_services.url("sdss"), timeout=2))
    first = source.fetch(ra=5, dec=5, fov_arcmin=1)
    second = source.fetch(ra=5, dec=5, fov_arcmin=1)
    assert first.data == second.data and fake_services.requests["sdss"] == 1


def test_falls_back_to_legacy_survey_outside_the_sdss_footprint(fake_services) -> None:
    fake_services.behaviours["sdss"].dec_footprint = (-20.0, 90.0)
    fetched = fetch_cutout(ra=10.0, dec=-60.0, fov_arcmin=5.0)
    assert fetched.source == "legacysurvey"
    assert fake_services.requests["sdss"] == 1 and fake_services.requests["legacy"] == 1


def test_every_source_down_reports_each_failure(fake_services, settings) -> None:
    for name in ("sdss", "legacy"):
        fake_services.behaviours[name].failures_before_success = 10
    settings.REMOTE_RETRIES = 0
    with pytest.raises(ImageSourceError) as excinfo:
        fetch_cutout(ra=10.0, dec=10.0, fov_arcmin=5.0)
    assert "SDSS image service failed (HTTP 500)" in str(excinfo.value)
    assert "Legacy Survey image service failed (HTTP 500)" in str(excinfo.value)


def test_local_source_refuses_path_traversal(tmp_path) -> None:
    (tmp_path / "a.png").write_bytes(b"x")
    source = LocalFileSource(tmp_path)
    assert source.read("a.png") == b"x"
    with pytest.raises(ImageSourceError, match="outside"):
        source.read("../../etc/passwd")
