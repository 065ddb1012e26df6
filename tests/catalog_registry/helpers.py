"""Small makers of catalogue data for the scenarios."""

from __future__ import annotations

import itertools
from datetime import date, timedelta
from typing import Any

from fastapi.testclient import TestClient

from tests.conftest import Actor

_serial = itertools.count(1)


def entry_body(**overrides: Any) -> dict[str, Any]:
    """A valid entry: 户籍人口基本信息, unconditional, looked up by 身份证号, served from a dataset."""
    body: dict[str, Any] = {
        "code": f"R{next(_serial):05d}",
        "name": "户籍人口基本信息",
        "classification": "基础",
        "abstract": "全省常住户籍人口的基本信息，用于政务服务中的身份核验。",
        "format": "数据库表",
        "items": [
            {"name": "身份证号", "data_type": "string", "length": 18, "sensitivity": "sensitive", "personal": True},
            {"name": "姓名", "data_type": "string", "length": 50, "sensitivity": "sensitive", "personal": True},
            {"name": "户籍地址", "data_type": "string", "length": 200, "sensitivity": "internal", "personal": True},
            {"name": "出生日期", "data_type": "date", "sensitivity": "internal", "personal": True},
        ],
        "sharing_type": "unconditional",
        "sharing_method": "api",
        "control_parameters": [{"item": "身份证号", "required": True, "max_rows": 10}],
        "open_attribute": "not_open",
        "update_cycle": "每天",
        "serves_dataset": True,
    }
    body.update(overrides)
    return body


def create(client: TestClient, provider: Actor, **overrides: Any) -> dict[str, Any]:
    response = client.post("/catalog/entries", json=entry_body(**overrides), headers=provider.headers)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def publish(client: TestClient, provider: Actor, admin: Actor, **overrides: Any) -> dict[str, Any]:
    """Draft, submit and publish an entry; returns the published entry as the provider sees it."""
    entry = create(client, provider, **overrides)
    submitted = client.post(f"/catalog/entries/{entry['id']}/submit", headers=provider.headers)
    assert submitted.status_code == 200, submitted.text
    reviewed = client.post(f"/catalog/entries/{entry['id']}/review", json={"decision": "publish"}, headers=admin.headers)
    assert reviewed.status_code == 200, reviewed.text
    result: dict[str, Any] = reviewed.json()
    return result


def upload(client: TestClient, provider: Actor, entry_id: str, content: str, filename: str = "data.csv") -> Any:
    media = "text/csv" if filename.endswith(".csv") else "application/x-ndjson"
    return client.post(
        f"/catalog/entries/{entry_id}/datasets",
        files={"file": (filename, content.encode("utf-8"), media)},
        headers=provider.headers,
    )


def sharing_request_body(entry_id: str, **overrides: Any) -> dict[str, Any]:
    """A valid sharing request (申请共享) for two items of an entry made by :func:`entry_body`."""
    body: dict[str, Any] = {
        "resource_id": entry_id,
        "items": ["身份证号", "姓名"],
        "purpose": "低保资格审核",
        "scenario": "窗口受理低保申请时核验户籍",
        "legal_basis": "《社会救助暂行办法》第十一条",
        "valid_until": (date.today() + timedelta(days=300)).isoformat(),
        "contact_name": "李四",
        "contact_phone": "010-12345678",
    }
    body.update(overrides)
    return body
