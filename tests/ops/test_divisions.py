"""The division table (GB/T 2260): the list shipped with the hub, its hierarchy, and the platform
administrator replacing it from a CSV (API and CLI), every wrong line named and nothing half-loaded."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from stdnum import numdb

from ops.divisions import service
from tests.conftest import Hub

TRADITIONAL = str.maketrans("別區門灣", "别区门湾")


def _put(client: TestClient, hub: Hub, content: bytes, source: str = "测试清单") -> object:
    return client.put(
        "/divisions", files={"file": ("divisions.csv", content, "text/csv")}, data={"source": source}, headers=hub.admin.headers
    )


def test_the_shipped_list_agrees_with_an_independent_list_of_codes() -> None:
    """python-stdnum's table of citizen-ID birth places (cn/loc, from the published GB/T 2260 lists) names
    the same province and county for each code it knows; only codes newer than its list may be missing."""
    places = numdb.get("cn/loc")
    rows = service.packaged_divisions()
    checked = 0
    for row in rows:
        info: dict[str, str] = {}
        for _part, found in places.info(row.code):
            info.update(found)
        if row.level == service.Level.PROVINCE:
            # stdnum writes 香港, 澳门 and 台湾 in traditional characters.
            assert (info.get("province") or "").translate(TRADITIONAL) == row.name, row
            checked += 1
        elif row.level == service.Level.COUNTY and info.get("county"):
            names = {re.sub(r"^\[[^\]]*\]", "", n) for n in info["county"].split(",")}
            assert row.name in names, (row, info)
            checked += 1
    counties = [r for r in rows if r.level == service.Level.COUNTY]
    assert len([r for r in rows if r.level == service.Level.PROVINCE]) == 34
    assert checked >= 34 + len(counties) - 5  # 临平区, 钱塘区 (2021) and the like are newer than stdnum's list


def test_the_hierarchy_is_read_from_the_codes(client: TestClient, hub: Hub) -> None:
    caller = hub.system()
    provinces = client.get("/divisions", headers=caller.headers).json()["items"]
    assert len(provinces) == 34 and provinces[10] == {
        "code": "330000",
        "name": "浙江省",
        "level": "province",
        "parent_code": None,
    }
    xihu = client.get("/divisions/330106", headers=caller.headers).json()
    assert [(d["code"], d["name"], d["level"]) for d in xihu["path"]] == [
        ("330000", "浙江省", "province"),
        ("330100", "杭州市", "prefecture"),
        ("330106", "西湖区", "county"),
    ]
    hangzhou = client.get("/divisions", params={"parent": "330100"}, headers=caller.headers).json()["items"]
    assert len(hangzhou) == 13 and {d["parent_code"] for d in hangzhou} == {"330100"}
    assert client.get("/divisions/339999", headers=caller.headers).status_code == 404


def test_the_platform_replaces_the_table_and_hears_of_departments_left_without_a_division(client: TestClient, hub: Hub) -> None:
    beijing = hub.department("朝阳区民政局", region="110105", level="county")
    content = (
        "code,name,level,parent\n"
        "420000,湖北省,,\n"
        "420100,武汉市,地级,\n"
        "420102,江岸区,,\n"
        "429004,仙桃市,county,\n"  # 省直辖县级行政区划: under the province, no prefecture in between
        "110000,北京市,,\n"
    ).encode()
    loaded = _put(client, hub, content, source="湖北省部分区划")
    assert loaded.status_code == 200, loaded.text  # type: ignore[attr-defined]
    body = loaded.json()  # type: ignore[attr-defined]
    assert (body["divisions"], body["provinces"], body["prefectures"], body["counties"]) == (5, 2, 1, 2)
    assert {"id": beijing.id, "name": "朝阳区民政局", "region_code": "110105"} in body["departments_unknown"]
    caller = hub.system(beijing)
    xiantao = client.get("/divisions/429004", headers=caller.headers).json()
    assert xiantao["parent_code"] == "420000" and [d["code"] for d in xiantao["path"]] == ["420000", "429004"]
    assert client.get("/divisions/420102", headers=caller.headers).json()["parent_code"] == "420100"
    assert client.get("/divisions/330106", headers=caller.headers).status_code == 404  # replaced, not merged


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "empty"),
        (b"code,label\n330000,x\n", "header"),
        (b"code,name\n33010,x\n", "line 2: code"),  # five digits
        (b"code,name\n990000,x\n", "99 is not a province-level code"),
        (b"code,name\n330000,a\n330000,b\n", "listed twice"),
        (b"code,name\n330106,x\n", "province 330000 is not in the file"),
        (b"code,name\n330000,x\n330100,\n", "line 3: name"),
        (b"code,name,level\n330000,x,\n330100,y,county\n", "is a prefecture code"),
        (b"code,name,parent\n330000,x,\n320000,y,\n330100,z,320000\n", "does not lie within 320000"),
        ("code,name\n330000,浙江省\n".encode("gbk"), "not UTF-8"),
    ],
)
def test_a_wrong_division_file_is_refused_whole_naming_the_line(
    client: TestClient, hub: Hub, content: bytes, expected: str
) -> None:
    answer = _put(client, hub, content)
    assert answer.status_code == 422, answer.text  # type: ignore[attr-defined]
    assert expected in answer.text  # type: ignore[attr-defined]
    still = client.get("/divisions/330106", headers=hub.admin.headers)
    assert still.status_code == 200  # nothing was replaced


def test_only_the_platform_replaces_the_table(client: TestClient, hub: Hub) -> None:
    department = hub.system()
    answer = client.put(
        "/divisions",
        files={"file": ("d.csv", b"code,name\n330000,x\n", "text/csv")},
        data={"source": "x"},
        headers=department.headers,
    )
    assert answer.status_code == 403


def test_the_cli_loads_a_file_and_shows_a_division(govhub: Callable[..., tuple[str, str]], tmp_path: Path) -> None:
    govhub("db", "upgrade")
    out, _ = govhub("divisions", "show", "330106")
    assert "330000 浙江省" in out and "330100 杭州市" in out and "330106 西湖区 (county)" in out
    listing = tmp_path / "hubei.csv"
    listing.write_text("code,name\n420000,湖北省\n420100,武汉市\n420102,江岸区\n", encoding="utf-8")
    out, _ = govhub("divisions", "load", str(listing), "--source", "湖北省")
    assert "loaded 3 divisions (1 provinces, 1 prefectures, 1 counties) from 湖北省" in out
    out, _ = govhub("divisions", "show")
    assert out.strip() == "420000 湖北省"
    bad = tmp_path / "bad.csv"
    bad.write_text("code,name\n42010,x\n", encoding="utf-8")
    with pytest.raises(SystemExit, match="line 2: code"):
        govhub("divisions", "load", str(bad))
    out, _ = govhub("divisions", "load")  # the shipped list again
    assert "34 provinces" in out
