"""Supply and demand (供需对接) and the sharing responsibility list (共享责任清单)."""

from __future__ import annotations

import csv
import io

from fastapi.testclient import TestClient

from tests.catalog_registry.helpers import create, publish
from tests.conftest import Hub


def test_a_demand_addressed_to_a_department_is_answered_with_a_new_entry(client: TestClient, hub: Hub) -> None:
    civil = hub.department("市民政局")
    consumer = hub.system(hub.department("市住建局"), "公积金系统")
    provider = hub.system(civil, "婚姻登记系统")
    bystander = hub.system(hub.department("市交通局"))
    posted = client.post(
        "/catalog/demands",
        json={
            "title": "婚姻状况信息",
            "purpose": "住房公积金贷款审批需核验申请人婚姻状况",
            "items_wanted": ["身份证号", "婚姻状况"],
            "target_department_id": civil.id,
        },
        headers=consumer.headers,
    )
    assert posted.status_code == 201 and posted.json()["state"] == "open"
    demand = posted.json()

    incoming = client.get("/catalog/demands?box=incoming", headers=provider.headers).json()["items"]
    assert [d["id"] for d in incoming] == [demand["id"]]
    assert client.get(f"/catalog/demands/{demand['id']}", headers=bystander.headers).status_code == 404
    refused = client.post(f"/catalog/demands/{demand['id']}/answer", json={"entry_id": "x"}, headers=bystander.headers)
    assert refused.status_code == 404

    # the provider registers a new entry for it and links it
    entry = create(client, provider, name="婚姻状况信息")
    other_entry = create(client, bystander, name="车辆信息")
    not_theirs = client.post(
        f"/catalog/demands/{demand['id']}/answer", json={"entry_id": other_entry["id"]}, headers=provider.headers
    )
    assert not_theirs.status_code == 422 and not_theirs.json()["errors"][0]["field"] == "entry_id"
    answered = client.post(
        f"/catalog/demands/{demand['id']}/answer",
        json={"entry_id": entry["id"], "note": "已编目，审核后发布"},
        headers=provider.headers,
    )
    assert answered.status_code == 200
    assert answered.json()["state"] == "answered" and answered.json()["entry_id"] == entry["id"]
    again = client.post(f"/catalog/demands/{demand['id']}/decline", json={"reason": "晚了"}, headers=provider.headers)
    assert again.status_code == 409

    mine = client.get("/catalog/demands?box=posted&state=answered", headers=consumer.headers).json()["items"]
    assert [d["answered_by_department_id"] for d in mine] == [civil.id]


def test_an_open_demand_to_nobody_is_answered_by_any_provider_and_a_named_one_may_decline(client: TestClient, hub: Hub) -> None:
    consumer = hub.system(hub.department("市医保局"))
    police_dept = hub.department("市公安局")
    police = hub.system(police_dept)
    social = hub.system(hub.department("市人社局"))
    open_demand = client.post(
        "/catalog/demands", json={"title": "死亡登记信息", "purpose": "停发医保待遇"}, headers=consumer.headers
    ).json()
    assert open_demand["id"] in [d["id"] for d in client.get("/catalog/demands", headers=social.headers).json()["items"]]
    entry = publish(client, police, hub.admin, name="死亡人口信息")
    answered = client.post(f"/catalog/demands/{open_demand['id']}/answer", json={"entry_id": entry["id"]}, headers=police.headers)
    assert answered.status_code == 200
    # answered: it leaves the other providers' inboxes
    assert open_demand["id"] not in [d["id"] for d in client.get("/catalog/demands", headers=social.headers).json()["items"]]

    named = client.post(
        "/catalog/demands",
        json={"title": "出入境记录", "purpose": "核验", "target_department_id": police_dept.id},
        headers=consumer.headers,
    ).json()
    not_named = client.post(f"/catalog/demands/{named['id']}/decline", json={"reason": "不是我们的数据"}, headers=social.headers)
    assert not_named.status_code == 404
    bare = client.post(f"/catalog/demands/{named['id']}/decline", json={}, headers=police.headers)
    assert bare.status_code == 422 and bare.json()["errors"][0]["field"] == "reason"
    declined = client.post(
        f"/catalog/demands/{named['id']}/decline", json={"reason": "出入境数据由国家移民管理局垂直管理"}, headers=police.headers
    )
    assert declined.json()["state"] == "declined" and declined.json()["decline_reason"].startswith("出入境")
    unknown = client.post(
        "/catalog/demands", json={"title": "某数据", "purpose": "核验", "target_department_id": "nope"}, headers=consumer.headers
    )
    assert unknown.status_code == 422 and unknown.json()["errors"][0]["field"] == "target_department_id"


def test_the_responsibility_list_names_each_published_resource_and_its_sharing_type(client: TestClient, hub: Hub) -> None:
    police_dept = hub.department("市公安局")
    police = hub.system(police_dept)
    publish(client, police, hub.admin, name="户籍人口信息")
    publish(client, police, hub.admin, name="户籍迁移记录", sharing_type="conditional", conditions="仅限户籍业务")
    publish(client, police, hub.admin, name="在逃人员信息", sharing_type="not_shared", legal_basis="《中华人民共和国刑事诉讼法》")
    create(client, police, name="草稿资源")  # not yet the department's responsibility
    viewer = hub.system(hub.department("市税务局"))
    report = client.get(f"/catalog/responsibility-lists/{police_dept.id}", headers=viewer.headers).json()
    assert report["department_name"] == "市公安局"
    assert report["totals"] == {"unconditional": 1, "conditional": 1, "not_shared": 1, "total": 3}
    assert {(e["name"], e["sharing_type"]) for e in report["entries"]} == {
        ("户籍人口信息", "unconditional"),
        ("户籍迁移记录", "conditional"),
        ("在逃人员信息", "not_shared"),
    }
    sheet = client.get(f"/catalog/responsibility-lists/{police_dept.id}?format=csv", headers=viewer.headers)
    assert sheet.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(sheet.text.lstrip("\ufeff"))))
    assert rows[0][:4] == ["提供部门", "资源代码", "资源名称", "共享类型"] and len(rows) == 4
    assert {r[3] for r in rows[1:]} == {"无条件共享", "有条件共享", "不予共享"}
    # one language for the values too: the update cycle and the certificate flag are Chinese like the rest
    assert rows[0][6:] == ["更新周期", "电子证照"]
    assert {r[6] for r in rows[1:]} <= {"实时", "每天", "每周", "每月", "每季度", "每半年", "每年"}
    assert {r[7] for r in rows[1:]} <= {"是", "否"}
    assert client.get("/catalog/responsibility-lists/nope", headers=viewer.headers).status_code == 404


def test_a_demand_with_the_longest_purpose_allowed_is_filed_and_audited_whole(client: TestClient, hub: Hub) -> None:
    """The purpose may be 1000 characters; the audit record kept 500, and PostgreSQL answered 500."""
    consumer = hub.system(hub.department("市住建局"), "公积金系统")
    purpose = ("住房公积金贷款审批需核验申请人婚姻状况" * 53)[:1000]
    assert len(purpose) == 1000
    posted = client.post("/catalog/demands", json={"title": "婚姻状况信息", "purpose": purpose}, headers=consumer.headers)
    assert posted.status_code == 201, posted.text
    trail = client.get("/audit/records", params={"object_id": posted.json()["id"]}, headers=hub.admin.headers).json()
    assert [r["purpose"] for r in trail["items"]] == [purpose]
