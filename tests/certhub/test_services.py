"""Service items (政务服务事项) and their materials: versions, the public lists, prefill at the window and
一证通办 in one step."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

from certhub.models import ServiceItem, ServiceMaterial
from ops import audit
from tests.catalog_registry.helpers import publish, upload
from tests.certhub.conftest import DRIVING, ID_CARD, LICENCE, World, driving_face
from tests.factories import citizen_id, corrupt_check, uscc

RESIDENCE = "11110000000019713D4000117001"  # 居住证申领
PEOPLE = "身份证号,姓名,户籍地址,出生日期\n{holder},张三,北京市朝阳区幸福路1号,1990-03-07\n"


def _later(days: int = 30) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).isoformat()


def service_body(world: World, code: str = RESIDENCE, **overrides: Any) -> dict[str, Any]:
    assert world.window.department is not None
    body: dict[str, Any] = {
        "code": code,
        "name": "居住证申领",
        "department_code": world.window.department.code,
        "holder_kind": "person",
        "materials": [
            {"key": "id_card", "name": "居民身份证", "kind": "certificate", "type_code": ID_CARD},
            {"key": "driving", "name": "机动车驾驶证", "kind": "certificate", "type_code": DRIVING},
            {"key": "photo", "name": "近期免冠照片", "kind": "submit"},
        ],
        "form_fields": [
            {"name": "applicant_name", "label": "申请人姓名", "material": "id_card", "field": "name"},
            {"name": "address", "label": "户籍地址", "material": "id_card", "field": "address"},
            {"name": "vehicle_classes", "label": "准驾车型", "material": "driving", "field": "vehicle_classes"},
        ],
    }
    return body | overrides


def register_and_publish(world: World, body: dict[str, Any]) -> dict[str, Any]:
    admin = world.hub.admin.headers
    created = world.client.post("/certhub/services", json=body, headers=admin)
    assert created.status_code == 201, created.text
    published = world.client.post(f"/certhub/services/{body['code']}/versions/1/publish", headers=admin)
    assert published.status_code == 200, published.text
    return dict(published.json())


def _prefill(world: World, holder: str, code: str = RESIDENCE, url: str = "/certhub/prefill", **extra: Any) -> Any:
    body = {"holder_code": holder, "service_code": code, "useCause": "办理居住证", **extra}
    return world.client.post(url, json=body, headers=world.window.headers)


def _rows(world: World) -> tuple[int, int]:
    with world.hub.factory() as db:
        return db.query(ServiceItem).count(), db.query(ServiceMaterial).count()


def test_a_service_is_registered_published_and_versioned_and_old_versions_stay_readable(world: World) -> None:
    admin = world.hub.admin.headers
    created = world.client.post("/certhub/services", json=service_body(world), headers=admin)
    assert created.status_code == 201, created.text
    assert created.json()["state"] == "draft" and [m["key"] for m in created.json()["materials"]] == [
        "id_card",
        "driving",
        "photo",
    ]
    # a draft is not public yet
    assert world.client.get(f"/certhub/services/{RESIDENCE}", headers=world.window.headers).status_code == 404
    published = world.client.post(f"/certhub/services/{RESIDENCE}/versions/1/publish", headers=admin)
    assert published.status_code == 200 and published.json()["state"] == "published"

    twice = world.client.post(f"/certhub/services/{RESIDENCE}/versions/1/publish", headers=admin)
    assert twice.status_code == 409 and "already published" in twice.json()["detail"]
    edit = {k: v for k, v in service_body(world, name="居住证申领（新）").items() if k not in ("code", "department_code")}
    changed = world.client.put(f"/certhub/services/{RESIDENCE}/versions/1", json=edit, headers=admin)
    assert changed.status_code == 409 and "make a new version" in changed.json()["detail"]

    draft = world.client.post(f"/certhub/services/{RESIDENCE}/versions", json=edit, headers=admin)
    assert draft.status_code == 201 and draft.json()["number"] == 2 and draft.json()["state"] == "draft"
    again = world.client.post(f"/certhub/services/{RESIDENCE}/versions", json=edit, headers=admin)
    assert again.status_code == 409 and "has a draft already" in again.json()["detail"]
    # the draft can change (with the ETag it was read with); the current version is still version 1
    stale = world.client.put(f"/certhub/services/{RESIDENCE}/versions/2", json=edit, headers={**admin, "If-Match": '"99"'})
    assert stale.status_code == 412
    assert world.client.get(f"/certhub/services/{RESIDENCE}", headers=world.window.headers).json()["number"] == 1
    assert world.client.post(f"/certhub/services/{RESIDENCE}/versions/2/publish", headers=admin).status_code == 200
    current = world.client.get(f"/certhub/services/{RESIDENCE}", headers=world.window.headers).json()
    assert (current["number"], current["name"]) == (2, "居住证申领（新）")
    old = world.client.get(f"/certhub/services/{RESIDENCE}/versions/1", headers=world.window.headers).json()
    assert (old["state"], old["name"]) == ("superseded", "居住证申领")
    versions = world.client.get(f"/certhub/services/{RESIDENCE}/versions", headers=world.window.headers).json()["items"]
    assert [(v["number"], v["state"]) for v in versions] == [(1, "superseded"), (2, "published")]


def test_a_bad_definition_is_refused_at_its_field_and_nothing_is_written(world: World) -> None:
    admin = world.hub.admin.headers
    before = _rows(world)
    inactive = world.client.patch(f"/certhub/types/{DRIVING}", json={"active": False}, headers=admin)
    assert inactive.status_code == 200, inactive.text
    cases = {
        "materials[1].type_code": service_body(world),  # 机动车驾驶证 is now inactive
        "materials": service_body(world, materials=[], form_fields=[]),
        "form_fields[1].name": service_body(
            world,
            materials=[{"key": "id_card", "name": "居民身份证", "kind": "certificate", "type_code": ID_CARD}],
            form_fields=[
                {"name": "applicant_name", "label": "申请人姓名", "material": "id_card", "field": "name"},
                {"name": "applicant_name", "label": "姓名", "material": "id_card", "field": "name"},
            ],
        ),
        "form_fields[0].field": service_body(
            world,
            materials=[{"key": "id_card", "name": "居民身份证", "kind": "certificate", "type_code": ID_CARD}],
            form_fields=[{"name": "x", "label": "x", "material": "id_card", "field": "shoe_size"}],
        ),
    }
    for field, body in cases.items():
        response = world.client.post("/certhub/services", json=body, headers=admin)
        assert response.status_code == 422, (field, response.text)
        assert field in [e["field"] for e in response.json()["errors"]], (field, response.json())
    inactive_message = world.client.post("/certhub/services", json=service_body(world), headers=admin).json()["detail"]
    assert "inactive" in inactive_message and DRIVING in inactive_message
    assert _rows(world) == before
    # another department's staff may not register a service for the window's department
    other = world.hub.actor(world.other_window.department, "department_admin", name="天津管理员")
    body = service_body(world, materials=[{"key": "photo", "name": "照片", "kind": "submit"}], form_fields=[])
    assert world.client.post("/certhub/services", json=body, headers=other.headers).status_code == 403
    assert world.client.post("/certhub/services", json=body, headers=world.window.headers).status_code == 403
    staff = world.hub.actor(world.window.department, "department_admin", name="政务服务中心管理员")
    assert world.client.post("/certhub/services", json=body, headers=staff.headers).status_code == 201  # its own
    assert world.client.post("/certhub/services", json=body, headers=admin).status_code == 409
    assert _rows(world) == (before[0] + 1, before[1] + 1)
    # the other department neither sees nor publishes it
    assert world.client.get("/certhub/services", headers=other.headers).json()["items"] == []
    assert world.client.post(f"/certhub/services/{RESIDENCE}/versions/1/publish", headers=other.headers).status_code == 404
    published = world.client.post(f"/certhub/services/{RESIDENCE}/versions/1/publish", headers=staff.headers)
    assert published.status_code == 200 and published.json()["department_name"] == "北京市政务服务中心"


def test_the_public_lists_are_open_cacheable_and_formula_safe(world: World) -> None:
    register_and_publish(world, service_body(world))  # needs a photo: not 一证通办
    only_cards = service_body(
        world,
        code="11110000000019713D4000117002",
        name='=HYPERLINK("http://x","驾驶证信息查询")',
        materials=[
            {"key": "id_card", "name": "居民身份证", "kind": "certificate", "type_code": ID_CARD},
            {"key": "driving", "name": "机动车驾驶证", "kind": "certificate", "type_code": DRIVING},
        ],
        form_fields=[],
    )
    register_and_publish(world, only_cards)
    licence_only = service_body(
        world,
        code="11110000000019713D4000117003",
        name="企业信息变更",
        holder_kind="enterprise",
        materials=[{"key": "licence", "name": "营业执照", "kind": "certificate", "type_code": LICENCE}],
        form_fields=[],
    )
    register_and_publish(world, licence_only)

    exempt = world.client.get("/certhub/service-lists/exempt-materials")  # no sign-in
    assert exempt.status_code == 200 and exempt.headers["content-type"].startswith("application/json")
    items = exempt.json()["items"]
    assert {(i["service_code"], i["material"]) for i in items} == {
        (RESIDENCE, "居民身份证"),
        (RESIDENCE, "机动车驾驶证"),
        ("11110000000019713D4000117002", "居民身份证"),
        ("11110000000019713D4000117002", "机动车驾驶证"),
        ("11110000000019713D4000117003", "营业执照"),
    }  # the photo is submitted: not on the list
    one_id = world.client.get("/certhub/service-lists/one-id-card").json()["items"]
    assert [i["service_code"] for i in one_id] == ["11110000000019713D4000117002"]
    one_licence = world.client.get("/certhub/service-lists/one-licence").json()["items"]
    assert [i["service_code"] for i in one_licence] == ["11110000000019713D4000117003"]

    sheet = world.client.get("/certhub/service-lists/one-id-card?format=csv")
    assert sheet.status_code == 200 and sheet.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(sheet.text.lstrip("\ufeff"))))
    assert rows[0] == ["service_code", "service_name", "service_version", "department", "materials"]
    assert rows[1][1].startswith("'=HYPERLINK(")  # shown as text, never run as a formula

    tag, modified = exempt.headers["ETag"], exempt.headers["Last-Modified"]
    assert world.client.get("/certhub/service-lists/exempt-materials", headers={"If-None-Match": tag}).status_code == 304
    assert world.client.get("/certhub/service-lists/exempt-materials", headers={"If-Modified-Since": modified}).status_code == 304
    earlier = format_datetime(datetime.now(UTC) - timedelta(days=1), usegmt=True)
    assert world.client.get("/certhub/service-lists/exempt-materials", headers={"If-Modified-Since": earlier}).status_code == 200
    assert world.client.get("/certhub/service-lists/nonsense").status_code == 404
    assert world.client.get("/certhub/service-lists/exempt-materials?format=xlsx").status_code == 422
    # a new version that drops a material changes the list and its validator
    admin = world.hub.admin.headers
    edit = {k: v for k, v in only_cards.items() if k not in ("code", "department_code")}
    edit["materials"] = edit["materials"][:1]
    assert world.client.post(f"/certhub/services/{only_cards['code']}/versions", json=edit, headers=admin).status_code == 201
    assert world.client.post(f"/certhub/services/{only_cards['code']}/versions/2/publish", headers=admin).status_code == 200
    changed = world.client.get("/certhub/service-lists/exempt-materials", headers={"If-None-Match": tag})
    assert changed.status_code == 200 and changed.headers["ETag"] != tag and len(changed.json()["items"]) == 4


def test_prefill_without_authorisation_is_refused_and_recorded_and_bad_codes_are_named(world: World) -> None:
    register_and_publish(world, service_body(world))
    holder = citizen_id()
    world.issue(holder)
    refused = _prefill(world, holder)
    assert refused.status_code == 403 and "no authorisation exists" in refused.json()["detail"]
    with world.hub.factory() as db:
        denied = [r for r in audit.records_for(db, object_type="service") if r.outcome == "denied"]
        assert len(denied) == 1 and denied[0].purpose == "办理居住证" and denied[0].subject_ref == audit.subject_ref(holder)
    bad = _prefill(world, corrupt_check(holder))
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "holder_code"
    assert "公民身份号码" in bad.json()["errors"][0]["message"]
    enterprise = _prefill(world, uscc(kind="91"))  # a valid code, but the service is for persons
    assert enterprise.status_code == 422 and enterprise.json()["errors"][0]["field"] == "holder_code"
    assert "persons" in enterprise.json()["detail"]
    unknown = _prefill(world, holder, code="NO-SUCH-SERVICE")
    assert unknown.status_code == 404 and "NO-SUCH-SERVICE" in unknown.json()["detail"]
    no_cause = world.client.post(
        "/certhub/prefill", json={"holder_code": holder, "service_code": RESIDENCE}, headers=world.window.headers
    )
    assert no_cause.status_code == 422


def test_one_authorisation_for_the_service_prefills_the_form_and_the_holder_sees_every_read(world: World) -> None:
    register_and_publish(world, service_body(world))
    holder_code = citizen_id()
    id_card = world.issue(holder_code)
    driving = world.issue(holder_code, type_code=DRIVING, face=driving_face(holder_code))
    holder = world.hub.holder(holder_code)
    assert world.window.department is not None
    body = {"department_code": world.window.department.code, "purpose": "办理居住证", "expires_at": _later()}
    granted = world.client.post(f"/certhub/me/services/{RESIDENCE}/authorisations", json=body, headers=holder.headers)
    assert granted.status_code == 201, granted.text
    assert sorted(a["type_code"] for a in granted.json()["items"]) == sorted([ID_CARD, DRIVING])

    response = _prefill(world, holder_code)
    assert response.status_code == 200, response.text
    result = response.json()
    values = {v["name"]: (v["value"], v["source"], v["source_ref"]) for v in result["values"]}
    assert values == {
        "applicant_name": ("张三", "certificate", id_card["identifier"]),
        "address": ("北京市东城区正义路1号", "certificate", id_card["identifier"]),
        "vehicle_classes": ("C1", "certificate", driving["identifier"]),
    }
    assert [(m["key"], m["reason"]) for m in result["missing"]] == [("photo", "submit")]
    assert result["authorised_by"] == "authorisation"
    accesses = world.client.get("/certhub/me/accesses", headers=holder.headers).json()["items"]
    reads = {(a["certificate_identifier"], tuple(a["fields"])) for a in accesses if a["action"] == "prefill"}
    assert reads == {(id_card["identifier"], ("address", "name")), (driving["identifier"], ("vehicle_classes",))}
    assert all(a["use_cause"] == "办理居住证" for a in accesses)

    # 一证通办 in one step: both certificates in one call, each fetch recorded
    fetched = _prefill(world, holder_code, url="/certhub/service-fetch")
    assert fetched.status_code == 200, fetched.text
    assert {c["identifier"] for c in fetched.json()["certificates"]} == {id_card["identifier"], driving["identifier"]}
    accesses = world.client.get("/certhub/me/accesses", headers=holder.headers).json()["items"]
    assert sum(a["action"] == "fetch" for a in accesses) == 2

    # withdrawing the driving licence's authorisation: it is missing, the rest still fills
    driving_grant = next(a for a in granted.json()["items"] if a["type_code"] == DRIVING)
    assert world.client.delete(f"/certhub/me/authorisations/{driving_grant['id']}", headers=holder.headers).status_code == 200
    partial = _prefill(world, holder_code).json()
    assert {v["name"] for v in partial["values"]} == {"applicant_name", "address"}
    assert ("driving", "not_authorised") in [(m["key"], m["reason"]) for m in partial["missing"]]


def test_the_id_card_presented_at_the_window_yields_every_certificate_in_one_call_once(world: World) -> None:
    register_and_publish(world, service_body(world))
    holder_code = citizen_id()
    id_card = world.issue(holder_code)
    holder = world.hub.holder(holder_code)
    nonce = world.client.post("/certhub/verifier/nonces", headers=world.window.headers).json()["nonce"]
    shown = world.show(holder, id_card["identifier"], fields=["name"], nonce=nonce)
    response = _prefill(world, holder_code, url="/certhub/service-fetch", presentation=shown["token"], nonce=nonce)
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["authorised_by"] == "presentation"
    assert [c["identifier"] for c in result["certificates"]] == [id_card["identifier"]]
    assert [(m["key"], m["reason"]) for m in result["missing"]] == [("driving", "not_held"), ("photo", "submit")]
    # the same presentation again is a replay: refused and recorded
    replay = _prefill(world, holder_code, url="/certhub/service-fetch", presentation=shown["token"], nonce=nonce)
    assert replay.status_code == 403 and "replayed" in replay.json()["detail"]
    # someone else's ID card does not open this holder's certificates
    other_code = citizen_id()
    other_card = world.issue(other_code)
    nonce = world.client.post("/certhub/verifier/nonces", headers=world.window.headers).json()["nonce"]
    other = world.show(world.hub.holder(other_code), other_card["identifier"], fields=["name"], nonce=nonce)
    wrong = _prefill(world, holder_code, url="/certhub/service-fetch", presentation=other["token"], nonce=nonce)
    assert wrong.status_code == 403 and "not the holder's" in wrong.json()["detail"]
    with world.hub.factory() as db:
        assert len([r for r in audit.records_for(db, object_type="service") if r.outcome == "denied"]) == 2


def test_a_data_material_is_filled_through_the_departments_grant_and_is_on_the_holders_data_trail(world: World) -> None:
    hub, client = world.hub, world.client
    provider = hub.system(hub.department("市公安局人口管理"), "户籍系统")
    entry = publish(client, provider, hub.admin, sharing_type="conditional", conditions="仅限政务服务使用")
    holder_code = citizen_id()
    assert upload(client, provider, entry["id"], PEOPLE.format(holder=holder_code)).status_code == 201
    body = service_body(
        world,
        materials=[
            {"key": "id_card", "name": "居民身份证", "kind": "certificate", "type_code": ID_CARD},
            {
                "key": "household",
                "name": "户籍证明",
                "kind": "data",
                "resource_id": entry["id"],
                "item": "户籍地址",
                "key_item": "身份证号",
            },
        ],
        form_fields=[
            {"name": "applicant_name", "label": "申请人姓名", "material": "id_card", "field": "name"},
            {"name": "household_address", "label": "户籍地址", "material": "household"},
        ],
    )
    wrong_item = {**body, "materials": [body["materials"][0], {**body["materials"][1], "item": "血型"}]}
    refused = client.post("/certhub/services", json=wrong_item, headers=hub.admin.headers)
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "materials[1].item"
    register_and_publish(world, body)
    world.issue(holder_code)
    holder = hub.holder(holder_code)
    assert world.window.department is not None
    authorised = {"department_code": world.window.department.code, "purpose": "办理居住证", "expires_at": _later()}
    assert (
        client.post(f"/certhub/me/services/{RESIDENCE}/authorisations", json=authorised, headers=holder.headers).status_code
        == 201
    )

    # without a grant on the resource the data material is missing, the certificate still fills
    before = _prefill(world, holder_code).json()
    assert [(m["key"], m["reason"]) for m in before["missing"]] == [("household", "not_granted")]

    staff = hub.system(world.window.department, "窗口业务系统")
    filed = client.post(
        "/exchange/requests",
        json={
            "resource_id": entry["id"],
            "items": ["身份证号", "户籍地址"],
            "purpose": "居住证办理",
            "scenario": "窗口受理居住证申请时核验户籍",
            "legal_basis": "《居住证暂行条例》第九条",
            "valid_until": (datetime.now(UTC) + timedelta(days=200)).date().isoformat(),
            "contact_name": "王五",
            "contact_phone": "010-12345678",
        },
        headers=staff.headers,
    )
    assert filed.status_code == 201, filed.text
    request_id = filed.json()["id"]
    assert client.post(f"/exchange/requests/{request_id}/accept", headers=hub.admin.headers).status_code == 200
    decided = client.post(f"/exchange/requests/{request_id}/decision", json={"approve": True}, headers=provider.headers)
    assert decided.status_code == 200, decided.text

    result = _prefill(world, holder_code).json()
    value = next(v for v in result["values"] if v["name"] == "household_address")
    assert (value["value"], value["source"], value["source_ref"]) == ("北京市朝阳区幸福路1号", "data", decided.json()["grant_id"])
    assert value["source_name"] == "户籍人口基本信息·户籍地址"
    assert result["missing"] == []
    trail = client.get("/exchange/my-accesses", headers=holder.headers).json()["items"]
    assert len(trail) == 1 and trail[0]["consumer_department_id"] == world.window.department.id
    assert "办理居住证" in trail[0]["purpose"]
