"""Bulk import from the departments' spreadsheet template, and the DCAT-AP export."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from rdflib import Graph, Namespace
from rdflib.namespace import DCAT, DCTERMS, FOAF, RDF
from sqlalchemy.orm import Session

from ops import audit
from tests.catalog_registry.helpers import publish
from tests.conftest import MASTER_KEY, Actor, Hub
from tests.factories import uscc

# rdflib's JSON-LD parser still builds a ConjunctiveGraph internally.
pytestmark = pytest.mark.filterwarnings("ignore:ConjunctiveGraph is deprecated:DeprecationWarning")

HEADER = [
    "资源代码", "资源名称", "资源分类", "资源摘要", "信息项", "共享类型", "共享条件", "不予共享依据",
    "管控参数", "更新周期", "是否电子证照", "数据集提供", "接口地址",
]  # fmt: skip

GOOD = [
    ["HJ001", "户籍人口基本信息", "基础", "全市户籍人口。", "身份证号|string|18|敏感|是; 姓名|string|50|敏感|是",
     "无条件共享", "", "", "身份证号|必填|10", "每天", "否", "是", ""],
    ["HJ002", "户籍迁移记录", "主题", "迁入迁出记录。", "身份证号|string|18|敏感|是; 迁移日期|date",
     "有条件共享", "仅限户籍业务办理", "", "身份证号|必填|", "每月", "否", "是", ""],
    ["JZ001", "居民身份证信息", "部门", "身份证签发。", "身份证号|string|18|敏感|是; 签发机关|string|100|内部|否",
     "无条件共享", "", "", "", "实时", "是", "否", "https://ga.example.gov.cn/api/sfz"],
]  # fmt: skip


def _csv(rows: list[list[str]], header: list[str] = HEADER) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def _import(client: TestClient, who: Actor, text: str, mode: str = "draft") -> Any:
    return client.post(
        f"/catalog/imports?mode={mode}",
        files={"file": ("catalogue.csv", ("\ufeff" + text).encode("utf-8"), "text/csv")},
        headers=who.headers,
    )


def test_a_department_imports_its_catalogue_spreadsheet_as_drafts(client: TestClient, hub: Hub) -> None:
    police_dept = hub.department("市公安局")
    police = hub.system(police_dept)
    response = _import(client, police, _csv(GOOD), mode="submit")
    assert response.status_code == 201, response.text
    assert response.json()["created"] == 3
    waiting = client.get("/catalog/entries?version_state=submitted", headers=hub.admin.headers).json()["items"]
    by_code = {e["code"]: e for e in waiting}
    migration = by_code[f"{police_dept.code}-HJ002"]["version"]
    assert migration["sharing_type"] == "conditional" and migration["conditions"] == "仅限户籍业务办理"
    assert migration["items"][1] == {
        "name": "迁移日期",
        "data_type": "date",
        "length": None,
        "sensitivity": "internal",
        "personal": False,
    }
    card = by_code[f"{police_dept.code}-JZ001"]["version"]
    assert card["is_certificate"] is True and card["api"]["url"] == "https://ga.example.gov.cn/api/sfz"
    assert card["update_cycle"] == "realtime"


def test_each_imported_entry_is_audited_with_who_imported_it(client: TestClient, hub: Hub, db: Session) -> None:
    police_dept = hub.department("市公安局")
    police = hub.system(police_dept)
    response = _import(client, police, _csv(GOOD))
    assert response.status_code == 201, response.text
    for code, entry_id in zip(("HJ001", "HJ002", "JZ001"), response.json()["entry_ids"], strict=True):
        [record] = audit.records_for(db, object_type="catalog_entry", object_id=entry_id)
        assert record.action == "catalog.entry.import" and record.outcome == "success"
        assert police.client is not None and record.actor == police.client.client_id
        assert record.role == "department_system" and record.department_id == police_dept.id
        assert record.detail == {"code": f"{police_dept.code}-{code}"}
        assert record.request_id and record.purpose is None and record.subject_ref is None


def test_an_import_with_bad_rows_names_each_row_and_column_and_imports_nothing(client: TestClient, hub: Hub) -> None:
    police = hub.system(hub.department("市公安局"))
    publish(client, police, hub.admin, code="HJ009")
    bad = [
        *GOOD,
        ["HJ003", "户籍变更", "基础", "变更记录。", "身份证号|string", "有条件共享", "", "", "", "每天", "否", "是", ""],
        ["HJ004", "在逃人员", "基础", "在逃。", "身份证号|string", "不予共享", "", "", "", "每天", "否", "否", ""],
        ["HJ005", "户籍照片", "基础", "照片。", "", "无条件共享", "", "", "", "每天", "否", "是", ""],
        ["HJ001", "重复代码", "基础", "重复。", "身份证号|string", "无条件共享", "", "", "", "每天", "否", "是", ""],
        ["HJ006", "未知周期", "基础", "周期。", "身份证号|string", "无条件共享", "", "", "", "每小时", "否", "是", ""],
        ["HJ007", "护照信息", "基础", "护照。", "身份证号|string", "无条件共享", "", "", "护照号|必填|5", "每天", "否", "是", ""],
        ["HJ008", "接口资源", "基础", "接口。", "身份证号|string", "无条件共享", "", "", "", "每天", "否", "否", "ftp://x.gov.cn/a"],
        ["HJ009", "已有代码", "基础", "已有。", "身份证号|string", "无条件共享", "", "", "", "每天", "否", "是", ""],
        ["HJ010", "坏的标志", "基础", "标志。", "身份证号|string", "无条件共享", "", "", "", "每天", "也许", "是", ""],
    ]  # fmt: skip
    response = _import(client, police, _csv(bad))
    assert response.status_code == 422
    problem = response.json()
    assert "nothing was imported" in problem["detail"]
    found = {(e["row"], e["field"]) for e in problem["errors"]}
    assert found == {
        (5, "共享条件"),
        (6, "不予共享依据"),
        (7, "信息项"),
        (8, "资源代码"),
        (9, "更新周期"),
        (10, "管控参数"),
        (11, "接口地址"),
        (12, "资源代码"),
        (13, "是否电子证照"),
    }
    messages = {e["row"]: e["message"] for e in problem["errors"]}
    assert "repeated (first on row 2)" in messages[8] and "already in the catalogue" in messages[12]
    assert "names no information item" in messages[10]
    mine = client.get("/catalog/entries", headers=police.headers).json()["items"]
    assert len(mine) == 1  # only the entry published before the import


def test_a_formula_in_an_imported_name_is_exported_as_text(client: TestClient, hub: Hub) -> None:
    police_dept = hub.department("市公安局")
    police = hub.system(police_dept)
    name, condition = "=cmd|' /C calc'!A0", '+HYPERLINK("http://evil.example/x","点击查看")'
    hostile = [
        ["HJ101", name, "基础", "@SUM(1+1)*cmd|' /C calc'!A0", "身份证号|string|18|敏感|是", "有条件共享", condition, "",
         "身份证号|必填|10", "每天", "否", "是", ""],
        ["HJ102", "-2+3+cmd|' /C calc'!A0", "基础", "负号开头。", "身份证号|string|18|敏感|是", "不予共享", "",
         "@法律依据", "", "每天", "否", "否", ""],
    ]  # fmt: skip
    response = _import(client, hub.admin, _csv([[*r, police_dept.code] for r in hostile], [*HEADER, "提供部门代码"]), "publish")
    assert response.status_code == 201, response.text
    # the import keeps the text as entered
    entries = {e["code"]: e["version"] for e in client.get("/catalog/entries", headers=police.headers).json()["items"]}
    first = entries[f"{police_dept.code}-HJ101"]
    assert first["name"] == name and first["conditions"] == condition
    assert first["abstract"] == "@SUM(1+1)*cmd|' /C calc'!A0"

    sheet = client.get(f"/catalog/responsibility-lists/{police_dept.id}?format=csv", headers=police.headers)
    assert sheet.status_code == 200
    rows = list(csv.reader(io.StringIO(sheet.text.lstrip("\ufeff"))))
    cells = [c for row in rows[1:] for c in row]
    assert "'" + name in cells and "'" + condition in cells and "'-2+3+cmd|' /C calc'!A0" in cells
    assert "'@法律依据" in cells
    assert not [c for c in cells if c.startswith(("=", "+", "-", "@", "\t", "\r"))], cells
    assert sheet.text.count('"') >= 2 * len(cells)  # every cell quoted: a separator inside cannot start another


def test_a_file_that_is_not_the_template_is_refused_at_the_header(client: TestClient, hub: Hub) -> None:
    police = hub.system(hub.department("市公安局"))
    response = _import(client, police, _csv([["x"]], header=["资源代码", "名称", "备注"]))
    assert response.status_code == 422
    fields = {e["field"] for e in response.json()["errors"]}
    assert {"名称", "备注", "资源名称", "更新周期"} <= fields
    assert _import(client, police, _csv(GOOD), mode="publish").status_code == 403  # review cannot be skipped


def test_the_platform_loads_a_reviewed_catalogue_for_many_providers_from_the_shell(tmp_path: Path) -> None:
    env = {**os.environ, "GOVHUB_DATA_DIR": str(tmp_path), "GOVHUB_MASTER_KEY": MASTER_KEY}
    env.pop("GOVHUB_DATABASE_URL", None)

    def govhub(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "govhub.cli", *args], env=env, capture_output=True, text=True, timeout=120, check=False
        )

    assert govhub("db", "upgrade").returncode == 0
    codes = [uscc(region="440300"), uscc(region="440300")]
    for code, name in zip(codes, ["深圳市公安局", "深圳市民政局"], strict=True):
        made = govhub("departments", "create", "--code", code, "--name", name, "--level", "city", "--region", "440300")
        assert made.returncode == 0, made.stderr
    rows = [[*row, codes[i % 2]] for i, row in enumerate(GOOD * 40)]
    for i, row in enumerate(rows):
        row[0] = f"R{i:04d}"
    path = tmp_path / "catalogue.csv"
    path.write_text(_csv(rows, [*HEADER, "提供部门代码"]), encoding="utf-8-sig")

    done = govhub("catalog", "import", str(path), "--mode", "publish")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"created": 120, "mode": "publish"}
    assert "importing  [##############################] 100.0%  120/120 rows" in done.stderr

    again = govhub("catalog", "import", str(path), "--mode", "publish", "--quiet")
    assert again.returncode != 0 and "row 2: 资源代码: code" in again.stderr and "already in the catalogue" in again.stderr

    report = govhub("catalog", "responsibility", codes[0])
    assert report.returncode == 0 and len(report.stdout.strip().splitlines()) == 61
    out = tmp_path / "catalogue.jsonld"
    exported = govhub("catalog", "export-dcat", "--out", str(out))
    assert exported.returncode == 0, exported.stderr
    graph = Graph().parse(data=out.read_text(encoding="utf-8"), format="json-ld")
    assert len(set(graph.subjects(RDF.type, DCAT.Dataset))) == 120


def test_the_dcat_export_parses_as_json_ld_with_the_mandatory_properties(client: TestClient, hub: Hub) -> None:
    police = hub.system(hub.department("市公安局"))
    api = {"url": "https://ga.example.gov.cn/api/hj", "method": "GET"}
    publish(client, police, hub.admin, name="户籍人口基本信息", api=api)
    publish(client, police, hub.admin, name="婚姻登记信息", sharing_type="conditional", conditions="仅限婚姻业务")
    publish(
        client, police, hub.admin, name="在逃人员信息", sharing_type="not_shared", legal_basis="刑事诉讼法", serves_dataset=False
    )
    response = client.get("/catalog/dcat.jsonld", headers=police.headers)
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/ld+json")
    graph = Graph().parse(data=response.text, format="json-ld")

    catalogs = list(graph.subjects(RDF.type, DCAT.Catalog))
    assert [str(c) for c in catalogs] == ["http://hub.test/catalog/dcat.jsonld"]
    catalog = catalogs[0]
    for prop in (DCTERMS.title, DCTERMS.description, DCTERMS.publisher):
        assert graph.value(catalog, prop) is not None, prop
    assert graph.value(graph.value(catalog, DCTERMS.publisher), FOAF.name) is not None

    datasets = set(graph.subjects(RDF.type, DCAT.Dataset))
    assert set(graph.objects(catalog, DCAT.dataset)) == datasets and len(datasets) == 3
    for dataset in datasets:
        for prop in (DCTERMS.title, DCTERMS.description, DCTERMS.identifier, DCTERMS.publisher, DCTERMS.accrualPeriodicity):
            assert graph.value(dataset, prop) is not None, (dataset, prop)
        assert graph.value(graph.value(dataset, DCTERMS.publisher), FOAF.name).toPython() == "市公安局"
    titles = {str(graph.value(d, DCTERMS.title)) for d in datasets}
    assert titles == {"户籍人口基本信息", "婚姻登记信息", "在逃人员信息"}

    distributions = set(graph.subjects(RDF.type, DCAT.Distribution))
    assert len(distributions) == 3  # two datasets served from files, one API
    for distribution in distributions:
        assert graph.value(distribution, DCAT.accessURL) is not None
    services = set(graph.subjects(RDF.type, DCAT.DataService))
    assert len(services) == 1
    service = services.pop()
    assert graph.value(service, DCAT.endpointURL) is not None and graph.value(service, DCTERMS.title) is not None
    gh = Namespace("http://hub.test/ns/catalog#")
    sharing = {str(graph.value(d, DCTERMS.title)): str(graph.value(d, gh.sharingType)) for d in datasets}
    assert sharing["在逃人员信息"] == "not_shared"


def test_the_dcat_export_pages_with_hydra_next(client: TestClient, hub: Hub) -> None:
    police = hub.system(hub.department("市公安局"))
    for i in range(5):
        publish(client, police, hub.admin, name=f"资源{i}")
    seen: set[str] = set()
    url: str | None = "/catalog/dcat.jsonld?limit=2"
    pages = 0
    while url:
        document = client.get(url.removeprefix("http://hub.test"), headers=police.headers).json()
        seen |= {d["@id"] for d in document["dcat:dataset"]}
        url = document.get("hydra:view", {}).get("hydra:next", {}).get("@id")
        pages += 1
    assert pages == 3 and len(seen) == 5


def test_an_imported_row_that_shares_a_secret_item_is_refused(client: TestClient, hub: Hub) -> None:
    police = hub.system(hub.department("市公安局"))
    rows = [
        ["AJ001", "刑事案件信息", "部门", "案件。", "身份证号|string|18|敏感|是; 案件编号|string|30|涉密|否", "有条件共享",
         "仅限刑侦业务", "", "身份证号|必填|1", "每天", "否", "是", ""],
        ["AJ002", "刑事案件目录", "部门", "案件。", "案件编号|string|30|涉密|否", "不予共享", "", "《保守国家秘密法》",
         "", "每天", "否", "否", ""],
    ]  # fmt: skip
    refused = _import(client, police, _csv(rows))
    assert refused.status_code == 422
    assert [(e["row"], e["field"]) for e in refused.json()["errors"]] == [(2, "共享类型")]
    assert "案件编号" in refused.json()["errors"][0]["message"]
    assert _import(client, police, _csv(rows[1:])).status_code == 201  # catalogued, not shared
