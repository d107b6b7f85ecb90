"""Remote name resolution against local servers that speak Sesame's XML and NED's ObjectLookup JSON."""
import pytest

from catalog.resolvers import NedResolver, ResolverUnavailable, SesameResolver, resolve_remote
from catalog.selectors import GalaxyNotFound, target_resolve_name


def test_sesame_finds_m33_with_its_pgc(fake_services) -> None:
    found = SesameResolver(fake_services.url("sesame"), timeout=2).resolve("M33")
    assert found.pgc == 5818 and found.ra == pytest.approx(23.462, abs=1e-3) and "NGC 598" in found.aliases


def test_ned_finds_m33(fake_services) -> None:
    found = NedResolver(fake_services.url("ned"), timeout=2).resolve("M33")
    assert found.ra == pytest.approx(23.462, abs=1e-3) and found.service == "ned"


def test_unknown_names_are_none(fake_services) -> None:
    assert SesameResolver(fake_services.url("sesame"), timeout=2).resolve("Nowhere 1") is None
    assert NedResolver(fake_services.url("ned"), timeout=2).resolve("Nowhere 1") is None
    assert resolve_remote("Nowhere 1") is None


def test_falls_back_to_ned_when_sesame_is_down(fake_services) -> None:
    fake_services.behaviours["sesame"].failures_before_success = 5
    assert resolve_remote("M33").service == "ned"


def test_both_down_is_unavailable(fake_services) -> None:
    fake_services.behaviours["sesame"].failures_before_success = 5
    fake_services.behaviours["ned"].garbage = True
    with pytest.raises(ResolverUnavailable):
        resolve_remote("M33")


def test_timeout_is_honoured(fake_services) -> None:
    fake_services.behaviours["sesame"].delay_s = 1.0
    with pytest.raises(ResolverUnavailable, match=r"did not answer within 0\.2 s"):
        SesameResolver(fake_services.url("sesame"), timeout=0.2).resolve("M33")


@pytest.mark.django_db
def test_names_missing_locally_resolve_remotely(fake_services) -> None:
    target = target_resolve_name(name="ESO 123-G45")
    assert target.pgc == 987654 and target.resolved_by == "sesame" and target.dec == pytest.approx(-58.5)


@pytest.mark.django_db
def test_unreachable_resolvers_give_a_clear_not_found(fake_services, settings) -> None:
    settings.SESAME_URL = settings.NED_LOOKUP_URL = "http://127.0.0.1:9/closed"
    with pytest.raises(GalaxyNotFound, match="remote name resolvers are unreachable"):
        target_resolve_name(name="ESO 123-G45")
