"""The exchange in the console: the platform reviews and coordinates, the provider decides, the consumer follows
its requests; every refusal is shown next to its field, and another department's request is not there."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from exchange import requests as exchange_requests
from exchange import service as exchange
from exchange import states as exchange_states
from tests.catalog_registry.helpers import upload
from tests.conftest import Hub
from tests.console.sharing import PEOPLE_CSV, Sharing, field_error, sharing


@pytest.fixture()
def s(client: TestClient, hub: Hub) -> Sharing:
    return sharing(client, hub)


def test_the_review_queue_puts_overdue_requests_first_and_marks_them(
    s: Sharing, monkeypatch: pytest.MonkeyPatch, db: Session
) -> None:
    fresh = s.file(purpose="新近提交的申请")
    for module in (exchange_states, exchange_requests):  # filed twenty days ago
        monkeypatch.setattr(module, "utcnow", lambda: datetime.now(UTC) - timedelta(days=20))
    late = s.file(purpose="二十天前提交的申请")
    monkeypatch.undo()

    s.as_(s.admin)
    queue = s.page("/console/exchange/review")
    assert queue.index(late["id"]) < queue.index(fresh["id"])  # the most urgent first
    late_row = queue[queue.rindex("<tr", 0, queue.index(late["id"])) : queue.index(late["id"])]
    assert 'class="overdue"' in late_row
    assert "已超期" in queue and "剩 " in queue
    assert "市民政局" in queue and "户籍人口基本信息" in queue
    exchange.sweep_overdue(db)  # the scheduled job that records missed deadlines
    db.commit()
    late_only = s.page("/console/exchange/requests?overdue=true")
    assert late["id"] in late_only and fresh["id"] not in late_only


def test_an_administrator_accepts_and_the_provider_approves_fewer_fields_for_a_shorter_time(s: Sharing) -> None:
    req = s.file()
    csrf = s.as_(s.admin)
    page = s.page(f"/console/exchange/requests/{req['id']}")
    assert "规范性审查" in page and 'name="version" value="1"' in page
    accepted = s.post(f"/console/exchange/requests/{req['id']}/accept", csrf, {"version": req["version"]})
    assert accepted.status_code == 200 and "已受理" in accepted.text
    assert "待提供部门审批" in accepted.text and "提供部门审批" in accepted.text

    csrf = s.as_(s.provider)
    assert req["id"] in s.page("/console/exchange/decisions")
    until = (exchange.today() + timedelta(days=90)).isoformat()
    approved = s.post(
        f"/console/exchange/requests/{req['id']}/decision",
        csrf,
        {"version": s.version(req["id"]), "approve": "true", "fields": ["身份证号", "姓名"], "valid_until": until, "reason": ""},
    )
    assert approved.status_code == 200 and "审批意见已提交" in approved.text
    assert req["id"] not in s.page("/console/exchange/decisions")

    s.as_(s.consumer)
    mine = s.page(f"/console/exchange/requests/{req['id']}")
    granted = mine[mine.index('id="granted-fields"') :]
    assert "身份证号" in granted[:300] and "户籍地址" not in granted[:300]
    assert f"至 {until}" in mine and "已授权" in mine
    assert "已授权" in s.page("/console/exchange/mine")


def test_a_refusal_without_a_reason_is_shown_next_to_the_reason_and_nothing_changes(s: Sharing) -> None:
    req = s.file()
    csrf = s.as_(s.admin)
    refused = s.post(f"/console/exchange/requests/{req['id']}/refuse", csrf, {"version": req["version"], "reason": " "})
    assert refused.status_code == 422
    assert field_error(refused.text, "refuse-reason") == "必填"
    assert s.version(req["id"]) == req["version"]
    done = s.post(f"/console/exchange/requests/{req['id']}/refuse", csrf, {"version": req["version"], "reason": "用途与依据不符"})
    assert done.status_code == 200 and "不予受理" in done.text and "用途与依据不符" in done.text


def test_the_provider_cannot_grant_what_was_not_asked_and_must_say_why_it_refuses(s: Sharing) -> None:
    req = s.file()
    s.api(s.admin, req["id"], "accept")
    version = s.version(req["id"])
    csrf = s.as_(s.provider)
    path = f"/console/exchange/requests/{req['id']}/decision"

    wider = s.post(path, csrf, {"version": version, "approve": "true", "fields": ["身份证号", "出生日期"], "valid_until": ""})
    assert wider.status_code == 422 and "was not requested" in field_error(wider.text, "decision-fields")
    assert 'value="出生日期" checked' not in wider.text  # only requested items are offered
    nothing = s.post(path, csrf, {"version": version, "approve": "true", "valid_until": ""})
    assert nothing.status_code == 422 and field_error(nothing.text, "decision-fields")
    longer = (exchange.today() + timedelta(days=400)).isoformat()
    late = s.post(path, csrf, {"version": version, "approve": "true", "fields": ["姓名"], "valid_until": longer})
    assert late.status_code == 422 and "may narrow the period" in field_error(late.text, "decision-valid_until")
    assert f'value="{longer}"' in late.text  # what was typed is kept
    bad_date = s.post(path, csrf, {"version": version, "approve": "true", "fields": ["姓名"], "valid_until": "明年"})
    assert field_error(bad_date.text, "decision-valid_until") == "日期格式应为 YYYY-MM-DD"
    silent = s.post(path, csrf, {"version": version, "approve": "false", "reason": ""})
    assert silent.status_code == 422 and field_error(silent.text, "decision-reason") == "必填"

    refused = s.post(path, csrf, {"version": version, "approve": "false", "reason": "该数据仅限户籍业务使用"})
    assert refused.status_code == 200 and "提供部门不予批准" in refused.text


def test_another_department_neither_sees_nor_acts_on_a_request(s: Sharing) -> None:
    req = s.file()
    s.api(s.admin, req["id"], "accept")
    version = s.version(req["id"])

    csrf = s.as_(s.other)
    assert s.client.get(f"/console/exchange/requests/{req['id']}").status_code == 404
    assert req["id"] not in s.page("/console/exchange/decisions")
    assert req["id"] not in s.page("/console/exchange/requests")
    stranger = s.post(f"/console/exchange/requests/{req['id']}/decision", csrf, {"version": version, "approve": "true"})
    assert stranger.status_code == 404

    csrf = s.as_(s.consumer)
    own = s.post(f"/console/exchange/requests/{req['id']}/decision", csrf, {"version": version, "approve": "true"})
    assert own.status_code == 403 and "only the provider department decides" in own.text
    assert 'id="decision-form"' not in s.page(f"/console/exchange/requests/{req['id']}")
    assert s.client.get("/console/exchange/review").status_code == 403
    assert s.version(req["id"]) == version


def test_of_two_people_acting_on_the_same_request_the_second_is_told_it_changed(s: Sharing) -> None:
    req = s.file()
    csrf = s.as_(s.admin)
    first = s.post(f"/console/exchange/requests/{req['id']}/accept", csrf, {"version": req["version"]})
    assert first.status_code == 200
    second = s.post(f"/console/exchange/requests/{req['id']}/accept", csrf, {"version": req["version"]})
    assert second.status_code == 412 and "已被他人处理或修改" in second.text
    history = s.client.get(f"/exchange/requests/{req['id']}", headers=s.admin.headers).json()["history"]
    assert [h["action"] for h in history] == ["file", "accept_to_provider"]
    no_version = s.post(f"/console/exchange/requests/{req['id']}/provide", csrf, {})
    assert no_version.status_code == 422 and "版本号" in no_version.text


def test_a_refused_request_is_escalated_coordinated_granted_and_rated(s: Sharing) -> None:
    req = s.file()
    s.api(s.admin, req["id"], "accept")
    s.api(s.provider, req["id"], "decision", {"approve": False, "reason": "用途不明确"})

    csrf = s.as_(s.consumer)
    page = s.page(f"/console/exchange/requests/{req['id']}")
    assert "提请平台协调" in page and "用途不明确" in page
    path = f"/console/exchange/requests/{req['id']}/escalate"
    empty = s.post(path, csrf, {"version": s.version(req["id"]), "reason": ""})
    assert empty.status_code == 422 and field_error(empty.text, "escalate-reason") == "必填"
    assert s.post(path, csrf, {"version": s.version(req["id"]), "reason": "用途已在申请中写明"}).status_code == 200

    csrf = s.as_(s.admin)
    assert req["id"] in s.page("/console/exchange/coordination")
    coordinate = f"/console/exchange/requests/{req['id']}/coordination"
    no_outcome = s.post(coordinate, csrf, {"version": s.version(req["id"]), "reason": "双方同意"})
    assert no_outcome.status_code == 422 and field_error(no_outcome.text, "coordination-outcome")
    granted = s.post(
        coordinate, csrf, {"version": s.version(req["id"]), "outcome": "grant", "reason": "双方同意", "fields": ["姓名"]}
    )
    assert granted.status_code == 200 and "协调结果已记录" in granted.text and "已授权" in granted.text

    csrf = s.as_(s.consumer)
    rating = f"/console/exchange/requests/{req['id']}/rating"
    unrated = s.post(rating, csrf, {"comment": "很快"})
    assert unrated.status_code == 422 and field_error(unrated.text, "rating-rating") == "请从选项中选择"
    rated = s.post(rating, csrf, {"rating": "good", "comment": "协调及时"})
    assert rated.status_code == 200 and "好评" in rated.text and "提交评价" not in rated.text

    s.as_(s.admin)
    report = s.page("/console/exchange/report")
    assert "市公安局" in report and "好评 1" in report and "平台管理部门" in report


def test_the_provider_asks_for_more_time_and_the_platform_grants_it(s: Sharing) -> None:
    req = s.file()
    accepted = s.api(s.admin, req["id"], "accept")
    due = accepted["deadline"]["due_last_day"]
    csrf = s.as_(s.provider)
    path = f"/console/exchange/requests/{req['id']}/extension"
    bad = s.post(path, csrf, {"version": s.version(req["id"]), "days": "三天", "reason": ""})
    assert bad.status_code == 422
    assert field_error(bad.text, "extension-days") == "应为整数" and field_error(bad.text, "extension-reason") == "必填"
    too_long = s.post(path, csrf, {"version": s.version(req["id"]), "days": "30", "reason": "需核对历史数据"})
    assert too_long.status_code == 422 and field_error(too_long.text, "extension-days")
    asked = s.post(path, csrf, {"version": s.version(req["id"]), "days": "3", "reason": "需核对历史数据"})
    assert asked.status_code == 200 and "待审批" in asked.text

    csrf = s.as_(s.admin)
    assert req["id"] in s.page("/console/exchange/coordination")
    decided = s.post(
        f"/console/exchange/requests/{req['id']}/extension-decision", csrf, {"version": s.version(req["id"]), "approve": "true"}
    )
    assert decided.status_code == 200 and "已批准" in decided.text
    moved = s.client.get(f"/exchange/requests/{req['id']}", headers=s.admin.headers).json()["deadline"]
    assert moved["working_days"] == 13 and moved["due_last_day"] > due


def test_the_consumer_withdraws_a_request_it_no_longer_needs(s: Sharing) -> None:
    req = s.file()
    csrf = s.as_(s.consumer)
    withdrawn = s.post(f"/console/exchange/requests/{req['id']}/withdraw", csrf, {"version": req["version"], "reason": ""})
    assert withdrawn.status_code == 200 and "已撤回" in withdrawn.text
    assert "撤回申请" not in withdrawn.text


def test_the_provider_sees_who_used_its_data_and_why(s: Sharing) -> None:
    assert upload(s.client, s.provider, s.entry["id"], PEOPLE_CSV).status_code == 201
    req = s.file()
    s.api(s.admin, req["id"], "accept")
    grant_id = s.api(s.provider, req["id"], "decision", {"approve": True})["grant_id"]
    found = s.client.post(
        f"/exchange/grants/{grant_id}/lookup",
        json={"params": {"身份证号": "11010519491231002X"}, "use_cause": "李四低保申请"},
        headers=s.consumer.headers,
    )
    assert found.status_code == 200, found.text

    s.as_(s.provider)
    used = s.page("/console/exchange/accesses")
    assert "市民政局" in used and "李四低保申请" in used and "户籍人口基本信息" in used
    assert "11010519491231002X" not in used  # the personal identifier is kept as its hash
    s.as_(s.consumer)
    assert "李四低保申请" not in s.page("/console/exchange/accesses")  # its own queries are not uses of its data


def test_the_report_explains_a_bad_period_next_to_the_dates(s: Sharing) -> None:
    s.as_(s.admin)
    backwards = s.client.get("/console/exchange/report", params={"start": "2026-11-30", "end": "2026-11-01"})
    assert backwards.status_code == 422 and field_error(backwards.text, "report-end") == "不能早于开始日期"
    garbled = s.client.get("/console/exchange/report", params={"start": "昨天", "end": "2026-11-01"})
    assert garbled.status_code == 422 and field_error(garbled.text, "report-start") == "日期格式应为 YYYY-MM-DD"
    assert 'value="昨天"' in garbled.text


def test_each_role_sees_its_own_menu(s: Sharing) -> None:
    s.as_(s.admin)
    home = s.page("/console/")
    assert "/console/exchange/review" in home and "/console/catalog/review" in home and "/console/exchange/mine" not in home
    s.as_(s.consumer)
    home = s.page("/console/")
    assert "/console/exchange/mine" in home and "/console/exchange/decisions" in home
    assert "/console/exchange/review" not in home and "/console/exchange/report" not in home
    assert s.client.get("/console/exchange/report").status_code == 403
