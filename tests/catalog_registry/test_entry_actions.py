"""What the console offers on a catalogue entry is what the API lets that person do: `entry_actions` offers
申请共享 exactly to those whose sharing request the exchange files, and the review to the platform."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from catalog_registry import service
from ops.auth import Principal, Role
from tests.catalog_registry.helpers import create, publish, sharing_request_body
from tests.conftest import Actor, Hub


def _principal(hub: Hub, who: Actor, role: Role) -> Principal:
    if role == Role.PLATFORM_ADMIN:
        principal: Principal = hub.admin_principal()
        return principal
    return Principal(subject="viewer", roles=frozenset({role}), department_id=who.department_id)


def _offered(hub: Hub, who: Actor, role: Role, entry_id: str) -> dict[str, bool]:
    principal = _principal(hub, who, role)
    with hub.factory() as db:
        entry = service.entry_read(db, who=principal, entry=service.get_entry(db, who=principal, entry_id=entry_id))
        return service.entry_actions(principal, entry)


def _file(client: TestClient, who: Actor, entry_id: str) -> Any:
    return client.post("/exchange/requests", json=sharing_request_body(entry_id), headers=who.headers)


def test_the_request_button_shows_exactly_where_the_exchange_files_the_request(client: TestClient, hub: Hub) -> None:
    police = hub.department("市公安局")
    provider = hub.system(police, "户籍系统")
    civil = hub.department("市民政局")
    viewers = {
        "consumer": (hub.system(civil, "救助系统"), Role.DEPARTMENT_SYSTEM),
        "provider": (provider, Role.DEPARTMENT_SYSTEM),
        "platform": (hub.admin, Role.PLATFORM_ADMIN),
        "window": (hub.actor(civil, Role.WINDOW.value, name="窗口"), Role.WINDOW),
    }
    shared = publish(client, provider, hub.admin)
    withheld = publish(client, provider, hub.admin, name="在逃人员信息", sharing_type="not_shared", legal_basis="刑事诉讼法")
    for entry in (shared, withheld):
        for name, (who, role) in viewers.items():
            offered = _offered(hub, who, role, entry["id"])["request"]
            filed = _file(client, who, entry["id"])
            assert (filed.status_code == 201) == offered, (entry["name"], name, offered, filed.text)
    assert _offered(hub, *viewers["consumer"], shared["id"])["request"]  # the scenario offers it at least once


def test_only_the_platform_is_offered_the_review_of_a_submitted_version(client: TestClient, hub: Hub) -> None:
    provider = hub.system(hub.department("市公安局"), "户籍系统")
    entry = create(client, provider)
    assert client.post(f"/catalog/entries/{entry['id']}/submit", headers=provider.headers).status_code == 200
    assert not _offered(hub, provider, Role.DEPARTMENT_SYSTEM, entry["id"])["review"]
    refused = client.post(f"/catalog/entries/{entry['id']}/review", json={"decision": "publish"}, headers=provider.headers)
    assert refused.status_code == 403
    assert _offered(hub, hub.admin, Role.PLATFORM_ADMIN, entry["id"])["review"]
    published = client.post(f"/catalog/entries/{entry['id']}/review", json={"decision": "publish"}, headers=hub.admin.headers)
    assert published.status_code == 200, published.text
    assert not _offered(hub, hub.admin, Role.PLATFORM_ADMIN, entry["id"])["review"]  # nothing waits any more
