"""Reads from the catalogue: look-ups by PGC, name (local aliases, then remote) and sky position."""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

from django.db.models import Count, Q

from .coordinates import CoordinateError, parse_field, parse_position
from .models import Galaxy, GalaxyAlias, GalaxySource
from .names import normalise_name, pgc_from_key

logger = logging.getLogger(__name__)

DEFAULT_FIELD_ARCMIN = 3.0
NEAREST_GALAXY_RADIUS_ARCMIN = 1.0
MAX_NAME_CHARS = 128  # longer "names" are refused before any look-up (the APIs answer 414)


class GalaxyNotFound(LookupError):
    """No galaxy matches; the message is meant for the person who asked."""


class NameResolversUnreachable(GalaxyNotFound):
    """Not in the local catalogue, and no remote service could be asked: the APIs answer 503 with the reason
    (a GalaxyNotFound, so callers that know only that still answer instead of failing)."""


@dataclass(frozen=True)
class Target:
    """What a look-up found: a sky position and field, with the catalogue galaxy when there is one."""

    ra: float
    dec: float
    fov_arcmin: float
    pa: float | None = None
    name: str = ""
    pgc: int | None = None
    galaxy_id: int | None = None
    resolved_by: str = "catalogue"
    aliases: tuple[str, ...] = field(default_factory=tuple)

    @classmethod
    def from_galaxy(cls, galaxy: Galaxy, *, resolved_by: str = "catalogue") -> Target:
        return cls(
            ra=galaxy.ra, dec=galaxy.dec, fov_arcmin=galaxy.fov_arcmin, pa=galaxy.pa, name=galaxy.name,
            pgc=galaxy.pgc, galaxy_id=galaxy.pk, resolved_by=resolved_by,
        )


def galaxy_get_by_pgc(*, pgc: int) -> Galaxy:
    try:
        return Galaxy.objects.get(pgc=pgc)
    except Galaxy.DoesNotExist:
        raise GalaxyNotFound(f"Could not find PGC{pgc} in the database.") from None


def galaxy_find_local(*, name: str) -> Galaxy | None:
    """Local catalogue only: primary names, aliases, then a PGC/LEDA designation."""
    key = normalise_name(name)
    if not key:
        return None
    galaxy = Galaxy.objects.filter(name_key=key).order_by("pgc").first()
    if galaxy:
        return galaxy
    alias = GalaxyAlias.objects.filter(key=key).select_related("galaxy").order_by("galaxy__pgc").first()
    if alias:
        return alias.galaxy
    pgc = pgc_from_key(key)
    if pgc is not None:
        return Galaxy.objects.filter(pgc=pgc).first()
    # People type "Sombrero" for "Sombrero Galaxy".
    alias = GalaxyAlias.objects.filter(key=f"{key}GALAXY").select_related("galaxy").first()
    return alias.galaxy if alias else None


def target_resolve_name(*, name: str, use_remote: bool = True) -> Target:
    """Resolve a name: local aliases, then the remote resolvers, then a clear 'not found'."""
    cleaned = name.strip()
    if not cleaned or len(cleaned) > MAX_NAME_CHARS:
        raise GalaxyNotFound(f"Give an object name of 1 to {MAX_NAME_CHARS} characters.")
    galaxy = galaxy_find_local(name=cleaned)
    if galaxy:
        return Target.from_galaxy(galaxy)
    if use_remote:
        from .resolvers import ResolverUnavailable, resolve_remote

        try:
            remote = resolve_remote(cleaned)
        except ResolverUnavailable as exc:
            logger.warning("remote resolvers unavailable", extra={"object_name": cleaned, "error": str(exc)})
            raise NameResolversUnreachable(
                f"Could not find object {cleaned} in the local catalogue, and the remote name resolvers "
                f"are unreachable ({exc})."
            ) from None
        if remote is not None:
            if remote.pgc is not None:
                known = Galaxy.objects.filter(pgc=remote.pgc).first()
                if known:
                    return Target.from_galaxy(known, resolved_by=remote.service)
            return Target(
                ra=remote.ra, dec=remote.dec, fov_arcmin=DEFAULT_FIELD_ARCMIN, name=cleaned, pgc=remote.pgc,
                resolved_by=remote.service, aliases=tuple(remote.aliases),
            )
    raise GalaxyNotFound(f"Could not find object {cleaned}.")


def galaxy_nearest(*, ra: float, dec: float, radius_arcmin: float) -> Galaxy | None:
    """The catalogue galaxy closest to a position within a radius (box pre-filter, exact separation)."""
    radius_deg = radius_arcmin / 60.0
    cos_dec = max(math.cos(math.radians(dec)), 1e-6)
    ra_half_width = min(radius_deg / cos_dec, 180.0)
    box = Q(dec__gte=dec - radius_deg, dec__lte=dec + radius_deg)
    low, high = ra - ra_half_width, ra + ra_half_width
    if low < 0:
        box &= Q(ra__gte=low + 360) | Q(ra__lte=high)
    elif high >= 360:
        box &= Q(ra__gte=low) | Q(ra__lte=high - 360)
    else:
        box &= Q(ra__gte=low, ra__lte=high)
    best: tuple[float, Galaxy] | None = None
    for galaxy in Galaxy.objects.filter(box)[:500]:
        separation = _separation_deg(ra, dec, galaxy.ra, galaxy.dec)
        if separation <= radius_deg and (best is None or separation < best[0]):
            best = (separation, galaxy)
    return best[1] if best else None


def _separation_deg(ra1: float, dec1: float, ra2: float, dec2: float) -> float:
    """Great-circle distance (haversine), stable for the small separations used here."""
    phi1, phi2 = math.radians(dec1), math.radians(dec2)
    dphi, dlam = phi2 - phi1, math.radians(ra2 - ra1)
    a = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlam / 2) ** 2
    return math.degrees(2 * math.asin(min(1.0, math.sqrt(a))))


def target_resolve_position(*, position: str, field: str | float | None = None) -> Target:
    """A typed position (degrees or sexagesimal) with an optional field size and units.

    Raises CoordinateError with a message for the user when either part cannot be read.
    """
    sky = parse_position(position)
    fov = parse_field(field) if field not in (None, "") else None
    galaxy = galaxy_nearest(ra=sky.ra_deg, dec=sky.dec_deg, radius_arcmin=NEAREST_GALAXY_RADIUS_ARCMIN)
    if galaxy:
        target = Target.from_galaxy(galaxy, resolved_by="position")
        return Target(**{**target.__dict__, "ra": sky.ra_deg, "dec": sky.dec_deg, "fov_arcmin": fov or target.fov_arcmin})
    return Target(ra=sky.ra_deg, dec=sky.dec_deg, fov_arcmin=fov or DEFAULT_FIELD_ARCMIN, resolved_by="position")


def target_resolve(*, query: str) -> Target:
    """One search box: a PGC number, a name or a position, tried in that order."""
    text = query.strip()
    # ASCII digits only: str.isdigit() also accepts "²", which int() refuses, and "٣", which nobody means.
    if text.isascii() and text.isdigit():
        return Target.from_galaxy(galaxy_get_by_pgc(pgc=int(text)))
    try:
        return target_resolve_position(position=text)
    except CoordinateError:
        return target_resolve_name(name=text)


def catalogue_counts() -> dict[str, int]:
    rows = Galaxy.objects.values("source").annotate(n=Count("id"))
    counts = {row["source"]: row["n"] for row in rows}
    return {source.value: counts.get(source.value, 0) for source in GalaxySource}
