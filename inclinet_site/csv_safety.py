"""CSV cells neutralised against formula injection (OWASP "CSV Injection"): a text cell starting with
``=``, ``+``, ``-``, ``@``, a tab or a carriage return is run as a formula by Excel, LibreOffice and Google
Sheets (``=HYPERLINK(...)`` in a volunteer's note becomes a link). Such a cell gets a leading single quote, which
spreadsheets show as text; numbers are written as they are, so a negative value stays a number.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(value: Any) -> Any:
    """``value`` as written to a CSV cell: text that a spreadsheet would evaluate gets a leading ``'``."""
    if isinstance(value, str) and value.startswith(FORMULA_TRIGGERS):
        return "'" + value
    return value


def csv_safe_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """A ``csv.DictWriter`` row with every text cell passed through ``csv_safe``."""
    return {key: csv_safe(value) for key, value in row.items()}
