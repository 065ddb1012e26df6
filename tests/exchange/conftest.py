"""Exchange test fixtures: a small catalogue of published entries, the departments, and a settable clock."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from exchange import access, grants, requests, service, sources, states, supervision
from ops.errors import Conflict, HubError, NotFound
from tests.conftest import Actor, Hub
from tests.factories import citizen_id

SH = ZoneInfo("Asia/Shanghai")


@dataclass(frozen=True)
class Item:
    name: str
    data_type: str = "string"
    length: int | None = None
    sensitivity: str = "internal"
    personal: bool = False


@dataclass(frozen=True)
class Control:
    item: str
    required: bool = True
    max_rows: int | None = 1


@dataclass(frozen=True)
class Api:
    url: str
    method: str = "GET"
    timeout_seconds: float = 2.0
    parameter_schema: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class View:
    resource_id: str
    version_id: str
    version: int
    code: str
    name: str
    provider_department_id: str
    sharing_type: str
    conditions: str | None
    legal_basis: str | None
    items: list[Item]
    control_parameters: list[Control]
    allows_export: bool
    has_dataset: bool
    api: Api | None


class Catalogue:
    """Published entries and dataset rows, answering the catalogue's sharing contract."""

    def __init__(self) -> None:
        self.views: dict[str, View] = {}
        self.rows: dict[str, list[dict[str, Any]]] = {}

    def publish(self, view: View, rows: list[dict[str, Any]] | None = None) -> View:
        self.views[view.resource_id] = view
        self.rows[view.resource_id] = rows or []
        return view

    def get_published_for_sharing(self, db: Session, *, resource_id: str) -> View:
        if resource_id not in self.views:
            raise NotFound(f"no published catalogue entry {resource_id}")
        return self.views[resource_id]

    def get_version_for_sharing(self, db: Session, *, version_id: str) -> View:
        for view in self.views.values():
            if view.version_id == version_id:
                return view
        raise NotFound(f"no version {version_id}")

    def lookup_rows(
        self,
        db: Session,
        *,
        resource_id: str,
        params: dict[str, str],
        fields: list[str],
        limit: int,
    ) -> list[dict[str, Any]]:
        found = [r for r in self.rows[resource_id] if all(str(r.get(k)) == v for k, v in params.items())]
        return [{f: r.get(f) for f in fields} for r in found[:limit]]

    def lookup_many(self, db: Session, queries: Sequence[sources.RowQuery]) -> list[list[dict[str, Any]] | HubError]:
        """Rows are in memory here: nothing to read ahead."""
        return [self.lookup_rows(db, resource_id=q.resource_id, params=q.params, fields=q.fields, limit=q.limit) for q in queries]

    def export_rows(
        self,
        db: Session,
        *,
        resource_id: str,
        fields: list[str],
        cursor: str | None,
        limit: int,
        version: int | None = None,
        since: datetime | None = None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        if resource_id not in self.views:
            raise Conflict("gone")
        start = int(cursor or 0)
        page = self.rows[resource_id][start : start + limit]
        more = start + limit < len(self.rows[resource_id])
        return [{f: r.get(f) for f in fields} for r in page], str(start + limit) if more else None

    def pending_change_sets(self, db: Session, *, limit: int = 20) -> list[sources.ChangeSetView]:
        """No dataset versions here: the exchange's flow is tested on the real catalogue."""
        return []

    def take_change_set(self, db: Session, *, dataset_id: str) -> None:
        return None

    def changes(self, db: Session, *, dataset_id: str, after: int, upto: int, limit: int) -> list[sources.ChangeView]:
        return []

    def ensure_shareable(self, view: Any) -> None:
        """The catalogue's own rule on classified items (one rule, in catalog_registry.service)."""
        from catalog_registry import service as catalogue

        catalogue.ensure_shareable(view)


class Clock:
    """The exchange's notion of now, settable in Beijing time."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def set(self, beijing: str) -> datetime:
        self.now = datetime.fromisoformat(beijing).replace(tzinfo=SH).astimezone(UTC)
        return self.now

    def advance(self, **kwargs: float) -> datetime:
        self.now += timedelta(**kwargs)
        return self.now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture()
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    c = Clock()
    for module in (states, requests, grants, access, supervision):  # the exchange's modules that read the time
        monkeypatch.setattr(module, "utcnow", c)
    return c


@dataclass
class World:
    hub: Hub
    client: TestClient
    catalogue: Catalogue
    provider: Actor
    consumer: Actor
    other: Actor
    open_data: View  # unconditional, no control parameters: the platform provides directly
    persons: View  # conditional, looked up by 身份证号
    companies: View  # unconditional but with a control parameter: goes to the provider
    secret: View  # not shared (不予共享)
    person_ids: list[str]

    @property
    def admin(self) -> Actor:
        return self.hub.admin

    def file(self, view: View, **overrides: Any) -> dict[str, Any]:
        """File a request as the consumer; returns the created request."""
        response = self.client.post(
            "/exchange/requests", json=self.request_body(view, **overrides), headers=self.consumer.headers
        )
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body

    def request_body(self, view: View, **overrides: Any) -> dict[str, Any]:
        today = service.today()
        body: dict[str, Any] = {
            "resource_id": view.resource_id,
            "items": [i.name for i in view.items],
            "purpose": "办理社会救助资格审核",
            "scenario": "窗口受理低保申请时核验申请人户籍",
            "legal_basis": "《社会救助暂行办法》第十一条",
            "valid_until": (today + timedelta(days=365)).isoformat(),
            "contact_name": "李四",
            "contact_phone": "010-12345678",
        }
        body.update(overrides)
        return body

    def act(self, who: Actor, request_id: str, action: str, body: dict[str, Any] | None = None) -> Any:
        return self.client.post(f"/exchange/requests/{request_id}/{action}", json=body or {}, headers=who.headers)

    def granted(self, view: View, **overrides: Any) -> dict[str, Any]:
        """A request taken all the way to a grant; returns the grant."""
        req = self.file(view, **overrides)
        accepted = self.act(self.admin, req["id"], "accept")
        assert accepted.status_code == 200, accepted.text
        if accepted.json()["state"] == "provider_review":
            decided = self.act(self.provider, req["id"], "decision", {"approve": True})
            assert decided.status_code == 200, decided.text
        grant_id = self.client.get(f"/exchange/requests/{req['id']}", headers=self.consumer.headers).json()["grant_id"]
        response = self.client.get(f"/exchange/grants/{grant_id}", headers=self.consumer.headers)
        grant: dict[str, Any] = response.json()
        return grant


@pytest.fixture()
def catalogue() -> Iterator[Catalogue]:
    with sources.substituted(Catalogue()) as cat:
        yield cat


@pytest.fixture()
def world(hub: Hub, client: TestClient, catalogue: Catalogue, clock: Clock) -> World:
    provider_dept = hub.department("市公安局")
    consumer_dept = hub.department("市民政局")
    other_dept = hub.department("市交通局")
    provider = hub.system(provider_dept, "公安局系统")
    consumer = hub.system(consumer_dept, "民政局系统")
    other = hub.system(other_dept, "交通局系统")
    ids = [citizen_id(born=date(1990, 1, i + 1)) for i in range(5)]
    persons = catalogue.publish(
        View(
            resource_id="res-persons",
            version_id="ver-persons-1",
            version=1,
            code="11000011A00001",
            name="人口基本信息",
            provider_department_id=provider_dept.id,
            sharing_type="conditional",
            conditions="仅用于政务服务办理",
            legal_basis=None,
            items=[
                Item("身份证号", sensitivity="sensitive", personal=True),
                Item("姓名", personal=True, sensitivity="sensitive"),
                Item("户籍地址", sensitivity="sensitive", personal=True),
                Item("民族"),
            ],
            control_parameters=[Control("身份证号", required=True, max_rows=1)],
            allows_export=False,
            has_dataset=True,
            api=None,
        ),
        [
            {"身份证号": pid, "姓名": f"王{n}", "户籍地址": f"北京市东城区东四街道{n}号", "民族": "汉族"}
            for n, pid in enumerate(ids)
        ],
    )
    open_data = catalogue.publish(
        View(
            resource_id="res-open",
            version_id="ver-open-1",
            version=1,
            code="11000011A00002",
            name="公共厕所位置",
            provider_department_id=provider_dept.id,
            sharing_type="unconditional",
            conditions=None,
            legal_basis=None,
            items=[Item("名称"), Item("地址"), Item("开放时间")],
            control_parameters=[],
            allows_export=True,
            has_dataset=True,
            api=None,
        ),
        [{"名称": f"公厕{n}", "地址": f"东城区{n}号", "开放时间": "全天"} for n in range(7)],
    )
    companies = catalogue.publish(
        View(
            resource_id="res-companies",
            version_id="ver-companies-1",
            version=1,
            code="11000011A00003",
            name="企业登记信息",
            provider_department_id=provider_dept.id,
            sharing_type="unconditional",
            conditions=None,
            legal_basis=None,
            items=[Item("统一社会信用代码"), Item("企业名称"), Item("法定代表人", personal=True, sensitivity="sensitive")],
            control_parameters=[Control("统一社会信用代码", required=True, max_rows=1)],
            allows_export=False,
            has_dataset=True,
            api=None,
        ),
    )
    secret = catalogue.publish(
        View(
            resource_id="res-secret",
            version_id="ver-secret-1",
            version=1,
            code="11000011A00004",
            name="在逃人员信息",
            provider_department_id=provider_dept.id,
            sharing_type="not_shared",
            conditions=None,
            legal_basis="《中华人民共和国保守国家秘密法》第九条",
            items=[Item("姓名")],
            control_parameters=[],
            allows_export=False,
            has_dataset=True,
            api=None,
        ),
    )
    return World(hub, client, catalogue, provider, consumer, other, open_data, persons, companies, secret, ids)
