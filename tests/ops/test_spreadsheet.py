"""Spreadsheet exports cannot carry formulas (OWASP CSV injection), and numbers stay numbers."""

from __future__ import annotations

import csv
import io
import re
from decimal import Decimal
from pathlib import Path

from ops import spreadsheet

ROOT = Path(__file__).resolve().parents[2]


def _read(text: str) -> list[list[str]]:
    assert text.startswith(spreadsheet.BOM)
    return list(csv.reader(io.StringIO(text.removeprefix(spreadsheet.BOM))))


def test_a_text_cell_that_a_spreadsheet_would_run_is_written_as_text() -> None:
    hostile = [
        "=cmd|' /C calc'!A0",
        '+HYPERLINK("http://evil.example","x")',
        "-2+3+cmd|' /C calc'!A0",
        "@SUM(1+1)",
        "\t=1+1",
        "\r=1+1",
        "  =1+1",  # spaces a spreadsheet may trim first
        "\u3000=1+1",
    ]
    rows = _read(spreadsheet.csv_text(["名称"], [[h] for h in hostile]))
    assert [r[0] for r in rows[1:]] == ["'" + h for h in hostile]
    harmless = ["户籍人口信息", "a=b", "100", "", "'已有引号"]
    rows = _read(spreadsheet.csv_text(["名称"], [[h] for h in harmless]))
    assert [r[0] for r in rows[1:]] == harmless


def test_a_header_from_user_text_is_neutralised_too() -> None:
    rows = _read(spreadsheet.csv_text(["身份证号", "=1+1"], []))
    assert rows == [["身份证号", "'=1+1"]]


def test_numbers_stay_numbers_and_a_numeric_column_keeps_its_negative_amounts() -> None:
    text = spreadsheet.csv_text(
        ["金额", "备注"],
        [
            [-12, "-12"],
            [Decimal("-3.50"), "-3.50"],
            ["-7.25", "-7.25"],
            ["+3", "1e-5"],
            ["-1+2", "x"],
            ["-A1", None],
            [True, False],
        ],
        numeric_columns={0},
    )
    rows = _read(text)[1:]
    # column 0 is numeric: plain numbers (values or text) are kept; formulas are not
    assert [r[0] for r in rows] == ["-12", "-3.50", "-7.25", "+3", "'-1+2", "'-A1", "True"]
    # column 1 is text: a text cell beginning with '-' is prefixed (OWASP), a real number is not
    assert [r[1] for r in rows] == ["'-12", "'-3.50", "'-7.25", "1e-5", "x", "", "False"]


def test_every_cell_is_quoted_so_a_separator_in_a_cell_cannot_start_another() -> None:
    text = spreadsheet.csv_text(["a"], [["x;=1+1,y"]], bom=False)
    assert text.splitlines() == ['"a"', '"x;=1+1,y"']


def test_every_csv_the_hub_writes_goes_through_the_one_helper() -> None:
    writers = re.compile(r"csv\.(writer|DictWriter)\(")
    offenders = [
        str(path.relative_to(ROOT))
        for package in ("ops", "catalog_registry", "exchange", "certhub", "seal", "govhub")
        for path in (ROOT / package).rglob("*.py")
        if path != ROOT / "ops" / "spreadsheet.py" and writers.search(path.read_text(encoding="utf-8"))
    ]
    assert offenders == [], f"write CSV through ops.spreadsheet, not csv.writer: {offenders}"
