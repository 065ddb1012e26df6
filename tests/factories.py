"""Small helpers that make valid Chinese identifiers for test data."""

from __future__ import annotations

import random
from datetime import date, timedelta

from ops.codes import USCC_ALPHABET, id_check_char, uscc_check_char

_rng = random.Random(20261124)


def uscc(*, region: str = "110000", kind: str = "11") -> str:
    """A valid 统一社会信用代码 (kind 11 = 机关, 91 = 企业)."""
    body = kind + region + "".join(_rng.choice(USCC_ALPHABET) for _ in range(9))
    return body + uscc_check_char(body)


_drawn: dict[tuple[str, date], set[int]] = {}


def citizen_id(*, region: str = "110105", born: date = date(1990, 3, 7)) -> str:
    """A valid 18-digit 公民身份号码, never one this test run has handed out before.

    A region and birth date give only 1,000 numbers, so random draws would repeat within a module's
    tests (two "different" people sharing one number); the sequence digits are drawn without
    replacement, and once a day's 1,000 are used the next day's are drawn.
    """
    while len(taken := _drawn.setdefault((region, born), set())) >= 1000:
        born += timedelta(days=1)
    sequence = _rng.choice([n for n in range(1000) if n not in taken])
    taken.add(sequence)
    body = f"{region}{born:%Y%m%d}{sequence:03d}"
    return body + id_check_char(body)


def corrupt_check(code: str) -> str:
    """The same code with a wrong check character."""
    alphabet = "0123456789X" if code[:-1].isdigit() else USCC_ALPHABET
    return code[:-1] + next(c for c in alphabet if c != code[-1])
