"""What a hub process remembers while it verifies seal signatures, and when it forgets: a seal whose status
changes here is judged anew at once; one changed by another hub process within GOVHUB_SEAL_STATUS_CACHE_SECONDS."""

from __future__ import annotations

import base64
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlalchemy.orm import Session

from ops.db import utcnow
from seal import caches, service
from seal.models import AuthorityKey, Seal, SealEvent
from tests.conftest import Hub
from tests.seal.helpers import seal_body, sealer

DATA = "行政许可决定书 第2026-0042号".encode()


def _signed(client: TestClient, hub: Hub) -> tuple[str, str]:
    """An SM2 seal of a new department, and a DER seal signature it made over DATA: (seal id, base64 DER)."""
    department = hub.department()
    made = client.post("/seals", headers=hub.admin.headers, json=seal_body(department.id, algorithm="SM2"))
    assert made.status_code == 201, made.text
    signed = client.post(
        "/seal/sign",
        headers=sealer(hub, department).headers,
        json={"purpose": "许可决定", "data_base64": base64.b64encode(DATA).decode()},
    )
    assert signed.status_code == 200, signed.text
    return made.json()["id"], signed.json()["der_base64"]


def _verify_der(client: TestClient, der_base64: str) -> dict[str, object]:
    files = {"file": ("data.bin", DATA), "signature": ("SignedValue.dat", base64.b64decode(der_base64))}
    response = client.post("/seal/verify/signature/der", files=files)
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_a_seal_revoked_after_its_status_was_remembered_is_reported_revoked_at_once(client: TestClient, hub: Hub) -> None:
    seal_id, der = _signed(client, hub)
    first = _verify_der(client, der)
    assert first["verdict"] == "valid" and first["checks"]["seal_status_now"]["status"] == "passed"  # type: ignore[index]
    # the window verifies again and again: the seal's status is now remembered by this process
    assert _verify_der(client, der)["verdict"] == "valid"
    revoked = client.post(f"/seals/{seal_id}/revoke", headers=hub.admin.headers, json={"reason": "印章遗失"})
    assert revoked.status_code == 200, revoked.text
    after = _verify_der(client, der)
    now = after["checks"]["seal_status_now"]  # type: ignore[index]
    assert now["status"] == "warning" and "印章遗失" in now["message"]  # revoked after this signature, which the hub recorded
    tampered = base64.b64encode(base64.b64decode(der)[:-1] + b"\x00").decode()
    assert _verify_der(client, tampered)["verdict"] == "invalid"  # a remembered seal never makes a broken signature pass


def test_a_revocation_by_another_hub_process_is_seen_within_the_cache_time(
    client: TestClient, hub: Hub, db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    seal_id, der = _signed(client, hub)
    clock = [1000.0]
    monkeypatch.setattr(caches, "_clock", lambda: clock[0])
    settings = hub.settings.model_copy(update={"seal_status_cache_seconds": 5.0})
    assert service.verify_detached(db, signature=der, data=DATA, settings=settings).checks["seal_status_now"].status == "passed"
    # another process revokes the seal: the row and its history change, this process is not told
    when = utcnow() + timedelta(minutes=1)
    db.execute(update(Seal).where(Seal.id == seal_id).values(status="revoked", status_reason="密钥泄露", revoked_at=when))
    db.add(SealEvent(seal_id=seal_id, at=when, status="revoked", reason="密钥泄露", actor="another process"))
    db.flush()
    clock[0] += 4.0  # within the cache time this process still answers from what it remembered
    remembered = service.verify_detached(db, signature=der, data=DATA, settings=settings)
    assert remembered.checks["seal_status_now"].status == "passed"
    fresh = service.verify_detached(
        db, signature=der, data=DATA, settings=settings.model_copy(update={"seal_status_cache_seconds": 0})
    )
    assert "密钥泄露" in fresh.checks["seal_status_now"].message  # a hub set to 0 reads the seal every time
    clock[0] += 1.5  # past the cache time: the revocation is seen
    later = service.verify_detached(db, signature=der, data=DATA, settings=settings)
    assert later.checks["seal_status_now"].status == "warning" and "密钥泄露" in later.checks["seal_status_now"].message


def test_trusted_certificates_are_read_again_after_the_cache_time(client: TestClient, hub: Hub, db: Session) -> None:
    """The hub's roots are remembered too; a hub set to 0 seconds reads them every time: a chain no longer
    trusted (here: this hub's chain renamed away by hand) leaves the signature without a trusted chain."""
    _, der = _signed(client, hub)
    assert service.verify_detached(db, signature=der, data=DATA, settings=hub.settings).verdict == "valid"
    db.execute(update(AuthorityKey).values(role="retired"))
    db.flush()
    at_once = hub.settings.model_copy(update={"seal_status_cache_seconds": 0})
    untrusted = service.verify_detached(db, signature=der, data=DATA, settings=at_once)
    assert untrusted.verdict == "indeterminate" and untrusted.sub_indication == "NO_CERTIFICATE_CHAIN_FOUND"
