"""Entries that break the catalogue's rules are refused with the field named."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.catalog_registry.helpers import entry_body
from tests.conftest import Hub

CASES: list[tuple[str, dict[str, Any], str, str]] = [
    ("conditional without conditions", {"sharing_type": "conditional"}, "conditions", "sharing conditions"),
    ("conditional with blank conditions", {"sharing_type": "有条件共享", "conditions": "  "}, "conditions", "sharing conditions"),
    ("not shared without legal basis", {"sharing_type": "不予共享"}, "legal_basis", "legal basis"),
    ("no information items", {"items": []}, "items", "at least one"),
    ("unknown sharing type", {"sharing_type": "随便共享"}, "sharing_type", "not one of"),
    ("unknown update cycle", {"update_cycle": "每小时"}, "update_cycle", "not one of"),
    ("unknown classification", {"classification": "其他"}, "classification", "not one of"),
    (
        "unknown sensitivity of an item",
        {"items": [{"name": "身份证号", "data_type": "string", "sensitivity": "绝密"}], "control_parameters": []},
        "items.0.sensitivity",
        "not one of",
    ),
    (
        "control parameter naming no item",
        {"control_parameters": [{"item": "护照号", "required": True}]},
        "control_parameters",
        "names no information item",
    ),
    ("API distribution with an FTP URL", {"api": {"url": "ftp://data.example.gov.cn/hj"}}, "api.url", "http"),
    ("API distribution without a host", {"api": {"url": "https://"}}, "api.url", "http"),
    (
        "duplicate item names",
        {"items": [{"name": "姓名", "data_type": "string"}, {"name": "姓名", "data_type": "string"}], "control_parameters": []},
        "items",
        "duplicate",
    ),
]


@pytest.mark.parametrize(("overrides", "field", "words"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_bad_entry_is_refused_naming_the_field(
    client: TestClient, hub: Hub, overrides: dict[str, Any], field: str, words: str
) -> None:
    provider = hub.system(hub.department("市公安局"))
    response = client.post("/catalog/entries", json=entry_body(**overrides), headers=provider.headers)
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["code"] == "invalid"
    assert field in [e["field"] for e in problem["errors"]]
    assert words in problem["detail"]
    assert client.get("/catalog/entries", headers=provider.headers).json()["items"] == []


def test_a_duplicate_code_is_refused(client: TestClient, hub: Hub) -> None:
    provider = hub.system(hub.department("市公安局"))
    assert client.post("/catalog/entries", json=entry_body(code="HJ001"), headers=provider.headers).status_code == 201
    again = client.post("/catalog/entries", json=entry_body(code="HJ001", name="另一资源"), headers=provider.headers)
    assert again.status_code == 409 and again.json()["errors"] == [{"field": "code", "message": "duplicate"}]
    # the same local code of another provider is another resource
    other = hub.system(hub.department("市民政局"))
    assert client.post("/catalog/entries", json=entry_body(code="HJ001"), headers=other.headers).status_code == 201


def test_a_code_carrying_another_providers_code_is_refused(client: TestClient, hub: Hub) -> None:
    provider = hub.system(hub.department("市公安局"))
    stranger = hub.department("市民政局")
    response = client.post("/catalog/entries", json=entry_body(code=f"{stranger.code}-HJ9"), headers=provider.headers)
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == "code"


def test_a_shared_entry_without_any_distribution_cannot_be_submitted(client: TestClient, hub: Hub) -> None:
    provider = hub.system(hub.department("市公安局"))
    entry = client.post("/catalog/entries", json=entry_body(serves_dataset=False), headers=provider.headers).json()
    response = client.post(f"/catalog/entries/{entry['id']}/submit", headers=provider.headers)
    assert response.status_code == 422 and {"serves_dataset", "api"} <= {e["field"] for e in response.json()["errors"]}


def test_chinese_labels_are_accepted_beside_the_api_values(client: TestClient, hub: Hub) -> None:
    provider = hub.system(hub.department("市公安局"))
    body = entry_body(sharing_type="有条件共享", conditions="仅用于户籍业务办理", update_cycle="每季度", classification="主题")
    made = client.post("/catalog/entries", json=body, headers=provider.headers)
    assert made.status_code == 201
    version = made.json()["version"]
    assert (version["sharing_type"], version["update_cycle"], version["classification"]) == ("conditional", "quarterly", "theme")
