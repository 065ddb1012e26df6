"""What the window and the holder read: verdict outcomes, field labels, the holder's authorisations, the directory."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from certhub import repository, service
from certhub.models import Authorisation
from certhub.schemas import AuthorisationCreate
from ops.auth import Principal, Role
from ops.errors import Forbidden
from tests.certhub.conftest import ID_CARD, World
from tests.factories import citizen_id


def _holder(code: str) -> Principal:
    return Principal(subject=code, roles=frozenset({Role.HOLDER}), holder_code=code, holder_kind="person")


@pytest.mark.parametrize(
    ("code", "outcome"),
    [
        ("valid", "valid"),
        ("revoked", "invalid"),
        ("suspended", "invalid"),
        ("expired", "invalid"),
        ("bad_signature", "invalid"),
        ("replayed", "invalid"),
        ("wrong_audience", "invalid"),
        ("untrusted_issuer", "indeterminate"),
        ("status_unavailable", "indeterminate"),
        ("unknown_certificate", "indeterminate"),
    ],
)
def test_a_verdict_code_is_valid_invalid_or_indeterminate_for_the_window(code: str, outcome: str) -> None:
    assert service.verdict_outcome(code) == outcome


def test_fields_carry_their_chinese_labels_from_the_standard_and_the_types_schema(world: World) -> None:
    holder_code = citizen_id()
    issued = world.issue(holder_code)
    with world.hub.factory() as db:
        certificate = repository.certificate_by_identifier(db, issued["identifier"])
        assert certificate is not None
        fields = service.presentable_fields(certificate)
        labels = service.field_labels(db, type_code=ID_CARD)
        unknown_type = service.field_labels(db, type_code="99999999999999999X001")
    assert {"CZZT", "CZZTDM", "ZZBH", "name", "address", "birth_date"} <= set(fields)
    assert "ZZBS" not in fields  # the identifier is always in clear, never chosen
    assert labels["CZZT"] == "持证主体" and labels["address"] == "住址" and labels["birth_date"] == "出生"
    assert unknown_type["ZZYXQJZRQ"] == "有效期截止日期" and "address" not in unknown_type


def test_a_holder_reads_each_authorisation_by_name_and_whether_it_is_in_force(world: World) -> None:
    holder_code = citizen_id()
    holder = _holder(holder_code)
    assert world.window.department is not None and world.other_window.department is not None
    later = datetime.now(UTC) + timedelta(days=10)
    with world.hub.factory() as db:
        kept, withdrawn, lapsed = (
            service.authorise(
                db,
                who=holder,
                data=AuthorisationCreate(type_code=ID_CARD, department_code=code, purpose=purpose, valid_until=later),
            )
            for code, purpose in (
                (world.window.department.code, "办理居住证"),
                (world.other_window.department.code, "办理社保卡"),
                (world.window.department.code, "办理护照"),
            )
        )
        service.revoke_authorisation(db, who=holder, authorisation_id=withdrawn.id)
        row = db.get(Authorisation, lapsed.id)
        assert row is not None
        row.valid_until = datetime.now(UTC) - timedelta(minutes=1)
        db.commit()
        views = {v.authorisation.purpose: v for v in service.holder_authorisations(db, who=holder)}
        with pytest.raises(Forbidden):
            service.holder_authorisations(db, who=Principal(subject="x", roles=frozenset({Role.WINDOW})))
    assert views["办理居住证"].state == "active" and views["办理居住证"].department_name == "北京市政务服务中心"
    assert views["办理居住证"].type_name == "居民身份证" and views["办理居住证"].department_code == world.window.department.code
    assert views["办理社保卡"].state == "withdrawn" and views["办理社保卡"].department_name == "天津市政务服务中心"
    assert views["办理护照"].state == "expired"
    assert kept.id == views["办理居住证"].authorisation.id


def test_the_directory_lists_active_departments_by_name(world: World) -> None:
    with world.hub.factory() as db:
        directory = dict(service.department_directory(db))
    assert world.window.department is not None
    assert directory[world.window.department.code] == "北京市政务服务中心"
    assert "北京市公安局" in directory.values()
