"""Seal benchmark: seal signatures and verifications per second per algorithm, and PDF sealing per second.

Each figure stands beside the raw library operation measured in the same run (cryptography for Ed25519
and P-256, tongsuopy for SM2, pyHanko for PDF), so the hub's overhead reads as a ratio. Whole-OFD
verification (a sample from ``$GOVHUB_SAMPLES_DIR/ofd``) stands beside the DER seal-signature check alone;
sealing a one-page OFD, and verifying what it gives, stand beside one raw SM2 signature and verification.

    python bench/seal_bench.py          # about 1 s per measurement
    python bench/seal_bench.py --full   # about 5 s per measurement
"""

from __future__ import annotations

import argparse
import base64
import os
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ops.config import Settings
from ops.crypto import KeyVault, WrappedSecret


def _rate(operation: Callable[[], object], seconds: float, rounds: int = 5) -> float:
    """Operations per second of `operation`: the best of `rounds` runs sharing `seconds` (robust to a busy machine)."""
    operation()  # warm up
    best = 0.0
    for _ in range(rounds):
        count = 0
        start = time.perf_counter()
        deadline = start + seconds / rounds
        while True:
            operation()
            count += 1
            if time.perf_counter() >= deadline:
                break
        best = max(best, count / (time.perf_counter() - start))
    return best


def _setup(data_dir: Path) -> tuple[Any, KeyVault, str, dict[str, Any]]:
    from sqlalchemy.orm import Session

    from govhub.database import upgrade
    from ops.auth import Principal, Role
    from ops.cli import CLI_ADMIN
    from ops.db import make_engine, utcnow
    from ops.identity import service as identity
    from ops.identity.schemas import ClientCreate, DepartmentCreate
    from seal import service
    from seal.schemas import SealCreate
    from tests.factories import uscc
    from tests.seal.helpers import png_picture

    master = base64.b64encode(os.urandom(32)).decode()
    settings = Settings(data_dir=data_dir, master_key=master, run_scheduler=False)
    engine = make_engine(settings.effective_database_url)
    upgrade(engine, settings)
    vault = KeyVault.from_settings(settings)
    db = Session(engine, expire_on_commit=False)
    department = identity.create_department(
        db,
        who=CLI_ADMIN,
        data=DepartmentCreate(code=uscc(region="330000"), name="浙江省测试局", level="province", region_code="330000"),
    )
    seals = {}
    picture = base64.b64encode(png_picture()).decode()
    for alg, seal_type in (("EdDSA", "业务专用章"), ("ES256", "公章"), ("SM2", "电子证照专用章")):
        seals[alg] = service.issue_seal(
            db,
            who=CLI_ADMIN,
            vault=vault,
            settings=SEAL_SETTINGS,
            data=SealCreate.model_validate(
                {
                    "department_id": department.id,
                    "name": "浙江省测试局",
                    "seal_type": seal_type,
                    "algorithm": alg,
                    "picture": {"type": "png", "data_base64": picture, "width_mm": 42, "height_mm": 42},
                    "valid_to": utcnow() + timedelta(days=365),
                }
            ),
        )
    # The department's system that seals, authorised on each seal by the department's administrator (用印授权).
    system = identity.create_client(
        db, who=CLI_ADMIN, data=ClientCreate(name="bench system", roles=["department_system"], department_id=department.id)
    ).client
    admin = Principal(subject="bench-admin", roles=frozenset({Role.DEPARTMENT_ADMIN}), department_id=department.id)
    for seal in seals.values():
        service.authorise(
            db,
            who=admin,
            seal_id=seal.id,
            subject=system.client_id,
            subject_kind="client",
            may_use=True,
            may_approve=False,
            note=None,
        )
    db.commit()
    BENCH_USERS[department.id] = Principal(
        subject=system.client_id, roles=frozenset({Role.DEPARTMENT_SYSTEM}), department_id=department.id
    )
    return db, vault, department.id, seals


BENCH_USERS: dict[str, Any] = {}  # the authorised system of each bench department


SEAL_SETTINGS = Settings()  # the seal limits and time-stamp authority, from GOVHUB_SEAL_* as a hub would read them
MESSAGE = b'{"alg":"ES256","kid":"k"}.{"iss":"https://hub.example","vct":"business-licence","sub":"91330000"}'


def _row(name: str, value: float, unit: str, baseline_name: str, baseline_value: float) -> dict[str, object]:
    return {
        "name": name,
        "value": round(value, 1),
        "unit": unit,
        "baseline_name": baseline_name,
        "baseline_value": round(baseline_value, 1),
    }


def _compare(hub: Callable[[], object], raw: Callable[[], object], seconds: float, rounds: int = 5) -> tuple[float, float]:
    """Rates of the hub operation and of its baseline, measured in alternating rounds (best of each)."""
    hub()
    raw()
    best_hub = best_raw = 0.0
    for _ in range(rounds):
        best_hub = max(best_hub, _rate(hub, seconds / rounds, rounds=1))
        best_raw = max(best_raw, _rate(raw, seconds / rounds, rounds=1))
    return best_hub, best_raw


def _algorithm_rows(db: Any, vault: KeyVault, department_id: str, alg: str, seal: Any, seconds: float) -> list[dict[str, object]]:
    """Signing and verification through the hub, beside the raw library operation (its own encoding)."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from tongsuopy.crypto import hashes as sm_hashes
    from tongsuopy.crypto.asymciphers import ec as sm_ec

    from seal import keys, service

    SYSTEM = BENCH_USERS[department_id]

    pem = vault.unwrap(WrappedSecret.from_dict(seal.private_key), purpose=f"seal-key:{seal.id}")
    private = keys.load_private(alg, pem)
    public = keys.public_from_spki(alg, keys_spki(seal))
    jwk = dict(seal.public_jwk)
    jose_signature = keys.sign_with(alg, private, MESSAGE)
    library = "tongsuopy" if alg == "SM2" else "cryptography"
    if alg == "EdDSA":
        native_signature = private.sign(MESSAGE)

        def raw_sign() -> object:
            return private.sign(MESSAGE)

        def raw_verify() -> object:
            return public.verify(native_signature, MESSAGE)
    else:
        scheme = ec.ECDSA(hashes.SHA256()) if alg == "ES256" else sm_ec.ECDSA(sm_hashes.SM3())
        native_signature = private.sign(MESSAGE, scheme)

        def raw_sign() -> object:
            return private.sign(MESSAGE, scheme)

        def raw_verify() -> object:
            return public.verify(native_signature, MESSAGE, scheme)

    held = service.department_signer(db, department_id=department_id, vault=vault, seal_type=seal.seal_type)
    data = b"x" * 1024

    def looked_up() -> object:
        # what another domain does per credential: look up the department's active seal, sign
        return service.department_signer(db, department_id=department_id, vault=vault, seal_type=seal.seal_type).sign(MESSAGE)

    def detached() -> dict[str, Any]:
        return service.sign_detached(
            db,
            vault=vault,
            department_id=department_id,
            data=data,
            purpose="bench",
            actor=SYSTEM,
            seal_type=seal.seal_type,
            settings=SEAL_SETTINGS,
        )

    signature = detached()
    assert service.verify_detached(db, signature=signature, data=data, settings=SEAL_SETTINGS).verdict == "valid"
    sign_name, verify_name = f"raw {alg} sign ({library})", f"raw {alg} verify ({library})"
    measured: list[tuple[str, Callable[[], object], Callable[[], object], str, str]] = [
        (f"seal.sign.{alg}", looked_up, raw_sign, "signatures/s", sign_name),
        (f"seal.signer_held.sign.{alg}", lambda: held.sign(MESSAGE), raw_sign, "signatures/s", sign_name),
        (
            f"seal.verify.{alg}",
            lambda: service.verify_jose_signature(alg=alg, jwk=jwk, data=MESSAGE, signature=jose_signature),
            raw_verify,
            "verifications/s",
            verify_name,
        ),
        (f"seal.detached_sign.{alg}", detached, raw_sign, "signatures/s", sign_name),
        (
            f"seal.detached_verify.{alg}",
            lambda: service.verify_detached(db, signature=signature, data=data, settings=SEAL_SETTINGS),
            raw_verify,
            "verifications/s",
            verify_name,
        ),
    ]
    if alg == "SM2":
        # a GB/T 38540 seal signature in DER, from its bytes: parse, SM2 signature over TBS_Sign, the seal and its
        # maker, validity, chain, status, verdict (the raw baseline: one SM2 verification)
        der = base64.b64decode(signature["der_base64"])
        assert service.verify_der(db, der=der, data=data, settings=SEAL_SETTINGS).verdict == "valid"
        measured.append(
            (
                "seal.der_verify.SM2",
                lambda: service.verify_der(db, der=der, data=data, settings=SEAL_SETTINGS),
                raw_verify,
                "verifications/s",
                verify_name,
            )
        )
    rows = []
    for name, hub_op, raw_op, unit, baseline_name in measured:
        hub_rate, raw_rate = _compare(hub_op, raw_op, seconds)
        rows.append(_row(name, hub_rate, unit, baseline_name, raw_rate))
    return rows


def keys_spki(seal: Any) -> bytes:
    from cryptography import x509

    from seal import authority

    return authority.spki_der(x509.load_pem_x509_certificate(seal.certificate_pem.encode()))


def _http_rows(seconds: float) -> list[dict[str, object]]:
    """The same operations over HTTP against a hub process of their own, beside GET /healthz."""
    import json
    import urllib.request
    import uuid

    from ops.hubprocess import HubProcess
    from tests.factories import uscc
    from tests.seal.helpers import one_page_pdf, png_picture, seal_body

    with HubProcess(scheduler=False) as hub:
        status, department = hub.request(
            "POST",
            "/departments",
            json_body={"code": uscc(region="330000"), "name": "浙江省测试局", "level": "province", "region_code": "330000"},
            auth=True,
        )
        assert status == 201, department
        picture = {"type": "png", "data_base64": base64.b64encode(png_picture()).decode(), "width_mm": 42, "height_mm": 42}
        made = []
        for alg, seal_type in (("SM2", "电子证照专用章"), ("ES256", "公章")):
            body = seal_body(department["id"], algorithm=alg, seal_type=seal_type, picture=picture)
            status, seal = hub.request("POST", "/seals", json_body=body, auth=True)
            assert status == 201, seal
            made.append(seal["id"])
        status, client = hub.request(
            "POST",
            "/clients",
            json_body={"name": "bench system", "roles": ["department_system"], "department_id": department["id"]},
            auth=True,
        )
        assert status == 201, client
        status, token = hub.request(
            "POST", "/auth/token", form={"grant_type": "client_credentials"}, basic=(client["client_id"], client["client_secret"])
        )
        headers = {"Authorization": f"Bearer {token['access_token']}"}
        document = one_page_pdf()
        # The department's administrator authorises the bench system on both seals (用印授权).
        status, office = hub.request(
            "POST",
            "/clients",
            json_body={"name": "bench administrator", "roles": ["department_admin"], "department_id": department["id"]},
            auth=True,
        )
        assert status == 201, office
        status, office_token = hub.request(
            "POST", "/auth/token", form={"grant_type": "client_credentials"}, basic=(office["client_id"], office["client_secret"])
        )
        for seal_id in made:
            grant = json.dumps({"subject": client["client_id"], "subject_kind": "client"}).encode()
            authorise = urllib.request.Request(  # noqa: S310 (the bench's own hub on 127.0.0.1)
                f"{hub.base}/seals/{seal_id}/authorisations",
                data=grant,
                method="POST",
                headers={"Authorization": f"Bearer {office_token['access_token']}", "Content-Type": "application/json"},
            )
            with urllib.request.urlopen(authorise, timeout=30) as response:  # noqa: S310
                assert response.status == 201

        def call(path: str, data: bytes, content_type: str, *, authorised: bool = True) -> bytes:
            request = urllib.request.Request(  # noqa: S310 (the bench's own hub on 127.0.0.1)
                hub.base + path,
                data=data,
                method="POST",
                headers={**(headers if authorised else {}), "Content-Type": content_type},
            )
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
                return bytes(response.read())

        def sign_sm2() -> bytes:
            body = {"purpose": "bench", "document": {"证照名称": "营业执照", "n": 1}, "seal_type": "电子证照专用章"}
            return call("/seal/sign", json.dumps(body).encode(), "application/json")

        signature = json.loads(sign_sm2())
        verify_body = json.dumps({"signature": signature, "document": {"证照名称": "营业执照", "n": 1}}).encode()

        def verify_sm2() -> bytes:
            return call("/seal/verify/signature", verify_body, "application/json", authorised=False)

        def seal_pdf() -> bytes:
            boundary = uuid.uuid4().hex
            parts = [
                f'--{boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nbench\r\n'.encode(),
                f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.pdf"\r\n'
                "Content-Type: application/pdf\r\n\r\n".encode()
                + document
                + b"\r\n",
                f"--{boundary}--\r\n".encode(),
            ]
            return call("/seal/pdf", b"".join(parts), f"multipart/form-data; boundary={boundary}")

        assert seal_pdf().startswith(b"%PDF")

        def healthz() -> object:
            return hub.request("GET", "/healthz")[0]

        rows = []
        for name, operation, unit in (
            ("seal.http.sign.SM2", sign_sm2, "signatures/s"),
            ("seal.http.verify_signature.SM2", verify_sm2, "verifications/s"),
            ("seal.http.pdf_seal.ES256.one_page", seal_pdf, "documents/s"),
        ):
            hub_rate, health_rate = _compare(operation, healthz, seconds)
            rows.append(_row(name, hub_rate, unit, "GET /healthz (same hub, 1 client)", health_rate))
        return rows


SAMPLES = Path(os.environ.get("GOVHUB_SAMPLES_DIR") or Path(__file__).resolve().parents[2] / "shared" / "samples")


def _ofd_rows(db: Any, seconds: float) -> list[dict[str, object]]:
    """Whole-OFD verifications per second (another producer's sealed e-invoice, 13 signed files) beside the
    DER seal-signature verification of its Signature.xml alone: the difference is reading the package safely
    and checking each signed file's digest."""
    import io
    import zipfile

    from seal import service

    path = SAMPLES / "ofd" / "sesv4-gomain-invoice.ofd"
    if not path.is_file():
        print(f"(no OFD sample at {path}: set GOVHUB_SAMPLES_DIR for the OFD figures)")
        return []
    data = path.read_bytes()
    with zipfile.ZipFile(io.BytesIO(data)) as package:
        signature_xml = package.read("Doc_0/Signs/Sign_0/Signature.xml")
        der = package.read("Doc_0/Signs/Sign_0/SignedValue.dat")
    assert service.verify_ofd(db, ofd_bytes=data, settings=SEAL_SETTINGS).verdict == "indeterminate"
    hub_rate, raw_rate = _compare(
        lambda: service.verify_ofd(db, ofd_bytes=data, settings=SEAL_SETTINGS),
        lambda: service.verify_der(db, der=der, data=signature_xml, settings=SEAL_SETTINGS),
        seconds,
    )
    return [
        {
            "name": "seal.ofd_verify.SM2.invoice",
            "value": round(hub_rate, 2),
            "unit": "documents/s",
            "baseline_name": "DER seal-signature verify of its Signature.xml alone",
            "baseline_value": round(raw_rate, 2),
        }
    ]


def _tsa_rows(db: Any, vault: KeyVault, seconds: float) -> list[dict[str, object]]:
    """The hub's TSA answering a DER request (parse, checks, TSTInfo, signed attributes, ECDSA) beside one
    ECDSA P-256 signature with SHA-256 alone."""
    import hashlib

    from asn1crypto import tsp
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    from seal import service

    request = tsp.TimeStampReq(
        {
            "version": 1,
            "message_imprint": {"hash_algorithm": {"algorithm": "sha256"}, "hashed_message": hashlib.sha256(b"x").digest()},
            "nonce": 12345678901234567890,
            "cert_req": True,
        }
    ).dump()
    key = ec.generate_private_key(ec.SECP256R1())
    tbs = b"\x31" + b"\x00" * 200  # about the size of a token's signed attributes
    hub_rate, raw_rate = _compare(
        lambda: service.time_stamp_reply(db, vault, request), lambda: key.sign(tbs, ec.ECDSA(hashes.SHA256())), seconds
    )
    return [_row("seal.tsa.stamp", hub_rate, "tokens/s", "one ECDSA P-256 signature (cryptography)", raw_rate)]


def _ofd_seal_rows(db: Any, vault: KeyVault, department_id: str, seal: Any, seconds: float) -> list[dict[str, object]]:
    """OFD documents sealed per second (a one-page OFD: read safely, every file's SM3 digest, Signature.xml, the
    DER seal signature, the use checked and recorded) beside one raw SM2 signature; the sealed document verified
    per second beside one raw SM2 verification."""
    from tongsuopy.crypto import hashes as sm_hashes
    from tongsuopy.crypto.asymciphers import ec as sm_ec

    from seal import keys, service
    from tests.seal.helpers import plain_ofd

    pem = vault.unwrap(WrappedSecret.from_dict(seal.private_key), purpose=f"seal-key:{seal.id}")
    private = keys.load_private("SM2", pem)
    public = keys.public_from_spki("SM2", keys_spki(seal))
    scheme = sm_ec.ECDSA(sm_hashes.SM3())
    native_signature = private.sign(MESSAGE, scheme)
    document = plain_ofd()

    def hub_seal() -> bytes:
        return service.seal_ofd(
            db,
            vault=vault,
            settings=SEAL_SETTINGS,
            department_id=department_id,
            ofd_bytes=document,
            purpose="bench",
            actor=BENCH_USERS[department_id],
            seal_id=seal.id,
            x_mm=140,
            y_mm=230,
        ).data

    sealed = hub_seal()
    db.commit()
    assert service.verify_ofd(db, ofd_bytes=sealed, settings=SEAL_SETTINGS).verdict == "valid"
    seal_rate, sign_rate = _compare(hub_seal, lambda: private.sign(MESSAGE, scheme), seconds)
    db.rollback()
    verify_rate, raw_verify_rate = _compare(
        lambda: service.verify_ofd(db, ofd_bytes=sealed, settings=SEAL_SETTINGS),
        lambda: public.verify(native_signature, MESSAGE, scheme),
        seconds,
    )
    return [
        {
            "name": "seal.ofd_seal.SM2.one_page",
            "value": round(seal_rate, 2),
            "unit": "documents/s",
            "baseline_name": "raw SM2 sign (tongsuopy)",
            "baseline_value": round(sign_rate, 2),
        },
        {
            "name": "seal.ofd_verify.SM2.one_page",
            "value": round(verify_rate, 2),
            "unit": "documents/s",
            "baseline_name": "raw SM2 verify (tongsuopy)",
            "baseline_value": round(raw_verify_rate, 2),
        },
    ]


def _lta_rows(db: Any, b_t: Callable[[], bytes], b_lta: Callable[[], bytes], seconds: float) -> list[dict[str, object]]:
    """PAdES B-LTA sealing (the CRLs and certificates in the DSS, a document time stamp, the PDF kept) beside B-T
    sealing, and the verification of a B-LTA PDF (DSS, document time stamps, long-term evidence) beside a B-T one."""
    from seal import service

    lta_rate, bt_rate = _compare(b_lta, b_t, seconds)
    sealed_lta, sealed_bt = b_lta(), b_t()
    db.commit()
    verify_lta, verify_bt = _compare(
        lambda: service.verify_pdf(db, pdf_bytes=sealed_lta, settings=SEAL_SETTINGS),
        lambda: service.verify_pdf(db, pdf_bytes=sealed_bt, settings=SEAL_SETTINGS),
        seconds,
    )
    return [
        _row("seal.pdf_seal.ES256.b_lta", lta_rate, "documents/s", "the hub sealing at B-T", bt_rate),
        _row("seal.pdf_verify.ES256.b_lta", verify_lta, "documents/s", "the hub verifying a B-T PDF", verify_bt),
    ]


def main(argv: list[str] | None = None) -> list[dict[str, object]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--full", action="store_true", help="longer measurements (about 5 s each)")
    parser.add_argument("--no-http", action="store_true", help="skip the figures measured over HTTP")
    args = parser.parse_args(argv)
    seconds = 5.0 if args.full else 1.0

    from seal import pdf as pades
    from seal import service
    from tests.seal.helpers import one_page_pdf

    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory(prefix="seal-bench-") as tmp:
        db, vault, department_id, seals = _setup(Path(tmp))
        SYSTEM = BENCH_USERS[department_id]
        for alg, seal in seals.items():
            rows += _algorithm_rows(db, vault, department_id, alg, seal, seconds)
            db.rollback()

        document = one_page_pdf()
        es256 = seals["ES256"]
        pem = vault.unwrap(WrappedSecret.from_dict(es256.private_key), purpose=f"seal-key:{es256.id}")
        from cryptography import x509

        from seal import authority

        cert = x509.load_pem_x509_certificate(es256.certificate_pem.encode())
        chain = authority.intermediate_certificates(db) + authority.root_certificates(db)
        spec = pades.StampSpec(page=0, box=None, width_mm=42, height_mm=42, picture_png=es256.picture, label="bench")

        hub_tsa = service.hub_timestamper(db, vault)  # the same TSA the hub stamps its PDFs with (B-T)

        def raw_pdf() -> bytes:
            return pades.sign(
                document,
                cert=cert,
                chain=chain,
                private_pem=pem,
                spec=spec,
                reason="bench",
                signer_name="bench",
                field_name="Bench",
                timestamper=hub_tsa,
            )

        def hub_pdf() -> bytes:
            return service.seal_pdf(
                db,
                vault=vault,
                department_id=department_id,
                pdf=document,
                purpose="bench",
                seal_id=es256.id,
                actor=SYSTEM,
                settings=SEAL_SETTINGS,
            )

        hub_rate, raw_rate = _compare(hub_pdf, raw_pdf, seconds)
        rows.append(
            {
                "name": "seal.pdf_seal.ES256.one_page",
                "value": round(hub_rate, 2),
                "unit": "documents/s",
                "baseline_name": "pyHanko sign_pdf alone (same stamp and TSA, no checks, no record)",
                "baseline_value": round(raw_rate, 2),
            }
        )
        sealed = hub_pdf()
        db.commit()
        roots, intermediates = authority.root_certificates(db), authority.intermediate_certificates(db)
        hub_rate, raw_rate = _compare(
            lambda: service.verify_pdf(db, pdf_bytes=sealed, settings=SEAL_SETTINGS),
            lambda: pades.validate(sealed, roots=roots, intermediates=intermediates),
            seconds,
        )
        rows.append(
            {
                "name": "seal.pdf_verify.ES256.one_page",
                "value": round(hub_rate, 2),
                "unit": "documents/s",
                "baseline_name": "pyHanko validate alone",
                "baseline_value": round(raw_rate, 2),
            }
        )
        rows += _lta_rows(db, hub_pdf, lambda: service.seal_pdf(
            db, vault=vault, department_id=department_id, pdf=document, purpose="bench", seal_id=es256.id, actor=SYSTEM,
            settings=SEAL_SETTINGS, level="B-LTA",
        ), seconds)  # fmt: skip
        rows += _tsa_rows(db, vault, seconds)
        rows += _ofd_rows(db, seconds)
        rows += _ofd_seal_rows(db, vault, department_id, seals["SM2"], seconds)
        db.close()
    if not args.no_http:
        rows += _http_rows(seconds)

    for row in rows:
        value, baseline = float(row["value"]), float(row["baseline_value"])  # type: ignore[arg-type]
        ratio = value / baseline if baseline else 0.0
        print(f"{row['name']:<34} {value:>10} {row['unit']:<17} {row['baseline_name']}: {baseline}  (x{ratio:.2f})")
    return rows


if __name__ == "__main__":
    main(sys.argv[1:])
