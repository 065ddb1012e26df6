"""Scenarios of how systems prove who they are: `private_key_jwt` (RFC 7523) against keys they registered,
the assertions built by an independent JOSE library (joserfc), and secrets rotated without downtime."""

from __future__ import annotations

import json
import time
import uuid
import warnings
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from joserfc import jwt as jose_jwt
from joserfc.errors import SecurityWarning
from joserfc.jwk import ECKey, OKPKey, RSAKey
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session, sessionmaker

from ops.audit import AuditRecord
from ops.db import utcnow
from ops.identity.models import RetiringSecret
from ops.storage import LocalStore
from tests.conftest import Actor, Hub

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


@dataclass
class System:
    actor: Actor
    admin: Actor

    @property
    def client_id(self) -> str:
        assert self.actor.client is not None
        return self.actor.client.client_id


@pytest.fixture()
def system(hub: Hub) -> System:
    department = hub.department("北京市公安局")
    return System(
        actor=hub.system(department, name="户籍系统"), admin=hub.actor(department, "department_admin", name="公安局管理员")
    )


def _assertion(
    key: Any, *, client_id: str, aud: str, alg: str = "ES256", kid: str | None = "k1", lifetime: int = 60, **overrides: Any
) -> str:
    """A client assertion made with joserfc, not with the hub's own code."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": client_id,
        "sub": client_id,
        "aud": aud,
        "iat": now,
        "exp": now + lifetime,
        "jti": str(uuid.uuid4()),
    }
    claims.update(overrides)
    header: dict[str, Any] = {"alg": alg}
    if kid is not None:
        header["kid"] = kid
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SecurityWarning)  # RFC 9864 prefers "Ed25519" to "EdDSA"; both name Ed25519 here
        return str(jose_jwt.encode(header, claims, key, algorithms=[alg]))


def _token(client: TestClient, assertion: str, **extra: str) -> Any:
    return client.post(
        "/auth/token",
        data={
            "grant_type": "client_credentials",
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion,
            **extra,
        },
    )


def _register(client: TestClient, system: System, key: Any, kid: str | None = "k1") -> Any:
    jwk = dict(key.as_dict(private=False))
    if kid is not None:
        jwk["kid"] = kid
    return client.post(f"/clients/{system.client_id}/keys", json={"jwk": jwk}, headers=system.admin.headers)


@pytest.mark.parametrize(
    ("make_key", "alg"),
    [
        (lambda: ECKey.generate_key("P-256"), "ES256"),
        (lambda: RSAKey.generate_key(2048), "RS256"),
        (lambda: OKPKey.generate_key("Ed25519"), "EdDSA"),
    ],
    ids=["ES256", "RS256", "EdDSA"],
)
def test_a_system_gets_a_token_with_an_assertion_signed_by_its_registered_key(
    client: TestClient, hub: Hub, system: System, make_key: Any, alg: str
) -> None:
    key = make_key()
    registered = _register(client, system, key)
    assert registered.status_code == 201, registered.text
    assert registered.json()["algorithm"] == alg and "d" not in registered.json()["public_jwk"]
    endpoint = f"{hub.settings.public_url}/auth/token"
    response = _token(client, _assertion(key, client_id=system.client_id, aud=endpoint, alg=alg))
    assert response.status_code == 200, response.text
    me = client.get("/me", headers={"Authorization": f"Bearer {response.json()['access_token']}"}).json()
    assert me["subject"] == system.client_id and me["roles"] == ["department_system"]
    # The issuer is accepted as the audience too (RFC 7523 §3), and client_id may be sent alongside.
    by_issuer = _token(
        client, _assertion(key, client_id=system.client_id, aud=hub.settings.issuer, alg=alg), client_id=system.client_id
    )
    assert by_issuer.status_code == 200, by_issuer.text
    listed = client.get(f"/clients/{system.client_id}/keys", headers=system.admin.headers).json()["items"]
    assert [(k["kid"], k["algorithm"], k["revoked_at"]) for k in listed] == [("k1", alg, None)]
    with hub.factory() as db:
        actions = db.scalars(select(AuditRecord.action).where(AuditRecord.object_id == system.client_id)).all()
    assert "client.key.register" in actions


def test_bad_assertions_are_refused_each_saying_why(
    client: TestClient, hub: Hub, system: System, engine: Engine, session_factory: sessionmaker[Session], storage: LocalStore
) -> None:
    key = ECKey.generate_key("P-256")
    assert _register(client, system, key).status_code == 201
    endpoint = f"{hub.settings.public_url}/auth/token"
    other = System(actor=hub.system(system.actor.department, name="办件系统"), admin=system.admin)
    other_key = ECKey.generate_key("P-256")
    assert _register(client, other, other_key, kid="other-1").status_code == 201

    def refused(assertion: str, expected: str, **extra: str) -> None:
        response = _token(client, assertion, **extra)
        assert response.status_code == 401, response.text
        assert response.json()["error"] == "invalid_client"
        assert expected in response.json()["detail"], response.json()["detail"]

    mine = system.client_id
    refused(_assertion(ECKey.generate_key("P-256"), client_id=mine, aud=endpoint), "signature does not verify")
    refused(_assertion(key, client_id=mine, aud=endpoint, kid="k9"), "key id 'k9' is not a registered key")
    refused(_assertion(key, client_id=mine, aud="https://elsewhere.example/token"), "aud must be the token endpoint")
    refused(_assertion(key, client_id=mine, aud=endpoint, iat=int(time.time()) - 600, exp=int(time.time()) - 300), "has expired")
    refused(_assertion(key, client_id=mine, aud=endpoint, lifetime=3600), "at most 300 s")
    refused(_assertion(key, client_id=mine, aud=endpoint, sub="gh_someone_else"), "sub must equal its iss")
    refused(_assertion(key, client_id=mine, aud=endpoint, alg="ES256", jti=None), "lacks the jti claim")
    # An assertion for another client: sent with my client_id, or claiming to be me signed with the other's key.
    refused(_assertion(other_key, client_id=other.client_id, aud=endpoint, kid="other-1"), "not for client_id", client_id=mine)
    refused(_assertion(other_key, client_id=mine, aud=endpoint, kid="other-1"), "key id 'other-1' is not a registered key")
    refused("not.a.jwt", "not a well-formed JWT")
    refused(_assertion(key, client_id="gh_unknown", aud=endpoint), "no active client gh_unknown with a registered key")
    # A replayed assertion: its jti is spent, also for another hub process sharing the database.
    once = _assertion(key, client_id=mine, aud=endpoint)
    assert _token(client, once).status_code == 200
    refused(once, "already used")
    from govhub.app import create_app

    second = create_app(hub.settings, engine=engine, session_factory=session_factory, storage=storage)
    again = _assertion(key, client_id=mine, aud=endpoint)
    assert _token(client, again).status_code == 200
    with TestClient(second, raise_server_exceptions=False) as other_process:
        replay = _token(other_process, again)
    assert replay.status_code == 401 and "already used" in replay.json()["detail"]
    # Both methods at once, or a wrong assertion type: a malformed request.
    both = _token(client, _assertion(key, client_id=mine, aud=endpoint), client_secret=system.actor.extra["secret"])
    assert both.status_code == 400 and "one method" in both.json()["detail"]
    wrong_type = client.post("/auth/token", data={"client_assertion_type": "urn:x", "client_assertion": once})
    assert wrong_type.status_code == 400 and ASSERTION_TYPE in wrong_type.json()["detail"]
    # A removed key no longer works.
    removed = client.delete(f"/clients/{mine}/keys/k1", headers=system.admin.headers)
    assert removed.status_code == 200 and removed.json()["revoked_at"]
    refused(_assertion(key, client_id=mine, aud=endpoint), "no active client")


def test_keys_that_cannot_be_registered(client: TestClient, hub: Hub, system: System) -> None:
    private = ECKey.generate_key("P-256").as_dict(private=True)
    leaked = client.post(f"/clients/{system.client_id}/keys", json={"jwk": private}, headers=system.admin.headers)
    assert leaked.status_code == 422 and "private key material" in leaked.json()["detail"]
    with pytest.warns(SecurityWarning):  # joserfc warns too
        small = RSAKey.generate_key(1024).as_dict(private=False)
    assert (
        "at least 2048"
        in client.post(f"/clients/{system.client_id}/keys", json={"jwk": small}, headers=system.admin.headers).json()["detail"]
    )
    hmac = {"kty": "oct", "k": "c2VjcmV0"}
    assert client.post(f"/clients/{system.client_id}/keys", json={"jwk": hmac}, headers=system.admin.headers).status_code == 422
    garbage = {"kty": "EC", "crv": "P-256", "x": "AAAA", "y": "AAAA"}
    assert (
        client.post(f"/clients/{system.client_id}/keys", json={"jwk": garbage}, headers=system.admin.headers).status_code == 422
    )
    key = ECKey.generate_key("P-256")
    assert _register(client, system, key, kid=None).status_code == 201  # kid: the RFC 7638 thumbprint
    assert _register(client, system, key, kid=None).status_code == 409  # the same key twice
    # A system cannot register keys for itself; another department's administrator does not see the client.
    own = client.post(f"/clients/{system.client_id}/keys", json={"jwk": key.as_dict(private=False)}, headers=system.actor.headers)
    assert own.status_code == 403
    stranger = hub.actor(hub.department("天津市公安局", region="120000"), "department_admin")
    assert client.post(f"/clients/{system.client_id}/keys", json={"jwk": {}}, headers=stranger.headers).status_code == 404
    assert client.get(f"/clients/{system.client_id}/keys", headers=stranger.headers).status_code == 404


def _secret_token(client: TestClient, client_id: str, secret: str) -> int:
    response = client.post(
        "/auth/token", data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
    )
    return response.status_code


def test_a_secret_is_rotated_without_downtime_and_a_former_one_revoked_at_once(
    client: TestClient, hub: Hub, system: System
) -> None:
    old = system.actor.extra["secret"]
    rotated = client.post(
        f"/clients/{system.client_id}/secrets/rotate", json={"old_secret_valid_hours": 72}, headers=system.admin.headers
    )
    assert rotated.status_code == 200, rotated.text
    new, former = rotated.json()["client_secret"], rotated.json()["old_secret"]
    assert new != old and former["expires_at"]
    # Meanwhile both work: the systems move to the new secret one by one.
    assert _secret_token(client, system.client_id, old) == 200
    assert _secret_token(client, system.client_id, new) == 200
    # A second rotation while the former secret still works is refused, saying until when.
    again = client.post(
        f"/clients/{system.client_id}/secrets/rotate", json={"old_secret_valid_hours": 1}, headers=system.admin.headers
    )
    assert again.status_code == 409 and "still valid until" in again.json()["detail"]
    # Once its overlap is over, the former secret stops.
    with hub.factory() as db:
        db.execute(
            update(RetiringSecret).where(RetiringSecret.id == former["id"]).values(expires_at=utcnow() - timedelta(seconds=1))
        )
        db.commit()
    assert _secret_token(client, system.client_id, old) == 401
    assert _secret_token(client, system.client_id, new) == 200
    # Rotate again, then revoke the former secret at once (it leaked).
    third = client.post(
        f"/clients/{system.client_id}/secrets/rotate", json={"old_secret_valid_hours": 24}, headers=system.admin.headers
    )
    newest, former_id = third.json()["client_secret"], third.json()["old_secret"]["id"]
    assert _secret_token(client, system.client_id, new) == 200
    revoked = client.post(f"/clients/{system.client_id}/secrets/{former_id}/revoke", headers=system.admin.headers)
    assert revoked.status_code == 200 and revoked.json()["revoked_at"]
    assert _secret_token(client, system.client_id, new) == 401
    assert _secret_token(client, system.client_id, newest) == 200
    assert client.post(f"/clients/{system.client_id}/secrets/{former_id}/revoke", headers=system.admin.headers).status_code == 409
    # A rotation with no overlap stops the current secret at once.
    fourth = client.post(
        f"/clients/{system.client_id}/secrets/rotate", json={"old_secret_valid_hours": 0}, headers=system.admin.headers
    )
    assert fourth.json()["old_secret"] is None
    assert _secret_token(client, system.client_id, newest) == 401
    assert _secret_token(client, system.client_id, fourth.json()["client_secret"]) == 200
    # Longer than 30 days, or by the system itself: refused.
    too_long = client.post(
        f"/clients/{system.client_id}/secrets/rotate", json={"old_secret_valid_hours": 721}, headers=system.admin.headers
    )
    assert too_long.status_code == 422
    assert (
        client.post(
            f"/clients/{system.client_id}/secrets/rotate", json={"old_secret_valid_hours": 1}, headers=system.actor.headers
        ).status_code
        == 403
    )
    listed = client.get(f"/clients/{system.client_id}/secrets", headers=system.admin.headers).json()["items"]
    assert len(listed) == 2 and all(s["revoked_at"] or s["expires_at"] for s in listed)
    # Every change is audited; no secret, and no hash of one, is in the audit trail.
    with hub.factory() as db:
        records = db.scalars(select(AuditRecord).where(AuditRecord.object_id == system.client_id)).all()
    assert [r.action for r in records].count("client.secret.rotate") == 3
    assert "client.secret.revoke" in [r.action for r in records]
    trail = json.dumps([r.detail for r in records]) + "".join(r.purpose or "" for r in records)
    for secret in (old, new, newest, fourth.json()["client_secret"]):
        assert secret not in trail
    assert "scrypt$" not in trail
