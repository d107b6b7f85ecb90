"""Remote name resolution, for names the local catalogue does not know: CDS Sesame, then NED.

Sesame's ``-oxp`` XML answer carries the position (``jradeg``/``jdedeg``) and aliases, from which a
PGC/LEDA number is read; NED's ObjectLookup JSON service carries the preferred position. Each call has
a timeout; answers are cached briefly. ``ResolverUnavailable`` means no service could be asked at all;
``None`` means every service that answered said "not found".
"""
from __future__ import annotations

import hashlib
import json
import logging
import re
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass, field
from urllib.parse import quote

import requests

logger = logging.getLogger(__name__)
_PGC_ALIAS = re.compile(r"^(?:PGC|LEDA)\s*0*(\d+)$", re.IGNORECASE)
CACHE_SECONDS = 3600


@dataclass(frozen=True)
class RemoteObject:
    name: str
    ra: float
    dec: float
    pgc: int | None
    aliases: list[str] = field(default_factory=list)
    service: str = ""


class ResolverUnavailable(Exception):
    """No remote resolver could be reached."""


def pgc_from_aliases(aliases: list[str]) -> int | None:
    for alias in aliases:
        match = _PGC_ALIAS.match(" ".join(alias.split()))
        if match:
            return int(match[1])
    return None


class SesameResolver:
    service = "sesame"

    def __init__(self, url: str, *, timeout: float = 10.0, session: requests.Session | None = None) -> None:
        self.url = url.rstrip("?")
        self.timeout = timeout
        self.session = session or requests.Session()

    def resolve(self, name: str) -> RemoteObject | None:
        try:
            response = self.session.get(f"{self.url}?{quote(name)}", timeout=self.timeout)
        except requests.RequestException as exc:
            raise ResolverUnavailable(f"Sesame: {type(exc).__name__}") from None
        if response.status_code >= 500:
            raise ResolverUnavailable(f"Sesame: HTTP {response.status_code}")
        try:
            root = ET.fromstring(response.content)
        except ET.ParseError:
            raise ResolverUnavailable("Sesame returned an unreadable answer") from None
        for resolver in root.iter("Resolver"):
            ra, dec = resolver.findtext("jradeg"), resolver.findtext("jdedeg")
            if ra is None or dec is None:
                continue
            aliases = [a.strip() for a in (e.text for e in resolver.iter("alias")) if a]
            oname = (resolver.findtext("oname") or name).strip()
            return RemoteObject(name=oname, ra=float(ra), dec=float(dec), pgc=pgc_from_aliases([oname, *aliases]),
                                aliases=aliases, service=self.service)
        return None


class NedResolver:
    service = "ned"

    def __init__(self, url: str, *, timeout: float = 10.0, session: requests.Session | None = None) -> None:
        self.url = url
        self.timeout = timeout
        self.session = session or requests.Session()

    def resolve(self, name: str) -> RemoteObject | None:
        try:
            response = self.session.post(self.url, data={"json": json.dumps({"name": {"v": name}})}, timeout=self.timeout)
        except requests.RequestException as exc:
            raise ResolverUnavailable(f"NED: {type(exc).__name__}") from None
        if response.status_code >= 500:
            raise ResolverUnavailable(f"NED: HTTP {response.status_code}")
        try:
            body = response.json()
        except ValueError:
            raise ResolverUnavailable("NED returned an unreadable answer") from None
        preferred = body.get("Preferred") or {}
        position = preferred.get("Position") or {}
        if body.get("ResultCode") != 3 or "RA" not in position or "Dec" not in position:
            return None  # 0: not found, 1–2: ambiguous or a name without an object
        preferred_name = str(preferred.get("Name", name))
        return RemoteObject(name=preferred_name, ra=float(position["RA"]) % 360.0, dec=float(position["Dec"]),
                            pgc=pgc_from_aliases([preferred_name]), aliases=[preferred_name], service=self.service)


def resolve_remote(name: str) -> RemoteObject | None:
    """Sesame, then NED; cached. Disabled (None) when ``REMOTE_RESOLVERS_ENABLED`` is off."""
    from django.conf import settings
    from django.core.cache import cache

    if not settings.REMOTE_RESOLVERS_ENABLED:
        return None
    # Hashed: names hold spaces and symbols that some cache backends refuse in keys.
    key = "resolve:" + hashlib.sha256(" ".join(name.lower().split()).encode()).hexdigest()
    cached = cache.get(key)
    if cached is not None:
        return RemoteObject(**cached) if cached else None
    resolvers = [SesameResolver(settings.SESAME_URL, timeout=settings.REMOTE_TIMEOUT_S),
                 NedResolver(settings.NED_LOOKUP_URL, timeout=settings.REMOTE_TIMEOUT_S)]
    failures = []
    answered = False
    for resolver in resolvers:
        try:
            found = resolver.resolve(name)
        except ResolverUnavailable as exc:
            failures.append(str(exc))
            continue
        answered = True
        if found is not None:
            cache.set(key, asdict(found), CACHE_SECONDS)
            return found
    if not answered:
        raise ResolverUnavailable("; ".join(failures))
    cache.set(key, {}, CACHE_SECONDS)
    return None
