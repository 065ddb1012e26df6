"""Scenarios of identity: tokens, token attacks, roles and department scoping."""

from __future__ import annotations

import base64
import json
import time

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient

from tests.conftest import Hub


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def _claims(hub: Hub, **overrides: object) -> dict[str, object]:
    now = int(time.time())
    claims: dict[str, object] = {
        "iss": hub.settings.issuer,
        "sub": hub.admin.client.client_id,  # type: ignore[union-attr]
        "aud": hub.settings.token_audience,
        "iat": now,
        "exp": now + 300,
        "roles": ["platform_admin"],
    }
    claims.update(overrides)
    return claims


def _me(client: TestClient, token: str) -> tuple[int, str]:
    response = client.get("/me", headers={"Authorization": f"Bearer {token}"})
    return response.status_code, response.json().get("detail", "")


def test_a_department_system_gets_a_token_with_its_credentials_and_calls_the_api(client: TestClient, hub: Hub) -> None:
    department = hub.department("北京市公安局")
    system = hub.system(department, name="户籍系统")
    response = client.post(
        "/auth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": system.client.client_id,  # type: ignore[union-attr]
            "client_secret": system.extra["secret"],
        },
    )
    assert response.status_code == 200, response.text
    token = response.json()["access_token"]
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "EdDSA" and header["kid"]
    me = client.get("/me", headers={"Authorization": f"Bearer {token}"}).json()
    assert me["roles"] == ["department_system"] and me["department_id"] == department.id
    # The public key that verifies it is published.
    kids = [k["kid"] for k in client.get("/.well-known/jwks.json").json()["keys"]]
    assert header["kid"] in kids


def test_wrong_secret_and_unknown_client_get_the_same_401(client: TestClient, hub: Hub) -> None:
    system = hub.system()
    wrong = client.post("/auth/token", data={"client_id": system.client.client_id, "client_secret": "nope"})  # type: ignore[union-attr]
    unknown = client.post("/auth/token", data={"client_id": "gh_missing", "client_secret": "nope"})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json()["detail"] == unknown.json()["detail"] == "invalid client credentials"


def test_token_request_with_basic_auth_and_missing_fields(client: TestClient, hub: Hub) -> None:
    system = hub.system()
    basic = base64.b64encode(f"{system.client.client_id}:{system.extra['secret']}".encode()).decode()  # type: ignore[union-attr]
    assert (
        client.post(
            "/auth/token", headers={"Authorization": f"Basic {basic}"}, data={"grant_type": "client_credentials"}
        ).status_code
        == 200
    )
    missing = client.post("/auth/token", json={"client_id": "x"})
    assert missing.status_code == 400 and "client_secret" in missing.json()["detail"]
    grant = client.post("/auth/token", data={"grant_type": "password", "client_id": "a", "client_secret": "b"})
    assert grant.status_code == 400 and grant.json()["error"] == "unsupported_grant_type"


def test_no_token_is_401_with_a_hint(client: TestClient) -> None:
    response = client.get("/me")
    assert response.status_code == 401
    assert "bearer token" in response.json()["detail"]
    assert response.headers["content-type"] == "application/problem+json"


def test_an_expired_token_is_refused(client: TestClient, hub: Hub) -> None:
    past = int(time.time()) - 3600
    token = hub.app.state.keyring.sign(_claims(hub, iat=past - 300, exp=past))
    assert _me(client, token) == (401, "the token has expired")


def test_a_token_for_another_audience_is_refused(client: TestClient, hub: Hub) -> None:
    status, detail = _me(client, hub.app.state.keyring.sign(_claims(hub, aud="another-hub")))
    assert status == 401 and "audience" in detail


def test_a_token_from_another_issuer_is_refused(client: TestClient, hub: Hub) -> None:
    status, detail = _me(client, hub.app.state.keyring.sign(_claims(hub, iss="https://evil.example")))
    assert status == 401 and "issuer" in detail


def test_a_token_with_an_unknown_kid_is_refused(client: TestClient, hub: Hub) -> None:
    stranger = Ed25519PrivateKey.generate()
    token = jwt.encode(_claims(hub), stranger, algorithm="EdDSA", headers={"kid": "not-ours"})
    status, detail = _me(client, token)
    assert status == 401 and "not-ours" in detail


def test_a_token_signed_by_another_key_under_our_kid_is_refused(client: TestClient, hub: Hub) -> None:
    kid = client.get("/.well-known/jwks.json").json()["keys"][0]["kid"]
    token = jwt.encode(_claims(hub), Ed25519PrivateKey.generate(), algorithm="EdDSA", headers={"kid": kid})
    assert _me(client, token) == (401, "the token's signature does not verify")


def test_alg_none_is_refused(client: TestClient, hub: Hub) -> None:
    token = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(_claims(hub))}."
    status, detail = _me(client, token)
    assert status == 401 and "'none'" in detail


def test_hs256_signed_with_the_public_key_as_secret_is_refused(client: TestClient, hub: Hub) -> None:
    jwk = client.get("/.well-known/jwks.json").json()["keys"][0]
    import hashlib
    import hmac

    header = _b64({"alg": "HS256", "typ": "JWT", "kid": jwk["kid"]})
    payload = _b64(_claims(hub))
    secret = json.dumps(jwk).encode()
    signature = (
        base64.urlsafe_b64encode(hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()).decode().rstrip("=")
    )
    status, detail = _me(client, f"{header}.{payload}.{signature}")
    assert status == 401 and "HS256" in detail


def test_a_tampered_payload_is_refused(client: TestClient, hub: Hub) -> None:
    token = hub.app.state.keyring.sign(_claims(hub, roles=["window"]))
    header, _, signature = token.split(".")
    forged = f"{header}.{_b64(_claims(hub))}.{signature}"
    assert _me(client, forged)[0] == 401


def test_garbage_tokens_are_401_not_500(client: TestClient) -> None:
    for garbage in ["abc", "a.b.c", "eyJhbGciOiJFZERTQSJ9.e30.", "x" * 5000]:
        assert _me(client, garbage)[0] == 401


def test_a_revoked_client_loses_access_at_once(client: TestClient, hub: Hub) -> None:
    system = hub.system()
    assert client.get("/me", headers=system.headers).status_code == 200
    revoked = client.post(
        f"/clients/{system.client.client_id}/revoke",
        headers=hub.admin.headers,  # type: ignore[union-attr]
        json={"reason": "系统下线"},
    )
    assert revoked.status_code == 200
    response = client.get("/me", headers=system.headers)
    assert response.status_code == 401 and "revoked" in response.json()["detail"]


def test_rotation_keeps_old_tokens_valid_and_signs_new_ones_with_the_new_key(client: TestClient, hub: Hub) -> None:
    old_token = hub.admin.headers
    old_kid = jwt.get_unverified_header(old_token["Authorization"].split()[1])["kid"]
    rotated = client.post("/admin/signing-keys/rotate", headers=hub.admin.headers)
    assert rotated.status_code == 200
    new_kid = rotated.json()["kid"]
    assert client.get("/me", headers=old_token).status_code == 200
    new_token = hub.actor(None, "platform_admin").headers["Authorization"].split()[1]
    assert jwt.get_unverified_header(new_token)["kid"] == new_kid != old_kid
    kids = {k["kid"] for k in client.get("/.well-known/jwks.json").json()["keys"]}
    assert {old_kid, new_kid} <= kids


def test_a_holder_token_from_the_builtin_provider_identifies_the_holder(client: TestClient, hub: Hub) -> None:
    minted = client.post(
        "/auth/holder-tokens",
        headers=hub.admin.headers,
        json={"holder_code": "11010519491231002x", "holder_kind": "person", "name": "张三"},
    )
    assert minted.status_code == 200, minted.text
    me = client.get("/me", headers={"Authorization": f"Bearer {minted.json()['access_token']}"}).json()
    assert me["roles"] == ["holder"] and me["holder_code"] == "11010519491231002X"
    bad = client.post(
        "/auth/holder-tokens",
        headers=hub.admin.headers,
        json={"holder_code": "110105194912310021", "holder_kind": "person", "name": "张三"},
    )
    assert bad.status_code == 422 and "公民身份号码" in bad.json()["detail"]
