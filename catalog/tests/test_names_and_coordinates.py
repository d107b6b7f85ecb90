"""Name normalisation and coordinate/field parsing, without a database."""
import pytest

from catalog.coordinates import CoordinateError, parse_field, parse_position
from catalog.names import normalise_name, pgc_from_key


@pytest.mark.parametrize(
    ("raw", "key"),
    [("M33", "M33"), ("m 33", "M33"), ("Messier 33", "M33"), ("NGC 598", "NGC598"), ("NGC0598", "NGC598"),
     ("ngc0598", "NGC598"), ("PGC 005818", "PGC5818"), ("LEDA 5818", "PGC5818"), ("UGC 01117", "UGC1117"),
     ("Triangulum Galaxy", "TRIANGULUMGALAXY"), ("NGC 5194A", "NGC5194A"), ("MCG +05-04-069", "MCG+05-04-069")],
)
def test_normalise_name(raw: str, key: str) -> None:
    assert normalise_name(raw) == key


def test_pgc_from_key() -> None:
    assert pgc_from_key("PGC5818") == 5818
    assert pgc_from_key("NGC598") is None


@pytest.mark.parametrize(
    ("text", "ra", "dec"),
    [("10h42m +41d16m", 160.5, 41.26667), ("10:42:00 +41:16:00", 160.5, 41.26667), ("161.5 41.27", 161.5, 41.27),
     ("01h33m50.9s +30d39m37s", 23.46208, 30.66028), ("0 -90", 0.0, -90.0), ("161.5, -41.27", 161.5, -41.27)],
)
def test_parse_position(text: str, ra: float, dec: float) -> None:
    position = parse_position(text)
    assert position.ra_deg == pytest.approx(ra, abs=1e-4)
    assert position.dec_deg == pytest.approx(dec, abs=1e-4)


@pytest.mark.parametrize("text", ["", "abc", "400 20", "10 95", "-1 0", "nan 3", "10h42m", "1 2 3 4 x"])
def test_parse_position_rejects_malformed(text: str) -> None:
    with pytest.raises(CoordinateError) as excinfo:
        parse_position(text)
    assert str(excinfo.value)


@pytest.mark.parametrize(("text", "arcmin"), [("5", 5.0), (5, 5.0), ("30 arcsec", 0.5), ("0.1deg", 6.0), ("2'", 2.0)])
def test_parse_field(text: str | float, arcmin: float) -> None:
    assert parse_field(text) == pytest.approx(arcmin)


@pytest.mark.parametrize("text", ["0", "-3", "5 parsec", "abc", "200 deg"])
def test_parse_field_rejects(text: str) -> None:
    with pytest.raises(CoordinateError):
        parse_field(text)
