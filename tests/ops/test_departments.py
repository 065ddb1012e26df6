"""Scenarios of departments and clients: who may do what, and who sees what."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.conftest import Hub
from tests.factories import corrupt_check, uscc


def _department_body(**overrides: object) -> dict[str, object]:
    body: dict[str, object] = {
        "code": uscc(region="330000"),
        "name": "浙江省大数据发展管理局",
        "level": "province",
        "region_code": "330000",
    }
    body.update(overrides)
    return body


def test_a_platform_admin_registers_a_department_and_reads_it_back(client: TestClient, hub: Hub) -> None:
    created = client.post("/departments", headers=hub.admin.headers, json=_department_body())
    assert created.status_code == 201, created.text
    assert created.headers["etag"] == '"1"'
    read = client.get(f"/departments/{created.json()['id']}", headers=hub.admin.headers)
    assert read.json()["name"] == "浙江省大数据发展管理局"


def test_a_credit_code_with_a_bad_check_character_is_refused(client: TestClient, hub: Hub) -> None:
    response = client.post(
        "/departments", headers=hub.admin.headers, json=_department_body(code=corrupt_check(uscc(region="330000")))
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "code"
    assert "GB 32100" in response.json()["detail"]


def test_a_duplicate_code_is_a_conflict(client: TestClient, hub: Hub) -> None:
    body = _department_body()
    assert client.post("/departments", headers=hub.admin.headers, json=body).status_code == 201
    again = client.post("/departments", headers=hub.admin.headers, json=body)
    assert again.status_code == 409 and body["code"] in again.json()["detail"]


def test_a_department_system_may_not_register_departments(client: TestClient, hub: Hub) -> None:
    system = hub.system()
    response = client.post("/departments", headers=system.headers, json=_department_body())
    assert response.status_code == 403
    assert "platform_admin" in response.json()["detail"]


def test_a_department_sees_only_itself_and_gets_404_for_another(client: TestClient, hub: Hub) -> None:
    police = hub.department("公安局")
    health = hub.department("卫健委")
    system = hub.system(police)
    listed = client.get("/departments", headers=system.headers).json()["items"]
    assert [d["id"] for d in listed] == [police.id]
    other = client.get(f"/departments/{health.id}", headers=system.headers)
    assert other.status_code == 404


def test_concurrent_edits_with_if_match_lose_nothing(client: TestClient, hub: Hub) -> None:
    department = hub.department("民政局")
    first = client.patch(
        f"/departments/{department.id}", headers={**hub.admin.headers, "If-Match": '"1"'}, json={"name": "北京市民政局"}
    )
    assert first.status_code == 200 and first.headers["etag"] == '"2"'
    stale = client.patch(
        f"/departments/{department.id}", headers={**hub.admin.headers, "If-Match": '"1"'}, json={"name": "民政局（旧）"}
    )
    assert stale.status_code == 412 and stale.json()["current_version"] == 2
    assert client.get(f"/departments/{department.id}", headers=hub.admin.headers).json()["name"] == "北京市民政局"


def test_a_department_admin_creates_a_window_client_for_its_own_department_only(client: TestClient, hub: Hub) -> None:
    mine = hub.department("市场监管局")
    theirs = hub.department("税务局")
    admin = hub.actor(mine, "department_admin")
    created = client.post("/clients", headers=admin.headers, json={"name": "大厅窗口1", "roles": ["window"]})
    assert created.status_code == 201 and created.json()["department_id"] == mine.id
    assert created.json()["client_secret"]
    elsewhere = client.post(
        "/clients", headers=admin.headers, json={"name": "越权", "roles": ["window"], "department_id": theirs.id}
    )
    assert elsewhere.status_code == 404
    escalate = client.post("/clients", headers=admin.headers, json={"name": "提权", "roles": ["platform_admin"]})
    assert escalate.status_code == 403
    # The secret is never shown again.
    listed = client.get("/clients", headers=admin.headers).json()["items"]
    assert all("client_secret" not in c for c in listed)
    assert {c["department_id"] for c in listed} == {mine.id}


def test_listing_pages_with_a_cursor(client: TestClient, hub: Hub) -> None:
    for i in range(5):
        hub.department(f"分页测试局{i}")
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, object] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = client.get("/departments", headers=hub.admin.headers, params=params).json()
        seen.extend(d["id"] for d in page["items"])
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(seen) == len(set(seen)) >= 5
    bad = client.get("/departments", headers=hub.admin.headers, params={"cursor": "%%%"})
    assert bad.status_code == 422 and "cursor" in bad.json()["detail"]


def test_a_platform_admin_finds_a_department_by_its_credit_code(client: TestClient, hub: Hub) -> None:
    police = hub.department("公安局")
    hub.department("卫健委")
    found = client.get("/departments", headers=hub.admin.headers, params={"code": police.code})
    assert found.status_code == 200, found.text
    assert [d["id"] for d in found.json()["items"]] == [police.id]


def test_an_unknown_query_parameter_is_refused_naming_it(client: TestClient, hub: Hub) -> None:
    """A misspelt filter is an error, not a silently unfiltered list."""
    response = client.get("/departments", headers=hub.admin.headers, params={"regioncode": "110000"})
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert "regioncode" in response.json()["detail"]
    assert response.json()["errors"][0]["field"] == "regioncode"
    assert response.json()["errors"][0]["in"] == "query"
    # Every route keeps the same rule, not only the departments.
    elsewhere = client.get("/certhub/types", headers=hub.admin.headers, params={"nosuch": "1"})
    assert elsewhere.status_code == 422 and "nosuch" in elsewhere.json()["detail"]
