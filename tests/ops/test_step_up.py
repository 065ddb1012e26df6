"""The step-up policy: which sign-ins count as a second factor, for which actions, and who is exempt."""

from __future__ import annotations

import pytest

from ops.auth import Principal, Role, SecondFactorRequired, require_second_factor
from ops.config import Settings

SETTINGS = Settings()  # the defaults: platform administration and seal use need a second factor


def staff(*, acr: str | None, amr: tuple[str, ...]) -> Principal:
    return Principal(
        subject="p-1", roles=frozenset({Role.PLATFORM_ADMIN}), person_id="p-1", display_name="王平台", acr=acr, amr=amr
    )


def test_a_person_signed_in_with_a_password_only_is_asked_to_sign_in_again() -> None:
    with pytest.raises(SecondFactorRequired) as refused:
        require_second_factor(staff(acr="urn:govhub:acr:password", amr=("pwd",)), "seal_use", SETTINGS)
    assert refused.value.status == 403 and refused.value.code == "second_factor_required"
    assert "sign in again with a second factor" in refused.value.detail and refused.value.extra["action"] == "seal_use"


def test_the_acr_or_an_amr_method_of_the_policy_counts_as_a_second_factor() -> None:
    require_second_factor(staff(acr="urn:govhub:acr:two-factor", amr=()), "platform_admin", SETTINGS)
    require_second_factor(staff(acr=None, amr=("pwd", "otp")), "platform_admin", SETTINGS)
    strict = Settings(step_up_acr_values="urn:gov:loa:high", step_up_amr_values="hwk")
    with pytest.raises(SecondFactorRequired):
        require_second_factor(staff(acr="urn:govhub:acr:two-factor", amr=("pwd", "otp")), "platform_admin", strict)


def test_actions_outside_the_policy_and_systems_are_not_asked() -> None:
    password_only = staff(acr=None, amr=("pwd",))
    require_second_factor(password_only, "exchange_decision", SETTINGS)
    require_second_factor(password_only, "seal_use", Settings(step_up_actions="platform_admin"))
    system = Principal(subject="gh_system", roles=frozenset({Role.DEPARTMENT_SYSTEM}), department_id="d-1")
    require_second_factor(system, "seal_use", SETTINGS)


def test_without_the_deployments_settings_the_policys_defaults_apply() -> None:
    with pytest.raises(SecondFactorRequired):
        require_second_factor(staff(acr=None, amr=("pwd",)), "seal_use")
    require_second_factor(staff(acr=None, amr=("pwd", "otp")), "seal_use")
