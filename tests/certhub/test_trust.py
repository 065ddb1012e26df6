"""Mutual recognition (互通互认): certificates of a trusted hub verify here; untrusted ones are reported."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from certhub import sdjwt, service, statuslist, trust
from tests.certhub.conftest import ID_CARD, World
from tests.factories import citizen_id, uscc

SHANGHAI = "https://zwfw.sh.example.gov.cn"


@dataclass
class Key:
    kid: str
    private: Ed25519PrivateKey
    alg: str = "EdDSA"

    def sign(self, data: bytes) -> bytes:
        return self.private.sign(data)

    def jwk(self, **extra: Any) -> dict[str, Any]:
        raw = self.private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return {"kty": "OKP", "crv": "Ed25519", "x": sdjwt.b64u(raw), "kid": self.kid, "alg": "EdDSA", **extra}


class OtherHub:
    """Another province's hub: a department seal key, its hub key, its published status lists."""

    def __init__(self) -> None:
        self.dept_code = uscc(region="310000")
        self.seal = Key("sh-seal-1", Ed25519PrivateKey.generate())
        self.hub_key = Key("sh-hub-1", Ed25519PrivateKey.generate())
        self.revoked: set[int] = set()

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.seal.jwk(dept_code=self.dept_code, use="sig"), self.hub_key.jwk(use="presentation")]}

    def issue(self, index: int) -> str:
        entries = statuslist.entries(base_url=f"{SHANGHAI}/certhub/status-lists", index=index)
        clear = {
            "iss": SHANGHAI, "vct": f"urn:cn:gbt36904:{ID_CARD}",
            "ZZBS": f"1.2.156.3005.2.{ID_CARD}.{self.dept_code}.0000000001.001.X",
            "ZZLXDM": ID_CARD, "ZZMC": "居民身份证", "ZZBFJG": "上海市公安局", "ZZBFJGDM": self.dept_code, "ZZBFRQ": "2026-01-05",
            "nbf": int(time.time()) - 86400, "credentialStatus": entries,
        }  # fmt: skip
        return sdjwt.issue_sd_jwt(self.seal, clear=clear, disclosable={"name": "王小明", "CZZTDM": citizen_id(region="310104")})

    def status_list(self, purpose: str) -> bytes:
        url = f"{SHANGHAI}/certhub/status-lists/{purpose}"
        flagged = self.revoked if purpose == "revocation" else set()
        credential = statuslist.credential(
            hub=SHANGHAI,
            url=url,
            purpose=purpose,
            encoded_list=statuslist.encode(flagged),
            issued_at=int(time.time()),
            ttl_seconds=300,
        )
        return sdjwt.sign_jws(self.hub_key, credential, typ=sdjwt.VC_JWT_TYP).encode()


@pytest.fixture()
def other_hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[OtherHub]:
    other = OtherHub()

    def fetch(url: str) -> bytes:
        for purpose in statuslist.PURPOSES:
            if url == f"{SHANGHAI}/certhub/status-lists/{purpose}":
                return other.status_list(purpose)
        raise AssertionError(f"unexpected fetch of {url}")

    monkeypatch.setattr(trust, "fetch_url", fetch)
    service.clear_caches()
    yield other
    service.clear_caches()


def _present(world: World, other: OtherHub, sd_jwt: str) -> str:
    assert world.window.department is not None
    return sdjwt.present(
        sd_jwt,
        ["name"],
        hub_signer=other.hub_key,
        audience=world.window.department.code,
        nonce=f"n-{time.time_ns()}",
        ttl_seconds=120,
    )


def _trust(world: World, other: OtherHub) -> dict[str, Any]:
    body = {
        "issuer": SHANGHAI,
        "name": "上海市电子证照库",
        "region_code": "310000",
        "jwks": other.jwks(),
        "status_list_urls": [f"{SHANGHAI}/certhub/status-lists/"],
    }
    response = world.client.post("/certhub/trusted-hubs", json=body, headers=world.hub.admin.headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


def test_a_certificate_from_an_untrusted_hub_is_reported_as_such(world: World, other_hub: OtherHub) -> None:
    verdict = world.verify(_present(world, other_hub, other_hub.issue(7)))
    assert verdict["valid"] is False and verdict["code"] == "untrusted_issuer" and SHANGHAI in verdict["message"]


def test_once_trusted_the_other_hubs_certificate_verifies_and_its_revocation_is_seen(world: World, other_hub: OtherHub) -> None:
    entry = _trust(world, other_hub)
    certificate = other_hub.issue(7)
    verdict = world.verify(_present(world, other_hub, certificate))
    assert verdict["valid"] is True and verdict["issuer_hub"] == SHANGHAI and verdict["disclosed"] == {"name": "王小明"}
    assert verdict["issuer_name"] == "上海市公安局"
    other_hub.revoked.add(7)
    service.clear_caches()  # its status list is cached for a minute
    verdict = world.verify(_present(world, other_hub, certificate))
    assert verdict["valid"] is False and verdict["code"] == "revoked"
    suspended = world.client.patch(
        f"/certhub/trusted-hubs/{entry['id']}", json={"status": "suspended"}, headers=world.hub.admin.headers
    )
    assert suspended.status_code == 200
    assert world.verify(_present(world, other_hub, other_hub.issue(8)))["code"] == "untrusted_issuer"


def test_a_key_of_the_other_hub_cannot_sign_for_a_department_it_does_not_belong_to(world: World, other_hub: OtherHub) -> None:
    _trust(world, other_hub)
    forged = other_hub.issue(9)
    jwt, disclosures, _ = sdjwt.split_sd_jwt(forged)
    payload = sdjwt.parse_jws(jwt).payload
    payload["ZZBFJGDM"] = uscc(region="310000")
    resigned = sdjwt.sign_jws(other_hub.seal, payload, typ=sdjwt.SD_JWT_TYP)
    verdict = world.verify(_present(world, other_hub, "~".join([resigned, *disclosures]) + "~"))
    assert verdict["valid"] is False and verdict["code"] == "bad_signature" and "another department" in verdict["message"]


def test_the_trust_list_needs_keys_and_an_admin(world: World) -> None:
    body = {"issuer": SHANGHAI, "name": "上海", "region_code": "310000"}
    assert world.client.post("/certhub/trusted-hubs", json=body, headers=world.hub.admin.headers).status_code == 422
    bad = world.client.post("/certhub/trusted-hubs", json={**body, "jwks": {"keys": [{}]}}, headers=world.hub.admin.headers)
    assert bad.status_code == 422 and "jwks" in bad.json()["detail"]
    assert (
        world.client.post("/certhub/trusted-hubs", json={**body, "jwks": {"keys": []}}, headers=world.issuer.headers).status_code
        == 403
    )


def test_the_hub_publishes_its_issuer_metadata_and_keys(world: World) -> None:
    world.issue()
    metadata = world.client.get("/certhub/.well-known/issuer").json()
    assert metadata["issuer"] == "http://hub.test" and metadata["identifier_root"] == "1.2.156.3005.2"
    assert metadata["status_list_uris"] == [
        "http://hub.test/certhub/status-lists/revocation",
        "http://hub.test/certhub/status-lists/suspension",
    ]
    keys = world.client.get(metadata["jwks_uri"].removeprefix("http://hub.test")).json()["keys"]
    assert world.issuer.department is not None
    assert any(k.get("dept_code") == world.issuer.department.code for k in keys)
    assert any(k.get("use") == "presentation" for k in keys)


def test_a_hub_trusted_by_key_url_has_its_keys_fetched(
    world: World, other_hub: OtherHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    fetched: list[str] = []
    serve_lists = trust.fetch_url

    def fetch(url: str) -> bytes:
        fetched.append(url)
        if url == f"{SHANGHAI}/certhub/.well-known/jwks.json":
            return json.dumps(other_hub.jwks()).encode()
        return serve_lists(url)

    monkeypatch.setattr(trust, "fetch_url", fetch)
    body = {
        "issuer": SHANGHAI,
        "name": "上海市电子证照库",
        "region_code": "310000",
        "jwks_url": f"{SHANGHAI}/certhub/.well-known/jwks.json",
        "status_list_urls": [f"{SHANGHAI}/certhub/status-lists/"],
    }
    assert world.client.post("/certhub/trusted-hubs", json=body, headers=world.hub.admin.headers).status_code == 201
    verdict = world.verify(_present(world, other_hub, other_hub.issue(11)))
    assert verdict["valid"] is True, verdict
    assert f"{SHANGHAI}/certhub/.well-known/jwks.json" in fetched
