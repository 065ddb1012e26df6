"""Chinese identifier codes and their check characters.

- 统一社会信用代码 (unified social credit code), GB 32100-2015: 18 characters, weighted mod 31.
- 公民身份号码 (citizen identity number), GB 11643-1999: 18 characters, ISO 7064 MOD 11-2.
- ISO 7064 MOD 37,36 check character, used by the GB/T 36904 certificate identifier.
- 行政区划代码 (administrative region code), GB/T 2260: 6 digits.

The check characters come from python-stdnum (`stdnum.cn.uscc`, `stdnum.iso7064`); tests/ops/test_codes.py
keeps the published vectors as its oracle. The `*_problem` functions stay ours: they say which part of a
code is wrong (length, alphabet, region, birth date, check character), where stdnum only refuses, and
stdnum's `cn.ric` also refuses county codes missing from its bundled list, which lags GB/T 2260.
"""

from __future__ import annotations

import re
from datetime import date

from stdnum.cn import uscc
from stdnum.iso7064 import mod_11_2, mod_37_36

USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_RE = re.compile(rf"^[{USCC_ALPHABET}]{{18}}$")

_ID_RE = re.compile(r"^\d{17}[\dX]$")

# GB/T 2260 province-level prefixes (incl. 71 Taiwan, 81 Hong Kong, 82 Macao).
PROVINCE_PREFIXES = frozenset(
    [
        "11",
        "12",
        "13",
        "14",
        "15",
        "21",
        "22",
        "23",
        "31",
        "32",
        "33",
        "34",
        "35",
        "36",
        "37",
        "41",
        "42",
        "43",
        "44",
        "45",
        "46",
        "50",
        "51",
        "52",
        "53",
        "54",
        "61",
        "62",
        "63",
        "64",
        "65",
        "71",
        "81",
        "82",
    ]
)

_MOD36_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def uscc_check_char(body17: str) -> str:
    """The GB 32100 check character for the first 17 characters of a credit code."""
    return str(uscc.calc_check_digit(body17))


def uscc_problem(code: str) -> str | None:
    """Why `code` is not a valid 统一社会信用代码, or None if it is."""
    if len(code) != 18:
        return f"must be 18 characters, got {len(code)}"
    if not _USCC_RE.match(code):
        bad = sorted({c for c in code if c not in USCC_ALPHABET})
        return f"contains characters not allowed in a credit code: {''.join(bad)} (I, O, S, V, Z never appear)"
    # Central-government bodies use region 100000 (中央) in their credit code.
    if not code[2:8].isdigit() or (code[2:4] not in PROVINCE_PREFIXES and code[2:8] != "100000"):
        return f"characters 3-8 must be an administrative region code, got {code[2:8]}"
    expected = uscc_check_char(code[:17])
    if code[17] != expected:
        return f"check character is {code[17]}, expected {expected} (GB 32100)"
    return None


def id_check_char(body17: str) -> str:
    """The GB 11643 check character (ISO 7064 MOD 11-2) for 17 digits."""
    return str(mod_11_2.calc_check_digit(body17))


def citizen_id_problem(code: str) -> str | None:
    """Why `code` is not a valid 18-digit 公民身份号码, or None if it is."""
    if len(code) != 18:
        return f"must be 18 characters, got {len(code)}"
    if not _ID_RE.match(code):
        return "must be 17 digits followed by a digit or X"
    if code[:2] not in PROVINCE_PREFIXES:
        return f"region code {code[:6]} does not start with a province code"
    try:
        born = date(int(code[6:10]), int(code[10:12]), int(code[12:14]))
    except ValueError:
        return f"birth date {code[6:14]} is not a real date"
    if born.year < 1880 or born > date.today():
        return f"birth date {born.isoformat()} is out of range"
    expected = id_check_char(code[:17])
    if code[17] != expected:
        return f"check character is {code[17]}, expected {expected} (GB 11643)"
    return None


def region_code_problem(code: str) -> str | None:
    """Why `code` is not a 6-digit administrative region code, or None."""
    if len(code) != 6 or not code.isdigit():
        return "must be 6 digits"
    if code[:2] not in PROVINCE_PREFIXES:
        return f"{code[:2]} is not a province-level code"
    return None


def mod37_36_check_char(data: str) -> str:
    """ISO 7064 MOD 37,36 (hybrid) check character over 0-9 and A-Z."""
    for char in data:
        if char not in _MOD36_ALPHABET:
            raise ValueError(f"character {char!r} is not in 0-9A-Z")
    return str(mod_37_36.calc_check_digit(data))


def mask_identifier(code: str) -> str:
    """Mask a personal identifier for display and logs: 110105********002X."""
    if len(code) <= 8:
        return "*" * len(code)
    return code[:6] + "*" * (len(code) - 10) + code[-4:]
