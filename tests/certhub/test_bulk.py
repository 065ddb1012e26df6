"""Bulk issuance (归集) from CSV or JSON Lines: valid rows issued, invalid rows reported, none half-issued."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from certhub.models import Certificate
from govhub.cli import main
from ops.config import get_settings
from tests.certhub.conftest import ID_CARD, World, id_face
from tests.conftest import MASTER_KEY
from tests.factories import citizen_id, corrupt_check, uscc


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


def test_bulk_needs_a_known_format(world: World) -> None:
    response = world.client.post(
        "/certhub/certificates/bulk", content=b"x", headers={**world.issuer.headers, "Content-Type": "application/xml"}
    )
    assert response.status_code == 400 and "x-ndjson" in response.json()["detail"]


@pytest.fixture()
def govhub(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Iterator[Callable[..., tuple[str, str]]]:
    """Run `govhub …` in this process on a fresh data directory; returns (stdout, stderr)."""
    monkeypatch.setenv("GOVHUB_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("GOVHUB_MASTER_KEY", MASTER_KEY)
    monkeypatch.delenv("GOVHUB_DATABASE_URL", raising=False)
    get_settings.cache_clear()

    def run(*args: str) -> tuple[str, str]:
        main(list(args))
        captured = capsys.readouterr()
        return captured.out, captured.err

    yield run
    get_settings.cache_clear()


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
    assert "3 of 4 row(s) issued, 1 refused" in out and "row 4:" in out
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
