"""Writes to the catalogue: OpenNGC and HyperLEDA-style imports, galaxies from uploads and synthesis, and the
Zoo's images of catalogue galaxies (``galaxy_fetch_zoo_images``: colour and g, r, i from FITS cut-outs)."""
from __future__ import annotations

import csv
import hashlib
import io
import logging
import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import IO, Any

import numpy as np
from django.core.files.base import ContentFile
from django.db import reset_queries, transaction

from .imaging import encode_png
from .models import Galaxy, GalaxyAlias, GalaxyImage, GalaxySource
from .names import normalise_name
from .resolvers import LedaRecord

logger = logging.getLogger(__name__)


@dataclass
class ImportReport:
    created: int = 0
    updated: int = 0
    skipped: int = 0
    aliases: int = 0


def _aliases_for(dso: object) -> list[str]:
    """Every designation OpenNGC knows for an object: Messier, NGC, IC, common and other names."""
    messier, ngcs, ics, commons, others = dso.identifiers  # type: ignore[attr-defined]
    names: list[str] = []
    if messier:
        names.append(f"M{int(str(messier).upper().lstrip('M'))}")
    for group in (ngcs, ics, commons, others):
        names.extend(group or [])
    return names


def _pgc_from_aliases(aliases: Iterable[str]) -> int | None:
    for alias in aliases:
        key = normalise_name(alias)
        if key.startswith("PGC") and key[3:].isdigit():
            return int(key[3:])
    return None


def catalogue_import_openngc(*, progress: Callable[[int], None] | None = None) -> ImportReport:
    """Import every galaxy of the OpenNGC catalogue shipped in ``pyongc``. Idempotent.

    Galaxies with a PGC number are bulk-upserted on it; the few without one are matched by name.
    """
    from pyongc import ongc

    report = ImportReport()
    by_pgc: dict[int, tuple[Galaxy, list[str]]] = {}
    without_pgc: list[tuple[Galaxy, list[str]]] = []
    for dso in ongc.listObjects(type="G"):
        aliases = [dso.name, *_aliases_for(dso)]
        ra_rad, dec_rad = dso.rad_coords
        pgc = _pgc_from_aliases(aliases)
        if ra_rad is None or dec_rad is None or (pgc is not None and pgc in by_pgc):
            report.skipped += 1  # no position, or a second component listed under the same PGC
            continue
        majax, _minax, pa = dso.dimensions
        galaxy = Galaxy(
            pgc=pgc, name=dso.name, name_key=normalise_name(dso.name), ra=math.degrees(ra_rad) % 360.0,
            dec=math.degrees(dec_rad), d25_arcmin=majax, pa=pa, morph_type=dso.hubble or "",
            source=GalaxySource.OPENNGC,
        )
        if pgc is None:
            without_pgc.append((galaxy, aliases))
        else:
            by_pgc[pgc] = (galaxy, aliases)
        if progress:
            progress(1)

    fields = ["name", "name_key", "ra", "dec", "d25_arcmin", "pa", "morph_type", "source", "updated_at"]
    with transaction.atomic():
        existing = set(Galaxy.objects.filter(pgc__in=by_pgc).values_list("pgc", flat=True))
        Galaxy.objects.bulk_create(
            [galaxy for galaxy, _ in by_pgc.values()], batch_size=2000,
            update_conflicts=True, unique_fields=["pgc"], update_fields=fields,
        )
        ids = dict(Galaxy.objects.filter(pgc__in=by_pgc).values_list("pgc", "id"))
        report.created += len(by_pgc) - len(existing)
        report.updated += len(existing)
        alias_rows = [
            GalaxyAlias(galaxy_id=ids[pgc], name=alias, key=normalise_name(alias))
            for pgc, (_, aliases) in by_pgc.items() for alias in aliases
        ]
        for galaxy, aliases in without_pgc:
            values = {field: getattr(galaxy, field) for field in fields if field != "updated_at"}
            saved, created = Galaxy.objects.update_or_create(
                pgc=None, name=galaxy.name, source=GalaxySource.OPENNGC, defaults=values
            )
            report.created += int(created)
            report.updated += int(not created)
            alias_rows.extend(GalaxyAlias(galaxy=saved, name=a, key=normalise_name(a)) for a in aliases)
        GalaxyAlias.objects.bulk_create(alias_rows, batch_size=5000, ignore_conflicts=True)
        report.aliases = len(alias_rows)
    logger.info("openngc import finished", extra={"galaxies_created": report.created, "galaxies_updated": report.updated})
    return report


LEDA_COLUMNS = ("pgc", "al2000", "de2000", "logd25", "pa", "objname")


class CatalogueFormatError(ValueError):
    """A catalogue file whose header or rows cannot be read; the message names the problem."""


def _optional_float(text: str) -> float | None:
    text = text.strip()
    if not text or text.lower() == "nan":
        return None
    value = float(text)
    return value if math.isfinite(value) else None


def _leda_rows(stream: IO[str]) -> Iterator[Galaxy]:
    reader = csv.reader(stream)
    try:
        header = [column.strip().lower() for column in next(reader)]
    except StopIteration:
        raise CatalogueFormatError("The CSV file is empty.") from None
    missing = [column for column in LEDA_COLUMNS if column not in header]
    if missing:
        raise CatalogueFormatError(f"The CSV header lacks the columns {', '.join(missing)}.")
    index = {column: header.index(column) for column in LEDA_COLUMNS}
    for line_number, row in enumerate(reader, start=2):
        if not row:
            continue
        try:
            pgc = int(row[index["pgc"]])
            ra = float(row[index["al2000"]]) * 15.0  # al2000 is in hours
            dec = float(row[index["de2000"]])
            logd25 = _optional_float(row[index["logd25"]])
            pa = _optional_float(row[index["pa"]])
        except (ValueError, IndexError) as exc:
            raise CatalogueFormatError(f"Line {line_number}: {exc}") from None
        if pgc <= 0 or not (0 <= ra < 360) or not (-90 <= dec <= 90):
            raise CatalogueFormatError(f"Line {line_number}: PGC, RA or Dec out of range.")
        name = row[index["objname"]].strip() or f"PGC{pgc}"
        yield Galaxy(
            pgc=pgc,
            name=name,
            name_key=normalise_name(name),
            ra=ra,
            dec=dec,
            d25_arcmin=0.1 * 10**logd25 if logd25 is not None else None,
            pa=pa,
            source=GalaxySource.LEDA,
        )


def catalogue_import_leda_csv(
    *, stream: IO[str] | IO[bytes], batch_size: int = 5000, progress: Callable[[int], None] | None = None
) -> ImportReport:
    """Stream a HyperLEDA-style CSV (``PGC, al2000 [h], de2000, logd25, pa, objname``) into the catalogue.

    Rows are upserted on PGC in batches, so memory stays bounded for millions of rows.
    Each batch is its own transaction: a format error stops the import with earlier batches kept.
    """
    text_stream = io.TextIOWrapper(stream, encoding="utf-8", newline="") if isinstance(stream.read(0), bytes) else stream
    report = ImportReport()
    batch: list[Galaxy] = []

    def flush() -> None:
        with transaction.atomic():
            Galaxy.objects.bulk_create(
                batch,
                update_conflicts=True,
                unique_fields=["pgc"],
                update_fields=["name", "name_key", "ra", "dec", "d25_arcmin", "pa", "updated_at"],
            )
        report.created += len(batch)  # upserted: new or refreshed
        reset_queries()  # with DEBUG on, Django keeps every (huge) bulk INSERT in memory otherwise
        if progress:
            progress(len(batch))
        batch.clear()

    for galaxy in _leda_rows(text_stream):  # type: ignore[arg-type]
        batch.append(galaxy)
        if len(batch) >= batch_size:
            flush()
    if batch:
        flush()
    return report


def galaxy_create_synthetic(*, name: str, ra: float, dec: float, d25_arcmin: float, pa: float, truth: dict) -> Galaxy:
    """A synthetic galaxy: no PGC number, a ``SYN-`` name, and its generator truth attached."""
    if not name.startswith("SYN-"):
        raise ValueError("Synthetic galaxy names start with 'SYN-' so they are never mistaken for real objects.")
    galaxy, _ = Galaxy.objects.update_or_create(
        name=name,
        source=GalaxySource.SYNTHETIC,
        defaults={
            "name_key": normalise_name(name), "ra": ra, "dec": dec, "d25_arcmin": d25_arcmin,
            "pa": pa, "truth": truth, "pgc": None,
        },
    )
    return galaxy


def galaxy_image_store(*, galaxy: Galaxy, kind: str, source: str, pixels: np.ndarray, rotation_deg: float = 0.0,
                       fov_arcmin: float | None = None) -> GalaxyImage:
    """Store (or keep) one image of a galaxy as PNG in Django storage; one per galaxy, kind and source."""
    existing = GalaxyImage.objects.filter(galaxy=galaxy, kind=kind, source=source).first()
    if existing:
        return existing
    data = encode_png(pixels)
    image = GalaxyImage(galaxy=galaxy, kind=kind, source=source, width=pixels.shape[1], height=pixels.shape[0],
                        sha256=hashlib.sha256(data).hexdigest(), rotation_deg=rotation_deg, fov_arcmin=fov_arcmin)
    image.file.save(f"{galaxy.name}_{kind}_{source}.png", ContentFile(data), save=True)
    return image


# --- Zoo images of catalogue galaxies (the Zoo's ingestion) ---------------------------------------

ZOO_IMAGE_PREFIX = "zoo-"  # GalaxyImage.source of the images made for volunteers: "zoo-legacysurvey", ...
ZOO_FIELD_D25 = 3.0  # the original's field: 3 × D25 (2′ when unknown), at most 3°
ZOO_FIELD_MAX_ARCMIN = 180.0


@dataclass
class ZooImagesReport:
    """What ``galaxy_fetch_zoo_images`` did for one galaxy."""

    galaxy_id: int
    skipped: bool = False  # it already had its Zoo images
    kinds: list[str] | None = None
    source: str = ""
    bands: str = ""  # the bands the grey and colour images came from, e.g. "gri", "grz"
    rotation_deg: float = 0.0


def zoo_field_arcmin(galaxy: Galaxy) -> float:
    return min(ZOO_FIELD_D25 * (galaxy.d25_arcmin or 2.0), ZOO_FIELD_MAX_ARCMIN)


def zoo_rotation_deg(galaxy: Galaxy) -> float:
    """Clockwise turn that lays the major axis horizontal: the catalogue PA + 90 (none without a PA)."""
    return (float(galaxy.pa) + 90.0) % 180.0 if galaxy.pa is not None else 0.0


def zoo_images_present(*, galaxy_id: int) -> bool:
    return GalaxyImage.objects.filter(galaxy_id=galaxy_id, kind="colour", source__startswith=ZOO_IMAGE_PREFIX).exists()


def _request_npix(size: int, rotation_deg: float) -> int:
    """A field wide enough that turning it by any angle leaves no empty corner inside the central ``size``."""
    return size if rotation_deg % 180 == 0 else int(math.ceil(size * math.sqrt(2))) + 2


def _turn_and_crop(plane: np.ndarray, *, rotation_deg: float, size: int) -> np.ndarray:
    """Turn clockwise on screen (as ``imaging.rotate``) and keep the central ``size`` × ``size``."""
    from PIL import Image

    if rotation_deg % 180:
        if plane.ndim == 2:  # a float band: Pillow's 32-bit float mode keeps the values
            image = Image.fromarray(np.ascontiguousarray(plane, dtype=np.float32), mode="F")
            plane = np.asarray(image.rotate(-rotation_deg, resample=Image.Resampling.BICUBIC))
        else:
            plane = np.asarray(Image.fromarray(np.ascontiguousarray(plane)).rotate(
                -rotation_deg, resample=Image.Resampling.BICUBIC))
    top, left = (plane.shape[0] - size) // 2, (plane.shape[1] - size) // 2
    return np.ascontiguousarray(plane[top:top + size, left:left + size])


def zoo_colour_composite(g: np.ndarray, r: np.ndarray, red: np.ndarray) -> np.ndarray:
    """Lupton RGB of calibrated bands (``red`` is i, or z where i is missing): sky subtracted, one common scale
    (the 99.8th percentile of the mean), so colours keep their ratios and the disk's outskirts stay visible."""
    from .imaging import lupton_rgb

    skyless = [np.clip(band - np.median(band), 0, None) for band in (g, r, red)]
    scale = float(np.percentile((skyless[0] + skyless[1] + skyless[2]) / 3.0, 99.8)) or 1.0
    g_s, r_s, red_s = (band / scale for band in skyless)
    return lupton_rgb(g_s, r_s, red_s, stretch=0.1, Q=8.0)


def galaxy_fetch_zoo_images(*, galaxy: Galaxy, size: int = 512, limiter: Any = None) -> ZooImagesReport:
    """Fetch and store one galaxy's Zoo images: colour and g, r, i, ``size`` px square, major axis horizontal.

    The Legacy Survey FITS cut-out (``bands=gri``; ``grz`` where i is not observed) gives calibrated bands:
    each grey image is asinh-stretched (``imaging.asinh_stretch``, as the original's g/r/i PNGs), the colour
    image is a Lupton composite. Outside the FITS service's reach, the colour JPEG of the configured sources
    (SDSS, Legacy Survey) is used alone. Field 3 × D25, turned by PA + 90 before cropping, so the corners
    are sky. A galaxy that already has its Zoo images is skipped: a rerun continues where the last stopped.
    Raises ``ImageSourceError`` when no source has an image.
    """
    from .imaging import asinh_stretch
    from .sources import ImageSourceError, legacy_fits_source

    if size < 256:
        raise ValueError("Zoo images are at least 256 pixels square.")
    if zoo_images_present(galaxy_id=galaxy.id):
        return ZooImagesReport(galaxy_id=galaxy.id, skipped=True)
    fov = zoo_field_arcmin(galaxy)
    rotation = zoo_rotation_deg(galaxy)
    npix = _request_npix(size, rotation)
    pixel_scale = fov * 60.0 / size
    source = legacy_fits_source(limiter=limiter)
    try:
        fetched = source.fetch_bands(ra=galaxy.ra, dec=galaxy.dec, pixel_scale=pixel_scale, npix=npix, bands="gri")
        if not {"g", "r", "i"} <= fetched.bands.keys():
            wider = source.fetch_bands(ra=galaxy.ra, dec=galaxy.dec, pixel_scale=pixel_scale, npix=npix, bands="grz")
            fetched = wider if len(wider.bands) > len(fetched.bands) else fetched
    except ImageSourceError as fits_error:
        logger.info("no FITS cut-out, trying the colour JPEG", extra={"galaxy": galaxy.id, "error": fits_error.message})
        return _zoo_colour_only(galaxy=galaxy, size=size, fov=fov, rotation=rotation, limiter=limiter)
    planes = {name: _turn_and_crop(plane, rotation_deg=rotation, size=size) for name, plane in fetched.bands.items()}
    red_name = "i" if "i" in planes else "z" if "z" in planes else None
    stored: list[str] = []
    with transaction.atomic():
        for band in ("g", "r", "i"):
            if band in planes:
                galaxy_image_store(galaxy=galaxy, kind=band, source=ZOO_IMAGE_PREFIX + "legacysurvey",
                                   pixels=asinh_stretch(planes[band]), rotation_deg=rotation, fov_arcmin=fov)
                stored.append(band)
        if {"g", "r"} <= planes.keys() and red_name:
            colour = zoo_colour_composite(planes["g"], planes["r"], planes[red_name])
        else:  # one or two bands: their mean, grey
            colour = np.repeat(asinh_stretch(np.mean(list(planes.values()), axis=0))[:, :, None], 3, axis=2)
        # The colour image is written last: its presence marks the galaxy done (``zoo_images_present``).
        galaxy_image_store(galaxy=galaxy, kind="colour", source=ZOO_IMAGE_PREFIX + "legacysurvey", pixels=colour,
                           rotation_deg=rotation, fov_arcmin=fov)
    bands = "".join(sorted(planes, key="grizy".index)) if all(b in "grizy" for b in planes) else "".join(planes)
    return ZooImagesReport(galaxy_id=galaxy.id, kinds=[*stored, "colour"], source="legacysurvey-fits", bands=bands,
                           rotation_deg=rotation)


def _zoo_colour_only(*, galaxy: Galaxy, size: int, fov: float, rotation: float, limiter: Any) -> ZooImagesReport:
    """The colour JPEG of the first configured source that has the galaxy, turned, cropped and resized."""
    from .imaging import load_image, resize
    from .sources import fetch_cutout

    widen = _request_npix(size, rotation) / size
    cutout = fetch_cutout(ra=galaxy.ra, dec=galaxy.dec, fov_arcmin=fov * widen, limiter=limiter)
    rgb = load_image(cutout.data, max_bytes=len(cutout.data) + 1, max_pixels=20_000_000).pixels
    side = int(round(min(rgb.shape[:2]) / widen))
    colour = resize(_turn_and_crop(rgb, rotation_deg=rotation, size=side), size)
    galaxy_image_store(galaxy=galaxy, kind="colour", source=ZOO_IMAGE_PREFIX + cutout.source, pixels=colour,
                       rotation_deg=rotation, fov_arcmin=fov)
    return ZooImagesReport(galaxy_id=galaxy.id, kinds=["colour"], source=cutout.source, bands="",
                           rotation_deg=rotation)


# --- HyperLEDA on demand (galaxies the local catalogue lacks) ---------------------------------

def galaxy_upsert_from_leda(*, record: LedaRecord) -> Galaxy:
    """Store HyperLEDA's answer for one galaxy (keyed on PGC), with its name as an alias. A galaxy already
    catalogued keeps its source, name and position; HyperLEDA only fills what it lacks."""
    with transaction.atomic():
        galaxy = Galaxy.objects.select_for_update().filter(pgc=record.pgc).first()
        if galaxy is None:
            galaxy = Galaxy.objects.create(
                pgc=record.pgc, name=record.name[:128], name_key=normalise_name(record.name)[:128], ra=record.ra,
                dec=record.dec, d25_arcmin=record.d25_arcmin, pa=record.pa, morph_type=record.morph_type,
                source=GalaxySource.HYPERLEDA, logr25=record.logr25, leda_inclination=record.incl,
                leda_inclination_error=record.e_incl,
            )
        else:
            for field, value in (("d25_arcmin", record.d25_arcmin), ("pa", record.pa), ("logr25", record.logr25),
                                 ("leda_inclination", record.incl), ("leda_inclination_error", record.e_incl)):
                if getattr(galaxy, field) is None and value is not None:
                    setattr(galaxy, field, value)
            if not galaxy.morph_type and record.morph_type:
                galaxy.morph_type = record.morph_type
            galaxy.save()
        aliases = {record.name, f"PGC{record.pgc}"}
        GalaxyAlias.objects.bulk_create(
            [GalaxyAlias(galaxy=galaxy, name=alias[:128], key=normalise_name(alias)[:128]) for alias in aliases],
            ignore_conflicts=True,
        )
    return galaxy


def galaxy_get_or_fetch_by_pgc(*, pgc: int) -> Galaxy:
    """The catalogue's galaxy with this PGC number; when the catalogue lacks it, HyperLEDA's, stored.

    Raises ``selectors.GalaxyNotFound`` when neither knows it, and ``selectors.NameResolversUnreachable`` (a
    GalaxyNotFound) with the reason when the catalogue lacks it and HyperLEDA cannot be asked.
    """
    from .resolvers import ResolverUnavailable, hyperleda_lookup
    from .selectors import GalaxyNotFound, NameResolversUnreachable, galaxy_get_by_pgc

    if not 0 < pgc < 2**63:  # the column's range; HyperLEDA has nothing beyond it either
        raise GalaxyNotFound(f"Could not find PGC{pgc} in the database. PGC numbers are positive integers.")
    try:
        return galaxy_get_by_pgc(pgc=pgc)
    except GalaxyNotFound as exc:
        not_found = exc  # the original API's message, kept when HyperLEDA does not know it either
    try:
        record = hyperleda_lookup(pgc=pgc)
    except ResolverUnavailable as exc:
        logger.warning("hyperleda unavailable", extra={"pgc": pgc, "error": str(exc)})
        raise NameResolversUnreachable(
            f"PGC{pgc} is not in the local catalogue, and HyperLEDA could not be asked: {exc}."
        ) from None
    if record is None:
        raise not_found
    return galaxy_upsert_from_leda(record=record)
