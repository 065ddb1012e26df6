"""An entry's life: drafted, submitted, returned, published, versioned, retired — and who sees what."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from catalog_registry import service
from ops import audit
from ops.errors import Conflict
from tests.catalog_registry.helpers import create, entry_body, publish, upload
from tests.conftest import Hub


def test_a_draft_is_reviewed_returned_fixed_and_published(client: TestClient, hub: Hub, db: Session) -> None:
    police = hub.department("市公安局")
    provider = hub.system(police, "户籍系统")
    consumer = hub.system(hub.department("市民政局"), "婚姻登记系统")
    entry = create(client, provider)
    assert entry["state"] == "draft" and entry["version"]["state"] == "draft"
    assert entry["code"].startswith(f"{police.code}-R")  # the provider's code, then its own

    # a consumer does not see another department's draft, nor can it find it
    assert client.get(f"/catalog/entries/{entry['id']}", headers=consumer.headers).status_code == 404
    listed = client.get("/catalog/entries", headers=consumer.headers).json()["items"]
    assert entry["id"] not in [e["id"] for e in listed]

    assert client.post(f"/catalog/entries/{entry['id']}/submit", headers=provider.headers).status_code == 200
    waiting = client.get("/catalog/entries?version_state=submitted", headers=hub.admin.headers).json()["items"]
    assert entry["id"] in [e["id"] for e in waiting]

    # returning needs a reason
    bare = client.post(f"/catalog/entries/{entry['id']}/review", json={"decision": "return"}, headers=hub.admin.headers)
    assert bare.status_code == 422 and bare.json()["errors"][0]["field"] == "reason"
    returned = client.post(
        f"/catalog/entries/{entry['id']}/review",
        json={"decision": "return", "reason": "摘要未说明数据范围"},
        headers=hub.admin.headers,
    )
    assert returned.status_code == 200
    seen = client.get(f"/catalog/entries/{entry['id']}", headers=provider.headers)
    assert seen.json()["version"]["state"] == "returned"
    assert seen.json()["version"]["return_reason"] == "摘要未说明数据范围"

    # the provider fixes the draft (with the ETag it read) and submits again
    fixed = client.put(
        f"/catalog/entries/{entry['id']}/draft",
        json=entry_body(abstract="全市户籍人口的基本信息，范围为本市户籍登记人口，每日更新。"),
        headers={**provider.headers, "If-Match": seen.headers["ETag"]},
    )
    assert fixed.status_code == 200, fixed.text
    stale = client.put(
        f"/catalog/entries/{entry['id']}/draft",
        json=entry_body(),
        headers={**provider.headers, "If-Match": seen.headers["ETag"]},
    )
    assert stale.status_code == 412
    client.post(f"/catalog/entries/{entry['id']}/submit", headers=provider.headers)
    published = client.post(f"/catalog/entries/{entry['id']}/review", json={"decision": "publish"}, headers=hub.admin.headers)
    assert published.json()["state"] == "published"

    shown = client.get(f"/catalog/entries/{entry['id']}", headers=consumer.headers).json()
    assert shown["version"]["abstract"].startswith("全市户籍人口") and shown["version"]["published_at"]
    actions = [r.action for r in audit.records_for(db, object_type="catalog_entry", object_id=entry["id"])]
    assert actions == [
        "catalog.version.publish",
        "catalog.version.submit",
        "catalog.version.update",
        "catalog.version.return",
        "catalog.version.submit",
        "catalog.entry.create",
    ]


def test_a_published_version_is_immutable_and_changes_make_a_reviewed_new_version(
    client: TestClient, hub: Hub, db: Session
) -> None:
    provider = hub.system(hub.department("市人社局"), "社保系统")
    consumer = hub.system(hub.department("市医保局"))
    entry = publish(client, provider, hub.admin, name="社保参保信息")
    first_version = entry["current_version_id"]

    edit = client.put(f"/catalog/entries/{entry['id']}/draft", json=entry_body(name="社保参保缴费信息"), headers=provider.headers)
    assert edit.status_code == 409 and "immutable" in edit.json()["detail"]

    v2 = client.post(
        f"/catalog/entries/{entry['id']}/versions", json=entry_body(name="社保参保缴费信息"), headers=provider.headers
    )
    assert v2.status_code == 201 and v2.json()["version"]["number"] == 2
    twice = client.post(f"/catalog/entries/{entry['id']}/versions", json=entry_body(), headers=provider.headers)
    assert twice.status_code == 409

    # until the platform publishes it, consumers still rely on version 1
    assert client.get(f"/catalog/entries/{entry['id']}", headers=consumer.headers).json()["version"]["name"] == "社保参保信息"
    assert service.get_published_for_sharing(db, resource_id=entry["id"]).version_id == first_version

    client.post(f"/catalog/entries/{entry['id']}/submit", headers=provider.headers)
    client.post(f"/catalog/entries/{entry['id']}/review", json={"decision": "publish"}, headers=hub.admin.headers)
    now = service.get_published_for_sharing(db, resource_id=entry["id"])
    assert now.version == 2 and now.name == "社保参保缴费信息"
    old = service.get_version_for_sharing(db, version_id=first_version)
    assert old.name == "社保参保信息" and old.is_current is False

    history = client.get(f"/catalog/entries/{entry['id']}/versions", headers=consumer.headers).json()["items"]
    assert [(v["number"], v["state"]) for v in history] == [(2, "published"), (1, "superseded")]


def test_a_retired_entry_stays_readable_but_can_no_longer_be_shared(client: TestClient, hub: Hub, db: Session) -> None:
    provider = hub.system(hub.department("市民政局"), "婚姻登记系统")
    consumer = hub.system(hub.department("市税务局"))
    entry = publish(client, provider, hub.admin, name="婚姻登记信息")
    retired = client.post(
        f"/catalog/entries/{entry['id']}/retire", json={"reason": "并入新的婚姻登记资源"}, headers=provider.headers
    )
    assert retired.status_code == 200 and retired.json()["state"] == "retired"

    seen = client.get(f"/catalog/entries/{entry['id']}", headers=consumer.headers).json()
    assert seen["state"] == "retired" and seen["retired_reason"] == "并入新的婚姻登记资源"
    try:
        service.get_published_for_sharing(db, resource_id=entry["id"])
        raise AssertionError("a retired entry was offered for sharing")
    except Conflict as exc:
        assert "retired" in exc.detail
    assert (
        client.post(f"/catalog/entries/{entry['id']}/retire", json={"reason": "again"}, headers=provider.headers).status_code
        == 409
    )
    found = client.get("/catalog/search?q=婚姻", headers=consumer.headers).json()["items"]
    assert entry["id"] not in [h["id"] for h in found]


def test_only_the_provider_changes_an_entry_and_only_the_platform_reviews(client: TestClient, hub: Hub) -> None:
    provider = hub.system(hub.department("市市场监管局"), "企业登记系统")
    other = hub.system(hub.department("市交通局"))
    entry = create(client, provider, name="企业登记信息")
    assert client.put(f"/catalog/entries/{entry['id']}/draft", json=entry_body(), headers=other.headers).status_code == 404
    assert client.post(f"/catalog/entries/{entry['id']}/submit", headers=other.headers).status_code == 404
    client.post(f"/catalog/entries/{entry['id']}/submit", headers=provider.headers)
    self_review = client.post(f"/catalog/entries/{entry['id']}/review", json={"decision": "publish"}, headers=provider.headers)
    assert self_review.status_code == 403
    # once published, other departments read it but still cannot change it
    client.post(f"/catalog/entries/{entry['id']}/review", json={"decision": "publish"}, headers=hub.admin.headers)
    assert client.get(f"/catalog/entries/{entry['id']}", headers=other.headers).status_code == 200
    assert client.post(f"/catalog/entries/{entry['id']}/versions", json=entry_body(), headers=other.headers).status_code == 403
    holder = hub.holder("11010519491231002X")
    assert client.get(f"/catalog/entries/{entry['id']}", headers=holder.headers).status_code == 403


def test_the_platform_registers_an_entry_for_a_named_provider(client: TestClient, hub: Hub) -> None:
    health = hub.department("市卫健委")
    missing = client.post("/catalog/entries", json=entry_body(name="出生医学证明"), headers=hub.admin.headers)
    assert missing.status_code == 422 and missing.json()["errors"][0]["field"] == "provider_department_id"
    made = client.post(
        "/catalog/entries",
        json=entry_body(name="出生医学证明", is_certificate=True, provider_department_id=health.id),
        headers=hub.admin.headers,
    )
    assert made.status_code == 201 and made.json()["provider_name"] == "市卫健委"


def test_a_draft_withdrawn_before_publication_stays_with_its_provider(client: TestClient, hub: Hub) -> None:
    provider = hub.system(hub.department("市公安局"))
    consumer = hub.system(hub.department("市民政局"))
    entry = create(client, provider, name="试点资源")
    retired = client.post(f"/catalog/entries/{entry['id']}/retire", json={"reason": "试点取消"}, headers=provider.headers)
    assert retired.status_code == 200 and retired.json()["state"] == "retired"
    assert retired.json()["version"]["state"] == "withdrawn"
    assert client.get(f"/catalog/entries/{entry['id']}", headers=consumer.headers).status_code == 404
    assert entry["id"] not in [e["id"] for e in client.get("/catalog/entries", headers=consumer.headers).json()["items"]]


SECRET_ITEMS = [
    {"name": "身份证号", "data_type": "string", "length": 18, "sensitivity": "sensitive", "personal": True},
    {"name": "姓名", "data_type": "string", "length": 50, "sensitivity": "sensitive", "personal": True},
    {"name": "案件编号", "data_type": "string", "length": 30, "sensitivity": "涉密"},
]


def test_an_entry_with_a_secret_item_cannot_be_shared(client: TestClient, hub: Hub, db: Session) -> None:
    provider = hub.system(hub.department("市公安局"))
    for sharing in ({"sharing_type": "有条件共享", "conditions": "仅限刑侦业务"}, {"sharing_type": "无条件共享"}):
        refused = client.post("/catalog/entries", json=entry_body(items=SECRET_ITEMS, **sharing), headers=provider.headers)
        assert refused.status_code == 422, refused.text
        [error] = refused.json()["errors"]
        assert error["field"] == "sharing_type" and "案件编号" in error["message"] and "not_shared" in error["message"]
    opened = client.post(
        "/catalog/entries",
        json=entry_body(items=SECRET_ITEMS, sharing_type="不予共享", legal_basis="《保守国家秘密法》", open_attribute="open"),
        headers=provider.headers,
    )
    assert opened.status_code == 422 and opened.json()["errors"][0]["field"] == "open_attribute"

    # it can be catalogued: not shared, with its legal basis
    entry = publish(
        client,
        provider,
        hub.admin,
        items=SECRET_ITEMS,
        sharing_type="不予共享",
        legal_basis="《中华人民共和国保守国家秘密法》第二条",
        control_parameters=[],
    )
    assert entry["version"]["sharing_type"] == "not_shared" and entry["version"]["items"][2]["sensitivity"] == "secret"
    # and a new version may not make it shared
    shared = client.post(
        f"/catalog/entries/{entry['id']}/versions",
        json=entry_body(items=SECRET_ITEMS, sharing_type="conditional", conditions="仅限刑侦业务"),
        headers=provider.headers,
    )
    assert shared.status_code == 422 and shared.json()["errors"][0]["field"] == "sharing_type"
    # its data never enters the hub
    loaded = upload(client, provider, entry["id"], "身份证号,姓名,案件编号\n110105199001011234,张三,A-2026-001\n")
    assert loaded.status_code == 403 and loaded.json()["code"] == "classified"
    assert "案件编号" in loaded.json()["detail"]
    with pytest.raises(service.ClassifiedNotShared):
        service.ensure_shareable(service.get_published_for_sharing(db, resource_id=entry["id"]))


def test_a_draft_with_a_secret_item_from_before_the_rule_is_neither_submitted_nor_published(
    client: TestClient, hub: Hub, db: Session
) -> None:
    from catalog_registry.models import EntryVersion

    provider = hub.system(hub.department("市公安局"))
    draft, submitted = create(client, provider), create(client, provider)
    assert client.post(f"/catalog/entries/{submitted['id']}/submit", headers=provider.headers).status_code == 200
    for entry in (draft, submitted):
        version = db.get(EntryVersion, entry["version"]["id"])
        assert version is not None
        version.items = [*version.items, {"name": "案件编号", "data_type": "string", "sensitivity": "secret"}]
    db.commit()
    refused = client.post(f"/catalog/entries/{draft['id']}/submit", headers=provider.headers)
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "sharing_type"
    review = client.post(f"/catalog/entries/{submitted['id']}/review", json={"decision": "publish"}, headers=hub.admin.headers)
    assert review.status_code == 422 and "案件编号" in review.json()["detail"]
