"""Spreadsheet (CSV) exports that cannot carry formulas: the one way the hub writes CSV.

A spreadsheet program runs a cell that begins with `=`, `+`, `-` or `@` as a formula, and tab or
carriage return can be used to hide such a start (OWASP "CSV Injection"). Text from the users (a
resource name, a sharing condition, an information item) must never be run on a reader's machine,
so every text cell that begins with one of these characters is written with a single quote in
front, which spreadsheets show as text. Every cell is quoted, so a separator inside a cell cannot
start a new one either. What is stored is never changed: only the exported copy is.

Numbers stay numbers: a value that *is* a number (int, float, Decimal), or a text cell of a column
declared numeric that reads exactly as a plain decimal number (`-12.5`, `+3`, `1e-5`), is written
as it is, so a negative amount in a data export is not turned into text. Anything else in a
numeric column (`-1+2`, `-A1`) is neutralised like any text.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Collection, Iterable, Sequence
from decimal import Decimal
from typing import TextIO

# OWASP CSV injection: the characters that make a spreadsheet cell a formula (or hide one).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# Spaces a spreadsheet may trim before it reads the cell (plain, no-break, ideographic).
_LEADING_SPACE = " \u00a0\u3000"
_PLAIN_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
BOM = "\ufeff"  # so that Excel reads the file as UTF-8


def neutralise(text: str) -> str:
    """The text as a spreadsheet shows it but never runs it: a leading `'` before a formula start."""
    if text.lstrip(_LEADING_SPACE).startswith(FORMULA_STARTS):
        return "'" + text
    return text


def cell(value: object, *, numeric: bool = False) -> object:
    """One exported cell: numbers as numbers, everything else as text that cannot be a formula."""
    if value is None:
        return ""
    if isinstance(value, (int, float, Decimal)) and not isinstance(value, bool):
        return value
    text = str(value)
    if numeric and _PLAIN_NUMBER.match(text):
        return text
    return neutralise(text)


def write_csv(
    out: TextIO,
    header: Sequence[str],
    rows: Iterable[Sequence[object]],
    *,
    numeric_columns: Collection[int] = (),
    bom: bool = True,
) -> None:
    """Write a header and rows as CSV (every cell quoted and neutralised; `numeric_columns` by index)."""
    if bom:
        out.write(BOM)
    writer = csv.writer(out, quoting=csv.QUOTE_ALL)
    writer.writerow([cell(h) for h in header])
    for row in rows:
        writer.writerow([cell(v, numeric=i in numeric_columns) for i, v in enumerate(row)])


def csv_text(
    header: Sequence[str], rows: Iterable[Sequence[object]], *, numeric_columns: Collection[int] = (), bom: bool = True
) -> str:
    """The CSV of :func:`write_csv` as a string."""
    out = io.StringIO()
    write_csv(out, header, rows, numeric_columns=numeric_columns, bom=bom)
    return out.getvalue()
