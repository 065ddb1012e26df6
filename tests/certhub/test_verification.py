"""Window verification of presentations (亮证 → 证照验证) and everything a bad token gets."""

from __future__ import annotations

import time
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from certhub import caches, sdjwt, service, verification
from ops.auth import Principal, Role
from tests.certhub.conftest import World
from tests.factories import citizen_id


@pytest.fixture()
def shown(world: World) -> tuple[World, dict[str, object], dict[str, object]]:
    holder_code = citizen_id()
    cert = world.issue(holder_code)
    holder = world.hub.holder(holder_code)
    presentation = world.show(holder, str(cert["identifier"]), fields=["CZZT", "name", "address"])
    return world, cert, presentation


def test_a_window_verifies_a_presentation_and_sees_only_the_disclosed_fields(shown: tuple[World, dict, dict]) -> None:
    world, cert, presentation = shown
    token = presentation["token"]
    assert len(token) < 2953, "a presentation must fit one QR code (version 40, binary)"
    verdict = world.verify(token, nonce=presentation["nonce"])
    assert verdict["valid"] is True and verdict["code"] == "valid" and verdict["status"] == "active"
    assert verdict["identifier"] == cert["identifier"] and verdict["type_name"] == "居民身份证"
    assert verdict["issuer_name"] == "北京市公安局"
    assert verdict["disclosed"] == {"CZZT": "张三", "name": "张三", "address": "北京市东城区正义路1号"}
    assert "id_number" not in verdict["disclosed"] and "CZZTDM" not in verdict["disclosed"]


def test_the_same_presentation_twice_is_refused_as_a_replay(shown: tuple[World, dict, dict]) -> None:
    world, _, presentation = shown
    assert world.verify(presentation["token"])["valid"] is True
    again = world.verify(presentation["token"])
    assert again["valid"] is False and again["code"] == "replayed" and "already used" in again["message"]


def test_a_presentation_for_another_window_is_refused(shown: tuple[World, dict, dict]) -> None:
    world, _, presentation = shown
    verdict = world.verify(presentation["token"], window=world.other_window)
    assert verdict["valid"] is False and verdict["code"] == "wrong_audience" and "not for this verifier" in verdict["message"]
    assert verdict["disclosed"] == {}


def test_a_presentation_for_another_nonce_is_refused(shown: tuple[World, dict, dict]) -> None:
    world, _, presentation = shown
    verdict = world.verify(presentation["token"], nonce="a-different-nonce-123")
    assert verdict["valid"] is False and verdict["code"] == "nonce_mismatch"


@pytest.mark.parametrize("position", [5, 60, 400, -200, -5])
def test_changing_any_byte_of_a_presentation_makes_it_fail(shown: tuple[World, dict, dict], position: int) -> None:
    world, _, presentation = shown
    token = str(presentation["token"])
    index = position % len(token)
    swapped = "A" if token[index] != "A" else "B"
    if token[index] in "~.":
        index += 1
        swapped = "A" if token[index] != "A" else "B"
    tampered = token[:index] + swapped + token[index + 1 :]
    verdict = world.verify(tampered)
    assert verdict["valid"] is False and verdict["code"] in ("bad_signature", "malformed", "untrusted_issuer")
    assert verdict["message"] and verdict["disclosed"] == {}


def test_an_added_disclosure_from_the_full_certificate_is_refused(shown: tuple[World, dict, dict]) -> None:
    world, cert, presentation = shown
    _, all_disclosures, _ = sdjwt.split_sd_jwt(str(cert["sd_jwt"]))
    token = str(presentation["token"])
    jwt, chosen, kb = sdjwt.split_sd_jwt(token)
    extra = next(d for d in all_disclosures if sdjwt.decode_disclosure(d)[0] == "id_number")
    smuggled = "~".join([jwt, *chosen, extra, kb])
    verdict = world.verify(smuggled)
    assert verdict["valid"] is False and verdict["code"] == "bad_signature" and "id_number" not in verdict["disclosed"]


def test_garbage_and_foreign_tokens_are_refused_with_a_message(world: World) -> None:
    for token in ("hello", "a.b.c", "x~y~z", "€€€"):
        verdict = world.verify(token)
        assert verdict["valid"] is False and verdict["code"] == "malformed" and verdict["message"]
    response = world.client.post("/certhub/verifications", json={"token": ""}, headers=world.window.headers)
    assert response.status_code == 422


def test_an_expired_presentation_is_refused(world: World, client: TestClient) -> None:
    holder_code = citizen_id()
    cert = world.issue(holder_code)
    assert world.window.department is not None
    with world.hub.factory() as db:
        signer = service.hub_signer(db, vault=client.app.state.vault)  # type: ignore[attr-defined]
        db.commit()
    old = sdjwt.present(
        str(cert["sd_jwt"]),
        ["name"],
        hub_signer=signer,
        audience=world.window.department.code,
        nonce="nonce-from-long-ago",
        ttl_seconds=300,
        issued_at=int(time.time()) - 700,
    )
    verdict = world.verify(old)
    assert verdict["valid"] is False and verdict["code"] == "presentation_expired" and "show" in verdict["message"]


def test_a_revoked_or_suspended_certificate_fails_verification(world: World) -> None:
    holder_code = citizen_id()
    cert = world.issue(holder_code)
    holder = world.hub.holder(holder_code)
    first = world.show(holder, str(cert["identifier"]), fields=["name"])
    second = world.show(holder, str(cert["identifier"]), fields=["name"])
    path = f"/certhub/certificates/{cert['identifier']}"
    world.client.post(f"{path}/suspend", json={"reason": "核查"}, headers=world.issuer.headers)
    verdict = world.verify(first["token"])
    assert verdict["valid"] is False and verdict["code"] == "suspended" and verdict["status"] == "suspended"
    world.client.post(f"{path}/reinstate", json={"reason": "ok"}, headers=world.issuer.headers)
    world.client.post(f"{path}/revoke", json={"reason": "注销"}, headers=world.issuer.headers)
    verdict = world.verify(second["token"])
    assert verdict["valid"] is False and verdict["code"] == "revoked" and "revoked" in verdict["message"]
    # a revoked certificate cannot be shown any more
    response = world.client.post(
        f"/certhub/me/certificates/{cert['identifier']}/presentations",
        json={"fields": ["name"], "audience": world.window.department.code},  # type: ignore[union-attr]
        headers=holder.headers,
    )
    assert response.status_code == 409


def test_a_holder_can_only_show_own_certificates_and_existing_fields(world: World) -> None:
    cert = world.issue()
    stranger = world.hub.holder(citizen_id())
    body = {"fields": ["name"], "audience": world.window.department.code}  # type: ignore[union-attr]
    url = f"/certhub/me/certificates/{cert['identifier']}/presentations"
    assert world.client.post(url, json=body, headers=stranger.headers).status_code == 404
    owner = world.hub.holder(cert["holder_code"])
    response = world.client.post(url, json={**body, "fields": ["salary"]}, headers=owner.headers)
    assert response.status_code == 422 and "no field salary" in response.json()["detail"]
    response = world.client.post(url, json={**body, "audience": "not-a-code"}, headers=owner.headers)
    assert response.status_code == 422 and "audience" in response.json()["detail"]


def test_every_verification_is_in_the_holders_access_list(shown: tuple[World, dict, dict]) -> None:
    world, cert, presentation = shown
    world.verify(presentation["token"])
    holder = world.hub.holder(str(cert["holder_code"]))
    accesses = world.client.get("/certhub/me/accesses", headers=holder.headers).json()["items"]
    assert accesses[0]["action"] == "verify" and accesses[0]["accessor_department_name"] == "北京市政务服务中心"
    assert accesses[0]["fields"] == ["CZZT", "address", "name"]


@pytest.mark.parametrize("world", ["SM2", "EdDSA"], indirect=True)
def test_certificates_sealed_with_sm2_or_ed25519_keys_verify_too(world: World) -> None:
    holder_code = citizen_id()
    cert = world.issue(holder_code)
    assert sdjwt.parse_jws(str(cert["jws"])).header["alg"] == world.algorithm
    presentation = world.show(world.hub.holder(holder_code), str(cert["identifier"]), fields=["name"])
    verdict = world.verify(presentation["token"])
    assert verdict["valid"] is True and verdict["disclosed"] == {"name": "张三"}
    token = str(presentation["token"])
    jwt, disclosures, kb = sdjwt.split_sd_jwt(token)
    head, payload, signature = jwt.split(".")
    flipped = signature[:10] + ("A" if signature[10] != "A" else "B") + signature[11:]
    forged = "~".join([f"{head}.{payload}.{flipped}", *disclosures, kb])
    assert world.verify(forged)["code"] == "bad_signature"


def test_the_same_presentation_twice_in_one_commit_is_valid_once(shown: tuple[World, dict, dict], db: Session) -> None:
    """Two windows' verifications settled in one group commit: the nonce is claimed by the first only."""
    world, cert, presentation = shown
    department = world.window.department
    assert department is not None
    window = Principal(
        subject="window", roles=frozenset({Role.WINDOW}), department_id=department.id, department_code=department.code
    )
    settings = world.hub.app.state.settings
    claimed: list[str] = []
    found = service.lookups(db, who=window, settings=settings, token=presentation["token"])
    verdict = sdjwt.verify_presentation(
        presentation["token"],
        resolve_key=found.key,
        resolve_status=found.status,
        audience=department.code,
        nonce=None,
        claim_nonce=claimed.append,
    )
    assert verdict.status == sdjwt.STATUS_LATER  # a local certificate's status is read when settled
    pending = service.PendingVerification(
        who=window, verdict=verdict, nonce=claimed[0], department_name=department.name, request_id=None
    )
    first, second = service.settle_verifications(db, [pending, pending])
    assert first.valid and first.status == "active" and first.identifier == cert["identifier"]
    assert not second.valid and second.code == "replayed"


def test_a_verification_with_cold_caches_reads_the_database_then_the_next_runs_from_the_caches(
    shown: tuple[World, dict, dict], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The window's endpoint checks on the event loop from the caches; when a cache is cold (a new seal
    key, a hub just started) a thread looks up what they lack with a session, and the checks (the
    cryptography) run once either way, with the same verdict."""
    world, cert, presentation = shown
    in_thread: list[str] = []
    checks: list[str] = []
    real_lookups = verification.lookups
    real_verify = sdjwt.verify_presentation

    def watched(db: Session | None, **kwargs: object) -> service.Lookups:
        in_thread.append("with session" if db is not None else "from caches")
        return real_lookups(db, **kwargs)  # type: ignore[arg-type]

    def counted(token: str | sdjwt.Presentation, **kwargs: object) -> sdjwt.Verdict:
        checks.append(token.token if isinstance(token, sdjwt.Presentation) else token)
        return real_verify(token, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(verification, "lookups", watched)
    monkeypatch.setattr(sdjwt, "verify_presentation", counted)
    service.clear_caches()
    verdict = world.verify(presentation["token"])
    assert verdict["valid"] is True and verdict["identifier"] == cert["identifier"]
    assert in_thread == ["from caches", "with session"]  # the caches missed, the session answered
    assert checks == [presentation["token"]]  # the cryptography ran once

    in_thread.clear()
    again = world.show(world.hub.holder(str(cert["holder_code"])), str(cert["identifier"]), fields=["name"])
    assert world.verify(again["token"])["disclosed"] == {"name": "张三"}
    assert in_thread == ["from caches"]  # warm now: no thread, no session
    assert checks == [presentation["token"], again["token"]]


def test_clearing_the_caches_forgets_everything_this_process_remembered(shown: tuple[World, dict, dict]) -> None:
    """One call empties every certificate-hub cache (keys replaced by hand, a fresh database); the next
    verification reads the database again and is as valid as before."""
    world, cert, presentation = shown
    assert world.verify(presentation["token"])["valid"] is True
    assert world.client.get("/certhub/status-lists/revocation").status_code == 200
    assert caches.hub_signers and caches.face_validators and caches.status_lists
    assert caches.keys.local and caches.department_names
    service.clear_caches()
    remembered = [caches.hub_signers, caches.face_validators, caches.status_lists, caches.keys.local, caches.department_names]
    assert not any(remembered) and not caches.remote
    again = world.show(world.hub.holder(str(cert["holder_code"])), str(cert["identifier"]), fields=["name"])
    assert world.verify(again["token"])["disclosed"] == {"name": "张三"}
    assert caches.keys.local and caches.department_names


# ---- the route's plain path (certhub.endpoints._VerifyRoute) and its generic handler ---------------------


def _unused() -> None:
    """A dependency no route has: overriding it turns the plain path off and changes nothing else."""


def _answer(response: Any) -> tuple[int, str | None, dict[str, Any]]:
    body = {k: v for k, v in response.json().items() if k not in ("request_id", "instance")}
    return response.status_code, response.headers.get("content-type"), body


def _both(world: World, monkeypatch: pytest.MonkeyPatch, url: str, **kwargs: Any) -> tuple[Any, Any]:
    """The answer of the route as served, then with its plain path turned off (FastAPI's generic handler)."""
    served = world.client.post(url, **kwargs)
    with monkeypatch.context() as patched:
        patched.setitem(world.client.app.dependency_overrides, _unused, _unused)  # type: ignore[attr-defined]
        generic = world.client.post(url, **kwargs)
    return served, generic


@pytest.mark.parametrize(
    ("content", "content_type", "query", "status", "code"),
    [
        (b'{"token": ""}', "application/json", "", 422, "invalid"),
        (b'{"token": "x", "extra": 1}', "application/json", "", 422, "invalid"),
        (b'{"token": 5}', "application/json", "", 422, "invalid"),
        (b'{"nonce": "abc"}', "application/json", "", 422, "invalid"),
        (b'{"token": "a\\u0000b"}', "application/json", "", 422, "invalid"),  # the input rule
        (b'{"token": "\\ud800"}', "application/json", "", 422, "invalid"),
        (b'{"token": "x", "nonce": 1e400}', "application/json", "", 422, "invalid"),
        (b'{"token": "x", "nonce": "' + b"n" * 129 + b'"}', "application/json", "", 422, "invalid"),
        (b'{"token": "' + b"t" * 20001 + b'"}', "application/json", "", 422, "invalid"),
        (b'{"token": ', "application/json", "", 400, "malformed_json"),
        (b'{"token": "\xff"}', "application/json", "", 400, "http_400"),
        (b"[]", "application/json", "", 422, "invalid"),
        (b"", "application/json", "", 422, "invalid"),
        (b'{"token": "x"}', "text/plain", "", 415, "unsupported_media_type"),
        (b'{"token": "x"}', "application/json", "?verbose=1", 422, "invalid"),  # an undeclared query parameter
    ],
)
def test_a_bad_verification_request_gets_the_problem_every_route_gives(
    world: World, monkeypatch: pytest.MonkeyPatch, content: bytes, content_type: str, query: str, status: int, code: str
) -> None:
    headers = {**world.window.headers, "Content-Type": content_type}
    served, generic = _both(world, monkeypatch, "/certhub/verifications" + query, content=content, headers=headers)
    assert served.status_code == status and served.json()["code"] == code, served.text
    assert _answer(served) == _answer(generic)


def test_a_caller_that_may_not_verify_is_refused_as_before(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    callers: tuple[tuple[dict[str, str], int], ...] = (
        ({}, 401),
        ({"Authorization": "Bearer not-a-token"}, 401),
        (world.hub.admin.headers, 403),
    )
    for body in ({"token": "hello"}, {"token": ""}):  # the caller is checked before the body's fields
        for headers, status in callers:
            served, generic = _both(world, monkeypatch, "/certhub/verifications", json=body, headers=headers)
            assert served.status_code == status and _answer(served) == _answer(generic)


def test_an_ordinary_verification_takes_the_plain_path_and_gives_the_generic_verdict(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from certhub import endpoints

    holder_code = citizen_id()
    cert = world.issue(holder_code)
    holder = world.hub.holder(holder_code)
    first, second = (world.show(holder, str(cert["identifier"]), fields=["CZZT", "name"]) for _ in range(2))
    answers: list[object] = []
    plainly = endpoints._verify_plainly

    async def spy(request: Any) -> Any:
        answers.append(answer := await plainly(request))
        return answer

    monkeypatch.setattr(endpoints, "_verify_plainly", spy)
    served = world.client.post("/certhub/verifications", json={"token": first["token"]}, headers=world.window.headers)
    assert answers and answers[-1] is not None  # answered by the plain path
    with monkeypatch.context() as patched:
        patched.setitem(world.client.app.dependency_overrides, _unused, _unused)  # type: ignore[attr-defined]
        generic = world.client.post("/certhub/verifications", json={"token": second["token"]}, headers=world.window.headers)
    assert answers[-1] is None  # answered by the generic handler
    assert served.status_code == generic.status_code == 200 and served.json()["valid"] is True
    assert _answer(served) == _answer(generic)
    accesses = world.client.get("/certhub/me/accesses", headers=holder.headers).json()["items"]
    assert [a["action"] for a in accesses] == ["verify", "verify"]  # both recorded
    replayed = world.client.post("/certhub/verifications", json={"token": first["token"]}, headers=world.window.headers)
    assert replayed.json()["code"] == "replayed"
