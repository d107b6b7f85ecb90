"""CSV download of one prediction (``?format=csv`` or ``Accept: text/csv`` on the prediction API).

One header line and one value line; nested keys are joined with dots in the order of the JSON
(``galaxy.pgc``, ``inclinations.summary.median``, ``member_inclinations.compact``, ``verdict`` …), so a
spreadsheet opens it as it is and the columns match the JSON download. Text cells that a spreadsheet would
run as a formula (leading ``= + - @``) are prefixed with a quote.
"""
from __future__ import annotations

import csv
import io
import re
from typing import Any

from rest_framework.renderers import BaseRenderer

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
_SIGNED_QUANTITY = re.compile(r"^[-+]?\d+(\.\d+)?( [a-z]+)?$")  # "-11.6230 deg": a value, not a formula


def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` → ``{"a.b": 1}``; lists are joined with ``;``."""
    if isinstance(data, dict):
        out: dict[str, Any] = {}
        for key, value in data.items():
            out.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(data, list | tuple):
        return {prefix: ";".join(str(item) for item in data)}
    return {prefix: data}


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    if isinstance(value, str) and text.startswith(FORMULA_PREFIXES) and not _SIGNED_QUANTITY.match(text):
        return "'" + text
    return text


def prediction_csv(data: dict[str, Any]) -> str:
    row = flatten(data)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(list(row))
    writer.writerow([_cell(value) for value in row.values()])
    return buffer.getvalue()


class PredictionCsvRenderer(BaseRenderer):
    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data: Any, accepted_media_type: str | None = None,
               renderer_context: dict[str, Any] | None = None) -> bytes:
        if data is None:
            return b""
        response = (renderer_context or {}).get("response")
        if response is not None and response.status_code == 200:
            response["Content-Disposition"] = 'attachment; filename="inclinet-prediction.csv"'
        return prediction_csv(data if isinstance(data, dict) else {"value": data}).encode("utf-8")
