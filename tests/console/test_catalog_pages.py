"""The catalogue in the console: search in Chinese with filters, an entry's page, the 申请共享 form that files a
request through the exchange, and the platform's review of submitted entries."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from exchange import service as exchange
from tests.catalog_registry.helpers import create, publish
from tests.conftest import Hub
from tests.console.sharing import Sharing, field_error, sharing


@pytest.fixture()
def s(client: TestClient, hub: Hub) -> Sharing:
    return sharing(client, hub)


def test_staff_find_entries_by_chinese_words_and_narrow_them_with_filters(s: Sharing) -> None:
    health = s.hub.system(s.hub.department("市卫健委"))
    publish(s.client, health, s.admin, name="出生医学证明信息", abstract="新生儿出生登记，用于户籍申报。", is_certificate=True)
    publish(
        s.client,
        s.provider,
        s.admin,
        name="在逃人员信息",
        sharing_type="not_shared",
        legal_basis="《中华人民共和国保守国家秘密法》第九条",
        control_parameters=[],
        serves_dataset=False,
    )
    s.as_(s.consumer)
    found = s.page("/console/catalog?q=户籍")
    assert found.index("户籍人口基本信息") < found.index("出生医学证明信息")  # the name match first
    assert "有条件共享" in found and "电子证照" in found
    conditional = s.page("/console/catalog?q=户籍&sharing_type=conditional")
    assert "户籍人口基本信息" in conditional and "出生医学证明信息" not in conditional
    by_provider = s.page(f"/console/catalog?provider={health.department_id}")
    assert "出生医学证明信息" in by_provider and "户籍人口基本信息" not in by_provider
    assert "在逃人员信息" in s.page("/console/catalog?sharing_type=not_shared")
    choices = s.page("/console/catalog")
    assert f'<option value="{health.department_id}">市卫健委</option>' in choices
    assert "市交通局</option>" not in choices  # it provides nothing
    assert "没有找到" in s.page("/console/catalog?q=护照")

    bad = s.client.get("/console/catalog", params={"q": "户籍", "update_cycle": "hourly"})
    assert bad.status_code == 422 and "hourly" in field_error(bad.text, "search-update_cycle")


def test_an_entry_shows_its_items_and_conditions_and_who_may_ask_for_it(s: Sharing) -> None:
    path = f"/console/catalog/entries/{s.entry['id']}"
    s.as_(s.consumer)
    page = s.page(path)
    assert "仅限社会救助资格审核使用" in page and "有条件共享" in page
    assert "身份证号" in page and "敏感（默认脱敏）" in page and "必须提供，每次最多 10 行" in page
    assert 'id="request-button"' in page

    s.as_(s.provider)
    assert 'id="request-button"' not in s.page(path)  # its own resource
    window = s.hub.actor(s.hub.department("政务服务中心"), "window", name="一号窗口")
    s.as_(window)
    assert 'id="request-button"' not in s.page(path)
    assert s.client.get(f"{path}/request").status_code == 403

    secret = publish(
        s.client,
        s.provider,
        s.admin,
        name="在逃人员信息",
        sharing_type="not_shared",
        legal_basis="《中华人民共和国保守国家秘密法》第九条",
        control_parameters=[],
        serves_dataset=False,
    )
    s.as_(s.consumer)
    shown = s.page(f"/console/catalog/entries/{secret['id']}")
    assert "保守国家秘密法" in shown and 'id="request-button"' not in shown
    draft = create(s.client, s.provider, name="尚未发布的目录")
    assert s.client.get(f"/console/catalog/entries/{draft['id']}").status_code == 404


def test_a_consumer_files_a_request_and_mistakes_are_shown_next_to_the_fields(s: Sharing) -> None:
    csrf = s.as_(s.consumer)
    path = f"/console/catalog/entries/{s.entry['id']}/request"
    form = s.page(path)
    assert 'name="items" value="户籍地址"' in form and 'name="clear_items" value="姓名"' in form

    empty = s.post(
        path, csrf, {"purpose": "", "scenario": "窗口核验", "legal_basis": "", "valid_until": "", "contact_name": "李四"}
    )
    assert empty.status_code == 422
    assert field_error(empty.text, "request-items") == "至少选择 1 项"
    assert field_error(empty.text, "request-purpose") == "必填"
    assert field_error(empty.text, "request-valid_until") == "必填"
    assert field_error(empty.text, "request-contact_phone") == "必填"
    assert "窗口核验" in empty.text  # what was typed is kept

    until = (exchange.today() + timedelta(days=200)).isoformat()
    filled = {
        "purpose": "低保资格审核",
        "scenario": "窗口核验户籍",
        "legal_basis": "《社会救助暂行办法》第十一条",
        "valid_until": until,
        "contact_name": "李四",
        "contact_phone": "010-12345678",
    }
    wrong = s.post(path, csrf, {**filled, "items": ["姓名", "血型"], "clear_items": ["户籍地址"]})
    assert wrong.status_code == 422
    assert "血型" in field_error(wrong.text, "request-items")
    assert "not among the requested items" in field_error(wrong.text, "request-clear_items")
    assert 'value="姓名" checked' in wrong.text

    filed = s.post(path, csrf, {**filled, "items": ["身份证号", "姓名"], "clear_items": ["姓名"]})
    assert filed.status_code == 200 and "申请已提交" in filed.text and "待审查" in filed.text
    assert "姓名（明文）" in filed.text
    assert "户籍人口基本信息" in s.page("/console/exchange/mine")

    s.as_(s.provider)
    own = s.post(path, s.as_(s.provider), {**filled, "items": ["姓名"]})
    assert own.status_code == 422 and "own resource" in own.text


def test_the_platform_publishes_or_returns_a_submitted_entry(s: Sharing) -> None:
    first = create(s.client, s.provider, name="居住证信息")
    second = create(s.client, s.provider, name="流动人口登记信息")
    for entry in (first, second):
        assert s.client.post(f"/catalog/entries/{entry['id']}/submit", headers=s.provider.headers).status_code == 200

    csrf = s.as_(s.admin)
    queue = s.page("/console/catalog/review")
    assert "居住证信息" in queue and "流动人口登记信息" in queue and "户籍人口基本信息" not in queue
    page = s.page(f"/console/catalog/entries/{second['id']}")
    assert 'id="publish-button"' in page
    review = f"/console/catalog/entries/{second['id']}/review"
    silent = s.post(review, csrf, {"version": 2, "decision": "return", "reason": ""})
    assert silent.status_code == 422 and field_error(silent.text, "review-reason") == "必填"
    stale = s.post(review, csrf, {"version": 1, "decision": "return", "reason": "摘要不完整"})
    assert stale.status_code == 412 and "已被他人处理或修改" in stale.text
    returned = s.post(review, csrf, {"version": 2, "decision": "return", "reason": "摘要不完整"})
    assert returned.status_code == 200 and "已退回提供部门修改" in returned.text
    published = s.post(f"/console/catalog/entries/{first['id']}/review", csrf, {"version": 2, "decision": "publish"})
    assert published.status_code == 200 and "已发布" in published.text
    assert "居住证信息" not in published.text and "流动人口登记信息" not in published.text

    s.as_(s.consumer)
    assert "居住证信息" in s.page("/console/catalog?q=居住证")
    assert s.client.get("/console/catalog/review").status_code == 403
