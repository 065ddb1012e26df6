"""Benchmarks of the certificate hub.

    python bench/certhub_bench.py [--full] [--part all|verify|bulk|ofd] [--algorithm ES256|EdDSA|SM2] [--postgres URL]

1. Presentation verifications per second over HTTP (POST /certhub/verifications, each with a fresh
   presentation, so signature, trust list, status and nonce checks all run), at 64 connections, beside
   the same server's trivial endpoint (GET /healthz) in the same run; with p50 / p99 latency.
   Target: >= 50% of the trivial endpoint's rate, p99 <= twice the trivial endpoint's at 64 connections.
2. Bulk issuance (归集) in certificates per second, without and with PDFs (rendered and PAdES-sealed),
   beside the raw signing rate of the seal's algorithm measured in the same run (one thread, like the
   issuance; the mean of a reading just before and one just after the run without PDFs). A certificate
   carries two signatures (its JWS and its SD-JWT VC; a PDF copy adds the PAdES seal), so the target
   counts signatures: without PDFs, certificates/s x 2 >= 25% of the raw signing rate.
3. Sealed OFD certificate copies per second: OFD copies of certificates already issued, each rendered with its
   embedded font subset and 2D code, sealed with the department's SM2 seal as an OFD signature (use checks and
   use record included) and stored, beside the raw SM2 signing rate in the same run (measured before and after,
   averaged). Target: >= 10% of the raw SM2 signing rate. For information, bulk issuance where each
   certificate gets its sealed OFD copy (the certificate's own signing and records included).

The hub runs as its own process (uvicorn on 127.0.0.1, a free port, a temporary data directory);
the load generator only targets 127.0.0.1 and is bounded in time.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import secrets
import shutil
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import select  # noqa: E402

from certhub import sdjwt, service  # noqa: E402
from certhub.schemas import IssueRequest  # noqa: E402
from ops.auth import Principal, Role  # noqa: E402
from ops.cli import CLI_ADMIN  # noqa: E402
from ops.codes import USCC_ALPHABET, id_check_char, uscc_check_char  # noqa: E402
from ops.config import Settings  # noqa: E402
from ops.crypto import KeyVault  # noqa: E402
from ops.db import make_engine, make_sessionmaker, utcnow  # noqa: E402
from ops.hubprocess import HubProcess, drop_postgres, fresh_postgres  # noqa: E402
from ops.identity import service as identity  # noqa: E402
from ops.identity.schemas import ClientCreate, DepartmentCreate  # noqa: E402
from ops.identity.tokens import KeyRing  # noqa: E402
from ops.storage import LocalStore  # noqa: E402

sys.path.insert(0, str(ROOT / "bench"))
from loadgen import alternate, average_batch, http_request, measure, profile_summary, start_profile, status_ok  # noqa: E402

ID_CARD = "11100000000019713D001"
MASTER_KEY = base64.b64encode(b"certhub-bench-master-key-32bytes").decode()


ACCEPTS = ("--postgres", "--quick")  # the options of bench/run.py this benchmark takes


def _uscc(region: str = "110000") -> str:
    body = "11" + region + "".join(secrets.choice(USCC_ALPHABET) for _ in range(9))
    return body + uscc_check_char(body)


def _citizen(i: int) -> str:
    body = f"110105{1950 + i % 50}0{1 + i % 9}1{i % 10}{i % 1000:03d}"
    return body + id_check_char(body)


def _face(code: str) -> dict[str, Any]:
    born = f"{code[6:10]}-{code[10:12]}-{code[12:14]}"
    return {
        "name": "张三",
        "sex": "男",
        "ethnicity": "汉",
        "birth_date": born,
        "address": "北京市东城区正义路1号",
        "id_number": code,
        "authority": "北京市公安局东城分局",
    }


def _row(
    name: str,
    value: float,
    unit: str,
    baseline_name: str,
    baseline_value: float,
    target: str = "",
    check: tuple[str, float] | None = None,
    per: float = 1.0,
) -> dict[str, object]:
    """A figure; `check` as in bench/run.py's summary of the targets, on the ratio times `per`."""
    row: dict[str, object] = {
        "name": name,
        "value": round(value, 2),
        "unit": unit,
        "baseline_name": baseline_name,
        "baseline_value": round(baseline_value, 2),
    }
    if target:
        row["target"] = target
    if check:
        row["check"] = check
    if per != 1.0:
        row["per"] = per
    return row


class World:
    """A data directory with a migrated database, an issuing department with a seal, a window, the catalogue."""

    def __init__(self, data_dir: Path, *, algorithm: str, database_url: str) -> None:
        from govhub.database import prepare
        from seal import service as seals
        from seal.schemas import SealCreate

        self.settings = Settings(
            data_dir=data_dir,
            database_url=database_url,
            master_key=MASTER_KEY,  # type: ignore[arg-type]
            public_url="http://127.0.0.1",
            run_scheduler=False,
        )
        self.engine = make_engine(self.settings.effective_database_url)
        prepare(self.engine, self.settings)
        self.factory = make_sessionmaker(self.engine)
        self.vault = KeyVault.from_settings(self.settings)
        with self.factory() as db:
            bureau = identity.create_department(
                db,
                who=CLI_ADMIN,
                data=DepartmentCreate(code=_uscc(), name="北京市公安局", level="province", region_code="110000"),
            )  # type: ignore[arg-type]
            window = identity.create_department(
                db,
                who=CLI_ADMIN,
                data=DepartmentCreate(code=_uscc(), name="北京市政务服务中心", level="province", region_code="110000"),
            )  # type: ignore[arg-type]
            picture = base64.b64encode(
                (ROOT / "bench" / "seal.svg").read_bytes() if (ROOT / "bench" / "seal.svg").exists() else _svg()
            ).decode()
            seal = seals.issue_seal(
                db,
                who=CLI_ADMIN,
                vault=self.vault,
                settings=self.settings,
                data=SealCreate.model_validate(
                    {
                        "department_id": bureau.id,
                        "name": "北京市公安局",
                        "seal_type": "电子证照专用章",
                        "algorithm": algorithm,
                        "picture": {"type": "svg", "data_base64": picture, "width_mm": 42, "height_mm": 42},
                        "valid_to": (utcnow() + timedelta(days=365)).isoformat(),
                    }
                ),
            )
            # The bureau lets the certificate hub seal its certificates' PDF copies (用印授权).
            office = Principal(subject="bench-admin", roles=frozenset({Role.DEPARTMENT_ADMIN}), department_id=bureau.id)
            seals.authorise(
                db,
                who=office,
                seal_id=seal.id,
                subject=seals.CERTHUB,
                subject_kind="system",
                may_use=True,
                may_approve=False,
                note=None,
            )
            service.load_types(db, who=CLI_ADMIN, definitions=service.example_types(), issuer_codes={ID_CARD: [bureau.code]})
            self.window_client = identity.create_client(
                db, who=CLI_ADMIN, data=ClientCreate(name="窗口", roles=["window"], department_id=window.id)
            ).client  # type: ignore[list-item]
            db.commit()
            self.bureau, self.window = bureau, window
        self.issuer = Principal(
            subject="bench", roles=frozenset({Role.DEPARTMENT_SYSTEM}), department_id=bureau.id, department_code=bureau.code
        )


def _svg() -> bytes:
    return (
        b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 100 100">'
        b'<circle cx="50" cy="50" r="46" fill="none" stroke="#d00" stroke-width="4"/></svg>'
    )


# ---- bulk issuance -----------------------------------------------------------------------------


def raw_signing_rate(world: World, seconds: float) -> float:
    from certhub import sealing

    with world.factory() as db:
        signer = sealing.department_signer(db, department_id=world.bureau.id, vault=world.vault)
    data = b"x" * 600
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        for _ in range(50):
            signer.sign(data)
        count += 50
    return count / (time.perf_counter() - started)


def bulk_rate(world: World, n: int, *, pdf: bool, offset: int) -> float:
    ctx = service.IssueContext(
        vault=world.vault, settings=world.settings, storage=LocalStore(world.settings.data_dir / "objects")
    )
    rows = (
        (
            i,
            {
                "type_code": ID_CARD,
                "holder": {"code": _citizen(offset + i), "kind": "person", "name": "张三"},
                "face": _face(_citizen(offset + i)),
                "render_pdf": pdf,
            },
        )
        for i in range(n)
    )
    started = time.perf_counter()
    with world.factory() as db:
        report = service.bulk_issue(db, who=world.issuer, ctx=ctx, rows=rows)
        db.commit()
    elapsed = time.perf_counter() - started
    assert report.issued == n, report.errors[:3]
    return n / elapsed


def ofd_copy_rate(world: World, n: int, *, offset: int) -> float:
    """Sealed OFD copies per second of certificates already issued (issued untimed, without copies): each copy
    is the page drawn (font subset, 2D code), the package sealed with the department's SM2 seal (the use checks,
    the OFD signature, the use recorded) and stored, as the hub makes a copy at issuance."""
    ctx = service.IssueContext(
        vault=world.vault, settings=world.settings, storage=LocalStore(world.settings.data_dir / "objects"), bulk=True
    )
    holders = [_citizen(offset + i) for i in range(n)]
    rows = (
        (
            i,
            {
                "type_code": ID_CARD,
                "holder": {"code": code, "kind": "person", "name": "张三"},
                "face": _face(code),
                "render_pdf": False,
            },
        )
        for i, code in enumerate(holders)
    )
    with world.factory() as db:
        report = service.bulk_issue(db, who=world.issuer, ctx=ctx, rows=rows)
        db.commit()
        assert report.issued == n, report.errors[:3]
        Certificate = service.Certificate
        certificates = list(
            db.scalars(select(Certificate).where(Certificate.holder_code.in_(holders), Certificate.ofd_key.is_(None)).limit(n))
        )
        ctype = ctx.type_by_code(db, ID_CARD)
        assert ctype is not None
        started = time.perf_counter()
        for certificate in certificates:
            certificate.ofd_key = service.ofd_copy(
                db, who=world.issuer, ctx=ctx, ctype=ctype, certificate=certificate, issuer_name=world.bureau.name
            )
        db.flush()
        db.commit()
        elapsed = time.perf_counter() - started
    return len(certificates) / elapsed


def ofd_rows(world: World | None, data_dir: Path, n: int, database_url: str) -> list[dict[str, object]]:
    """Sealed OFD certificate copies per second beside raw SM2 signatures per second, in the same run (an SM2
    world of its own when the main one is not SM2: an OFD copy is sealed with an SM2 seal); and, for information,
    bulk issuance where each certificate gets its sealed OFD copy."""
    if world is None:
        world = World(data_dir / "sm2", algorithm="SM2", database_url=database_url)
    raw = raw_signing_rate(world, 2.0)
    ofd_copy_rate(world, 3, offset=700_000)  # the font is read and the first glyphs decomposed once a process
    copies = ofd_copy_rate(world, n, offset=600_000)
    rate = bulk_rate(world, n, pdf=True, offset=800_000)  # render_pdf: the copy, OFD by default with an SM2 seal
    raw_after = raw_signing_rate(world, 1.0)
    world.engine.dispose()
    raw = (raw + raw_after) / 2  # the baseline before and after, so that a slow spell weighs on both sides
    return [
        _row(
            f"sealed OFD certificate copies, {n} issued certificates (SM2; one process: OFD page, OFD signature, use record)",
            copies,
            "copies/s",
            "raw SM2 signatures/s",
            raw,
            ">= 10% of baseline",
            (">=", 0.10),
        ),
        _row(
            f"bulk issuance of {n} certificates with a sealed OFD copy each (SM2; one process: certificate + copy)",
            rate,
            "certs/s",
            "raw SM2 signatures/s",
            raw,
        ),
    ]


# ---- HTTP verification --------------------------------------------------------------------------


def verification_rows(
    world: World, *, seconds: float, connections: int, workers: int = 1, rounds: int = 5, profile: str | None = None
) -> list[dict[str, object]]:
    ctx = service.IssueContext(vault=world.vault, settings=world.settings)
    with world.factory() as db:
        holder = _citizen(999_999)
        certificate, _ = service.issue(
            db,
            who=world.issuer,
            ctx=ctx,
            data=IssueRequest.model_validate(
                {
                    "type_code": ID_CARD,
                    "holder": {"code": holder, "kind": "person", "name": "张三"},
                    "face": _face(holder),
                    "render_pdf": False,
                }
            ),
        )
        hub_signer = service.hub_signer(db, vault=world.vault)
        db.commit()
        sd_jwt = certificate.sd_jwt
    token = KeyRing(world.factory, world.vault, world.settings).issue(
        subject=world.window_client.client_id, audience=world.settings.token_audience, issuer=world.settings.issuer, ttl=3600,
        roles=["window"], client_name="窗口", dept=world.window.id, dept_code=world.window.code,
    )  # fmt: skip
    hub = HubProcess(
        database_url=world.settings.database_url,
        env={"GOVHUB_MASTER_KEY": MASTER_KEY, "GOVHUB_PUBLIC_URL": "http://127.0.0.1", "GOVHUB_DATABASE_POOL_SIZE": "40"},
        workers=workers,
        scheduler=False,
        data_dir=world.settings.data_dir,
    ).start(timeout=60)
    assert hub.proc is not None
    hub_pid = hub.proc.pid
    try:
        trivial = http_request("GET", "/healthz")
        # Each holder wallet makes a fresh presentation (a fresh nonce): pre-made here, as many as can be used.
        budget = int(seconds * (6000 if profile else 3000)) + 1000
        requests = []
        for _ in range(budget):
            presentation = sdjwt.present(
                sd_jwt,
                ["CZZT", "name"],
                hub_signer=hub_signer,
                audience=world.window.code,
                nonce=secrets.token_urlsafe(12),
                ttl_seconds=300,
            )
            requests.append(
                http_request(
                    "POST",
                    "/certhub/verifications",
                    headers={"Authorization": f"Bearer {token}"},
                    json_body={"token": presentation},
                )
            )

        unsent = iter(requests)  # each presentation is sent once (a second time it would be a replay)

        def verifications(_n: int) -> bytes | None:
            return next(unsent, None)

        def valid(head: bytes, body: bytes) -> bool:
            return head.startswith(b"HTTP/1.1 200") and b'"valid":false' not in body

        measure(hub.port, verifications, connections=8, seconds=2, ok=valid)  # warm-up (key and status caches)
        if profile:  # where the hub's time goes, sampled by py-spy during a load of its own
            spy = start_profile(hub_pid, seconds, profile)
            if spy is not None:
                measure(hub.port, verifications, connections=connections, seconds=seconds, ok=valid)
                spy.wait(timeout=seconds + 30)
                print(profile_summary(profile), flush=True)
        # Turn about, so that a slow spell of the machine falls on both.
        base, result = alternate(
            hub.port, [(lambda _n: trivial, status_ok), (verifications, valid)],
            rounds=rounds, connections=connections, seconds=seconds / rounds, pid=hub_pid,
        )  # fmt: skip
        errors = result.errors
        batch = average_batch(hub.port, "verifications")
    finally:
        hub.stop()
        tail = (world.settings.data_dir / "hub.log").read_text(errors="replace").splitlines()[-5:]
    if errors:
        print("hub log (last lines):", *tail, sep="\n  ", file=sys.stderr)
        print(f"warning: {errors} verification request(s) did not return a valid verdict", file=sys.stderr)
    return [
        _row(
            f"presentation verifications/s over HTTP ({connections} connections, {workers} worker process(es))",
            result.rate,
            "req/s",
            "GET /healthz req/s, same server",
            base.rate,
            ">= 50% of baseline",
            (">=", 0.5),
        ),
        _row(
            "hub CPU time per verification (all threads)",
            result.cpu_ms or 0.0,
            "ms",
            "hub CPU time per GET /healthz",
            base.cpu_ms or 0.0,
        ),
        _row("verifications committed together (average group-commit batch)", batch, "items", "", 0.0),
        _row(f"verification p50 latency ({connections} connections)", result.p50_ms, "ms", "GET /healthz p50 ms", base.p50_ms),
        _row(
            f"verification p99 latency ({connections} connections)",
            result.p99_ms,
            "ms",
            f"GET /healthz p99 ms ({connections} connections)",
            base.p99_ms,
            "<= 2x baseline",
            ("<=", 2.0),
        ),
        _row(
            "verifications failed",
            float(errors),
            "req",
            "verifications answered",
            float(round(result.rate * seconds)),
            "0",
            ("none", 0.0),
        ),
    ]


def main(argv: list[str] | None = None) -> list[dict[str, object]]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full", action="store_true", help="the sizes the issue names (10,000 certificates)")
    parser.add_argument("--algorithm", default="ES256", choices=["ES256", "EdDSA", "SM2"], help="the seal's algorithm")
    parser.add_argument("--part", choices=["all", "verify", "bulk", "ofd"], default="all", help="run only one part")
    parser.add_argument("--workers", type=int, default=1, help="hub worker processes (govhub serve --workers)")
    parser.add_argument("--quick", action="store_true", help="the default sizes (for bench/run.py --quick)")
    parser.add_argument(
        "--postgres",
        "--database-url",
        default=os.environ.get("GOVHUB_BENCH_POSTGRES_URL", ""),
        help="a PostgreSQL server URL: the benchmark creates and drops its own database there (default: SQLite)",
    )
    parser.add_argument("--profile", metavar="FILE", help="sample the hub with py-spy during the verifications (into FILE)")
    args = parser.parse_args(argv)
    n = 10_000 if args.full else 1_000
    n_pdf = 1_000 if args.full else 100
    n_ofd = 500 if args.full else 150  # 50 copies took under a second: too short a figure on a shared machine
    seconds = 15.0 if args.full else 10.0  # load time of each endpoint, taken in 5 turns
    data_dir = Path(tempfile.mkdtemp(prefix="certhub-bench-"))
    rows: list[dict[str, object]] = []
    database_url, pg_name = "", ""
    if args.postgres:
        database_url, pg_name = fresh_postgres(args.postgres)
    try:
        world = World(data_dir, algorithm=args.algorithm, database_url=database_url)
        if args.part in ("all", "verify"):
            rows += verification_rows(world, seconds=seconds, connections=64, workers=args.workers, profile=args.profile)
        if args.part == "verify":
            world.engine.dispose()
            return _print(rows)
        if args.part == "ofd":
            world.engine.dispose()
            return _print(_ofd_part(world, args, data_dir, n_ofd, database_url))
        # The raw rate before and after the bulk run, averaged: on a shared machine one reading alone can
        # land in a busier or quieter second than the run it is compared with.
        raw_before = raw_signing_rate(world, 2.0)
        rate = bulk_rate(world, n, pdf=False, offset=0)
        raw = (raw_before + raw_signing_rate(world, 2.0)) / 2
        rows.append(
            _row(
                f"bulk issuance of {n} certificates, no PDF ({args.algorithm}; one process, 2 signatures each)",
                rate,
                "certs/s",
                f"raw {args.algorithm} signatures/s",
                raw,
                ">= 25% of baseline per signature (2 a certificate)",
                (">=", 0.25),
                per=2.0,
            )
        )
        rate_pdf = bulk_rate(world, n_pdf, pdf=True, offset=n)
        rows.append(
            _row(
                f"bulk issuance of {n_pdf} certificates with sealed PDF ({args.algorithm}; one process, + PAdES seal)",
                rate_pdf,
                "certs/s",
                f"raw {args.algorithm} signatures/s",
                raw,
            )
        )
        world.engine.dispose()
        rows += _ofd_part(world, args, data_dir, n_ofd, database_url)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
        if pg_name:
            drop_postgres(args.postgres, pg_name)
    return _print(rows)


def _ofd_part(world: World, args: argparse.Namespace, data_dir: Path, n: int, database_url: str) -> list[dict[str, object]]:
    """The OFD figures: in the main world when it is SM2, else in an SM2 world of its own (on PostgreSQL a
    fresh database of its own too: the main world's departments and types are already in the first one)."""
    if args.algorithm == "SM2":
        return ofd_rows(world, data_dir, n, database_url)
    if not args.postgres:
        return ofd_rows(None, data_dir, n, "")
    sm2_url, sm2_name = fresh_postgres(args.postgres)
    try:
        return ofd_rows(None, data_dir, n, sm2_url)
    finally:
        drop_postgres(args.postgres, sm2_name)


def _print(rows: list[dict[str, object]]) -> list[dict[str, object]]:
    for row in rows:
        print(json.dumps(row, ensure_ascii=False))
    return rows


if __name__ == "__main__":
    main(sys.argv[1:])
