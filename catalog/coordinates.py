"""Parsing of sky positions and field sizes typed by people: degrees or sexagesimal, with units."""
from __future__ import annotations

import re
from dataclasses import dataclass

import astropy.units as u
from astropy.coordinates import Angle, SkyCoord

_SEXAGESIMAL_HINT = re.compile(r"[hms:dD°'\"]")


class CoordinateError(ValueError):
    """A position or field size that cannot be understood; the message says why."""


@dataclass(frozen=True)
class SkyPosition:
    ra_deg: float
    dec_deg: float


def parse_position(text: str) -> SkyPosition:
    """Parse ``"161.5 41.27"``, ``"10h42m +41d16m"``, ``"10:42:00 +41:16:00"`` and the like.

    Bare numbers are degrees; sexagesimal RA is in hours, as astronomers write it.
    """
    cleaned = " ".join(text.replace(",", " ").split())
    if not cleaned:
        raise CoordinateError("Empty position: give RA and Dec, e.g. '161.5 41.27' or '10h42m +41d16m'.")
    parts = cleaned.split(" ")
    if len(parts) != 2 and not _SEXAGESIMAL_HINT.search(cleaned):
        raise CoordinateError(f"Could not read a position from {text!r}: expected two values, RA and Dec.")
    try:
        if _SEXAGESIMAL_HINT.search(cleaned) or len(parts) > 2:
            coord = SkyCoord(cleaned, unit=(u.hourangle, u.deg), frame="icrs")
        else:
            # Check before astropy, which would silently wrap an RA of 400 to 40.
            return check_position(float(parts[0]), float(parts[1]))
    except (ValueError, TypeError) as exc:
        raise CoordinateError(f"Could not read a position from {text!r}: {exc}") from None
    return check_position(float(coord.ra.deg), float(coord.dec.deg))


def parse_angle(value: str | float, *, unit: u.Unit, name: str) -> float:
    """One coordinate in degrees; strings may be sexagesimal (``unit`` applies to bare numbers)."""
    try:
        if isinstance(value, str):
            value = value.strip()
            if not value:
                raise CoordinateError(f"{name} is empty.")
            angle = Angle(value, unit=unit) if _SEXAGESIMAL_HINT.search(value) else Angle(float(value), unit=u.deg)
        else:
            angle = Angle(float(value), unit=u.deg)
    except (ValueError, TypeError, u.UnitsError) as exc:
        raise CoordinateError(f"Could not read {name} from {value!r}: {exc}") from None
    return float(angle.deg)


def check_position(ra_deg: float, dec_deg: float) -> SkyPosition:
    if not (0.0 <= ra_deg < 360.0) or ra_deg != ra_deg:
        raise CoordinateError(f"RA must be in [0, 360) degrees, got {ra_deg}.")
    if not (-90.0 <= dec_deg <= 90.0) or dec_deg != dec_deg:
        raise CoordinateError(f"Dec must be in [-90, 90] degrees, got {dec_deg}.")
    return SkyPosition(ra_deg=ra_deg, dec_deg=dec_deg)


_FIELD_UNITS = {
    "arcmin": u.arcmin, "amin": u.arcmin, "'": u.arcmin, "m": u.arcmin,
    "arcsec": u.arcsec, "asec": u.arcsec, '"': u.arcsec, "s": u.arcsec,
    "deg": u.deg, "degree": u.deg, "degrees": u.deg, "d": u.deg, "°": u.deg,
}
_FIELD = re.compile(r"^\s*(?P<value>[0-9]*\.?[0-9]+(?:[eE][-+]?\d+)?)\s*(?P<unit>[a-zA-Z°'\"]*)\s*$")
MAX_FIELD_ARCMIN = 180.0  # the original capped cut-outs at 3 degrees


def parse_field(value: str | float, *, default_unit: str = "arcmin") -> float:
    """A field size such as ``"5"``, ``"30 arcsec"``, ``"0.1deg"``, returned in arcmin."""
    text = str(value)
    match = _FIELD.match(text)
    if not match:
        raise CoordinateError(f"Could not read a field size from {text!r}; use e.g. '5 arcmin', '30 arcsec', '0.1 deg'.")
    unit_name = (match["unit"] or default_unit).lower()
    unit = _FIELD_UNITS.get(unit_name)
    if unit is None:
        raise CoordinateError(f"Unknown field unit {match['unit']!r}; use arcmin, arcsec or deg.")
    arcmin = float((float(match["value"]) * unit).to(u.arcmin).value)
    if not 0.0 < arcmin <= MAX_FIELD_ARCMIN:
        raise CoordinateError(f"The field must be larger than 0 and at most {MAX_FIELD_ARCMIN:g} arcmin, got {arcmin:g}.")
    return arcmin
