"""数据回流: a province-wide entry shared with departments of lower-level governments returns to each only
the rows of its own division (and those below it), in every access path; a province-level consumer sees all."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from exchange import service
from ops.audit import AuditRecord
from ops.auth import Principal, Role
from ops.errors import HubError
from tests.catalog_registry.helpers import publish, upload
from tests.conftest import Actor, Hub
from tests.console.test_pages import sign_in

# 低保对象名册 of Zhejiang: one person (330106…0015) moved from 西湖区 to 鄞州区 and has a row in each.
ROWS = [
    ("330106199001010011", "张西湖", "330106", "1200"),
    ("330106199001010027", "李西湖", "330106", "1350"),
    ("330102199001010033", "王上城", "330102", "1100"),
    ("330110199001010049", "赵余杭", "330110", "980"),
    ("330212199001010055", "钱鄞州", "330212", "1010"),
    ("330106199001010015", "孙迁居", "330106", "900"),
    ("330106199001010015", "孙迁居", "330212", "950"),
]
CSV = "身份证号,姓名,行政区划,保障金额\n" + "".join(f"{i},{n},{r},{a}\n" for i, n, r, a in ROWS)
ITEMS = [
    {"name": "身份证号", "data_type": "string", "length": 18, "sensitivity": "internal", "personal": True},
    {"name": "姓名", "data_type": "string", "length": 50, "sensitivity": "internal", "personal": True},
    {"name": "行政区划", "data_type": "string", "length": 6, "sensitivity": "public"},
    {"name": "保障金额", "data_type": "decimal", "sensitivity": "internal"},
]
FIELDS = ["身份证号", "姓名", "行政区划", "保障金额"]


@dataclass
class Province:
    client: TestClient
    hub: Hub
    provider: Actor
    entry: dict[str, Any]

    def granted(self, name: str, region: str, level: str) -> tuple[Actor, dict[str, Any]]:
        """A department of the given division files a request; the platform accepts, the provider approves."""
        consumer = self.hub.system(self.hub.department(name, region=region, level=level), name + "系统")
        filed = self.client.post("/exchange/requests", json=request_body(self.entry["id"]), headers=consumer.headers)
        assert filed.status_code == 201, filed.text
        accepted = self.client.post(f"/exchange/requests/{filed.json()['id']}/accept", headers=self.hub.admin.headers)
        assert accepted.status_code == 200, accepted.text
        decided = self.client.post(
            f"/exchange/requests/{filed.json()['id']}/decision", json={"approve": True}, headers=self.provider.headers
        )
        assert decided.status_code == 200, decided.text
        grant = self.client.get(f"/exchange/grants/{decided.json()['grant_id']}", headers=consumer.headers)
        return consumer, grant.json()

    def lookup(self, consumer: Actor, grant: dict[str, Any], person: str) -> Any:
        return self.client.post(
            f"/exchange/grants/{grant['id']}/lookup", json={"params": {"身份证号": person}}, headers=consumer.headers
        )

    def export_all(self, consumer: Actor, grant: dict[str, Any], page: int = 2) -> list[tuple[str, str]]:
        """Every row the grant's export pages through (the division and the amount of each)."""
        rows: list[tuple[str, str]] = []
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"limit": page, **({"cursor": cursor} if cursor else {})}
            answer = self.client.get(f"/exchange/grants/{grant['id']}/export", params=params, headers=consumer.headers)
            assert answer.status_code == 200, answer.text
            rows += [(r["行政区划"], r["保障金额"]) for r in answer.json()["rows"]]
            cursor = answer.json()["next_cursor"]
            if cursor is None:
                return sorted(rows)


def request_body(entry_id: str) -> dict[str, Any]:
    return {
        "resource_id": entry_id,
        "items": FIELDS,
        "purpose": "低保对象复核",
        "scenario": "基层核对辖区内低保对象",
        "legal_basis": "《社会救助暂行办法》第十一条",
        "valid_until": "2027-06-30",
        "contact_name": "周",
        "contact_phone": "0571-12345678",
    }


@pytest.fixture()
def province(client: TestClient, hub: Hub) -> Province:
    provider = hub.system(hub.department("浙江省民政厅", region="330000", level="province"), "社会救助系统")
    entry = publish(
        client,
        provider,
        hub.admin,
        name="低保对象名册",
        items=ITEMS,
        control_parameters=[{"item": "身份证号", "required": True, "max_rows": 10}],
        sharing_type="conditional",
        conditions="仅限社会救助工作",
        allows_export=True,
        division_item="行政区划",
        region_scoped=True,
    )
    assert entry["version"]["division_item"] == "行政区划" and entry["version"]["region_scoped"] is True
    loaded = upload(client, provider, entry["id"], CSV)
    assert loaded.status_code == 201, loaded.text
    return Province(client, hub, provider, entry)


def test_a_county_department_gets_only_its_countys_rows_in_every_access_path(province: Province, db: Session) -> None:
    county, grant = province.granted("西湖区民政局", "330106", "county")
    assert (grant["region_scope"], grant["region_scope_name"]) == ("330106", "西湖区")

    own = province.lookup(county, grant, "330106199001010011")
    assert own.status_code == 200 and [r["姓名"] for r in own.json()["rows"]] == ["张西湖"]
    # Another county's row is answered exactly as a row that does not exist.
    other = province.lookup(county, grant, "330102199001010033")
    missing = province.lookup(county, grant, "330106199901019999")
    assert other.status_code == missing.status_code == 200
    assert other.json()["rows"] == missing.json()["rows"] == []
    # A person with rows in two counties: only the row of this county.
    moved = province.lookup(county, grant, "330106199001010015")
    assert [(r["行政区划"], r["保障金额"]) for r in moved.json()["rows"]] == [("330106", "900")]

    # The refusal is recorded: the trail keeps the withheld rows of the out-of-scope lookups, not of the missing one.
    withheld = db.scalars(
        select(AuditRecord).where(AuditRecord.object_id == grant["id"], AuditRecord.outcome == "out_of_scope")
    ).all()
    assert sorted(r.detail["withheld_rows"] for r in withheld) == [1, 1]
    assert {r.detail["region_scope"] for r in withheld} == {"330106"}

    # The export pages through the county's rows only (3 rows, 2 a page).
    assert province.export_all(county, grant) == [("330106", "1200"), ("330106", "1350"), ("330106", "900")]

    # A batch of lookups (one transaction, rows read ahead together) keeps the scope for each.
    principal = Principal(subject="staff", roles=frozenset({Role.DEPARTMENT_SYSTEM}), department_id=county.department_id)
    people = ["330106199001010027", "330212199001010055", "330106199001010015", "330110199001010049"]
    results = service.run_lookups(
        db, [service.LookupAsk(principal, grant["id"], {"身份证号": p}, ["姓名", "行政区划"], None) for p in people]
    )
    db.commit()
    answered = [[] if isinstance(r, HubError) else [(row["姓名"], row["行政区划"]) for row in r.rows] for r in results]
    assert answered == [[("李西湖", "330106")], [], [("孙迁居", "330106")], []]


def test_a_prefecture_sees_its_counties_and_a_province_department_sees_everything(province: Province) -> None:
    city, city_grant = province.granted("杭州市民政局", "330100", "city")
    assert (city_grant["region_scope"], city_grant["region_scope_name"]) == ("330100", "杭州市")
    assert province.export_all(city, city_grant) == sorted(
        [("330106", "1200"), ("330106", "1350"), ("330102", "1100"), ("330110", "980"), ("330106", "900")]
    )
    assert [r["行政区划"] for r in province.lookup(city, city_grant, "330110199001010049").json()["rows"]] == ["330110"]
    assert province.lookup(city, city_grant, "330212199001010055").json()["rows"] == []  # 宁波's

    peer, peer_grant = province.granted("浙江省财政厅", "330000", "province")
    assert peer_grant["region_scope"] is None
    assert province.export_all(peer, peer_grant, page=3) == sorted((r, a) for _, _, r, a in ROWS)
    moved = province.lookup(peer, peer_grant, "330106199001010015").json()["rows"]
    assert sorted(r["行政区划"] for r in moved) == ["330106", "330212"]


def test_a_department_whose_region_code_is_not_a_known_division_is_told_before_a_grant(province: Province) -> None:
    # 339999 is well-formed (Zhejiang's prefix) but no division of GB/T 2260.
    consumer = province.hub.system(province.hub.department("某县民政局", region="339999", level="county"))
    filed = province.client.post("/exchange/requests", json=request_body(province.entry["id"]), headers=consumer.headers)
    assert filed.status_code == 409, filed.text
    problem = filed.json()
    assert problem["code"] == "region_unknown" and "339999" in problem["detail"]
    assert problem["region_code"] == "339999"

    # The platform corrects the department: only to a division the table holds.
    admin = province.hub.admin.headers
    wrong = province.client.patch(f"/departments/{consumer.department_id}", json={"region_code": "330199"}, headers=admin)
    assert wrong.status_code == 422 and "330199 is not an administrative division the platform knows" in wrong.text
    emptied = province.client.patch(f"/departments/{consumer.department_id}", json={"region_code": None}, headers=admin)
    assert emptied.status_code == 422
    fixed = province.client.patch(f"/departments/{consumer.department_id}", json={"region_code": "330110"}, headers=admin)
    assert fixed.status_code == 200 and fixed.json()["region_code"] == "330110"
    again = province.client.post("/exchange/requests", json=request_body(province.entry["id"]), headers=consumer.headers)
    assert again.status_code == 201, again.text


def test_the_grant_page_of_the_console_shows_the_scope(province: Province, client: TestClient) -> None:
    county, grant = province.granted("西湖区民政局", "330106", "county")
    assert county.client is not None
    sign_in(client, county.client.client_id, county.extra["secret"])
    page = client.get(f"/console/exchange/requests/{grant['request_id']}")
    assert page.status_code == 200
    assert "仅本辖区：西湖区（330106）" in page.text


def test_rows_loaded_before_the_entry_named_its_division_item_are_scoped_once_it_does(client: TestClient, hub: Hub) -> None:
    """Version 1 has no division item; its dataset is loaded. Version 2 names one and flows back: publishing it
    gives the loaded rows their division codes, and a county's grant on version 2 is scoped by them."""
    provider = hub.system(hub.department("浙江省民政厅", region="330000", level="province"), "社会救助系统")
    first = publish(
        client,
        provider,
        hub.admin,
        name="低保对象名册",
        items=ITEMS,
        control_parameters=[{"item": "身份证号", "required": True, "max_rows": 10}],
        sharing_type="conditional",
        conditions="仅限社会救助工作",
        allows_export=True,
    )
    assert upload(client, provider, first["id"], CSV).status_code == 201
    body = {k: v for k, v in first["version"].items() if k in ("name", "classification", "abstract", "format", "items")}
    body.update(
        sharing_type="conditional",
        conditions="仅限社会救助工作",
        control_parameters=first["version"]["control_parameters"],
        update_cycle="monthly",
        allows_export=True,
        serves_dataset=True,
        division_item="行政区划",
        region_scoped=True,
    )
    started = client.post(f"/catalog/entries/{first['id']}/versions", json=body, headers=provider.headers)
    assert started.status_code == 201, started.text
    assert client.post(f"/catalog/entries/{first['id']}/submit", headers=provider.headers).status_code == 200
    reviewed = client.post(f"/catalog/entries/{first['id']}/review", json={"decision": "publish"}, headers=hub.admin.headers)
    assert reviewed.status_code == 200 and reviewed.json()["version"]["region_scoped"] is True

    province = Province(client, hub, provider, reviewed.json())
    county, grant = province.granted("上城区民政局", "330102", "county")
    assert grant["region_scope"] == "330102"
    assert province.export_all(county, grant) == [("330102", "1100")]


def test_no_grant_is_issued_to_a_department_whose_region_code_became_unknown(province: Province, db: Session) -> None:
    """The division is checked again when the grant is issued: a request filed before the department's
    region code was changed to one the table does not hold is not granted, and stays where it was."""
    from ops.identity.models import Department

    consumer = province.hub.system(province.hub.department("余杭区民政局", region="330110", level="county"))
    filed = province.client.post("/exchange/requests", json=request_body(province.entry["id"]), headers=consumer.headers)
    assert filed.status_code == 201, filed.text
    accepted = province.client.post(f"/exchange/requests/{filed.json()['id']}/accept", headers=province.hub.admin.headers)
    assert accepted.status_code == 200
    department = db.get(Department, consumer.department_id)
    assert department is not None
    department.region_code = "330199"
    db.commit()
    decided = province.client.post(
        f"/exchange/requests/{filed.json()['id']}/decision", json={"approve": True}, headers=province.provider.headers
    )
    assert decided.status_code == 409 and decided.json()["code"] == "region_unknown", decided.text
    again = province.client.get(f"/exchange/requests/{filed.json()['id']}", headers=consumer.headers).json()
    assert again["state"] == "provider_review" and again["grant_id"] is None


class _CountyApi(BaseHTTPRequestHandler):
    """A provincial department's own API: it answers the rows of every county."""

    def do_GET(self) -> None:
        rows = [{"身份证号": i, "姓名": n, "行政区划": r, "保障金额": a} for i, n, r, a in ROWS if r in ("330106", "330102")]
        raw = json.dumps({"data": rows}, ensure_ascii=False).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, *args: Any) -> None:
        pass


def test_a_county_grant_gets_only_its_countys_rows_from_the_providers_own_api(client: TestClient, hub: Hub, db: Session) -> None:
    server = HTTPServer(("127.0.0.1", 0), _CountyApi)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        provider = hub.system(hub.department("浙江省民政厅", region="330000", level="province"), "社会救助系统")
        entry = publish(
            client,
            provider,
            hub.admin,
            name="低保对象名册（接口）",
            items=ITEMS,
            control_parameters=[],
            sharing_type="conditional",
            conditions="仅限社会救助工作",
            serves_dataset=False,
            api={"url": f"http://127.0.0.1:{server.server_port}/dibao", "method": "GET"},
            division_item="行政区划",
            region_scoped=True,
        )
        county, grant = Province(client, hub, provider, entry).granted("上城区民政局", "330102", "county")
        answer = client.post(f"/exchange/grants/{grant['id']}/call", json={"params": {}}, headers=county.headers)
        assert answer.status_code == 200, answer.text
        assert [(r["姓名"], r["行政区划"]) for r in answer.json()["rows"]] == [("王上城", "330102")]
        (trail,) = db.scalars(
            select(AuditRecord).where(AuditRecord.object_id == grant["id"], AuditRecord.action == "data.api")
        ).all()
        assert trail.detail["withheld_rows"] == 3 and trail.detail["rows"] == 1
    finally:
        server.shutdown()
        server.server_close()


def test_a_county_subscriber_and_an_older_version_carry_only_its_countys_rows(province: Province) -> None:
    """Versions and subscriptions keep the division scope too: a new version changing rows in two counties
    reaches the county's feed with its own county's changes only; version 1 is served within the scope."""
    from tests.exchange.test_flow import subscribe, take

    county, grant = province.granted("西湖区民政局", "330106", "county")
    feed = subscribe(province.client, county, grant["id"], kind="feed")
    assert feed.status_code == 201, feed.text
    # Version 2: one 西湖区 amount and one 鄞州区 amount change, and a 上城区 row is added.
    changed = [
        (i, n, r, {"330106199001010027": "1400", "330212199001010055": "1090"}.get(i, a)) for i, n, r, a in ROWS
    ] + [("330102199001010041", "吴上城", "330102", "870")]
    csv = "身份证号,姓名,行政区划,保障金额\n" + "".join(f"{i},{n},{r},{a}\n" for i, n, r, a in changed)
    uploaded = upload(province.client, province.provider, province.entry["id"], csv)
    assert uploaded.status_code == 201, uploaded.text
    assert (uploaded.json()["rows_added"], uploaded.json()["rows_changed"]) == (1, 2)
    assert take(province.hub) == 1

    page = province.client.get(f"/exchange/subscriptions/{feed.json()['id']}/feed", headers=county.headers)
    assert page.status_code == 200, page.text
    changes = [c for event in page.json()["items"] for c in event["changes"]]
    assert [(c["op"], c["row"]["行政区划"], c["row"]["保障金额"]) for c in changes] == [("changed", "330106", "1400")]

    old = province.client.get(
        f"/exchange/grants/{grant['id']}/export", params={"version": 1, "limit": 20}, headers=county.headers
    )
    assert old.status_code == 200, old.text
    assert sorted((r["行政区划"], r["保障金额"]) for r in old.json()["rows"]) == [
        ("330106", "1200"),
        ("330106", "1350"),
        ("330106", "900"),
    ]
    other = province.client.post(
        f"/exchange/grants/{grant['id']}/lookup",
        json={"params": {"身份证号": "330212199001010055"}, "version": 1},
        headers=county.headers,
    )
    assert other.status_code == 200 and other.json()["rows"] == []
