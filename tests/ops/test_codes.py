"""Check characters of the identifiers the hub accepts."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from ops.codes import citizen_id_problem, mask_identifier, mod37_36_check_char, region_code_problem, uscc_problem
from ops.errors import Invalid
from tests.factories import citizen_id, corrupt_check, uscc

# Published examples: a company's credit code and the GB 11643 standard's sample number.
REAL_USCC = "91350100M000100Y43"
GB11643_SAMPLE = "11010519491231002X"


# -- how a caller would use the checks: normalise, or refuse with the reason ----------------------


def _validated(code: str, problem_of: Callable[[str], str | None], *, field: str, what: str) -> str:
    """Return the normalised code (upper case), or raise Invalid naming what is wrong."""
    normalised = code.strip().upper()
    problem = problem_of(normalised)
    if problem:
        raise Invalid(f"{field} is not a valid {what}: {problem}", errors=[{"field": field, "message": problem}])
    return normalised


def validate_uscc(code: str, *, field: str = "code") -> str:
    return _validated(code, uscc_problem, field=field, what="统一社会信用代码")


def validate_citizen_id(code: str, *, field: str = "id_number") -> str:
    return _validated(code, citizen_id_problem, field=field, what="公民身份号码")


def mod37_36_valid(data_with_check: str) -> bool:
    """Whether the last character is the MOD 37,36 check character of the rest."""
    if len(data_with_check) < 2:
        return False
    try:
        return mod37_36_check_char(data_with_check[:-1]) == data_with_check[-1]
    except ValueError:
        return False


def test_a_published_credit_code_is_accepted() -> None:
    assert uscc_problem(REAL_USCC) is None
    assert validate_uscc(" 91350100m000100y43 ") == REAL_USCC


def test_a_central_government_credit_code_with_region_100000_is_accepted() -> None:
    assert uscc_problem(uscc(region="100000")) is None


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        ("91350100M000100Y4", "must be 18 characters"),
        ("91350100M000100Y44", "expected 3"),
        ("91350100M0001O0Y43", "not allowed"),  # letter O is never used
        ("91990100M000100Y43", "administrative region"),
    ],
)
def test_a_bad_credit_code_is_refused_with_the_reason(code: str, reason: str) -> None:
    problem = uscc_problem(code)
    assert problem is not None and reason in problem
    with pytest.raises(Invalid) as caught:
        validate_uscc(code, field="issuer_code")
    assert "issuer_code" in caught.value.detail and "统一社会信用代码" in caught.value.detail


def test_every_generated_credit_code_fails_when_its_check_character_changes() -> None:
    for _ in range(50):
        code = uscc()
        assert uscc_problem(code) is None
        assert "check character" in (uscc_problem(corrupt_check(code)) or "")


def test_the_standard_sample_identity_number_is_accepted_with_lower_case_x() -> None:
    assert citizen_id_problem(GB11643_SAMPLE) is None
    assert validate_citizen_id("11010519491231002x") == GB11643_SAMPLE


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        ("110105194912310021", "expected X"),
        ("11010519491331002X", "not a real date"),
        ("99010519491231002X", "province"),
        ("1101051949123100", "18 characters"),
        ("11010519491231002Y", "17 digits"),
    ],
)
def test_a_bad_identity_number_is_refused_with_the_reason(code: str, reason: str) -> None:
    assert reason in (citizen_id_problem(code) or "")


def test_generated_identity_numbers_detect_every_wrong_check_digit() -> None:
    for _ in range(50):
        code = citizen_id()
        assert citizen_id_problem(code) is None
        assert citizen_id_problem(corrupt_check(code)) is not None


@pytest.mark.parametrize(
    ("data", "check"),
    # Vectors published with independent implementations of ISO/IEC 7064.
    [("A12425GABC1234002", "M"), ("RABD", "A"), ("X0H", "X"), ("TBR", "1"), ("9", "J"), ("WP8Z0", "9")],
)
def test_mod37_36_matches_published_vectors(data: str, check: str) -> None:
    assert mod37_36_check_char(data) == check
    assert mod37_36_valid(data + check)


def test_mod37_36_check_catches_every_single_substitution() -> None:
    data = "11100000000013127D001" + "91350100M000100Y43" + "000000001" + "001"
    check = mod37_36_check_char(data)
    assert mod37_36_valid(data + check)
    alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    for i in range(len(data)):
        for replacement in alphabet:
            if replacement != data[i]:
                assert not mod37_36_valid(data[:i] + replacement + data[i + 1 :] + check)


def test_mod37_36_refuses_characters_outside_its_alphabet() -> None:
    with pytest.raises(ValueError, match="not in 0-9A-Z"):
        mod37_36_check_char("ABC.1")
    assert not mod37_36_valid("a")


def test_region_codes_and_masking() -> None:
    assert region_code_problem("110105") is None
    assert region_code_problem("11010") == "must be 6 digits"
    assert "province" in (region_code_problem("990000") or "")
    assert mask_identifier(GB11643_SAMPLE) == "110105********002X"
