"""Normalisation of galaxy designations so that ``M 33``, ``NGC0598`` and ``ngc 598`` compare equal."""
from __future__ import annotations

import re

_CATALOGUE_ID = re.compile(r"^(?P<prefix>[A-Z]+)(?P<number>\d+)(?P<suffix>[A-Z]?)$")
_PREFIX_ALIASES = {"MESSIER": "M", "LEDA": "PGC", "UGCA": "UGCA"}
_PGC = re.compile(r"^PGC(?P<number>\d+)$")


def normalise_name(raw: str) -> str:
    """A lookup key: upper case, no spaces or punctuation, catalogue numbers without leading zeros.

    ``"NGC 0598"`` → ``"NGC598"``, ``"m 33"`` → ``"M33"``, ``"Triangulum Galaxy"`` →
    ``"TRIANGULUMGALAXY"``. Signs and digits inside designations such as ``MCG +05-04-069``
    are kept, so different objects never collapse onto one key.
    """
    text = re.sub(r"[\s_]+", "", raw.strip().upper())
    compact = re.sub(r"[^A-Z0-9+\-.]", "", text)
    match = _CATALOGUE_ID.match(compact)
    if match:
        prefix = _PREFIX_ALIASES.get(match["prefix"], match["prefix"])
        return f"{prefix}{int(match['number'])}{match['suffix']}"
    return compact


def pgc_from_key(key: str) -> int | None:
    """The PGC number when the normalised key is a PGC/LEDA designation."""
    match = _PGC.match(key)
    return int(match["number"]) if match else None
