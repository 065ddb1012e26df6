"""Finding published entries in Chinese: two-character words, name matches first, filters, pages."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from catalog_registry import service
from tests.catalog_registry.helpers import create, entry_body, publish
from tests.conftest import Actor, Hub


def _search(client: TestClient, who: Actor, **params: Any) -> dict[str, Any]:
    response = client.get("/catalog/search", params=params, headers=who.headers)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def _names(page: dict[str, Any]) -> list[str]:
    return [h["name"] for h in page["items"]]


def test_two_character_words_find_entries_by_name_abstract_items_and_provider(client: TestClient, hub: Hub) -> None:
    civil = hub.system(hub.department("市民政局"), "婚姻登记系统")
    social = hub.system(hub.department("市社保中心"), "社保系统")
    police = hub.system(hub.department("市公安局"), "户籍系统")
    consumer = hub.system(hub.department("市税务局"))
    publish(client, civil, hub.admin, name="婚姻登记信息", abstract="结婚、离婚登记记录。")
    publish(client, police, hub.admin, name="人口基本信息", abstract="户籍人口的婚姻状况与家庭关系。")
    publish(
        client,
        police,
        hub.admin,
        name="居民身份证信息",
        abstract="身份证签发记录。",
        items=[{"name": "身份证号", "data_type": "string"}, {"name": "婚姻状况", "data_type": "string"}],
    )
    publish(client, social, hub.admin, name="参保缴费记录", abstract="职工养老保险缴费。")
    create(client, civil, name="婚姻家庭辅导记录")  # a draft: nobody finds it

    marriage = _search(client, consumer, q="婚姻")
    assert _names(marriage)[0] == "婚姻登记信息" and marriage["items"][0]["name_match"] is True
    assert set(_names(marriage)[1:]) == {"人口基本信息", "居民身份证信息"}
    assert not any(h["name_match"] for h in marriage["items"][1:])
    assert _names(_search(client, consumer, q="社保")) == ["参保缴费记录"]  # via the provider's name
    # in an abstract, or in the 户籍地址 item the other entries carry
    assert set(_names(_search(client, consumer, q="户籍"))) == {"人口基本信息", "婚姻登记信息", "参保缴费记录"}
    assert set(_names(_search(client, consumer, q="信息"))) == {"婚姻登记信息", "人口基本信息", "居民身份证信息"}
    assert _names(_search(client, consumer, q="婚姻登记")) == ["婚姻登记信息"]  # four characters
    three = _search(client, consumer, q="身份证")  # three characters: the name match, then the 身份证号 items
    assert _names(three)[0] == "居民身份证信息" and len(three["items"]) == 4
    assert _names(_search(client, consumer, q="婚姻 家庭")) == ["人口基本信息"]  # every term must match
    assert _search(client, consumer, q="登记婚姻")["items"] == []  # bigrams alone are not enough
    assert _search(client, consumer, q="护照")["items"] == []
    assert "婚姻登记信息" in _names(_search(client, consumer, q="婚"))  # one character: still found


def test_a_word_whose_first_characters_are_in_the_name_and_the_rest_elsewhere_is_found(client: TestClient, hub: Hub) -> None:
    police = hub.system(hub.department("市公安局"))
    publish(client, police, hub.admin, name="户籍人口信息", abstract="包括户籍迁移记录。")
    publish(client, police, hub.admin, name="户籍迁移登记", abstract="迁入迁出。")
    publish(client, police, hub.admin, name="居住证信息", abstract="流动人口户籍迁移前的居住登记。")
    page = _search(client, police, q="户籍迁移")
    assert [(h["name"], h["name_match"]) for h in page["items"][:1]] == [("户籍迁移登记", True)]
    # 户籍 in one's name and 户籍迁移 in its abstract; only in the abstract of the other
    assert {(h["name"], h["name_match"]) for h in page["items"][1:]} == {("户籍人口信息", False), ("居住证信息", False)}
    both = _search(client, police, q="户籍 登记")
    assert [(h["name"], h["name_match"]) for h in both["items"]] == [("户籍迁移登记", True), ("居住证信息", False)]


def test_filters_narrow_the_search_and_unknown_values_are_refused(client: TestClient, hub: Hub) -> None:
    police = hub.system(hub.department("市公安局"))
    health = hub.system(hub.department("市卫健委"))
    publish(client, police, hub.admin, name="户籍人口信息", update_cycle="实时")
    publish(
        client,
        police,
        hub.admin,
        name="户籍迁移记录",
        sharing_type="conditional",
        conditions="仅限户籍业务",
        classification="主题",
    )
    publish(client, health, hub.admin, name="出生医学证明", is_certificate=True, abstract="新生儿户籍申报材料。")

    assert _names(_search(client, hub.admin, q="户籍", sharing_type="conditional")) == ["户籍迁移记录"]
    assert _names(_search(client, hub.admin, q="户籍", update_cycle="realtime")) == ["户籍人口信息"]
    assert _names(_search(client, hub.admin, q="户籍", classification="theme")) == ["户籍迁移记录"]
    assert _names(_search(client, hub.admin, q="户籍", is_certificate=True)) == ["出生医学证明"]
    by_provider = _search(client, hub.admin, q="户籍", provider_department_id=health.department_id)
    assert _names(by_provider) == ["出生医学证明"]
    assert _names(_search(client, hub.admin, provider_department_id=health.department_id)) == ["出生医学证明"]
    bad = client.get("/catalog/search", params={"q": "户籍", "update_cycle": "hourly"}, headers=hub.admin.headers)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "update_cycle"


def test_cursor_pages_return_every_match_once_with_name_matches_first(client: TestClient, hub: Hub) -> None:
    police = hub.system(hub.department("市公安局"))
    for i in range(4):
        publish(client, police, hub.admin, name=f"社保名称资源{i}")
    for i in range(3):
        publish(client, police, hub.admin, name=f"其他资源{i}", abstract=f"与社保相关的第{i}份数据。")
    seen: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"q": "社保", "limit": 3}
        if cursor:
            params["cursor"] = cursor
        page = _search(client, police, **params)
        seen += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(seen) == 7 and len({h["id"] for h in seen}) == 7
    assert [h["name_match"] for h in seen] == [True] * 4 + [False] * 3
    assert _names({"items": seen[:4]}) == [f"社保名称资源{i}" for i in (3, 2, 1, 0)]  # newest first
    bad = client.get("/catalog/search", params={"q": "社保", "cursor": "garbage"}, headers=police.headers)
    assert bad.status_code == 422


def test_a_new_published_version_is_found_by_its_new_words_only(client: TestClient, hub: Hub) -> None:
    police = hub.system(hub.department("市公安局"))
    entry = publish(client, police, hub.admin, name="暂住登记信息")
    body = entry_body(name="居住证登记信息")
    client.post(f"/catalog/entries/{entry['id']}/versions", json=body, headers=police.headers)
    assert _names(_search(client, police, q="居住")) == []  # not yet published
    client.post(f"/catalog/entries/{entry['id']}/submit", headers=police.headers)
    client.post(f"/catalog/entries/{entry['id']}/review", json={"decision": "publish"}, headers=hub.admin.headers)
    assert _names(_search(client, police, q="居住")) == ["居住证登记信息"]
    assert _names(_search(client, police, q="暂住")) == []


def test_the_provider_filter_offers_the_departments_with_published_entries(client: TestClient, hub: Hub, db: Session) -> None:
    police = hub.system(hub.department("市公安局"))
    health = hub.system(hub.department("市卫健委"))
    hub.department("市档案馆")  # publishes nothing
    publish(client, police, hub.admin, name="户籍人口信息")
    create(client, health, name="出生医学证明")  # a draft only
    assert service.providers(db) == [(police.department_id, "市公安局")]
