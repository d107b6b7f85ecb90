"""Issue 16: ``csv_safe`` neutralises exactly the cells a spreadsheet would run as formulas (OWASP)."""
from __future__ import annotations

import pytest

from inclinet_site.csv_safety import csv_safe, csv_safe_row


@pytest.mark.parametrize("cell", ["=1+1", "+1", "-1+2", "@SUM(A1)", "\t=1", "\r=1", '=HYPERLINK("x")'])
def test_formula_cells_get_a_leading_quote(cell: str) -> None:
    assert csv_safe(cell) == "'" + cell


@pytest.mark.parametrize("cell", ["NGC 598", "", "a=b", " =1", "'=1", -3.5, 0, None, True])
def test_other_cells_and_numbers_are_untouched(cell: object) -> None:
    assert csv_safe(cell) == cell


def test_rows_keep_their_keys() -> None:
    assert csv_safe_row({"item": "=x", "inc": -1}) == {"item": "'=x", "inc": -1}
