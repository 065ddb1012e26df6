"""Small helpers that make valid Chinese identifiers for test data."""

from __future__ import annotations

import random
from datetime import date

from ops.codes import USCC_ALPHABET, id_check_char, uscc_check_char

_rng = random.Random(20261124)


def uscc(*, region: str = "110000", kind: str = "11") -> str:
    """A valid 统一社会信用代码 (kind 11 = 机关, 91 = 企业)."""
    body = kind + region + "".join(_rng.choice(USCC_ALPHABET) for _ in range(9))
    return body + uscc_check_char(body)


def citizen_id(*, region: str = "110105", born: date = date(1990, 3, 7)) -> str:
    """A valid 18-digit 公民身份号码."""
    body = f"{region}{born:%Y%m%d}{_rng.randint(0, 999):03d}"
    return body + id_check_char(body)


def corrupt_check(code: str) -> str:
    """The same code with a wrong check character."""
    alphabet = "0123456789X" if code[:-1].isdigit() else USCC_ALPHABET
    return code[:-1] + next(c for c in alphabet if c != code[-1])
