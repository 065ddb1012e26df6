"""An entry's division item (数据回流): which item holds each row's GB/T 2260 code, refused when it cannot; and
a dataset upload that checks every row's code, naming each wrong row, loading nothing."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog_registry.models import DatasetRow
from tests.catalog_registry.helpers import entry_body, publish, upload
from tests.conftest import Hub

ITEMS = [
    {"name": "统一社会信用代码", "data_type": "string", "length": 18, "sensitivity": "public"},
    {"name": "企业名称", "data_type": "string", "length": 100, "sensitivity": "public"},
    {"name": "所在区县", "data_type": "string", "length": 6, "sensitivity": "public"},
    {"name": "登记日期", "data_type": "date", "sensitivity": "public"},
]
REGIONAL: dict[str, Any] = {
    "name": "企业登记信息",
    "items": ITEMS,
    "control_parameters": [{"item": "统一社会信用代码", "required": True}],
    "division_item": "所在区县",
    "region_scoped": True,
}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"division_item": None}, "a region-scoped (数据回流) entry must name its division item"),
        ({"division_item": "所在乡镇"}, "division item '所在乡镇' names no information item"),
        ({"division_item": "登记日期"}, "division item '登记日期' is a date item"),
        (
            {"items": [*ITEMS[:2], {"name": "所在区县", "data_type": "string", "length": 4}, ITEMS[3]]},
            "holds at most 4 characters",
        ),
    ],
)
def test_an_entry_whose_division_item_cannot_hold_a_code_is_refused(
    client: TestClient, hub: Hub, overrides: dict[str, Any], message: str
) -> None:
    provider = hub.system(hub.department("浙江省市场监督管理局", region="330000"))
    answer = client.post("/catalog/entries", json=entry_body(**{**REGIONAL, **overrides}), headers=provider.headers)
    assert answer.status_code == 422, answer.text
    problem = answer.json()
    assert message in problem["detail"]
    assert {"field": "division_item", "message": next(e["message"] for e in problem["errors"])} in problem["errors"]


def test_an_upload_names_every_row_whose_division_is_malformed_unknown_or_missing(
    client: TestClient, hub: Hub, db: Session
) -> None:
    provider = hub.system(hub.department("浙江省市场监督管理局", region="330000"))
    entry = publish(client, provider, hub.admin, **REGIONAL)
    bad = (
        "统一社会信用代码,企业名称,所在区县,登记日期\n"
        "91330106MA2H000001,西湖科技,330106,2020-01-02\n"
        "91330106MA2H000002,某甲公司,33010X,2020-01-02\n"
        "91330106MA2H000003,某乙公司,339999,2020-01-02\n"
        "91330106MA2H000004,某丙公司,,2020-01-02\n"
        "91330106MA2H000005,某丁公司,990101,2020-01-02\n"
    )
    answer = upload(client, provider, entry["id"], bad)
    assert answer.status_code == 422, answer.text
    errors = {(e["line"], e["column"]): e["message"] for e in answer.json()["errors"]}
    assert set(errors) == {(3, "所在区县"), (4, "所在区县"), (5, "所在区县"), (6, "所在区县")}
    assert "must be 6 digits" in errors[(3, "所在区县")]
    assert "339999 is not an administrative division the platform knows" in errors[(4, "所在区县")]
    assert "required in every row" in errors[(5, "所在区县")]
    assert "99 is not a province-level code" in errors[(6, "所在区县")]
    assert db.scalars(select(DatasetRow.row_number)).all() == []  # nothing loaded


def test_rows_keep_their_division_code_from_csv_and_from_json_lines(client: TestClient, hub: Hub, db: Session) -> None:
    provider = hub.system(hub.department("浙江省市场监督管理局", region="330000"))
    items = [*ITEMS[:2], {"name": "所在区县", "data_type": "integer"}, ITEMS[3]]
    entry = publish(client, provider, hub.admin, **{**REGIONAL, "items": items})
    lines = (
        '{"统一社会信用代码": "91330106MA2H000001", "企业名称": "西湖科技", "所在区县": 330106, "登记日期": "2020-01-02"}\n'
        '{"统一社会信用代码": "91330212MA2H000002", "企业名称": "鄞州贸易", "所在区县": 330212, "登记日期": "2021-05-06"}\n'
    )
    loaded = upload(client, provider, entry["id"], lines, filename="data.jsonl")
    assert loaded.status_code == 201, loaded.text
    assert loaded.json()["division_item"] == "所在区县"
    codes = db.scalars(select(DatasetRow.region_code).where(DatasetRow.dataset_id == loaded.json()["id"])).all()
    assert sorted(c or "" for c in codes) == ["330106", "330212"]


def test_the_console_shows_the_division_item_of_an_entry(client: TestClient, hub: Hub) -> None:
    from tests.console.test_pages import sign_in

    provider_department = hub.department("浙江省市场监督管理局", region="330000")
    provider = hub.actor(provider_department, "department_admin", name="市场监管数据专员")
    entry = publish(client, provider, hub.admin, **REGIONAL)
    assert provider.client is not None
    sign_in(client, provider.client.client_id, provider.extra["secret"])
    page = client.get(f"/console/catalog/entries/{entry['id']}")
    assert page.status_code == 200
    assert "所在区县（每行的行政区划代码，GB/T 2260）" in page.text and "数据回流" in page.text


def test_a_provider_apis_answer_is_kept_to_the_grants_division() -> None:
    """The rule on values in hand (a provider's own API answers through the hub): the same ranges as the rows'."""
    from catalog_registry.service import rows_within

    answer = [
        {"企业名称": "西湖科技", "所在区县": "330106"},
        {"企业名称": "上城商贸", "所在区县": 330102},
        {"企业名称": "鄞州贸易", "所在区县": "330212"},
        {"企业名称": "无区划", "所在区县": None},
    ]
    kept, withheld = rows_within(answer, division_item="所在区县", region="330100")
    assert [r["企业名称"] for r in kept] == ["西湖科技", "上城商贸"] and withheld == 2
    kept, withheld = rows_within(answer, division_item="所在区县", region="330106")
    assert [r["企业名称"] for r in kept] == ["西湖科技"] and withheld == 3
    assert rows_within(answer, division_item="所在区县", region=None) == (answer, 0)
    assert rows_within(answer, division_item=None, region="330000") == ([], 4)
