"""Issuing, changing and revoking certificates; the identifier, metadata, signatures and status list."""

from __future__ import annotations

import random
from typing import Any

import pytest

from certhub import repository, sdjwt, statuslist
from certhub.issuance import make_identifier
from ops.codes import mod37_36_check_char
from tests.certhub.conftest import DRIVING, ID_CARD, LICENCE, World, id_face
from tests.factories import citizen_id, corrupt_check, uscc


def _jwk(world: World, kid: str) -> dict[str, Any]:
    keys = world.client.get("/certhub/.well-known/jwks.json").json()["keys"]
    return next(k for k in keys if k["kid"] == kid)


def test_the_example_catalogue_holds_the_seven_types_with_schemas(world: World) -> None:
    types = {t["name"]: t for t in world.client.get("/certhub/types", headers=world.issuer.headers).json()["items"]}
    assert {"居民身份证", "居民户口簿", "营业执照", "机动车驾驶证", "结婚证", "学位证书", "不动产权证书"} <= set(types)
    assert types["营业执照"]["holder_kind"] == "enterprise"
    assert types["居民身份证"]["face_schema"]["properties"]["sex"]["enum"] == ["男", "女"]


def test_an_issued_id_card_has_a_gbt36904_identifier_metadata_and_a_verifiable_jws(world: World) -> None:
    holder = citizen_id()
    cert = world.issue(holder)
    assert world.issuer.department is not None
    issuer_code = world.issuer.department.code
    root, rest = cert["identifier"][:14], cert["identifier"][15:]
    assert root == "1.2.156.3005.2"
    type_code, issuer, serial, version, check = rest.split(".")
    assert (type_code, issuer, version) == (ID_CARD, issuer_code, "001")
    assert check == mod37_36_check_char(type_code + issuer + serial + version)
    meta = cert["meta"]
    assert meta["ZZBS"] == cert["identifier"] and meta["ZZMC"] == "居民身份证" and meta["ZZLXDM"] == ID_CARD
    assert meta["CZZTDM"] == holder and meta["CZZTDMLX"] == "111" and meta["ZZBFJGDM"] == issuer_code
    assert meta["ZZBFJG"] == "北京市公安局" and meta["ZZYXQQSRQ"] == cert["valid_from"]
    # 居民身份证 without an end date: the type's default of 10 years
    assert int(cert["valid_until"][:4]) - int(cert["valid_from"][:4]) == 10
    parsed = sdjwt.parse_jws(cert["jws"])
    assert parsed.header["typ"] == "vc+jwt" and parsed.payload["face"]["id_number"] == holder
    key = _jwk(world, parsed.header["kid"])
    assert key["dept_code"] == issuer_code
    assert sdjwt.default_signature_check(alg=key["alg"], jwk=key, data=parsed.signing_input, signature=parsed.signature)
    # the SD-JWT hides the holder and face fields behind digests
    issuer_jwt, disclosures, _ = sdjwt.split_sd_jwt(cert["sd_jwt"])
    payload = sdjwt.parse_jws(issuer_jwt).payload
    assert "CZZTDM" not in payload and "name" not in payload and len(payload["_sd"]) == len(disclosures)
    assert {sdjwt.decode_disclosure(d)[0] for d in disclosures} >= {"CZZT", "CZZTDM", "name", "address"}


def test_the_same_idempotency_key_returns_the_same_certificate(world: World) -> None:
    holder = citizen_id()
    body = {
        "type_code": ID_CARD,
        "holder": {"code": holder, "kind": "person", "name": "李四"},
        "face": id_face(holder),
        "render_pdf": False,
    }
    headers = {**world.issuer.headers, "Idempotency-Key": "batch-7-row-1"}
    first = world.client.post("/certhub/certificates", json=body, headers=headers)
    again = world.client.post("/certhub/certificates", json=body, headers=headers)
    assert first.status_code == 201 and again.status_code == 200
    assert first.json()["identifier"] == again.json()["identifier"]
    other = world.client.post("/certhub/certificates", json={**body, "face": id_face(holder, address="上海")}, headers=headers)
    assert other.status_code == 409 and "Idempotency-Key" in other.json()["detail"]


def test_bad_holder_codes_and_faces_are_refused_with_field_errors(world: World) -> None:
    holder = citizen_id()
    bad = corrupt_check(holder)
    body = {
        "type_code": ID_CARD,
        "holder": {"code": bad, "kind": "person", "name": "王五"},
        "face": id_face(holder),
        "render_pdf": False,
    }
    response = world.client.post("/certhub/certificates", json=body, headers=world.issuer.headers)
    assert response.status_code == 422
    assert "GB 11643" in response.json()["detail"] and response.json()["errors"][0]["field"] == "holder.code"
    face = id_face(holder, sex="未知", colour="red")
    del face["address"]
    body = {**body, "holder": {"code": holder, "kind": "person", "name": "王五"}, "face": face}
    response = world.client.post("/certhub/certificates", json=body, headers=world.issuer.headers)
    assert response.status_code == 422
    fields = {e["field"] for e in response.json()["errors"]}
    assert {"face.sex", "face"} <= fields and "居民身份证" in response.json()["detail"]
    response = world.client.post(
        "/certhub/certificates", json={**body, "face": id_face(holder, birth_date="1990-02-30")}, headers=world.issuer.headers
    )
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == "face.birth_date"


def test_a_department_may_only_issue_the_types_it_is_listed_for(world: World) -> None:
    body = {
        "type_code": LICENCE,
        "holder": {"code": "91110000MA01A2B3C4", "kind": "enterprise", "name": "某公司"},
        "face": {},
        "render_pdf": False,
    }
    response = world.client.post("/certhub/certificates", json=body, headers=world.issuer.headers)
    assert response.status_code == 403 and "may not issue 营业执照" in response.json()["detail"]
    response = world.client.post(
        "/certhub/certificates", json={**body, "type_code": "11100000000019713D999"}, headers=world.issuer.headers
    )
    assert response.status_code == 422 and "not in the catalogue" in response.json()["detail"]


def test_an_issuance_sees_a_change_of_its_type_or_department_made_after_the_last_one(world: World) -> None:
    """The type and the department an issuance read are remembered, and used only while their rows are unchanged."""
    admin, issuer = world.hub.admin.headers, world.issuer
    assert issuer.department is not None
    world.issue()  # remembered from here on
    renamed = world.client.patch(f"/departments/{issuer.department.id}", json={"name": "北京市公安局（更名）"}, headers=admin)
    assert renamed.status_code == 200, renamed.text
    assert world.issue()["meta"]["ZZBFJG"] == "北京市公安局（更名）"
    other = world.client.patch(f"/certhub/types/{ID_CARD}", json={"issuer_codes": [uscc(region="110000")]}, headers=admin)
    assert other.status_code == 200, other.text
    body = {"type_code": ID_CARD, "holder": {"code": (h := citizen_id()), "kind": "person", "name": "张三"}, "face": id_face(h)}
    refused = world.client.post("/certhub/certificates", json={**body, "render_pdf": False}, headers=issuer.headers)
    assert refused.status_code == 403 and "may not issue 居民身份证" in refused.json()["detail"]
    back = world.client.patch(f"/certhub/types/{ID_CARD}", json={"issuer_codes": [issuer.department.code]}, headers=admin)
    assert back.status_code == 200 and world.issue()["type_code"] == ID_CARD
    retired = world.client.patch(f"/certhub/types/{ID_CARD}", json={"active": False}, headers=admin)
    assert retired.status_code == 200, retired.text
    refused = world.client.post("/certhub/certificates", json={**body, "render_pdf": False}, headers=issuer.headers)
    assert refused.status_code == 422 and "not in the catalogue" in refused.json()["detail"]


def test_a_driving_licence_longer_than_its_type_allows_is_refused(world: World) -> None:
    holder = citizen_id()
    face = {
        "name": "张三", "sex": "男", "nationality": "中国", "address": "北京", "birth_date": "1990-03-07",
        "first_issued": "2010-05-01", "vehicle_classes": "C1", "file_number": "110100123456",
    }  # fmt: skip
    body = {"type_code": DRIVING, "holder": {"code": holder, "kind": "person", "name": "张三"}, "face": face, "render_pdf": False}
    response = world.client.post(
        "/certhub/certificates",
        json={**body, "valid_from": "2026-01-01", "valid_until": "2040-01-01"},
        headers=world.issuer.headers,
    )
    assert response.status_code == 422 and "at most 10 years" in response.json()["detail"]
    ok = world.client.post("/certhub/certificates", json={**body, "valid_from": "2026-01-01"}, headers=world.issuer.headers)
    assert ok.status_code == 201 and ok.json()["valid_until"] == "2032-01-01"


def _bit(world: World, purpose: str, index: int) -> bool:
    token = world.client.get(f"/certhub/status-lists/{purpose}").text
    parsed = sdjwt.parse_jws(token)
    jwk = _jwk(world, parsed.header["kid"])
    assert sdjwt.verify_builtin(alg="EdDSA", jwk=jwk, data=parsed.signing_input, signature=parsed.signature)
    subject = parsed.payload["credentialSubject"]
    assert subject["statusPurpose"] == purpose and parsed.payload["type"][1] == "BitstringStatusListCredential"
    return statuslist.bit(statuslist.decode(subject["encodedList"]), index)


def test_a_change_issues_version_002_and_supersedes_the_old_one_in_the_status_list(world: World) -> None:
    cert = world.issue()
    response = world.client.post(
        f"/certhub/certificates/{cert['identifier']}/changes",
        json={"face": {"address": "北京市西城区西长安街1号"}, "reason": "住址变更"},
        headers=world.issuer.headers,
    )
    assert response.status_code == 201, response.text
    new = response.json()
    assert new["cert_version"] == 2 and new["identifier"].split(".")[-2] == "002" and new["serial"] == cert["serial"]
    assert new["face"]["address"] == "北京市西城区西长安街1号" and new["face"]["name"] == "张三"
    old = world.client.get(f"/certhub/certificates/{cert['identifier']}", headers=world.issuer.headers).json()
    assert old["status"] == "superseded" and old["superseded_by"] == new["identifier"]
    assert _bit(world, "revocation", old["status_index"]) and not _bit(world, "revocation", new["status_index"])
    again = world.client.post(
        f"/certhub/certificates/{cert['identifier']}/changes", json={"reason": "x"}, headers=world.issuer.headers
    )
    assert again.status_code == 409 and new["identifier"] in again.json()["detail"]


def test_revocation_and_suspension_show_in_the_status_lists_at_once(world: World) -> None:
    cert = world.issue()
    index = cert["status_index"]
    assert not _bit(world, "revocation", index) and not _bit(world, "suspension", index)
    assert (
        world.client.post(
            f"/certhub/certificates/{cert['identifier']}/suspend", json={"reason": "核查"}, headers=world.issuer.headers
        ).status_code
        == 200
    )
    assert _bit(world, "suspension", index)
    assert (
        world.client.post(
            f"/certhub/certificates/{cert['identifier']}/reinstate", json={"reason": "核查完毕"}, headers=world.issuer.headers
        ).status_code
        == 200
    )
    assert not _bit(world, "suspension", index)
    response = world.client.post(
        f"/certhub/certificates/{cert['identifier']}/revoke", json={"reason": "持证人死亡"}, headers=world.issuer.headers
    )
    assert (
        response.status_code == 200
        and response.json()["status"] == "revoked"
        and response.json()["status_reason"] == "持证人死亡"
    )
    assert _bit(world, "revocation", index)
    again = world.client.post(
        f"/certhub/certificates/{cert['identifier']}/revoke", json={"reason": "x"}, headers=world.issuer.headers
    )
    assert again.status_code == 409
    assert world.client.get("/certhub/status-lists/other").status_code == 404


def test_another_department_cannot_see_or_revoke_a_certificate(world: World) -> None:
    cert = world.issue()
    stranger = world.hub.system(name="别的系统")
    assert world.client.get(f"/certhub/certificates/{cert['identifier']}", headers=stranger.headers).status_code == 404
    response = world.client.post(
        f"/certhub/certificates/{cert['identifier']}/revoke", json={"reason": "x"}, headers=stranger.headers
    )
    assert response.status_code == 404


def test_an_administrator_adds_a_type_and_bad_definitions_are_refused(world: World) -> None:
    admin = world.hub.admin.headers
    body = {
        "code": "11100000000013354J002",
        "name": "离婚证",
        "holder_kind": "person",
        "face_schema": {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]},
        "validity": {"default_years": None},
        "template": {"title": "离婚证"},
    }
    created = world.client.post("/certhub/types", json=body, headers=admin)
    assert created.status_code == 201 and created.json()["issuer_codes"] == []
    assert world.client.post("/certhub/types", json=body, headers=admin).status_code == 409
    bad_code = world.client.post("/certhub/types", json={**body, "code": "11100000000013354X002"}, headers=admin)
    assert bad_code.status_code == 422 and "统一社会信用代码" in bad_code.json()["detail"]
    bad_schema = world.client.post(
        "/certhub/types", json={**body, "code": "11100000000013354J003", "face_schema": {"type": "objekt"}}, headers=admin
    )
    assert bad_schema.status_code == 422 and "JSON Schema" in bad_schema.json()["detail"]
    assert (
        world.client.post(
            "/certhub/types", json={**body, "code": "11100000000013354J004"}, headers=world.issuer.headers
        ).status_code
        == 403
    )
    stale = world.client.patch(
        "/certhub/types/11100000000013354J002", json={"active": False}, headers={**admin, "If-Match": '"99"'}
    )
    assert stale.status_code == 412
    assert world.client.get("/certhub/certificates/1.2.156.garbage", headers=world.issuer.headers).status_code == 404


def test_status_list_positions_are_drawn_at_random_and_do_not_reveal_the_order_of_issuance(world: World) -> None:
    indices = [world.issue()["status_index"] for _ in range(12)]
    assert len(set(indices)) == 12
    assert indices != sorted(indices)  # in order: odds of 1 in 12! (479,001,600)
    assert all(0 <= index < statuslist.MIN_BITS for index in indices)
    assert max(indices) - min(indices) > 1000  # spread over the list, not side by side (odds below 10⁻²¹)
    for index in indices:  # and every one is a position of the published lists
        assert not _bit(world, "revocation", index)


def test_when_the_random_draw_finds_no_free_position_the_ones_after_the_highest_held_are_taken(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    held = [world.issue()["status_index"] for _ in range(3)]
    # A draw that meets only positions already held (odds below 2⁻⁶⁰): no retry loop, no collision.
    monkeypatch.setattr(repository._random, "sample", lambda _population, _k: list(held))
    with world.hub.factory() as db:
        assert repository.status_indices(db, 2) == [max(held) + 1, max(held) + 2]
        db.rollback()
    assert world.issue()["status_index"] == max(held) + 1


def test_the_identifiers_check_character_is_python_stdnums_for_any_series_and_serial() -> None:
    # make_identifier continues from the running state of the series' codes: the same character as stdnum's
    # over the whole text (ops.codes), for random series, serials and versions, and the same refusal.
    alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    chooser = random.Random(36904)
    for _ in range(2000):
        type_code = "".join(chooser.choices(alphabet, k=chooser.randint(0, 21)))
        issuer = "".join(chooser.choices(alphabet, k=chooser.randint(0, 18)))
        serial = "".join(chooser.choices(alphabet, k=10))
        version = chooser.randint(1, 999)
        identifier = make_identifier(type_code=type_code, issuer_code=issuer, serial=serial, version=version)
        assert identifier.rsplit(".", 1)[1] == mod37_36_check_char(f"{type_code}{issuer}{serial}{version:03d}")
    with pytest.raises(ValueError, match="not in 0-9A-Z"):
        make_identifier(type_code="11100000000019713d001", issuer_code="1111", serial="0000000001", version=1)
