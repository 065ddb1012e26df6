"""Offline verification with a cached trust bundle and cached status lists."""

from __future__ import annotations

from typing import Any

import pytest

from certhub.offline import verify_offline
from tests.certhub.conftest import World
from tests.factories import citizen_id


def _cache(world: World) -> tuple[dict[str, Any], dict[str, str]]:
    bundle = world.client.get("/certhub/trust-bundle", headers=world.window.headers).json()
    lists = {}
    for purpose in ("revocation", "suspension"):
        url = f"http://hub.test/certhub/status-lists/{purpose}"
        lists[url] = world.client.get(url.removeprefix("http://hub.test")).text
    return bundle, lists


@pytest.fixture()
def scene(world: World) -> tuple[World, dict[str, Any], dict[str, Any]]:
    holder_code = citizen_id()
    cert = world.issue(holder_code)
    presentation = world.show(world.hub.holder(holder_code), str(cert["identifier"]), fields=["name", "sex"])
    return world, cert, presentation


def test_a_presentation_verifies_offline_and_a_replay_is_caught(scene: tuple[World, dict, dict]) -> None:
    world, cert, presentation = scene
    bundle, lists = _cache(world)
    audience = world.window.department.code  # type: ignore[union-attr]
    seen: set[str] = set()
    verdict = verify_offline(presentation["token"], trust_bundle=bundle, status_lists=lists, audience=audience, seen_nonces=seen)
    assert verdict.valid and verdict.identifier == cert["identifier"] and verdict.disclosed == {"name": "张三", "sex": "男"}
    again = verify_offline(presentation["token"], trust_bundle=bundle, status_lists=lists, audience=audience, seen_nonces=seen)
    assert not again.valid and again.code == "replayed"
    wrong = verify_offline(presentation["token"], trust_bundle=bundle, status_lists=lists, audience="91110000MA00000000")
    assert wrong.code == "wrong_audience"


def test_offline_a_revoked_certificate_is_refused_from_the_refreshed_status_list(scene: tuple[World, dict, dict]) -> None:
    world, cert, presentation = scene
    world.client.post(f"/certhub/certificates/{cert['identifier']}/revoke", json={"reason": "注销"}, headers=world.issuer.headers)
    bundle, lists = _cache(world)
    audience = world.window.department.code  # type: ignore[union-attr]
    verdict = verify_offline(presentation["token"], trust_bundle=bundle, status_lists=lists, audience=audience)
    assert not verdict.valid and verdict.code == "revoked"


def test_offline_without_a_cached_status_list_or_trust_entry_nothing_is_accepted(scene: tuple[World, dict, dict]) -> None:
    world, _, presentation = scene
    bundle, lists = _cache(world)
    audience = world.window.department.code  # type: ignore[union-attr]
    verdict = verify_offline(presentation["token"], trust_bundle=bundle, status_lists={}, audience=audience)
    assert not verdict.valid and verdict.code == "status_unavailable" and "refresh" in verdict.message
    verdict = verify_offline(presentation["token"], trust_bundle={"hubs": []}, status_lists=lists, audience=audience)
    assert not verdict.valid and verdict.code == "untrusted_issuer"
    forged = dict(lists)
    url = next(iter(forged))
    forged[url] = forged[url][:-4] + ("AAAA" if not forged[url].endswith("AAAA") else "BBBB")
    verdict = verify_offline(presentation["token"], trust_bundle=bundle, status_lists=forged, audience=audience)
    assert not verdict.valid and verdict.code == "status_unavailable" and "bad signature" in verdict.message
