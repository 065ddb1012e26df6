"""The people and the catalogue of the exchange and catalogue page tests.

市公安局 provides 户籍人口基本信息 (conditional: its staff decide), 市民政局 asks for it, 市交通局 looks on.
Each department has a staff client (部门管理员) that signs in to the console.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient

from exchange import service as exchange
from tests.catalog_registry.helpers import publish
from tests.conftest import Actor, Hub
from tests.console.test_pages import sign_in

PEOPLE_CSV = (
    "身份证号,姓名,户籍地址,出生日期\n"
    "110105199001011234,张三,北京市朝阳区幸福路1号,1990-01-01\n"
    "11010519491231002X,李四,北京市东城区和平街2号,1949-12-31\n"
)


@dataclass
class Sharing:
    client: TestClient
    hub: Hub
    provider: Actor  # 市公安局 staff
    consumer: Actor  # 市民政局 staff
    other: Actor  # 市交通局 staff
    entry: dict[str, Any]  # the conditional catalogue entry, published

    @property
    def admin(self) -> Actor:
        return self.hub.admin

    def file(self, **overrides: Any) -> dict[str, Any]:
        """The consumer files a request for the entry through the API."""
        response = self.client.post("/exchange/requests", json=self.body(**overrides), headers=self.consumer.headers)
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body

    def body(self, **overrides: Any) -> dict[str, Any]:
        body: dict[str, Any] = {
            "resource_id": self.entry["id"],
            "items": ["身份证号", "姓名", "户籍地址"],
            "purpose": "低保资格审核",
            "scenario": "窗口受理低保申请时核验户籍",
            "legal_basis": "《社会救助暂行办法》第十一条",
            "valid_until": (exchange.today() + timedelta(days=300)).isoformat(),
            "contact_name": "李四",
            "contact_phone": "010-12345678",
        }
        return body | overrides

    def api(self, who: Actor, request_id: str, action: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        response = self.client.post(f"/exchange/requests/{request_id}/{action}", json=body or {}, headers=who.headers)
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    def as_(self, who: Actor) -> str:
        """Sign in to the console as `who`; returns the session's CSRF token."""
        assert who.client is not None
        return sign_in(self.client, who.client.client_id, who.extra["secret"])

    def page(self, path: str) -> str:
        response = self.client.get(path)
        assert response.status_code == 200, response.text
        return response.text

    def post(self, path: str, csrf: str, data: dict[str, Any]) -> Any:
        return self.client.post(path, data={"csrf": csrf, **data}, follow_redirects=True)

    def version(self, request_id: str) -> int:
        response = self.client.get(f"/exchange/requests/{request_id}", headers=self.admin.headers)
        return int(response.json()["version"])


def sharing(client: TestClient, hub: Hub) -> Sharing:
    police = hub.department("市公安局")
    civil = hub.department("市民政局")
    traffic = hub.department("市交通局")
    provider = hub.actor(police, "department_admin", name="公安局数据专员")
    consumer = hub.actor(civil, "department_admin", name="民政局数据专员")
    other = hub.actor(traffic, "department_admin", name="交通局数据专员")
    entry = publish(client, provider, hub.admin, sharing_type="conditional", conditions="仅限社会救助资格审核使用")
    return Sharing(client, hub, provider, consumer, other, entry)


def field_error(html: str, field_id: str) -> str:
    """The error shown next to the field with this id ('' when there is none)."""
    found = re.search(rf'<div class="field-error" id="{re.escape(field_id)}-error">([^<]*)</div>', html)
    return found.group(1) if found else ""
