"""The exchange end to end on the real catalogue: publish, upload, request, decide, look up, audit."""

from __future__ import annotations

from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy.orm import Session

from catalog_registry.models import EntryVersion
from ops.audit import subject_ref
from tests.catalog_registry.helpers import publish, upload
from tests.conftest import Hub

PEOPLE = (
    "身份证号,姓名,户籍地址,出生日期\n"
    "110105199001011234,张三,北京市朝阳区幸福路1号,1990-01-01\n"
    "11010519491231002X,李四,北京市东城区和平街2号,1949-12-31\n"
)


def test_a_consumer_gets_masked_rows_of_a_published_dataset_after_the_provider_approves(client: TestClient, hub: Hub) -> None:
    provider = hub.system(hub.department("市公安局"), "户籍系统")
    consumer = hub.system(hub.department("市民政局"), "救助系统")
    entry = publish(client, provider, hub.admin, sharing_type="conditional", conditions="仅限社会救助审核")
    assert upload(client, provider, entry["id"], PEOPLE).status_code == 201

    filed = client.post(
        "/exchange/requests",
        json={
            "resource_id": entry["id"],
            "items": ["身份证号", "姓名", "出生日期"],
            "purpose": "低保资格审核",
            "scenario": "窗口受理低保申请时核验户籍",
            "legal_basis": "《社会救助暂行办法》第十一条",
            "valid_until": "2099-12-31",
            "contact_name": "李四",
            "contact_phone": "010-12345678",
        },
        headers=consumer.headers,
    )
    assert filed.status_code == 422 and "valid_until" in filed.text  # longer than a grant may last
    body = filed.request.content.decode().replace("2099-12-31", "2027-06-30")
    filed = client.post("/exchange/requests", content=body, headers={**consumer.headers, "Content-Type": "application/json"})
    assert filed.status_code == 201, filed.text
    req = filed.json()
    assert client.post(f"/exchange/requests/{req['id']}/accept", headers=hub.admin.headers).json()["state"] == "provider_review"
    approved = client.post(f"/exchange/requests/{req['id']}/decision", json={"approve": True}, headers=provider.headers)
    assert approved.status_code == 200, approved.text

    grant_id = approved.json()["grant_id"]
    found = client.post(
        f"/exchange/grants/{grant_id}/lookup", json={"params": {"身份证号": "11010519491231002X"}}, headers=consumer.headers
    )
    assert found.status_code == 200, found.text
    assert found.json()["rows"] == [{"身份证号": "110105********002X", "姓名": "李*", "出生日期": "1949-12-31"}]
    missing = client.post(f"/exchange/grants/{grant_id}/lookup", json={"params": {}}, headers=consumer.headers)
    assert missing.status_code == 422

    holder = hub.holder("11010519491231002X", name="李四")
    trail = client.get("/exchange/my-accesses", headers=holder.headers).json()["items"]
    assert len(trail) == 1 and trail[0]["consumer_department_id"] == consumer.department_id
    assert trail[0]["parameters"] == {"身份证号": "sha256:" + subject_ref("11010519491231002X")}


def test_a_not_shared_catalogue_entry_cannot_be_requested(client: TestClient, hub: Hub) -> None:
    provider = hub.system(hub.department("市公安局"))
    consumer = hub.system(hub.department("市民政局"))
    entry = publish(
        client,
        provider,
        hub.admin,
        sharing_type="not_shared",
        legal_basis="《中华人民共和国居民身份证法》第六条",
        control_parameters=[],
        serves_dataset=False,
    )
    response = client.post(
        "/exchange/requests",
        json={
            "resource_id": entry["id"],
            "items": ["姓名"],
            "purpose": "核验",
            "scenario": "核验身份",
            "legal_basis": "无依据",
            "valid_until": "2027-01-31",
            "contact_name": "王",
            "contact_phone": "12345",
        },
        headers=consumer.headers,
    )
    assert response.status_code == 422 and "居民身份证法" in response.json()["detail"]


def test_an_entry_published_with_a_secret_item_before_the_rule_shares_nothing(
    client: TestClient, hub: Hub, db: Session
) -> None:
    provider = hub.system(hub.department("市公安局"), "户籍系统")
    consumer = hub.system(hub.department("市民政局"), "救助系统")
    entry = publish(
        client,
        provider,
        hub.admin,
        sharing_type="conditional",
        conditions="仅限社会救助审核",
        allows_export=True,
        api={"url": "https://ga.example.gov.cn/api/hj", "method": "GET"},
    )
    assert upload(client, provider, entry["id"], PEOPLE).status_code == 201
    body = {
        "resource_id": entry["id"],
        "items": ["身份证号", "姓名", "户籍地址"],
        "clear_items": ["姓名"],
        "purpose": "低保资格审核",
        "scenario": "窗口受理低保申请时核验户籍",
        "legal_basis": "《社会救助暂行办法》第十一条",
        "valid_until": "2027-06-30",
        "contact_name": "李四",
        "contact_phone": "010-12345678",
    }

    def file() -> str:
        filed = client.post("/exchange/requests", json=body, headers=consumer.headers)
        assert filed.status_code == 201, filed.text
        return str(filed.json()["id"])

    granted, pending = file(), file()
    assert client.post(f"/exchange/requests/{granted}/accept", headers=hub.admin.headers).status_code == 200
    approved = client.post(f"/exchange/requests/{granted}/decision", json={"approve": True}, headers=provider.headers)
    grant_id = approved.json()["grant_id"]
    lookup = {"params": {"身份证号": "11010519491231002X"}}
    assert client.post(f"/exchange/grants/{grant_id}/lookup", json=lookup, headers=consumer.headers).status_code == 200

    # The hub is upgraded over a catalogue where this entry's 户籍地址 is graded 涉密: published,
    # requested, approved and loaded before the rule existed.
    version = db.get(EntryVersion, entry["version"]["id"])
    assert version is not None
    version.items = [{**i, "sensitivity": "secret"} if i["name"] == "户籍地址" else i for i in version.items]
    db.commit()

    from catalog_registry import service as catalogue

    [listed] = catalogue.shared_entries_holding_classified(db)
    assert listed["id"] == entry["id"] and listed["classified_items"] == ["户籍地址"]

    def refused(response: Response) -> None:
        assert response.status_code == 403, response.text
        assert response.json()["code"] == "classified" and "户籍地址" in response.json()["detail"]
        assert "北京市" not in response.text

    refused(client.post(f"/exchange/grants/{grant_id}/lookup", json=lookup, headers=consumer.headers))
    refused(client.post(f"/exchange/grants/{grant_id}/lookup", json={**lookup, "fields": ["姓名"]}, headers=consumer.headers))
    refused(client.get(f"/exchange/grants/{grant_id}/export", headers=consumer.headers))
    refused(client.post(f"/exchange/grants/{grant_id}/call", json=lookup, headers=consumer.headers))
    refused(client.post("/exchange/requests", json=body, headers=consumer.headers))
    refused(client.post(f"/exchange/requests/{pending}/accept", headers=hub.admin.headers))
    refused(upload(client, provider, entry["id"], PEOPLE))
    # the platform refuses the pending request (不予受理) with the reason
    closed = client.post(
        f"/exchange/requests/{pending}/refuse", json={"reason": "含涉密信息项，不予共享"}, headers=hub.admin.headers
    )
    assert closed.status_code == 200 and closed.json()["state"] == "refused"
    # every refused access is in the trail
    trail = client.get(f"/exchange/accesses?grant_id={grant_id}", headers=provider.headers).json()["items"]
    assert {a["outcome"] for a in trail} >= {"classified"}
