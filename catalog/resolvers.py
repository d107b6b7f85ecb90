"""Remote name resolution, for names the local catalogue does not know: CDS Sesame, then NED.

Sesame (``…/nph-sesame/-oxpI/SNV?<name>``) answers XML: ``<Sesame><Target><Resolver name="S=Simbad…">``
with ``<jradeg>``, ``<jdedeg>``, ``<oname>`` and, when the ``I`` output option is given, one ``<alias>`` per
identifier, from which a PGC/LEDA number is read. NED's ObjectLookup (``POST …/srs/ObjectLookup`` with
the form field ``json={"name":{"v":"M33"}}``) answers JSON whose ``ResultCode`` 3 means found, with
``Preferred.Name`` and ``Preferred.Position.RA/Dec``.

``resolve_remote`` returns ``None`` when every service that answered said "not found", and raises
``ResolverUnavailable`` only when none could be asked. Answers are cached briefly in Django's cache.

HyperLEDA (``HyperLedaResolver``, for galaxies the local catalogue lacks) is asked through its SQL
interface ``fG.cgi?n=meandata&c=o&of=1,leda,simbad&nra=l&nakd=1&d=<columns>&sql=<where>&ob=&a=csv[;]``
(http://leda.univ-lyon1.fr/fullsql.html): ``#`` comment lines, one header line naming the columns, then
one line per object, ``;``-separated, cells padded with blanks, empty cells for unknown values. Columns:
``objname, pgc, al2000`` (hours), ``de2000, type, logd25`` (log of D25 in 0.1 arcmin), ``pa, logr25``
(log of a/b), ``incl, e_incl`` (HyperLEDA's inclination and its error, degrees).
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
import re
import time
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass, field
from urllib.parse import quote, urlsplit, urlunsplit

import requests

logger = logging.getLogger(__name__)

_PGC_ALIAS = re.compile(r"^(?:PGC|LEDA)\s*0*(\d+)$", re.IGNORECASE)
FOUND_CACHE_SECONDS = 3600
NOT_FOUND_CACHE_SECONDS = 600  # shorter: a typo fixed upstream, or a new object, should show up soon
MAX_ANSWER_BYTES = 1024 * 1024
USER_AGENT = "IncliNET/1.0 (galaxy inclinations; +https://github.com/ekourkchi/inclinet_project)"


@dataclass(frozen=True)
class RemoteObject:
    name: str
    ra: float
    dec: float
    pgc: int | None
    aliases: list[str] = field(default_factory=list)
    service: str = ""


class ResolverUnavailable(Exception):
    """No remote resolver could be asked (down, too slow, or answering nonsense). The message is for people."""



def pgc_from_aliases(aliases: list[str]) -> int | None:
    """The PGC number in identifiers such as "PGC 5818", "PGC 005818" or "LEDA 5818"."""
    for alias in aliases:
        match = _PGC_ALIAS.match(" ".join(str(alias).split()))
        if match:
            return int(match[1])
    return None


def _clean(identifier: str) -> str:
    """SIMBAD pads identifiers ("M  33"); one space is enough."""
    return " ".join(identifier.split())


class _HttpResolver:
    service = "resolver"
    label = "the name resolver"

    def __init__(self, url: str, *, timeout: float = 10.0, retries: int = 1,
                 session: requests.Session | None = None) -> None:
        self.url = url
        self.timeout = float(timeout)
        self.retries = max(0, int(retries))
        self.session = session or requests.Session()

    def _request(self, method: str, url: str, **kwargs: object) -> bytes:
        """One call with the timeout; retried on refused connections and 5xx, never after a time-out
        (that already cost the whole budget)."""
        for attempt in range(self.retries + 1):
            try:
                response = self.session.request(method, url, timeout=self.timeout,
                                                headers={"User-Agent": USER_AGENT}, **kwargs)
                body = response.content
            except requests.Timeout:
                raise ResolverUnavailable(f"{self.label} did not answer within {self.timeout:g} s") from None
            except requests.RequestException as exc:
                problem = f"{self.label} cannot be reached ({type(exc).__name__})"
            else:
                if response.status_code == 200:
                    if len(body) > MAX_ANSWER_BYTES:
                        raise ResolverUnavailable(f"{self.label} sent an oversized answer")
                    return body
                problem = f"{self.label} failed (HTTP {response.status_code})"
                if response.status_code < 500 and response.status_code != 429:
                    raise ResolverUnavailable(problem)
            if attempt < self.retries:
                time.sleep(0.2 * 2**attempt)
        raise ResolverUnavailable(problem)


def sesame_url_with_identifiers(url: str) -> str:
    """Sesame lists aliases (where PGC numbers live) only with the ``I`` output option: ``-oxp`` → ``-oxpI``."""
    parts = urlsplit(url)
    segments = parts.path.split("/")
    for index, segment in enumerate(segments):
        if segment.startswith("-o") and "I" not in segment:
            segments[index] = segment + "I"
    return urlunsplit(parts._replace(path="/".join(segments)))


class SesameResolver(_HttpResolver):
    """CDS Sesame (SIMBAD, NED and VizieR behind one XML answer)."""

    service = "sesame"
    label = "Sesame"

    def __init__(self, url: str, **kwargs: object) -> None:
        super().__init__(sesame_url_with_identifiers(url.rstrip("?")), **kwargs)  # type: ignore[arg-type]

    def resolve(self, name: str) -> RemoteObject | None:
        body = self._request("GET", f"{self.url}?{quote(name.strip(), safe='')}")
        try:
            root = ET.fromstring(body)
        except ET.ParseError:
            raise ResolverUnavailable("Sesame returned an unreadable answer") from None
        return self.parse(root, name=name)

    def parse(self, root: ET.Element, *, name: str) -> RemoteObject | None:
        found: tuple[float, float, str] | None = None
        aliases: list[str] = []
        errors, nothing_found = [], False
        for resolver in root.iter("Resolver"):
            ra, dec = resolver.findtext("jradeg"), resolver.findtext("jdedeg")
            oname = _clean(resolver.findtext("oname") or "")
            if ra and dec and found is None:
                try:
                    found = (float(ra), float(dec), oname or name)
                except ValueError:
                    errors.append(f"bad position {ra!r} {dec!r}")
            # Aliases from every database that knew the object (SIMBAD has LEDA numbers, NED has PGC).
            for alias in [oname, *(_clean(a.text or "") for a in resolver.iter("alias"))]:
                if alias and alias not in aliases:
                    aliases.append(alias)
            errors += [e.text or "" for e in resolver.iter("ERROR")]
            nothing_found |= any("nothing found" in (i.text or "").lower() for i in resolver.iter("INFO"))
        if found is None:
            if errors and not nothing_found:
                raise ResolverUnavailable(f"Sesame could not search ({errors[0].strip()})")
            return None
        ra, dec, oname = found
        return RemoteObject(name=oname, ra=ra % 360.0, dec=dec, pgc=pgc_from_aliases(aliases),
                            aliases=[a for a in aliases if a != oname] or aliases, service=self.service)


class NedResolver(_HttpResolver):
    """NED ObjectLookup (JSON)."""

    service = "ned"
    label = "NED"

    def resolve(self, name: str) -> RemoteObject | None:
        body = self._request("POST", self.url, data={"json": json.dumps({"name": {"v": name.strip()}})})
        try:
            answer = json.loads(body)
        except ValueError:
            raise ResolverUnavailable("NED returned an unreadable answer") from None
        if not isinstance(answer, dict) or "ResultCode" not in answer:
            raise ResolverUnavailable("NED returned an unexpected answer")
        preferred = answer.get("Preferred") or {}
        position = preferred.get("Position") or {}
        if answer.get("ResultCode") != 3 or position.get("RA") is None or position.get("Dec") is None:
            return None  # 0: unknown name; 1–2: ambiguous, or a valid name without an object
        preferred_name = _clean(str(preferred.get("Name") or name))
        interpreted = _clean(str((answer.get("Interpreted") or {}).get("Name") or ""))
        aliases = [a for a in dict.fromkeys([preferred_name, interpreted]) if a]
        return RemoteObject(name=preferred_name, ra=float(position["RA"]) % 360.0, dec=float(position["Dec"]),
                            pgc=pgc_from_aliases(aliases), aliases=aliases, service=self.service)


def _cache_key(name: str) -> str:
    # Hashed: names hold spaces and symbols that some cache backends refuse in keys.
    return "resolve:v2:" + hashlib.sha256(" ".join(name.lower().split()).encode()).hexdigest()


def _cache_get(key: str) -> dict | None:
    from django.core.cache import cache

    try:
        return cache.get(key)
    except Exception as exc:  # noqa: BLE001 - a cache outage must not stop name resolution
        logger.warning("resolver cache unavailable", extra={"error": str(exc)})
        return None


def _cache_set(key: str, value: dict, seconds: int) -> None:
    from django.core.cache import cache

    try:
        cache.set(key, value, seconds)
    except Exception as exc:  # noqa: BLE001
        logger.warning("resolver cache unavailable", extra={"error": str(exc)})


def remote_resolvers() -> list[SesameResolver | NedResolver]:
    """Sesame, then NED, configured from Django settings."""
    from django.conf import settings

    timeout = settings.REMOTE_TIMEOUT_S
    retries = min(settings.REMOTE_RETRIES, 1)  # a name lookup sits in a page request: fail fast
    return [SesameResolver(settings.SESAME_URL, timeout=timeout, retries=retries),
            NedResolver(settings.NED_LOOKUP_URL, timeout=timeout, retries=retries)]


def resolve_remote(name: str) -> RemoteObject | None:
    """Sesame, then NED; cached. None when not found (or when ``REMOTE_RESOLVERS_ENABLED`` is off)."""
    from django.conf import settings

    if not settings.REMOTE_RESOLVERS_ENABLED or not name.strip():
        return None
    key = _cache_key(name)
    cached = _cache_get(key)
    if cached is not None:
        return RemoteObject(**cached) if cached else None
    failures: list[str] = []
    answered = False
    for resolver in remote_resolvers():
        try:
            found = resolver.resolve(name)
        except ResolverUnavailable as exc:
            logger.warning("name resolver unavailable", extra={"service": resolver.service, "error": str(exc)})
            failures.append(str(exc))
            continue
        answered = True
        if found is not None:
            _cache_set(key, asdict(found), FOUND_CACHE_SECONDS)
            return found
    if not answered:
        raise ResolverUnavailable("; ".join(failures))
    _cache_set(key, {}, NOT_FOUND_CACHE_SECONDS)
    return None


# --- HyperLEDA ---------------------------------------------------------------------------------

LEDA_COLUMNS = ("objname", "pgc", "al2000", "de2000", "type", "logd25", "pa", "logr25", "incl", "e_incl")
_LEDA_DESIGNATION = re.compile(r"^(NGC|IC|UGC|PGC|LEDA|ESO|MCG|UGCA)?\s*0*([0-9]+)$", re.IGNORECASE)
_SAFE_LEDA_NAME = re.compile(r"^[A-Za-z0-9 +\-.]{1,64}$")


@dataclass(frozen=True)
class LedaRecord:
    """One HyperLEDA galaxy. ``ra``/``dec`` in degrees (J2000); None where HyperLEDA has no value."""

    pgc: int
    name: str
    ra: float
    dec: float
    morph_type: str = ""
    logd25: float | None = None
    pa: float | None = None
    logr25: float | None = None
    incl: float | None = None
    e_incl: float | None = None

    @property
    def d25_arcmin(self) -> float | None:
        return 0.1 * 10**self.logd25 if self.logd25 is not None else None


def _leda_float(text: str) -> float | None:
    text = text.strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def parse_hyperleda_csv(body: str) -> list[LedaRecord]:
    """Records of a ``a=csv[;]`` answer; raises ResolverUnavailable when it is not such an answer."""
    lines = [line for line in body.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    if not lines:
        return []
    header = [cell.strip().lower() for cell in lines[0].split(";")]
    if "pgc" not in header or "al2000" not in header or "de2000" not in header:
        raise ResolverUnavailable("HyperLEDA returned an unexpected answer")
    records = []
    for line in lines[1:]:
        cells = dict(zip(header, (cell.strip() for cell in line.split(";")), strict=False))
        pgc, ra_hours, dec = (_leda_float(cells.get(k, "")) for k in ("pgc", "al2000", "de2000"))
        if pgc is None or ra_hours is None or dec is None or pgc <= 0 or not -90 <= dec <= 90:
            continue  # an object without a position cannot be looked at
        records.append(LedaRecord(
            pgc=int(pgc), name=cells.get("objname") or f"PGC{int(pgc)}", ra=(ra_hours * 15.0) % 360.0, dec=dec,
            morph_type=cells.get("type", "")[:32], logd25=_leda_float(cells.get("logd25", "")),
            pa=_leda_float(cells.get("pa", "")), logr25=_leda_float(cells.get("logr25", "")),
            incl=_leda_float(cells.get("incl", "")), e_incl=_leda_float(cells.get("e_incl", "")),
        ))
    return records


def leda_objname(name: str) -> str | None:
    """HyperLEDA's own designation for a typed name ("NGC 598" → "NGC0598", "ugc 1117" → "UGC01117"), or
    the name without spaces; None for text that cannot be a designation (kept out of the SQL)."""
    text = " ".join(name.split())
    if not _SAFE_LEDA_NAME.match(text):
        return None
    match = _LEDA_DESIGNATION.match(text)
    if match and match[1]:
        prefix, number = match[1].upper(), int(match[2])
        width = {"NGC": 4, "IC": 4, "UGC": 5}.get(prefix)
        if prefix in ("PGC", "LEDA"):
            return f"PGC{number}"
        if width:
            return f"{prefix}{number:0{width}d}"
    return text.replace(" ", "")


class HyperLedaResolver(_HttpResolver):
    """HyperLEDA's SQL interface: a PGC number or a designation → one ``LedaRecord`` (None: unknown)."""

    service = "hyperleda"
    label = "HyperLEDA"

    def query(self, where: str) -> list[LedaRecord]:
        params = {"n": "meandata", "c": "o", "of": "1,leda,simbad", "nra": "l", "nakd": "1",
                  "d": ",".join(LEDA_COLUMNS), "sql": where, "ob": "", "a": "csv[;]"}
        body = self._request("GET", self.url, params=params)
        return parse_hyperleda_csv(body.decode("utf-8", errors="replace"))

    def by_pgc(self, pgc: int) -> LedaRecord | None:
        found = [r for r in self.query(f"pgc={int(pgc)}") if r.pgc == int(pgc)]
        return found[0] if found else None

    def by_name(self, name: str) -> LedaRecord | None:
        objname = leda_objname(name)
        if objname is None:
            return None
        if objname.startswith("PGC") and objname[3:].isdigit():
            return self.by_pgc(int(objname[3:]))
        found = self.query(f"objname='{objname}'")
        return found[0] if found else None


def hyperleda_resolver() -> HyperLedaResolver:
    """Configured from Django settings: ``HYPERLEDA_URL``, ``REMOTE_TIMEOUT_S``, ``REMOTE_RETRIES``."""
    from django.conf import settings

    return HyperLedaResolver(settings.HYPERLEDA_URL, timeout=settings.REMOTE_TIMEOUT_S,
                             retries=min(settings.REMOTE_RETRIES, 2))


def hyperleda_lookup(*, pgc: int | None = None, name: str | None = None) -> LedaRecord | None:
    """HyperLEDA's record of a PGC number or name (cached); None when HyperLEDA does not know it or when
    ``REMOTE_RESOLVERS_ENABLED`` is off. Raises ResolverUnavailable when HyperLEDA cannot be asked."""
    from django.conf import settings

    if not settings.REMOTE_RESOLVERS_ENABLED or (pgc is None and not (name or "").strip()):
        return None
    key = _cache_key(f"hyperleda:{pgc}" if pgc is not None else f"hyperleda-name:{name}")
    cached = _cache_get(key)
    if cached is not None:
        return LedaRecord(**cached) if cached else None
    resolver = hyperleda_resolver()
    record = resolver.by_pgc(pgc) if pgc is not None else resolver.by_name(str(name))
    _cache_set(key, asdict(record) if record else {}, FOUND_CACHE_SECONDS if record else NOT_FOUND_CACHE_SECONDS)
    return record
