"""Bulk issuance (归集) from CSV or JSON Lines: valid rows issued, invalid rows reported, none half-issued."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text, update

from certhub import bulk, repository, sdjwt, service
from certhub.models import Certificate, Counter
from ops.audit import AuditRecord
from tests.certhub.conftest import ID_CARD, World, id_face
from tests.factories import citizen_id, corrupt_check, uscc


@pytest.fixture(params=["in turn", "beside"])
def writer(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """A chunk written in turn with the signing (as on SQLite) or by a writer thread while the next is signed
    (as on PostgreSQL): both, on either database."""
    monkeypatch.setattr(bulk, "_writes_beside", lambda _db: request.param == "beside")


def _jsonl(rows: list[dict[str, object]]) -> str:
    return "\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n"


def test_bulk_json_lines_issue_the_valid_rows_and_report_the_others(world: World) -> None:
    good = [citizen_id() for _ in range(3)]
    bad = corrupt_check(citizen_id())
    rows: list[dict[str, object]] = [
        {"holder": {"code": code, "kind": "person", "name": "张三"}, "face": id_face(code), "idempotency_key": f"row-{i}"}
        for i, code in enumerate(good)
    ]
    rows.insert(1, {"holder": {"code": bad, "kind": "person", "name": "李四"}, "face": id_face(bad)})
    rows.insert(3, {"holder": {"code": good[0], "kind": "person", "name": "王五"}, "face": {"name": "王五"}})
    body = _jsonl(rows) + "{not json\n"
    response = world.client.post(
        f"/certhub/certificates/bulk?type_code={ID_CARD}",
        content=body.encode(),
        headers={**world.issuer.headers, "Content-Type": "application/x-ndjson"},
    )
    assert response.status_code == 200, response.text
    report = response.json()
    assert (report["total"], report["issued"], report["failed"]) == (6, 3, 3)
    assert [e["row"] for e in report["errors"]] == [2, 4, 6]
    assert "GB 11643" in report["errors"][0]["message"] and "schema" in report["errors"][1]["message"]
    assert "not valid JSON" in report["errors"][2]["message"]
    with world.hub.factory() as db:
        holders = set(db.scalars(select(Certificate.holder_code).where(Certificate.identifier.in_(report["identifiers"]))))
        assert holders == set(good)
        assert db.scalar(select(func.count()).select_from(Certificate).where(Certificate.holder_code == bad)) == 0
    # the same file again: the idempotency keys return the same certificates, nothing new
    again = world.client.post(
        f"/certhub/certificates/bulk?type_code={ID_CARD}",
        content=body.encode(),
        headers={**world.issuer.headers, "Content-Type": "application/x-ndjson"},
    ).json()
    assert again["identifiers"] == report["identifiers"]
    assert (again["total"], again["issued"], again["replayed"], again["failed"]) == (6, 0, 3, 3)


def test_bulk_needs_a_known_format(world: World) -> None:
    response = world.client.post(
        "/certhub/certificates/bulk", content=b"x", headers={**world.issuer.headers, "Content-Type": "application/xml"}
    )
    assert response.status_code == 415 and "x-ndjson" in response.json()["detail"]  # refused before it is read


def test_an_operator_loads_the_catalogue_and_bulk_issues_a_csv_with_a_progress_bar(
    tmp_path: Path, govhub: Callable[..., tuple[str, str]]
) -> None:
    from tests.seal.helpers import png_picture

    govhub("db", "upgrade")
    code = uscc(region="110000")
    govhub("departments", "create", "--code", code, "--name", "北京市公安局", "--level", "province", "--region", "110000")
    picture = tmp_path / "seal.png"
    picture.write_bytes(png_picture())
    govhub(
        "seals", "issue", "--department", code, "--name", "北京市公安局", "--type", "电子证照专用章",
        "--algorithm", "EdDSA", "--picture", str(picture),
    )  # fmt: skip
    out, _ = govhub("certhub", "types", "load-examples", "--allow", f"{ID_CARD}={code}")
    assert "loaded 7 example type(s)" in out
    out, _ = govhub("certhub", "types", "list")
    assert f"{ID_CARD}  居民身份证  holder=person  issuers={code}" in out
    holders = [citizen_id() for _ in range(4)]
    header = "holder_code,holder_name,name,sex,ethnicity,birth_date,address,id_number,authority"
    lines = [header]
    for i, holder in enumerate(holders):
        face = id_face(holder)
        sex = "男" if i != 2 else "X"  # row 4 of the file has a sex outside the schema
        lines.append(f"{holder},张三,{face['name']},{sex},汉,{face['birth_date']},北京市东城区,{holder},东城分局")
    source = tmp_path / "ids.csv"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = tmp_path / "report.json"
    out, err = govhub("certhub", "bulk-issue", str(source), "--department", code, "--type", ID_CARD, "--report", str(report))
    assert "4 row(s): 3 issued, 0 replayed" in out and ", 1 failed" in out and "row 4:" in out
    assert "[##############################] 4/4 issued 3 failed 1" in err
    errors = json.loads(report.read_text(encoding="utf-8"))["errors"]
    assert errors[0]["row"] == 4 and errors[0]["errors"][0]["field"] == "face.sex"
    with pytest.raises(SystemExit, match="no department with code"):
        govhub("certhub", "bulk-issue", str(source), "--department", uscc(), "--type", ID_CARD)


def test_a_csv_of_real_estate_certificates_gets_its_numbers_typed_by_the_schema(world: World) -> None:
    estate = "11100000MB19678659001"  # 不动产权证书
    assert world.issuer.department is not None
    world.client.patch(
        f"/certhub/types/{estate}", json={"issuer_codes": [world.issuer.department.code]}, headers=world.hub.admin.headers
    )
    owner = citizen_id()
    header = "holder_code,holder_name,owner,co_ownership,location,unit_number,right_type,usage,area"
    good = f"{owner},张三,张三,单独所有,北京市东城区某路1号,110101001001GB00001F00010001,国有建设用地使用权/房屋所有权,住宅,89.5"
    bad = f"{owner},张三,张三,单独所有,北京市东城区某路2号,110101001001GB00001F00010002,国有建设用地使用权/房屋所有权,住宅,很大"
    response = world.client.post(
        f"/certhub/certificates/bulk?type_code={estate}",
        content="\n".join([header, good, bad]).encode(),
        headers={**world.issuer.headers, "Content-Type": "text/csv"},
    )
    report = response.json()
    assert (report["issued"], report["failed"]) == (1, 1) and report["errors"][0]["row"] == 3
    assert report["errors"][0]["errors"][0]["field"] == "face.area"
    cert = world.client.get(f"/certhub/certificates/{report['identifiers'][0]}", headers=world.issuer.headers).json()
    assert cert["face"]["area"] == 89.5


def _bulk(world: World, rows: list[dict[str, object]]) -> dict[str, Any]:
    response = world.client.post(
        f"/certhub/certificates/bulk?type_code={ID_CARD}",
        content=_jsonl(rows).encode(),
        headers={**world.issuer.headers, "Content-Type": "application/x-ndjson"},
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def _id_row(holder: str, **extra: object) -> dict[str, object]:
    return {"holder": {"code": holder, "kind": "person", "name": "张三"}, "face": id_face(holder), **extra}


def _issue_records(world: World, identifiers: list[str]) -> int:
    with world.hub.factory() as db:
        query = select(func.count()).select_from(AuditRecord)
        query = query.where(AuditRecord.action == "certificate.issue", AuditRecord.object_id.in_(identifiers))
        return int(db.scalar(query) or 0)


def test_a_file_of_several_chunks_gets_consecutive_serials_and_every_certificate_verifies(
    world: World, monkeypatch: pytest.MonkeyPatch, writer: None
) -> None:
    monkeypatch.setattr(bulk, "BULK_CHUNK", 4)
    holders = [citizen_id() for _ in range(10)]
    rows = [_id_row(h) for h in holders]
    rows[5]["face"] = id_face(holders[5], sex="未知")  # row 6: refused by the schema, in the middle of the second chunk
    report = _bulk(world, rows)
    assert (report["total"], report["issued"], report["failed"]) == (10, 9, 1)
    assert report["errors"][0]["row"] == 6 and report["errors"][0]["errors"][0]["field"] == "face.sex"
    identifiers = report["identifiers"]
    assert len(set(identifiers)) == 9
    jwks = world.client.get("/certhub/.well-known/jwks.json").json()["keys"]
    serials, indices = [], set()
    for identifier in identifiers:
        assert service.identifier_problem(identifier) is None
        cert = world.client.get(f"/certhub/certificates/{identifier}", headers=world.issuer.headers).json()
        serials.append(int(cert["serial"]))
        indices.add(cert["status_index"])
        for token in (cert["jws"], sdjwt.split_sd_jwt(cert["sd_jwt"])[0]):
            parsed = sdjwt.parse_jws(token)
            key = next(k for k in jwks if k["kid"] == parsed.header["kid"])
            assert sdjwt.default_signature_check(alg=key["alg"], jwk=key, data=parsed.signing_input, signature=parsed.signature)
    # rows in file order, serials without gaps (the refused row took none), one status-list position each
    assert serials == list(range(serials[0], serials[0] + 9)) and len(indices) == 9
    assert [c["holder_code"] for c in _certs(world, identifiers)] == [h for i, h in enumerate(holders) if i != 5]
    # one audit record per certificate, and the run's own record
    assert _issue_records(world, identifiers) == 9
    with world.hub.factory() as db:
        run = db.scalars(select(AuditRecord).where(AuditRecord.action == "certificate.bulk_issue")).one()
        assert run.object_id == "9/10" and run.detail == {"replayed": 0, "failed": 1}
    # a holder shows one of them at a window: it verifies like any other certificate
    presentation = world.show(world.hub.holder(holders[9]), identifiers[-1], fields=["name"])
    assert world.verify(presentation["token"], nonce=presentation["nonce"])["valid"] is True


def _certs(world: World, identifiers: list[str]) -> list[dict[str, Any]]:
    return [world.client.get(f"/certhub/certificates/{i}", headers=world.issuer.headers).json() for i in identifiers]


def test_a_row_the_database_refuses_is_reported_and_the_rest_of_its_chunk_is_issued(world: World, writer: None) -> None:
    # The serial counter lags behind the stored certificates (say, restored from an older backup):
    # the second row of the chunk gets the identifier a certificate already holds.
    taken = world.issue()
    series = f"serial:{taken['type_code']}:{taken['issuer_code']}"
    with world.hub.factory() as db:
        assert db.scalar(select(func.count()).where(Certificate.serial == f"{int(taken['serial']) - 1:010d}")) == 0
        db.execute(update(Counter).where(Counter.name == series).values(next_value=int(taken["serial"]) - 1))
        db.commit()
    holders = [citizen_id() for _ in range(3)]
    report = _bulk(world, [_id_row(h) for h in holders])
    assert (report["total"], report["issued"], report["failed"]) == (3, 2, 1)
    error = report["errors"][0]
    assert error["row"] == 2 and error["message"].startswith("the database refused the certificate")
    assert error["errors"][0]["field"] == "row"
    assert [c["holder_code"] for c in _certs(world, report["identifiers"])] == [holders[0], holders[2]]
    with world.hub.factory() as db:
        assert db.scalar(select(func.count()).where(Certificate.holder_code == holders[1])) == 0
    # nothing half-issued: no audit record for the refused row either
    assert _issue_records(world, report["identifiers"]) == 2


def test_an_error_while_a_chunk_is_written_stops_the_run_and_nothing_is_issued(
    world: World, monkeypatch: pytest.MonkeyPatch, writer: None
) -> None:
    monkeypatch.setattr(bulk, "BULK_CHUNK", 2)
    real = repository.insert_certificates
    chunks: list[int] = []

    def lost_on_the_second_chunk(db: Any, rows: list[dict[str, Any]]) -> None:
        chunks.append(len(rows))
        if len(chunks) == 2:
            raise RuntimeError("the server closed the connection")
        real(db, rows)

    monkeypatch.setattr(repository, "insert_certificates", lost_on_the_second_chunk)
    holders = [citizen_id() for _ in range(5)]
    response = world.client.post(
        f"/certhub/certificates/bulk?type_code={ID_CARD}",
        content=_jsonl([_id_row(h) for h in holders]).encode(),
        headers={**world.issuer.headers, "Content-Type": "application/x-ndjson"},
    )
    assert response.status_code == 500 and chunks == [2, 2]  # the run stopped at the error: no third chunk written
    with world.hub.factory() as db:  # the first chunk, written before, was rolled back with the rest
        assert db.scalar(select(func.count()).where(Certificate.holder_code.in_(holders))) == 0
        assert db.scalar(select(func.count()).where(AuditRecord.action == "certificate.bulk_issue")) == 0


@pytest.mark.parametrize("chunk", [1, 500])  # the earlier row with the key in the same chunk, or in one signed before
def test_an_idempotency_key_repeated_in_one_file_returns_the_first_certificate_or_is_refused(
    world: World, monkeypatch: pytest.MonkeyPatch, writer: None, chunk: int
) -> None:
    monkeypatch.setattr(bulk, "BULK_CHUNK", chunk)
    first, other = citizen_id(), citizen_id()
    rows = [
        _id_row(first, idempotency_key="k-1"),
        _id_row(first, idempotency_key="k-1"),  # the same request again: the same certificate
        _id_row(other, idempotency_key="k-1"),  # another request under the same key: refused
        _id_row(other, idempotency_key="k-2"),
    ]
    report = _bulk(world, rows)
    assert (report["issued"], report["replayed"], report["failed"]) == (2, 1, 1)
    assert report["identifiers"][0] == report["identifiers"][1] != report["identifiers"][2]
    assert report["errors"][0]["row"] == 3 and report["errors"][0]["errors"][0]["field"] == "Idempotency-Key"
    with world.hub.factory() as db:
        assert db.scalar(select(func.count()).where(Certificate.holder_code == first)) == 1


def test_rows_with_a_sealed_pdf_keep_their_place_among_the_others(world: World, writer: None) -> None:
    holders = [citizen_id() for _ in range(3)]
    report = _bulk(world, [_id_row(holders[0]), _id_row(holders[1], render_pdf=True), _id_row(holders[2])])
    assert report["issued"] == 3
    certs = _certs(world, report["identifiers"])
    assert [c["holder_code"] for c in certs] == holders
    assert [c["has_pdf"] for c in certs] == [False, True, False]
    serials = [int(c["serial"]) for c in certs]
    assert serials == [serials[0], serials[0] + 1, serials[0] + 2]


def test_bulk_certificates_check_out_with_an_independent_jose_library(world: World) -> None:
    """Both tokens of bulk-issued certificates, read by joserfc and hashlib rather than by the hub's own code:
    the signatures verify with the published keys, every disclosure is one the issuer signed, and together
    the disclosures say what the clear JWS says."""
    import base64
    import hashlib

    from joserfc import jws
    from joserfc.jwk import JWKRegistry

    holders = [citizen_id() for _ in range(3)]
    report = _bulk(world, [_id_row(h) for h in holders])
    assert report["issued"] == 3
    jwks = world.client.get("/certhub/.well-known/jwks.json").json()["keys"]

    def verified(token: str) -> dict[str, Any]:
        header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
        jwk = next(k for k in jwks if k["kid"] == header["kid"])
        payload = jws.deserialize_compact(token, JWKRegistry.import_key(jwk), algorithms=[jwk["alg"]]).payload
        return dict(json.loads(payload))

    salts: set[str] = set()
    for cert, holder in zip(_certs(world, report["identifiers"]), holders, strict=True):
        clear = verified(cert["jws"])
        assert clear["sub"] == holder and clear["face"] == id_face(holder) and clear["jti"] == cert["identifier"]
        issuer_jwt, *disclosures, last = cert["sd_jwt"].split("~")
        assert last == ""  # no key binding in the stored credential
        signed = verified(issuer_jwt)
        assert signed["_sd_alg"] == "sha-256" and signed["jti"] == cert["identifier"]
        digests = set(signed["_sd"])
        revealed: dict[str, Any] = {}
        for disclosure in disclosures:
            digest = base64.urlsafe_b64encode(hashlib.sha256(disclosure.encode()).digest()).rstrip(b"=").decode()
            assert digest in digests
            salt, name, value = json.loads(base64.urlsafe_b64decode(disclosure + "=" * (-len(disclosure) % 4)))
            assert len(base64.urlsafe_b64decode(salt + "=" * (-len(salt) % 4))) >= 16  # at least 128 bits
            salts.add(salt)
            revealed[name] = value
        assert len(revealed) == len(digests) == len(disclosures)
        assert {k: revealed[k] for k in clear["face"]} == clear["face"]
        assert revealed["CZZTDM"] == holder and revealed["ZZBH"] == clear["meta"]["ZZBH"]
    assert len(salts) == sum(len(c["sd_jwt"].split("~")) - 2 for c in _certs(world, report["identifiers"]))


def test_on_postgresql_the_certificates_tokens_are_stored_with_lz4(world: World) -> None:
    """The migration 0025_bulk_speed: PostgreSQL compresses a certificate's two tokens with lz4 (faster to
    write than its default), where the server has lz4; the certificates read back whole."""
    with world.hub.factory() as db:
        if db.get_bind().dialect.name != "postgresql":
            pytest.skip("a PostgreSQL storage setting")
        lz4 = db.scalar(text("SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'"))
        settings = dict(
            db.execute(
                text(
                    "SELECT attname, attcompression FROM pg_attribute "
                    "WHERE attrelid = 'certificates'::regclass AND attname IN ('jws', 'sd_jwt')"
                )
            ).all()
        )
    assert settings == ({"jws": "l", "sd_jwt": "l"} if lz4 else {"jws": "", "sd_jwt": ""})
    holders = [citizen_id() for _ in range(2)]
    report = _bulk(world, [_id_row(h) for h in holders])
    for cert in _certs(world, report["identifiers"]):
        assert sdjwt.parse_jws(cert["jws"]).payload["sub"] in holders
        assert sdjwt.split_sd_jwt(cert["sd_jwt"])[2] == ""


def test_token_payloads_with_what_the_fast_json_writer_refuses_are_still_signed() -> None:
    """orjson refuses an integer beyond 64 bits; such a value (a face field is any JSON) is written by the
    standard library instead, and the token reads back with its value and every disclosure's digest."""

    class FixedSigner:
        alg, kid = "ES256", "test"

        def sign(self, data: bytes) -> bytes:
            return bytes(64)

    big = 2**70
    token = sdjwt.issue_sd_jwt(FixedSigner(), clear={"iss": "hub", "n": big}, disclosable={"area": big, "name": "张三"})
    issuer_jwt, disclosures, _ = sdjwt.split_sd_jwt(token)
    payload = sdjwt.parse_jws(issuer_jwt).payload
    assert payload["n"] == big
    assert dict(sdjwt.decode_disclosure(d) for d in disclosures) == {"area": big, "name": "张三"}
    assert sorted(sdjwt.disclosure_digest(d) for d in disclosures) == payload["_sd"]
