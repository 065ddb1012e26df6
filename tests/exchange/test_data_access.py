"""Querying granted data: lookups by control parameter, export, the provider's API; masking, field filtering,
limits, revocation, and the usage trail that providers and holders read."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlparse

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from exchange import service
from exchange.models import DataAccess
from ops.audit import AuditRecord, subject_ref
from ops.errors import HubError
from tests.exchange.conftest import Api, Item, View, World


def lookup(world: World, grant_id: str, params: dict[str, str], **extra: Any) -> Any:
    return world.client.post(
        f"/exchange/grants/{grant_id}/lookup", json={"params": params, **extra}, headers=world.consumer.headers
    )


def test_masking_keeps_the_first_third_and_last_quarter() -> None:
    assert service.mask("11010519491231002X") == "110105********002X"
    assert service.mask("王五") == "王*"
    assert service.mask("北京市东城区东四街道1号") == "北京市东*****道1号"
    assert service.mask(None) is None


def test_a_lookup_by_identity_number_returns_only_granted_fields_with_sensitive_ones_masked(world: World) -> None:
    grant = world.granted(world.persons)
    pid = world.person_ids[2]
    response = lookup(world, grant["id"], {"身份证号": pid}, use_cause="低保申请 2026-118 号")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["fields"] == ["身份证号", "姓名", "户籍地址", "民族"]
    assert set(body["masked_fields"]) == {"身份证号", "姓名", "户籍地址"}
    (row,) = body["rows"]
    assert row["身份证号"] == pid[:6] + "********" + pid[-4:]
    assert row["姓名"] == "王*" and row["民族"] == "汉族"

    only = lookup(world, grant["id"], {"身份证号": pid}, fields=["民族"]).json()
    assert only["rows"] == [{"民族": "汉族"}]
    assert lookup(world, grant["id"], {"身份证号": "110105190001010000"}).json()["rows"] == []


def test_a_lookup_or_a_request_with_text_the_database_cannot_store_is_refused_naming_the_field(world: World) -> None:
    grant = world.granted(world.persons)
    # a lone surrogate, as a fuzzer sends it (a JSON escape no UTF-8 text can carry)
    body = b'{"params": {"\\u8eab\\u4efd\\u8bc1\\u53f7": "\\ud800abc"}}'
    response = world.client.post(
        f"/exchange/grants/{grant['id']}/lookup",
        content=body,
        headers={**world.consumer.headers, "content-type": "application/json"},
    )
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == "params.身份证号"
    nul = lookup(world, grant["id"], {"身份证号": world.person_ids[0]}, use_cause="低保\x00申请")
    assert nul.status_code == 422 and nul.json()["errors"][0]["field"] == "use_cause"
    purpose = world.client.post(
        "/exchange/requests", json=world.request_body(world.persons, purpose="办理\x00审核"), headers=world.consumer.headers
    )
    assert purpose.status_code == 422 and purpose.json()["errors"][0]["field"] == "purpose"


def test_sensitive_items_named_in_the_grant_are_returned_in_clear(world: World) -> None:
    grant = world.granted(world.persons, clear_items=["姓名"])
    assert grant["clear_fields"] == ["姓名"] and "姓名" not in grant["masked_fields"]
    row = lookup(world, grant["id"], {"身份证号": world.person_ids[0]}).json()["rows"][0]
    assert row["姓名"] == "王0" and "*" in row["身份证号"]


def test_bad_queries_get_clear_4xx_problems(world: World) -> None:
    grant = world.granted(world.persons, items=["身份证号", "民族"])
    missing = lookup(world, grant["id"], {})
    assert missing.status_code == 422 and "身份证号" in missing.json()["detail"]
    unknown = lookup(world, grant["id"], {"身份证号": world.person_ids[0], "姓名": "王0"})
    assert unknown.status_code == 422 and unknown.json()["errors"][0]["field"] == "params.姓名"
    not_granted = lookup(world, grant["id"], {"身份证号": world.person_ids[0]}, fields=["户籍地址"])
    assert not_granted.status_code == 403 and not_granted.json()["code"] == "fields_not_granted"
    no_export = world.client.get(f"/exchange/grants/{grant['id']}/export", headers=world.consumer.headers)
    assert no_export.status_code == 403
    assert lookup(world, "no-such-grant", {"身份证号": "x"}).status_code == 404
    # Only the consumer queries through its grant; the provider and other departments do not.
    as_provider = world.client.post(f"/exchange/grants/{grant['id']}/lookup", json={"params": {}}, headers=world.provider.headers)
    assert as_provider.status_code == 404
    assert world.client.get(f"/exchange/grants/{grant['id']}", headers=world.other.headers).status_code == 404


def test_a_revoked_grant_can_no_longer_be_used(world: World) -> None:
    grant = world.granted(world.persons)
    revoke = f"/exchange/grants/{grant['id']}/revoke"
    assert world.client.post(revoke, json={"reason": ""}, headers=world.provider.headers).status_code == 422
    assert world.client.post(revoke, json={"reason": "超范围使用"}, headers=world.consumer.headers).status_code == 403
    revoked = world.client.post(revoke, json={"reason": "发现超范围使用"}, headers=world.provider.headers)
    assert revoked.status_code == 200 and revoked.json()["state"] == "revoked"
    refused = lookup(world, grant["id"], {"身份证号": world.person_ids[0]})
    assert refused.status_code == 403 and "发现超范围使用" in refused.json()["detail"]
    # The refused attempt is on the usage trail too.
    trail = world.client.get(f"/exchange/accesses?grant_id={grant['id']}", headers=world.provider.headers).json()["items"]
    assert [(t["outcome"], t["rows"]) for t in trail] == [("grant_not_usable", 0)]
    assert world.client.post(revoke, json={"reason": "再次撤销"}, headers=world.admin.headers).status_code == 409
    events = world.client.get("/exchange/events", headers=world.consumer.headers).json()["items"]
    assert events[-1]["kind"] == "grant.revoked"


def test_the_rate_limit_of_a_grant_is_enforced(world: World, db: Session) -> None:
    grant = world.granted(world.persons)
    from exchange.models import Grant

    row = db.get(Grant, grant["id"])
    assert row is not None
    row.rate_limit_per_minute = 2
    db.flush()
    for _ in range(2):
        assert lookup(world, grant["id"], {"身份证号": world.person_ids[0]}).status_code == 200
    limited = lookup(world, grant["id"], {"身份证号": world.person_ids[0]})
    assert limited.status_code == 429 and 0 < int(limited.headers["Retry-After"]) <= 60


def test_paged_export_where_the_entry_allows_it(world: World) -> None:
    grant = world.granted(world.open_data)
    url = f"/exchange/grants/{grant['id']}/export"
    first = world.client.get(url, params={"limit": 5, "fields": ["名称"]}, headers=world.consumer.headers).json()
    assert len(first["rows"]) == 5 and first["rows"][0] == {"名称": "公厕0"}
    second = world.client.get(url, params={"limit": 5, "cursor": first["next_cursor"]}, headers=world.consumer.headers).json()
    assert len(second["rows"]) == 2 and second["next_cursor"] is None
    assert world.client.get(url, params={"limit": 0}, headers=world.consumer.headers).status_code == 422


def test_every_data_access_leaves_an_audit_record_and_an_access_log_entry(world: World, db: Session) -> None:
    grant = world.granted(world.persons)
    pid = world.person_ids[1]
    before = db.scalar(select(func.count()).select_from(AuditRecord).where(AuditRecord.action.like("data.%"))) or 0
    lookup(world, grant["id"], {"身份证号": pid}, use_cause="低保复核")
    lookup(world, grant["id"], {"身份证号": world.person_ids[3]})
    after = db.scalar(select(func.count()).select_from(AuditRecord).where(AuditRecord.action.like("data.%"))) or 0
    assert after - before == 2

    entry = db.scalars(select(DataAccess).where(DataAccess.grant_id == grant["id"]).order_by(DataAccess.id)).first()
    assert entry is not None
    assert entry.parameters == {"身份证号": "sha256:" + subject_ref(pid)}  # never the number itself
    assert pid not in json.dumps(entry.parameters) and entry.rows == 1
    assert entry.fields == ["身份证号", "姓名", "户籍地址", "民族"] and "低保复核" in entry.purpose
    audit_row = db.scalars(select(AuditRecord).where(AuditRecord.action == "data.lookup").order_by(AuditRecord.id)).first()
    assert audit_row is not None and audit_row.subject_ref == subject_ref(pid)

    used = world.client.get("/exchange/accesses", headers=world.provider.headers).json()["items"]
    assert len(used) == 2 and {u["consumer_department_id"] for u in used} == {world.consumer.department_id}
    assert world.client.get("/exchange/accesses", headers=world.other.headers).json()["items"] == []

    holder = world.hub.holder(pid)
    mine = world.client.get("/exchange/my-accesses", headers=holder.headers).json()["items"]
    assert len(mine) == 1 and mine[0]["purpose"].startswith("办理社会救助资格审核")
    stranger = world.hub.holder(world.person_ids[4])
    assert world.client.get("/exchange/my-accesses", headers=stranger.headers).json()["items"] == []


class _ProviderApi(BaseHTTPRequestHandler):
    calls: ClassVar[list[str]] = []
    mode = "ok"

    def do_GET(self) -> None:
        type(self).calls.append(self.path)
        query = parse_qs(urlparse(self.path).query)
        mode = type(self).mode
        if mode == "slow":
            time.sleep(1.5)
        if mode == "flaky" and len(type(self).calls) == 1:
            self.send_response(503)
            self.end_headers()
            return
        if mode == "broken":
            self.send_response(400)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"error": "bad sfzh"}')
            return
        payload = {"data": [{"身份证号": query.get("身份证号", [""])[0], "姓名": "赵六", "车牌号": "京A12345", "内部编号": "X9"}]}
        raw = json.dumps(payload, ensure_ascii=False).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture()
def provider_api() -> Iterator[tuple[str, type[_ProviderApi]]]:
    handler = type("ProviderApi", (_ProviderApi,), {"calls": [], "mode": "ok"})
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/vehicles", handler
    finally:
        server.shutdown()
        server.server_close()


def _api_view(world: World, url: str) -> View:
    return world.catalogue.publish(
        View(
            resource_id="res-vehicles",
            version_id="ver-vehicles-1",
            version=1,
            code="11000011A00005",
            name="机动车信息",
            provider_department_id=world.provider.department_id,
            sharing_type="conditional",
            conditions="仅限政务服务",
            legal_basis=None,
            items=[Item("身份证号", sensitivity="sensitive", personal=True), Item("姓名"), Item("车牌号")],
            control_parameters=[],
            allows_export=False,
            has_dataset=False,
            api=Api(url=url, timeout_seconds=0.5),
        )
    )


def test_an_api_distribution_is_called_through_the_hub_and_filtered_to_the_granted_fields(
    world: World, provider_api: tuple[str, type[_ProviderApi]]
) -> None:
    url, handler = provider_api
    grant = world.granted(_api_view(world, url), items=["身份证号", "车牌号"])
    pid = world.person_ids[0]
    call = f"/exchange/grants/{grant['id']}/call"
    response = world.client.post(call, json={"params": {"身份证号": pid}}, headers=world.consumer.headers)
    assert response.status_code == 200, response.text
    (row,) = response.json()["rows"]
    assert row == {"身份证号": service.mask(pid), "车牌号": "京A12345"}  # no 姓名, no 内部编号

    handler.mode = "flaky"  # a GET is retried after a 503
    handler.calls.clear()
    assert world.client.post(call, json={"params": {"身份证号": pid}}, headers=world.consumer.headers).status_code == 200
    assert len(handler.calls) == 2

    handler.mode = "broken"
    broken = world.client.post(call, json={"params": {"身份证号": pid}}, headers=world.consumer.headers)
    assert broken.status_code == 502 and "HTTP 400" in broken.json()["detail"]

    handler.mode = "slow"
    slow = world.client.post(call, json={"params": {"身份证号": pid}}, headers=world.consumer.headers)
    assert slow.status_code == 504 and slow.json()["code"] == "upstream_timeout"


def test_an_unreachable_provider_api_is_a_502(world: World) -> None:
    grant = world.granted(_api_view(world, "http://127.0.0.1:9/none"), items=["车牌号"])
    response = world.client.post(f"/exchange/grants/{grant['id']}/call", json={"params": {}}, headers=world.consumer.headers)
    assert response.status_code == 502 and "unreachable" in response.json()["detail"]


def test_a_department_reads_the_uses_of_its_data_apart_from_its_own_queries(world: World) -> None:
    grant = world.granted(world.persons)
    assert lookup(world, grant["id"], {"身份证号": world.person_ids[0]}).status_code == 200

    def accesses(who: Any, side: str) -> list[dict[str, Any]]:
        response = world.client.get("/exchange/accesses", params={"side": side}, headers=who.headers)
        assert response.status_code == 200, response.text
        items: list[dict[str, Any]] = response.json()["items"]
        return items

    assert [a["consumer_department_id"] for a in accesses(world.provider, "provider")] == [world.consumer.department_id]
    assert accesses(world.provider, "consumer") == []
    assert len(accesses(world.consumer, "consumer")) == 1 and accesses(world.consumer, "provider") == []


def test_queries_settled_together_share_the_rate_limit_one_by_one(world: World, db: Session) -> None:
    """Queries committed in one batch are counted in order: those past the limit are refused, not counted."""
    from exchange.models import Grant, GrantUsage

    grant_id = world.granted(world.persons)["id"]
    row = db.get(Grant, grant_id)
    assert row is not None
    row.rate_limit_per_minute = 2
    db.flush()
    principal = world.hub.admin_principal()  # any actor will do for the trail
    now = service.now()
    pending = [
        service.pending_access(
            row, principal, kind="lookup", params={"身份证号": pid}, rows=1, fields=["姓名"], use_cause=None, now=now
        )
        for pid in world.person_ids[:3]
    ]
    assert service.settle_accesses(db, pending) == [True, True, False]
    assert db.get(GrantUsage, grant_id).count == 2  # type: ignore[union-attr]
    written = db.scalars(select(DataAccess).where(DataAccess.grant_id == grant_id)).all()
    assert len(written) == 2


def test_one_bad_lookup_in_a_batch_is_refused_alone_and_recorded(world: World, db: Session) -> None:
    """Lookups from several callers are read and settled in one batch: a wrong parameter, a grant that is
    not the caller's and a query past the rate limit each get their own problem, the others their rows."""
    from exchange.models import Grant
    from ops.auth import Principal, Role

    grant_id = world.granted(world.persons)["id"]
    row = db.get(Grant, grant_id)
    assert row is not None
    row.rate_limit_per_minute = 3
    db.commit()

    def as_system(actor: Any) -> Principal:
        return Principal(
            subject=actor.client.client_id, roles=frozenset({Role.DEPARTMENT_SYSTEM}), department_id=actor.department_id
        )

    consumer, stranger = as_system(world.consumer), as_system(world.other)
    asks = [
        service.LookupAsk(consumer, grant_id, {"身份证号": world.person_ids[0]}, ["姓名"], "低保复核"),
        service.LookupAsk(consumer, grant_id, {"姓名": "张三"}, None, None),  # not the control parameter
        service.LookupAsk(stranger, grant_id, {"身份证号": world.person_ids[1]}, None, None),  # not its grant
        service.LookupAsk(consumer, grant_id, {"身份证号": world.person_ids[2]}, None, None),
        service.LookupAsk(consumer, grant_id, {"身份证号": world.person_ids[3]}, None, None),
        service.LookupAsk(consumer, grant_id, {"身份证号": world.person_ids[4]}, None, None),  # the fourth this minute
    ]
    results = service.run_lookups(db, asks)
    db.commit()

    outcomes = [r.status if isinstance(r, HubError) else 200 for r in results]
    assert outcomes == [200, 422, 404, 200, 200, 429]
    first = results[0]
    assert not isinstance(first, HubError)
    assert first[1] == ["姓名"] and len(first[2]) == 1
    trail = db.scalars(select(DataAccess).where(DataAccess.grant_id == grant_id).order_by(DataAccess.id)).all()
    assert sorted(a.outcome for a in trail) == sorted(["success"] * 3 + ["invalid", "rate_limited"])
    refused = db.scalars(select(AuditRecord).where(AuditRecord.object_id == grant_id, AuditRecord.outcome != "success")).all()
    assert len(refused) == 3  # the stranger's attempt is audited, though not in the grant's trail


def test_a_sharing_request_names_both_departments(world: World) -> None:
    """A reader of a request, or of the list of requests, sees which departments, as for grants."""
    filed = world.file(world.persons)
    assert (filed["consumer_department_name"], filed["provider_department_name"]) == ("市民政局", "市公安局")
    read = world.client.get(f"/exchange/requests/{filed['id']}", headers=world.provider.headers).json()
    assert (read["consumer_department_name"], read["provider_department_name"]) == ("市民政局", "市公安局")
    listed = world.client.get("/exchange/requests", headers=world.consumer.headers).json()["items"]
    assert [(r["id"], r["consumer_department_name"], r["provider_department_name"]) for r in listed] == [
        (filed["id"], "市民政局", "市公安局")
    ]


def test_a_grant_and_its_access_records_name_both_departments(world: World) -> None:
    """A reader of a grant or of the usage trail sees which departments, not only their ids."""
    grant = world.granted(world.persons)
    assert (grant["consumer_department_name"], grant["provider_department_name"]) == ("市民政局", "市公安局")
    assert grant["consumer_department_id"] == world.consumer.department_id
    listed = world.client.get("/exchange/grants", headers=world.provider.headers).json()["items"]
    assert [(g["id"], g["consumer_department_name"]) for g in listed] == [(grant["id"], "市民政局")]
    assert lookup(world, grant["id"], {"身份证号": world.person_ids[0]}).status_code == 200
    trail = world.client.get(f"/exchange/accesses?grant_id={grant['id']}", headers=world.provider.headers).json()["items"]
    assert trail and all(
        (a["consumer_department_name"], a["provider_department_name"]) == ("市民政局", "市公安局") for a in trail
    )
