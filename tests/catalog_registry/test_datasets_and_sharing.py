"""Datasets a provider uploads, and what the exchange reads of a published entry."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from catalog_registry import service, sharing
from catalog_registry.models import DatasetRow
from ops.errors import Conflict, Forbidden, Invalid, NotFound
from tests.catalog_registry.helpers import entry_body, publish, upload
from tests.conftest import Hub

PEOPLE = (
    "身份证号,姓名,户籍地址,出生日期\n"
    "110105199001011234,张三,北京市朝阳区幸福路1号,1990-01-01\n"
    "11010519491231002X,李四,北京市东城区和平街2号,1949-12-31\n"
    "110105199001011234,张三,北京市朝阳区幸福路1号(旧址),1990-01-01\n"
)


def test_an_uploaded_csv_is_looked_up_by_its_control_parameter(client: TestClient, hub: Hub, db: Session) -> None:
    provider = hub.system(hub.department("市公安局"), "户籍系统")
    entry = publish(client, provider, hub.admin)
    response = upload(client, provider, entry["id"], PEOPLE)
    assert response.status_code == 201, response.text
    dataset = response.json()
    assert dataset["row_count"] == 3 and dataset["key_items"] == ["身份证号"] and len(dataset["object_key"]) == 64

    view = service.get_published_for_sharing(db, resource_id=entry["id"])
    assert view.has_dataset and view.sharing_type == "unconditional"
    assert [p.item for p in view.control_parameters] == ["身份证号"] and view.control_parameters[0].max_rows == 10
    assert [i.name for i in view.items] == ["身份证号", "姓名", "户籍地址", "出生日期"] and view.items[0].personal

    rows = service.lookup_rows(
        db, resource_id=entry["id"], params={"身份证号": "110105199001011234"}, fields=["姓名", "户籍地址"], limit=5
    )
    assert rows == [
        {"姓名": "张三", "户籍地址": "北京市朝阳区幸福路1号"},
        {"姓名": "张三", "户籍地址": "北京市朝阳区幸福路1号(旧址)"},
    ]
    assert service.lookup_rows(
        db, resource_id=entry["id"], params={"身份证号": "110105199001011234"}, fields=["姓名"], limit=1
    ) == [{"姓名": "张三"}]
    assert (
        service.lookup_rows(db, resource_id=entry["id"], params={"身份证号": "000000000000000000"}, fields=["姓名"], limit=5)
        == []
    )
    # the lookup is an index lookup on (dataset, key)
    stored = db.scalars(select(DatasetRow).where(DatasetRow.dataset_id == dataset["id"])).all()
    assert {r.lookup_key for r in stored} == {
        service.lookup_key(["110105199001011234"]),
        service.lookup_key(["11010519491231002X"]),
    }


def test_a_batch_of_lookups_reads_its_rows_ahead_in_one_statement(
    client: TestClient, hub: Hub, db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    provider = hub.system(hub.department("市公安局"))
    entry = publish(client, provider, hub.admin)
    upload(client, provider, entry["id"], PEOPLE)
    monkeypatch.setattr(sharing, "PREFETCH_ROWS", 2)  # 张三's two rows fill it: his lookup must look for more
    zhang, li, nobody = ({"身份证号": n} for n in ("110105199001011234", "11010519491231002X", "000000000000000000"))
    alone = {
        n: service.lookup_rows(db, resource_id=entry["id"], params=p, fields=["户籍地址"], limit=5)
        for n, p in (("zhang", zhang), ("li", li), ("nobody", nobody))
    }
    statements: list[str] = []
    connection = db.connection()

    def count(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        statements.append(statement)

    event.listen(connection, "before_cursor_execute", count)
    try:
        ahead = service.ReadAhead()
        service.prefetch_rows(db, resource_id=entry["id"], params=[zhang, li, nobody, {"姓名": "张三"}], read_ahead=ahead)
        assert len(statements) == 2  # the entry's dataset, then the rows of every key at once
        together = {
            n: service.lookup_rows(db, resource_id=entry["id"], params=p, fields=["户籍地址"], limit=5, read_ahead=ahead)
            for n, p in (("li", li), ("nobody", nobody), ("zhang", zhang))
        }
        assert len(statements) == 3  # only 张三's lookup read again: for rows past the read-ahead (none)
    finally:
        event.remove(connection, "before_cursor_execute", count)
    assert together == alone
    assert alone["zhang"] == [{"户籍地址": "北京市朝阳区幸福路1号"}, {"户籍地址": "北京市朝阳区幸福路1号(旧址)"}]
    assert alone["nobody"] == []
    monkeypatch.setattr(sharing, "PREFETCH_ROWS", 1)  # now his second row is past the read-ahead
    ahead = service.ReadAhead()
    service.prefetch_rows(db, resource_id=entry["id"], params=[zhang], read_ahead=ahead)
    assert (
        service.lookup_rows(db, resource_id=entry["id"], params=zhang, fields=["户籍地址"], limit=5, read_ahead=ahead)
        == (alone["zhang"])
    )


def test_lookups_refuse_missing_or_unknown_parameters_and_fields(client: TestClient, hub: Hub, db: Session) -> None:
    provider = hub.system(hub.department("市公安局"))
    entry = publish(client, provider, hub.admin)
    upload(client, provider, entry["id"], PEOPLE)
    with pytest.raises(Invalid, match="required control parameters missing: 身份证号"):
        service.lookup_rows(db, resource_id=entry["id"], params={}, fields=["姓名"], limit=5)
    with pytest.raises(Invalid, match="not control parameters of this entry: 姓名"):
        service.lookup_rows(db, resource_id=entry["id"], params={"身份证号": "1", "姓名": "张三"}, fields=["姓名"], limit=5)
    with pytest.raises(Invalid, match="not information items of this entry: 婚姻状况"):
        service.lookup_rows(db, resource_id=entry["id"], params={"身份证号": "1"}, fields=["婚姻状况"], limit=5)


def test_export_pages_through_a_dataset_in_a_stable_order_when_allowed(client: TestClient, hub: Hub, db: Session) -> None:
    provider = hub.system(hub.department("市公安局"))
    locked = publish(client, provider, hub.admin)
    upload(client, provider, locked["id"], PEOPLE)
    with pytest.raises(Forbidden, match="lookups by control parameters only"):
        service.export_rows(db, resource_id=locked["id"], fields=["姓名"], cursor=None, limit=2)

    entry = publish(client, provider, hub.admin, allows_export=True, control_parameters=[])
    lines = "\n".join(
        json.dumps({"身份证号": f"ID{i:04d}", "姓名": f"人{i}", "户籍地址": "某地", "出生日期": None}) for i in range(7)
    )
    assert upload(client, provider, entry["id"], lines, "people.jsonl").status_code == 201
    seen, cursor = [], None
    while True:
        page, cursor = service.export_rows(db, resource_id=entry["id"], fields=["身份证号"], cursor=cursor, limit=3)
        seen += [r["身份证号"] for r in page]
        if cursor is None:
            break
    assert seen == [f"ID{i:04d}" for i in range(7)]

    # a new dataset version replaces the old one; an export begun on the old one must restart
    _first, cursor = service.export_rows(db, resource_id=entry["id"], fields=["身份证号"], cursor=None, limit=3)
    assert upload(client, provider, entry["id"], lines, "again.jsonl").status_code == 201
    with pytest.raises(Conflict, match="start again"):
        service.export_rows(db, resource_id=entry["id"], fields=["身份证号"], cursor=cursor, limit=3)
    versions = client.get(f"/catalog/entries/{entry['id']}/datasets", headers=provider.headers).json()["items"]
    assert [(d["number"], d["state"]) for d in versions] == [(2, "loaded"), (1, "replaced")]


def test_a_dataset_whose_columns_do_not_match_the_items_is_refused_with_the_mismatches(client: TestClient, hub: Hub) -> None:
    provider = hub.system(hub.department("市公安局"))
    entry = publish(client, provider, hub.admin)
    response = upload(client, provider, entry["id"], "身份证号,名字,户籍地址,出生日期,电话\n1,张三,某地,1990-01-01,123\n")
    assert response.status_code == 422
    problem = response.json()
    assert problem["missing"] == ["姓名"] and problem["unexpected"] == ["名字", "电话"]
    assert "missing: 姓名" in problem["detail"] and "not items: 名字, 电话" in problem["detail"]
    assert client.get(f"/catalog/entries/{entry['id']}", headers=provider.headers).json()["has_dataset"] is False


def test_bad_rows_are_reported_by_line_and_nothing_is_loaded(client: TestClient, hub: Hub, db: Session) -> None:
    provider = hub.system(hub.department("市公安局"))
    entry = publish(client, provider, hub.admin)
    bad = (
        "身份证号,姓名,户籍地址,出生日期\n"
        "110105199001011234,张三,某地,1990-01-01\n"
        "110105199001011235,李四,某地,1990-13-45\n"
        ",王五,某地,1990-01-01\n"
        "110105199001011236,赵六\n"
    )
    response = upload(client, provider, entry["id"], bad)
    assert response.status_code == 422
    errors = {(e["line"], e["column"]) for e in response.json()["errors"]}
    assert errors == {(3, "出生日期"), (4, "身份证号"), (5, "*")}
    assert "nothing was loaded" in response.json()["detail"]
    with pytest.raises(NotFound, match="no loaded dataset"):
        service.lookup_rows(db, resource_id=entry["id"], params={"身份证号": "110105199001011234"}, fields=["姓名"], limit=5)


def test_an_entry_served_from_an_api_describes_it_for_the_exchange(client: TestClient, hub: Hub, db: Session) -> None:
    provider = hub.system(hub.department("市不动产登记中心"))
    api = {
        "url": "https://bdc.example.gov.cn/api/query",
        "method": "post",
        "timeout_seconds": 5,
        "parameter_schema": {"type": "object", "required": ["不动产单元号"]},
    }
    items = [{"name": "不动产单元号", "data_type": "string"}, {"name": "权利人", "data_type": "string", "personal": True}]
    entry = publish(
        client,
        provider,
        hub.admin,
        name="不动产登记信息",
        items=items,
        serves_dataset=False,
        api=api,
        sharing_type="conditional",
        conditions="仅限不动产交易相关业务",
        control_parameters=[{"item": "不动产单元号", "required": True, "max_rows": 1}],
    )
    view = service.get_published_for_sharing(db, resource_id=entry["id"])
    assert view.api is not None and view.api.method == "POST" and view.api.timeout_seconds == 5.0
    assert view.api.parameter_schema["required"] == ["不动产单元号"]
    assert view.has_dataset is False and view.conditions == "仅限不动产交易相关业务"
    upload_refused = upload(client, provider, entry["id"], "不动产单元号,权利人\n1,张三\n")
    assert upload_refused.status_code == 409


def test_an_unpublished_entry_is_not_offered_for_sharing(client: TestClient, hub: Hub, db: Session) -> None:
    provider = hub.system(hub.department("市公安局"))
    draft = client.post("/catalog/entries", json=entry_body(), headers=provider.headers).json()
    with pytest.raises(NotFound):
        service.get_published_for_sharing(db, resource_id=draft["id"])
    with pytest.raises(NotFound):
        service.get_version_for_sharing(db, version_id=draft["version"]["id"])
    with pytest.raises(NotFound):
        service.get_published_for_sharing(db, resource_id="no-such-entry")


def test_changing_the_control_parameters_rekeys_the_loaded_rows(client: TestClient, hub: Hub, db: Session) -> None:
    provider = hub.system(hub.department("市公安局"))
    entry = publish(client, provider, hub.admin)
    upload(client, provider, entry["id"], PEOPLE)
    by_name = entry_body(control_parameters=[{"item": "姓名", "required": True, "max_rows": 5}])
    client.post(f"/catalog/entries/{entry['id']}/versions", json=by_name, headers=provider.headers)
    client.post(f"/catalog/entries/{entry['id']}/submit", headers=provider.headers)
    client.post(f"/catalog/entries/{entry['id']}/review", json={"decision": "publish"}, headers=hub.admin.headers)
    rows = service.lookup_rows(db, resource_id=entry["id"], params={"姓名": "李四"}, fields=["身份证号"], limit=5)
    assert rows == [{"身份证号": "11010519491231002X"}]
