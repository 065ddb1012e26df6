"""Sharing requests: filing, review, routing, the provider's decision, withdrawal, extension, escalation."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from exchange import service
from exchange.models import RequestTransition
from exchange.schemas import CoordinationOutcome, ExtensionCreate, ExtensionDecision
from ops.audit import AuditRecord
from ops.auth import Principal, Role
from ops.errors import PreconditionFailed
from tests.conftest import Actor
from tests.exchange.conftest import Clock, World


def test_an_unconditional_resource_without_control_parameters_is_provided_directly(world: World, clock: Clock) -> None:
    clock.set("2026-11-02 10:00")
    req = world.file(world.open_data)
    assert req["state"] == "submitted"
    assert req["deadline"]["step"] == "review" and req["deadline"]["responsible"] == "platform"
    assert req["deadline"]["due_last_day"] == "2026-11-05"

    accepted = world.act(world.admin, req["id"], "accept").json()
    assert accepted["state"] == "granted" and accepted["route"] == "direct"
    assert accepted["deadline"] is None and accepted["grant_id"]

    detail = world.client.get(f"/exchange/requests/{req['id']}", headers=world.consumer.headers).json()
    assert [h["action"] for h in detail["history"]] == ["file", "accept_direct", "provide"]
    assert all(h["actor"] for h in detail["history"])
    grant = world.client.get(f"/exchange/grants/{accepted['grant_id']}", headers=world.consumer.headers).json()
    assert grant["fields"] == ["名称", "地址", "开放时间"] and grant["state"] == "active"
    assert grant["version_id"] == "ver-open-1"


def test_a_conditional_request_goes_to_the_provider_who_approves_a_narrower_grant(world: World, clock: Clock) -> None:
    clock.set("2026-11-02 10:00")
    req = world.file(world.persons, valid_until="2027-06-30")
    accepted = world.act(world.admin, req["id"], "accept").json()
    assert accepted["state"] == "provider_review" and accepted["route"] == "provider"
    assert accepted["deadline"]["step"] == "decision"
    assert accepted["deadline"]["responsible"] == world.provider.department_id
    # 10 working days after Monday 2026-11-02: Tuesday 11-03 is day one, Monday 11-16 day ten.
    assert accepted["deadline"]["due_last_day"] == "2026-11-16"

    notes = world.client.get("/exchange/notifications", headers=world.provider.headers).json()["items"]
    assert any(n["kind"] == "request.to_decide" and n["request_id"] == req["id"] for n in notes)

    decided = world.act(
        world.provider, req["id"], "decision", {"approve": True, "fields": ["身份证号", "民族"], "valid_until": "2027-03-31"}
    )
    assert decided.status_code == 200, decided.text
    grant = world.client.get(f"/exchange/grants/{decided.json()['grant_id']}", headers=world.consumer.headers).json()
    assert grant["fields"] == ["身份证号", "民族"]
    assert grant["valid_until"] == "2027-03-31"
    assert grant["control_parameters"] == [{"item": "身份证号", "required": True, "max_rows": 1}]


def test_an_unconditional_resource_with_control_parameters_also_goes_to_the_provider(world: World, clock: Clock) -> None:
    req = world.file(world.companies)
    assert world.act(world.admin, req["id"], "accept").json()["state"] == "provider_review"


def test_a_resource_that_is_not_shared_cannot_be_requested_and_the_error_names_the_legal_basis(world: World) -> None:
    response = world.client.post("/exchange/requests", json=world.request_body(world.secret), headers=world.consumer.headers)
    assert response.status_code == 422
    assert "不予共享" in response.json()["detail"]
    assert "保守国家秘密法" in response.json()["detail"]


def test_bad_requests_are_refused_with_field_errors(world: World, clock: Clock) -> None:
    clock.set("2026-11-02 10:00")
    body = world.request_body(world.persons, items=["身份证号", "血型"], valid_until="2026-10-01", clear_items=["民族"])
    response = world.client.post("/exchange/requests", json=body, headers=world.consumer.headers)
    assert response.status_code == 422
    fields = {e["field"] for e in response.json()["errors"]}
    assert {"items[1]", "valid_until", "clear_items[0]"} <= fields
    missing = world.client.post("/exchange/requests", json={"resource_id": "res-persons"}, headers=world.consumer.headers)
    assert missing.status_code == 422 and {"purpose", "items"} <= {e["field"] for e in missing.json()["errors"]}
    unknown = world.client.post(
        "/exchange/requests", json=world.request_body(world.persons, resource_id="nope"), headers=world.consumer.headers
    )
    assert unknown.status_code == 404
    own = world.client.post("/exchange/requests", json=world.request_body(world.persons), headers=world.provider.headers)
    assert own.status_code == 422


def test_refusal_without_a_reason_is_rejected_and_with_one_is_recorded(world: World) -> None:
    req = world.file(world.persons)
    for body in ({}, {"reason": ""}, {"reason": "  "}):
        response = world.act(world.admin, req["id"], "refuse", body)
        assert response.status_code == 422, body
    refused = world.act(world.admin, req["id"], "refuse", {"reason": "用途与申请资源不符"}).json()
    assert refused["state"] == "refused" and refused["reason"] == "用途与申请资源不符"
    assert world.act(world.admin, req["id"], "accept").status_code == 409


def test_a_provider_refusal_needs_a_reason(world: World) -> None:
    req = world.file(world.persons)
    world.act(world.admin, req["id"], "accept")
    assert world.act(world.provider, req["id"], "decision", {"approve": False}).status_code == 422
    refused = world.act(world.provider, req["id"], "decision", {"approve": False, "reason": "申请用途超出共享条件"})
    assert refused.status_code == 200 and refused.json()["state"] == "rejected"


def test_only_the_provider_decides_and_only_the_platform_reviews(world: World) -> None:
    req = world.file(world.persons)
    assert world.act(world.consumer, req["id"], "accept").status_code == 403
    world.act(world.admin, req["id"], "accept")
    assert world.act(world.consumer, req["id"], "decision", {"approve": True}).status_code == 403
    assert world.act(world.provider, req["id"], "decision", {"approve": True, "fields": ["血型"]}).status_code == 422
    assert world.act(world.provider, req["id"], "decision", {"approve": True, "valid_until": "2099-01-01"}).status_code == 422


def test_the_consumer_may_withdraw_before_a_decision_but_not_after(world: World) -> None:
    req = world.file(world.persons)
    world.act(world.admin, req["id"], "accept")
    withdrawn = world.act(world.consumer, req["id"], "withdraw", {"reason": "业务调整"})
    assert withdrawn.json()["state"] == "withdrawn" and withdrawn.json()["deadline"] is None
    assert world.act(world.provider, req["id"], "decision", {"approve": True}).status_code == 409
    assert world.act(world.provider, req["id"], "withdraw").status_code == 403

    done = world.file(world.open_data)
    world.act(world.admin, done["id"], "accept")
    assert world.act(world.consumer, done["id"], "withdraw").status_code == 409


def test_an_extension_asked_by_the_provider_moves_the_deadline_once_approved(world: World, clock: Clock) -> None:
    clock.set("2026-11-02 10:00")
    req = world.file(world.persons)
    world.act(world.admin, req["id"], "accept")
    assert world.act(world.provider, req["id"], "extension", {"days": 30, "reason": "需核实"}).status_code == 422
    assert world.act(world.provider, req["id"], "extension", {"days": 5}).status_code == 422
    asked = world.act(world.provider, req["id"], "extension", {"days": 5, "reason": "需会同派出所核实数据口径"})
    assert asked.status_code == 200 and asked.json()["deadline"]["extension_state"] == "pending"
    assert world.act(world.provider, req["id"], "extension", {"days": 2, "reason": "再延"}).status_code == 409
    assert world.act(world.admin, req["id"], "extension/decision", {"approve": False}).status_code == 422
    approved = world.act(world.admin, req["id"], "extension/decision", {"approve": True}).json()
    assert approved["deadline"]["working_days"] == 15
    assert approved["deadline"]["due_last_day"] == "2026-11-23"  # 10 + 5 working days after 11-02


def test_a_refused_extension_keeps_the_deadline(world: World, clock: Clock) -> None:
    clock.set("2026-11-02 10:00")
    req = world.file(world.persons)
    world.act(world.admin, req["id"], "accept")
    world.act(world.provider, req["id"], "extension", {"days": 3, "reason": "人手不足"})
    refused = world.act(world.admin, req["id"], "extension/decision", {"approve": False, "reason": "理由不充分"}).json()
    assert refused["deadline"]["due_last_day"] == "2026-11-16" and refused["deadline"]["extension_state"] == "refused"


def test_a_refused_conditional_request_can_be_escalated_and_coordinated(world: World) -> None:
    req = world.file(world.persons)
    world.act(world.admin, req["id"], "accept")
    world.act(world.provider, req["id"], "decision", {"approve": False, "reason": "无法律依据"})
    assert world.act(world.consumer, req["id"], "escalate", {}).status_code == 422
    escalated = world.act(world.consumer, req["id"], "escalate", {"reason": "《社会救助暂行办法》明确规定可核查"}).json()
    assert escalated["state"] == "coordinating" and escalated["deadline"]["step"] == "coordination"
    granted = world.act(
        world.admin, req["id"], "coordination", {"outcome": "grant", "reason": "经协调同意共享", "fields": ["身份证号"]}
    )
    assert granted.status_code == 200 and granted.json()["state"] == "granted"
    detail = world.client.get(f"/exchange/requests/{req['id']}", headers=world.consumer.headers).json()
    assert detail["history"][-1]["reason"] == "经协调同意共享"

    other = world.file(world.persons)
    world.act(world.admin, other["id"], "accept")
    world.act(world.provider, other["id"], "decision", {"approve": False, "reason": "无法律依据"})
    world.act(world.consumer, other["id"], "escalate", {"reason": "请平台协调"})
    upheld = world.act(world.admin, other["id"], "coordination", {"outcome": "uphold", "reason": "维持不予共享"}).json()
    assert upheld["state"] == "closed"


def test_two_people_approving_at_once_one_wins_the_other_gets_412(world: World, db: Session) -> None:
    req = world.file(world.persons)
    world.act(world.admin, req["id"], "accept")
    etag = world.client.get(f"/exchange/requests/{req['id']}", headers=world.provider.headers).headers["ETag"]
    first = world.client.post(
        f"/exchange/requests/{req['id']}/decision", json={"approve": True}, headers={**world.provider.headers, "If-Match": etag}
    )
    second = world.client.post(
        f"/exchange/requests/{req['id']}/decision",
        json={"approve": False, "reason": "不同意"},
        headers={**world.provider.headers, "If-Match": etag},
    )
    assert first.status_code == 200 and second.status_code == 412
    assert second.json()["code"] == "precondition_failed" and second.json()["current_version"] > int(etag.strip('"'))
    actions = [t.action for t in db.scalars(select(RequestTransition).where(RequestTransition.request_id == req["id"]))]
    assert actions.count("approve") == 1 and "reject" not in actions


def test_two_sessions_racing_on_the_same_request_change_it_once(world: World, session_factory: object) -> None:
    import pytest
    from sqlalchemy.orm.exc import StaleDataError

    from exchange import service
    from ops.auth import Principal, Role

    req = world.file(world.persons)
    world.act(world.admin, req["id"], "accept")
    provider = Principal(subject="p", roles=frozenset({Role.DEPARTMENT_SYSTEM}), department_id=world.provider.department_id)
    from exchange.schemas import ProviderDecision

    with session_factory() as a, session_factory() as b:  # type: ignore[operator]
        # Both read the request before either writes.
        seen_by_a = service.get_request(a, who=provider, request_id=req["id"])
        seen_by_b = service.get_request(b, who=provider, request_id=req["id"])
        assert seen_by_a.version == seen_by_b.version
        service.decide(a, who=provider, policy=service.Policy(), request_id=req["id"], data=ProviderDecision(approve=True))
        with pytest.raises(StaleDataError):
            service.decide(
                b,
                who=provider,
                policy=service.Policy(),
                request_id=req["id"],
                data=ProviderDecision(approve=False, reason="不同意"),
            )


def test_a_department_cannot_see_another_departments_requests(world: World) -> None:
    req = world.file(world.persons)
    assert world.client.get(f"/exchange/requests/{req['id']}", headers=world.other.headers).status_code == 404
    assert world.act(world.other, req["id"], "withdraw").status_code == 404
    assert world.client.get("/exchange/requests", headers=world.other.headers).json()["items"] == []
    mine = world.client.get("/exchange/requests?side=consumer", headers=world.consumer.headers).json()["items"]
    assert [r["id"] for r in mine] == [req["id"]]
    theirs = world.client.get("/exchange/requests?side=provider", headers=world.provider.headers).json()["items"]
    assert [r["id"] for r in theirs] == [req["id"]]


def test_every_transition_is_audited(world: World, db: Session) -> None:
    req = world.file(world.persons)
    world.act(world.admin, req["id"], "accept")
    actions = set(db.scalars(select(AuditRecord.action).where(AuditRecord.object_id == req["id"])))
    assert {"sharing_request.file", "sharing_request.accept_to_provider"} <= actions


def test_the_event_feed_gives_each_department_its_own_changes_with_a_cursor(world: World) -> None:
    req = world.file(world.open_data)
    feed = world.client.get("/exchange/events", headers=world.consumer.headers).json()
    assert [e["kind"] for e in feed["items"]] == ["request.submitted"]
    world.act(world.admin, req["id"], "accept")
    more = world.client.get(f"/exchange/events?after={feed['cursor']}", headers=world.consumer.headers).json()
    assert [e["kind"] for e in more["items"]] == ["request.provisioning", "request.granted", "grant.active"]
    again = world.client.get(f"/exchange/events?after={more['cursor']}", headers=world.consumer.headers).json()
    assert again["items"] == [] and again["cursor"] == more["cursor"]
    assert world.client.get("/exchange/events", headers=world.other.headers).json()["items"] == []


def test_a_fulfilled_request_is_rated_once_and_counted_in_the_report(world: World, clock: Clock) -> None:
    clock.set("2026-11-02 10:00")
    req = world.file(world.persons)
    clock.set("2026-11-03 10:00")
    world.act(world.admin, req["id"], "accept")
    clock.set("2026-11-06 10:00")
    world.act(world.provider, req["id"], "decision", {"approve": True})
    assert world.act(world.consumer, req["id"], "rating", {"rating": "excellent"}).status_code == 422
    rated = world.act(world.consumer, req["id"], "rating", {"rating": "good", "comment": "响应及时"})
    assert rated.status_code == 201
    assert world.act(world.consumer, req["id"], "rating", {"rating": "poor"}).status_code == 409

    report = world.client.get("/exchange/report?start=2026-11-01&end=2026-11-30", headers=world.admin.headers)
    assert report.status_code == 200, report.text
    rows = {d["department_id"]: d for d in report.json()["departments"]}
    provider = rows[world.provider.department_id]
    assert provider["steps_completed"] == 1 and provider["on_time_rate"] == 1.0
    assert provider["average_working_days"] == 3.0  # accepted Tuesday, decided Friday
    assert provider["ratings"] == {"good": 1}
    assert provider["department_name"] == world.provider.department.name  # type: ignore[union-attr]
    assert rows["platform"]["department_name"] == "平台管理部门"
    assert rows["platform"]["steps_completed"] == 1 and rows["platform"]["average_working_days"] == 1.0
    assert world.client.get("/exchange/report?start=2026-11-01&end=2026-11-30", headers=world.consumer.headers).status_code == 403


def test_list_filters_are_validated(world: World) -> None:
    bad = world.client.get("/exchange/requests?state=lost", headers=world.consumer.headers)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "state"
    assert world.client.get("/exchange/grants?state=old", headers=world.consumer.headers).status_code == 422
    assert world.client.get("/exchange/events?after=-1", headers=world.consumer.headers).status_code == 422
    assert world.client.get("/exchange/requests?cursor=xyz", headers=world.consumer.headers).status_code == 422
    assert world.client.get("/exchange/accesses?cursor=xyz", headers=world.consumer.headers).status_code == 422
    assert world.client.get("/exchange/requests", headers=world.hub.holder("11010519491231002X").headers).status_code == 403
    assert world.client.get("/exchange/requests").status_code == 401


def test_a_direct_request_without_data_yet_waits_in_provisioning_until_the_platform_provides(world: World, clock: Clock) -> None:
    from dataclasses import replace

    clock.set("2026-11-02 10:00")
    empty = world.catalogue.publish(
        replace(world.open_data, resource_id="res-empty", version_id="ver-empty-1", has_dataset=False)
    )
    req = world.file(empty)
    accepted = world.act(world.admin, req["id"], "accept").json()
    assert accepted["state"] == "provisioning"
    assert accepted["deadline"]["step"] == "provision" and accepted["deadline"]["due_last_day"] == "2026-11-05"
    assert world.act(world.admin, req["id"], "provide").status_code == 409
    world.catalogue.publish(replace(empty, has_dataset=True))
    provided = world.act(world.admin, req["id"], "provide").json()
    assert provided["state"] == "granted" and provided["grant_id"]


def test_a_form_drawn_from_an_older_version_cannot_escalate_coordinate_or_extend(world: World, db: Session) -> None:
    def staff(actor: Actor | None, role: Role) -> Principal:
        return Principal(subject="console", roles=frozenset({role}), department_id=actor.department_id if actor else None)

    consumer, provider = staff(world.consumer, Role.DEPARTMENT_ADMIN), staff(world.provider, Role.DEPARTMENT_ADMIN)
    admin = staff(None, Role.PLATFORM_ADMIN)
    policy = service.Policy()
    asked = world.file(world.persons)
    world.act(world.admin, asked["id"], "accept")
    seen = world.client.get(f"/exchange/requests/{asked['id']}", headers=world.admin.headers).json()["version"]
    stale = seen - 1
    extension = ExtensionCreate(days=2, reason="需核实")
    with pytest.raises(PreconditionFailed):
        service.request_extension(db, who=provider, policy=policy, request_id=asked["id"], data=extension, expected_version=stale)
    service.request_extension(db, who=provider, policy=policy, request_id=asked["id"], data=extension, expected_version=seen)
    with pytest.raises(PreconditionFailed):
        service.decide_extension(
            db, who=admin, request_id=asked["id"], data=ExtensionDecision(approve=True), expected_version=stale
        )

    refused = world.file(world.companies)
    world.act(world.admin, refused["id"], "accept")
    world.act(world.provider, refused["id"], "decision", {"approve": False, "reason": "不符合条件"})
    seen = world.client.get(f"/exchange/requests/{refused['id']}", headers=world.admin.headers).json()["version"]
    with pytest.raises(PreconditionFailed):
        service.escalate(db, who=consumer, policy=policy, request_id=refused["id"], reason="请协调", expected_version=seen - 1)
    req = service.escalate(db, who=consumer, policy=policy, request_id=refused["id"], reason="请协调", expected_version=seen)
    db.flush()
    outcome = CoordinationOutcome(outcome="uphold", reason="维持")
    with pytest.raises(PreconditionFailed):
        service.coordinate(db, who=admin, policy=policy, request_id=refused["id"], data=outcome, expected_version=req.version - 1)
    assert (
        service.coordinate(
            db, who=admin, policy=policy, request_id=refused["id"], data=outcome, expected_version=req.version
        ).state
        == "closed"
    )
