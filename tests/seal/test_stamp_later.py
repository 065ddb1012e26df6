"""A detached seal signature made while the time-stamp authority is unreachable: made without its time stamp and
said so (the answer, the use, the metric), stamped later by the scheduled job once the TSA answers, and served in
its stamped form, which the standard's ASN.1 module decodes, OpenSSL verifies the token of, and the hub verifies."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import shutil
import socket
import subprocess
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from pyhanko.sign.timestamps import TimeStamper
from sqlalchemy import func, select

from ops.audit import AuditRecord
from ops.config import Settings
from ops.db import utcnow
from ops.scheduler import LeaseRunner
from seal import service, sesder, tasks, tsa
from seal.models import Seal, SealUse
from tests.conftest import Hub
from tests.seal.helpers import seal_body, sealer
from tests.seal.test_der import _asn1

OPENSSL = shutil.which("openssl")
DER = {"Accept": "application/octet-stream"}
LATER = timedelta(hours=3)


def _closed_port_url() -> str:
    """The URL of a TSA that refuses connections: a local port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/tsa"


def _offline(hub: Hub, **changes: Any) -> Settings:
    settings = hub.settings.model_copy(update={"seal_tsa_url": _closed_port_url(), **changes})
    hub.app.state.settings = settings
    return settings


def _awaiting_events() -> float:
    return REGISTRY.get_sample_value("govhub_seal_timestamp_events_total", {"event": "awaiting"}) or 0.0


def _sm2_sealer(client: TestClient, hub: Hub, name: str) -> tuple[Any, dict[str, Any], Any]:
    department = hub.department(name)
    made = client.post("/seals", headers=hub.admin.headers, json=seal_body(department.id, algorithm="SM2"))
    assert made.status_code == 201, made.text
    return department, made.json(), sealer(hub, department)


def _sign(client: TestClient, system: Any, data: bytes, **headers: str) -> Any:
    body = {"purpose": "行政许可决定", "data_base64": base64.b64encode(data).decode(), "content_type": "text/plain"}
    return client.post("/seal/sign", headers={**system.headers, **headers}, json=body)


def test_signing_while_the_tsa_is_down_waits_visibly_and_the_job_stamps_it_later(
    client: TestClient, hub: Hub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = _asn1()
    normal = hub.settings
    _, seal, system = _sm2_sealer(client, hub, "测试市行政审批局")
    data = "准予行政许可决定书 第 2026-019 号".encode()
    before = _awaiting_events()
    offline = _offline(hub)

    # the TSA refuses connections: the signature is made all the same, and the answer says it has no stamp yet
    signed = _sign(client, system, data)
    assert signed.status_code == 200, signed.text
    answer = signed.json()
    assert answer["timestamp_state"] == "awaiting" and "did not answer" in answer["timestamp_note"]
    assert "timeStamp" not in module.decode("SES-Signature", base64.b64decode(answer["der_base64"]))
    as_der = _sign(client, system, data, **DER)
    assert as_der.status_code == 200 and as_der.headers["Govhub-Timestamp-State"] == "awaiting"
    use_id = answer["use_id"]
    assert _awaiting_events() - before == 2  # the metric counts them

    # the use says so too, with why
    uses = client.get(f"/seals/{seal['id']}/uses", headers=hub.admin.headers).json()["items"]
    assert [u["timestamp_state"] for u in uses] == ["awaiting", "awaiting"]
    assert all("did not answer" in u["timestamp_error"] and u["stamped_at"] is None for u in uses)
    waiting = client.get(f"/seal/uses/{use_id}/signature", headers={**system.headers, **DER})
    assert waiting.headers["Govhub-Timestamp-State"] == "awaiting"
    assert waiting.content == base64.b64decode(answer["der_base64"])

    # the job while the TSA is still down: nothing stamped, the error kept, still awaiting
    with hub.factory() as db:
        run = service.stamp_pending(db, vault=hub.app.state.vault, settings=offline)
        db.commit()
    assert run.stamped == [] and len(run.failed) == 1 and run.awaiting == 2
    assert REGISTRY.get_sample_value("govhub_seal_uses_awaiting_timestamp") == 2

    # the TSA is back (the hub's own); two processes' job runners: the lease lets one run, each use stamped once
    hub.app.state.settings = normal
    monkeypatch.setattr(tsa, "utcnow", lambda: utcnow() + LATER)  # it answers three hours after the signing
    runners = [LeaseRunner(hub.factory, tasks.jobs(normal), owner=f"hub-{i}") for i in (1, 2)]
    assert [r.run_once("seal.stamp_pending") for r in runners] == [True, False]
    with hub.factory() as db:
        assert service.stamp_pending(db, vault=hub.app.state.vault, settings=normal).stamped == []  # none left
        rows = list(db.scalars(select(SealUse).where(SealUse.seal_id == seal["id"])))
        stamped_audits = db.scalar(
            select(func.count()).select_from(AuditRecord).where(AuditRecord.action == "seal.use.stamped_later")
        )
    assert {r.timestamp_state for r in rows} == {"stamped_later"} and stamped_audits == 2
    assert all(
        r.stamped_at is not None and r.stamped_at >= r.at + LATER - timedelta(seconds=1) and r.timestamp_error is None
        for r in rows
    )
    assert REGISTRY.get_sample_value("govhub_seal_uses_awaiting_timestamp") == 0
    uses = client.get(f"/seals/{seal['id']}/uses", headers=hub.admin.headers).json()["items"]
    assert [u["timestamp_state"] for u in uses] == ["stamped_later", "stamped_later"]

    # the stamped form: the standard's module decodes it; only timeStamp was added
    served = client.get(f"/seal/uses/{use_id}/signature", headers={**system.headers, **DER})
    assert served.status_code == 200 and served.headers["Govhub-Timestamp-State"] == "stamped_later"
    stamped = served.content
    decoded = module.decode("SES-Signature", stamped)
    original = module.decode("SES-Signature", base64.b64decode(answer["der_base64"]))
    assert {k: v for k, v in decoded.items() if k != "timeStamp"} == original
    assert module.encode("SES-Signature", decoded) == stamped
    token = decoded["timeStamp"][0]
    value = decoded["signature"][0]

    # OpenSSL verifies the token over the signature value, to the hub's root
    if OPENSSL is not None:
        ca = client.get("/seal/ca").json()
        root, untrusted, token_file = tmp_path / "root.pem", tmp_path / "untrusted.pem", tmp_path / "token.der"
        root.write_text(ca["root"])
        with hub.factory() as db:
            from cryptography.hazmat.primitives import serialization

            tsa_pem = service.ensure_tsa(db, hub.app.state.vault).certificate.public_bytes(serialization.Encoding.PEM)
        untrusted.write_text(ca["issuing"] + tsa_pem.decode())
        token_file.write_bytes(token)
        common = ["ts", "-verify", "-in", str(token_file), "-token_in", "-CAfile", str(root), "-untrusted", str(untrusted)]
        ok = subprocess.run(
            [OPENSSL, *common, "-digest", hashlib.sha256(value).hexdigest()], capture_output=True, text=True, check=False
        )
        assert "Verification: OK" in ok.stdout, ok.stdout + ok.stderr
        other = subprocess.run(
            [OPENSSL, *common, "-digest", hashlib.sha256(value + b"x").hexdigest()], capture_output=True, text=True, check=False
        )
        assert "Verification: OK" not in other.stdout

    # the hub verifies it valid, and says the stamp's own time: it proves existence only from then
    report = client.post(
        "/seal/verify/signature/der", files={"file": ("决定书.txt", data), "signature": ("SignedValue.dat", stamped)}
    ).json()
    assert report["verdict"] == "valid", report["reasons"]
    assert report["checks"]["timestamp"]["status"] == "passed"
    assert "stamped after the claimed signing time" in report["checks"]["timestamp"]["message"]
    stamp_time, signing_time = (datetime.fromisoformat(report[k]) for k in ("timestamp_time", "signing_time"))
    assert stamp_time >= signing_time + LATER - timedelta(seconds=1)  # the late stamp's time, not the hub's record
    view = client.get(f"/seal/uses/{use_id}/signature", headers=system.headers).json()
    assert view["timestamp_state"] == "stamped_later" and view["stamped_at"] is not None
    assert sesder.parse_signature(base64.b64decode(view["der_base64"])).timestamp == token


def test_a_deployment_may_refuse_instead_when_the_tsa_is_down(client: TestClient, hub: Hub) -> None:
    _, seal, system = _sm2_sealer(client, hub, "测试市公安局")
    _offline(hub, seal_stamp_later=False)
    refused = _sign(client, system, b"receipt")
    assert refused.status_code == 502 and "did not answer" in refused.json()["detail"], refused.text
    assert client.get(f"/seals/{seal['id']}/uses", headers=hub.admin.headers).json()["items"] == []  # nothing half-made


def test_a_signature_stamped_at_once_is_marked_so_and_others_uses_are_not_found(client: TestClient, hub: Hub) -> None:
    _, seal, system = _sm2_sealer(client, hub, "测试市税务局")
    signed = _sign(client, system, b"stamped at once")
    assert signed.status_code == 200 and signed.json()["timestamp_state"] == "stamped"
    use_id = signed.json()["use_id"]
    assert client.get(f"/seals/{seal['id']}/uses", headers=hub.admin.headers).json()["items"][0]["timestamp_state"] == "stamped"
    kept = client.get(f"/seal/uses/{use_id}/signature", headers=system.headers)
    assert kept.status_code == 404 and "keeps no signature" in kept.json()["detail"]  # returned stamped; not kept

    _offline(hub)
    waiting = _sign(client, system, b"awaiting").json()["use_id"]
    unknown = client.get("/seal/uses/no-such-use/signature", headers=system.headers)
    assert unknown.status_code == 404 and "no seal use" in unknown.json()["detail"]
    other = sealer(hub, hub.department("测试市民政局"), name="其他部门系统")
    assert client.get(f"/seal/uses/{waiting}/signature", headers=other.headers).status_code == 404
    assert client.get(f"/seal/uses/{waiting}/signature", headers=hub.admin.headers).status_code == 200


def test_an_operator_stamps_the_waiting_signatures_from_the_shell(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from ops.auth import Principal, Role
    from ops.config import get_settings
    from ops.crypto import KeyVault
    from ops.db import make_engine, make_sessionmaker
    from tests.conftest import MASTER_KEY
    from tests.factories import uscc
    from tests.seal.helpers import grant, png_picture
    from tests.seal.test_cli import _govhub

    monkeypatch.setattr("logging.basicConfig", lambda **_kwargs: None)
    monkeypatch.setenv("GOVHUB_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("GOVHUB_MASTER_KEY", MASTER_KEY)
    monkeypatch.delenv("GOVHUB_DATABASE_URL", raising=False)
    _govhub(capsys, "db", "upgrade")
    code = uscc(region="440300")
    _govhub(capsys, "departments", "create", "--code", code, "--name", "深圳市民政局", "--level", "city", "--region", "440300")
    picture = tmp_path / "seal.png"
    picture.write_bytes(png_picture())
    seal = json.loads(
        _govhub(
            capsys, "seals", "issue", "--department", code, "--name", "深圳市民政局", "--type", "公章", "--picture", str(picture)
        )
    )
    # a signature made while the TSA refuses connections
    down = _closed_port_url()
    settings = get_settings().model_copy(update={"seal_tsa_url": down})
    engine = make_engine(settings.effective_database_url)
    try:
        with make_sessionmaker(engine)() as db:
            department_id = db.get(Seal, seal["id"]).department_id  # type: ignore[union-attr]
            user = Principal(subject="民政局经办人", roles=frozenset({Role.DEPARTMENT_ADMIN}), department_id=department_id)
            grant(db, seal["id"], user.subject, kind="person")
            signed = service.sign_detached_use(
                db, vault=KeyVault.from_settings(settings), department_id=department_id, data=b"receipt",
                purpose="回执", actor=user, settings=settings,
            )  # fmt: skip
            db.commit()
    finally:
        engine.dispose()
    assert signed.timestamp_state == "awaiting"

    monkeypatch.setenv("GOVHUB_SEAL_TSA_URL", down)  # still down: the use keeps waiting, the reason printed
    still = json.loads(_govhub(capsys, "seals", "stamp-pending"))
    assert still["stamped"] == [] and "did not answer" in still["failed"][signed.use_id] and still["awaiting"] == 1
    monkeypatch.delenv("GOVHUB_SEAL_TSA_URL")  # the hub's own TSA
    assert json.loads(_govhub(capsys, "seals", "stamp-pending")) == {"stamped": [signed.use_id], "failed": {}, "awaiting": 0}
    assert json.loads(_govhub(capsys, "seals", "stamp-pending")) == {"stamped": [], "failed": {}, "awaiting": 0}


class _Down(TimeStamper):
    """A TSA that refuses every request."""

    def __init__(self) -> None:
        pass

    async def async_timestamp(self, message_digest: bytes, md_algorithm: str) -> Any:
        raise ConnectionRefusedError("connection refused")


class _Slow(TimeStamper):
    """A TSA that answers, slowly: two runs overlap while it thinks."""

    def __init__(self, inner: TimeStamper) -> None:
        self.inner = inner

    async def async_timestamp(self, message_digest: bytes, md_algorithm: str) -> Any:
        await asyncio.sleep(0.2)
        return await self.inner.async_timestamp(message_digest, md_algorithm)


def test_two_runs_at_once_on_postgresql_stamp_each_waiting_use_once(settings: Settings) -> None:
    """The job in one process and `govhub seals stamp-pending` in another, at the same moment (no lease between
    them): the rows they lock are skipped by the other, so no use is stamped twice."""
    from govhub.database import ensure_keys, upgrade
    from ops.auth import Principal, Role
    from ops.cli import CLI_ADMIN
    from ops.crypto import KeyVault
    from ops.db import make_engine, make_sessionmaker
    from ops.hubprocess import drop_postgres, fresh_postgres
    from ops.identity import service as identity
    from ops.identity.schemas import DepartmentCreate
    from tests.factories import uscc
    from tests.seal.helpers import grant, make_seal

    base = os.environ.get("GOVHUB_TEST_DATABASE_URL")
    if not base:
        pytest.skip("row locks (FOR UPDATE SKIP LOCKED) need PostgreSQL: set GOVHUB_TEST_DATABASE_URL")
    url, name = fresh_postgres(base)
    engine = make_engine(url)
    try:
        upgrade(engine, settings)
        factory = make_sessionmaker(engine)
        vault = KeyVault.from_settings(settings)
        with factory() as db:
            ensure_keys(db, vault, settings)
            department = identity.create_department(
                db, who=CLI_ADMIN, data=DepartmentCreate(code=uscc(), name="测试市医保局", level="province", region_code="110000")
            )
            seal = make_seal(db, vault, department.id, algorithm="SM2")
            user = Principal(subject="医保局经办人", roles=frozenset({Role.DEPARTMENT_ADMIN}), department_id=department.id)
            grant(db, seal.id, user.subject, kind="person")
            waiting = [
                service.sign_detached_use(
                    db, vault=vault, department_id=department.id, data=f"回执 {i}".encode(), purpose="回执", actor=user,
                    settings=settings, timestamper=_Down(),
                ).use_id
                for i in range(6)
            ]  # fmt: skip
            db.commit()

        def run() -> list[str]:
            with factory() as db:
                done = service.stamp_pending(  # each takes at most three
                    db, vault=vault, settings=settings, timestamper=_Slow(service.hub_timestamper(db, vault)), limit=3
                )
                db.commit()
                return done.stamped

        with ThreadPoolExecutor(2) as pool:
            first, second = pool.map(lambda _: run(), range(2))
        assert len(first) == len(second) == 3, (first, second)  # at once, each on the uses the other had not locked
        assert sorted(first + second) == sorted(waiting)  # every use, none twice
        with factory() as db:
            stamped = db.scalar(
                select(func.count()).select_from(AuditRecord).where(AuditRecord.action == "seal.use.stamped_later")
            )
            states = set(db.scalars(select(SealUse.timestamp_state)))
        assert stamped == 6 and states == {"stamped_later"}
    finally:
        engine.dispose()
        drop_postgres(base, name)
