"""电子档案: a certificate version archived as a BagIt package, and 四性检测 of the package on its own.

bagit-python, an independent implementation of RFC 8493, validates every package written here.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import bagit
import pytest

from certhub import service
from ops.archive import service as archive
from ops.auditlog import service as auditlog
from tests.certhub.conftest import World

ROOT = Path(__file__).resolve().parents[2]


def _checkpoint(world: World) -> None:
    with world.hub.factory() as db:
        auditlog.checkpoint_now(
            db, vault=world.hub.app.state.vault, store=world.hub.app.state.storage, force=True, grace_seconds=0
        )
        db.commit()


def _archived(world: World, *, pdf: bool = True) -> tuple[dict[str, Any], bytes]:
    """Issue a certificate (with its sealed PDF copy), sign a checkpoint, archive it and download the package."""
    cert = world.issue(render_pdf=pdf)
    _checkpoint(world)
    url = f"/certhub/certificates/{cert['identifier']}"
    made = world.client.post(f"{url}/archive", headers=world.issuer.headers)
    assert made.status_code == 201, made.text
    listed = world.client.get(f"{url}/archive-packages", headers=world.issuer.headers)
    assert [p["id"] for p in listed.json()["items"]] == [made.json()["id"]]
    got = world.client.get(f"{url}/archive-packages/{made.json()['id']}", headers=world.issuer.headers)
    assert got.status_code == 200 and got.headers["content-type"] == "application/zip"
    assert len(got.content) == made.json()["size"] and archive.digest("sm3", got.content) == made.json()["sm3"]
    return cert, got.content


def _unpack(data: bytes, where: Path) -> Path:
    zipfile.ZipFile(io.BytesIO(data)).extractall(where)
    [root] = list(where.iterdir())
    return root


def _rezip(files: dict[str, bytes], root: str = "bag") -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for name, data in files.items():
            z.writestr(f"{root}/{name}", data)
    return out.getvalue()


def _check(files: dict[str, bytes]) -> archive.Report:
    return archive.check_bag(archive.Bag(dict(files)), service.ARCHIVE_PROFILES)


def test_an_archived_certificate_passes_the_four_checks_from_the_package_alone(world: World, tmp_path: Path) -> None:
    cert, data = _archived(world)
    bag_dir = _unpack(data, tmp_path / "unpacked")
    bag = bagit.Bag(str(bag_dir))
    bag.validate()  # raises on any fixity, completeness or Oxum problem
    assert "sha256" in bag.algorithms and (bag_dir / "manifest-sm3.txt").is_file()
    names = {p.relative_to(bag_dir).as_posix() for p in bag_dir.rglob("*") if p.is_file()}
    assert {"data/original/credential.jws", "data/original/credential.sd-jwt", "data/original/copy.pdf",
            "data/metadata/dat46.json", "data/metadata/gbt36903.json", "data/signature/issuer-key.json",
            "data/evidence/checkpoint.json", "data/evidence/audit-inclusion.json", "tagmanifest-sm3.txt"} <= names  # fmt: skip
    dat46 = json.loads((bag_dir / "data/metadata/dat46.json").read_text())
    assert dat46["电子文件号"] == cert["identifier"]
    # Everything but the package is dropped: the check runs in another process with no usable database.
    package = tmp_path / "package.zip"
    package.write_bytes(data)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOVHUB_")}
    env |= {"GOVHUB_DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:1/none", "PYTHONPATH": str(ROOT)}
    for target in (package, bag_dir):
        run = subprocess.run(
            [sys.executable, "-m", "govhub.cli", "archive", "check", str(target)],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
        )
        assert run.returncode == 0, run.stdout + run.stderr
        report = json.loads(run.stdout)
        assert report["ok"] and report["identifier"] == cert["identifier"]
        assert report["properties"] == {"authenticity": True, "integrity": True, "usability": True, "security": True}
        checks = {f["check"] for f in report["findings"]}
        wanted = {
            "credential signature",
            "checkpoint signature",
            "audit inclusion",
            "metadata signed",
            "manifest sm3",
            "tagmanifest sm3",
        }
        assert wanted <= checks
        seals = [f for f in report["findings"] if f["check"] == "seal"]
        assert seals and all(f["ok"] for f in seals) and "chains to the hub CA" in seals[0]["reason"]
    # With the keys the hub publishes, the package's keys are checked against them too.
    jwks = world.client.get("/certhub/.well-known/jwks.json").json()
    log_keys = world.client.get("/audit/log/keys", headers=world.hub.admin.headers).json()
    (tmp_path / "jwks.json").write_text(json.dumps(jwks))
    (tmp_path / "log-keys.json").write_text(json.dumps(log_keys))
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "govhub.cli",
            "archive",
            "check",
            str(package),
            "--trust",
            "jwks.json",
            "--trust",
            "log-keys.json",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    trusted = {f["check"]: f["ok"] for f in json.loads(run.stdout)["findings"] if "trusted" in f["check"]}
    assert trusted == {"checkpoint key trusted": True, "issuer key trusted": True}
    # A forger who changes the sealed PDF and recomputes every manifest and the metadata is caught by the seal.
    files = archive.read_zip(data).files
    pdf = files["data/original/copy.pdf"]
    at = pdf.index(b"STSong") if b"STSong" in pdf else len(pdf) // 3
    forged_pdf = pdf[:at] + b"STSonh" + pdf[at + 6 :]
    dat46 = json.loads(files["data/metadata/dat46.json"])
    for entry in dat46["计算机文件"]:
        if entry["计算机文件名"] == "original/copy.pdf":
            entry.update({"SHA-256": archive.digest("sha256", forged_pdf), "SM3": archive.digest("sm3", forged_pdf)})
    forged = _rebag(files, {"original/copy.pdf": forged_pdf, "metadata/dat46.json": json.dumps(dat46).encode()})
    failures = _check(forged).failures()
    assert [(f.check, f.file) for f in failures] == [("seal", "data/original/copy.pdf")], failures
    assert "the sealed bytes were altered" in failures[0].reason
    # The endpoint gives the same verdict.
    response = world.client.post(
        "/archive/check", files={"file": ("package.zip", data, "application/zip")}, headers=world.hub.admin.headers
    )
    assert response.status_code == 200 and response.json()["ok"], response.text


def test_one_changed_byte_anywhere_fails_naming_the_file(world: World, tmp_path: Path) -> None:
    _, data = _archived(world, pdf=False)
    files = archive.read_zip(data).files
    assert _check(files).ok
    for number, name in enumerate(files):
        changed = dict(files)
        content = bytearray(changed[name])
        content[len(content) // 2] ^= 0x01
        changed[name] = bytes(content)
        report = _check(changed)
        assert not report.ok, name
        assert any(name == f.file or name in f.reason for f in report.failures()), (name, report.failures())
        # bagit-python agrees, except on the SM3 tag manifest, which it does not read (no tag manifest covers another)
        where = _unpack(_rezip(changed), tmp_path / f"case{number}")
        try:
            valid = bagit.Bag(str(where)).is_valid()
        except (bagit.BagError, ValueError):  # ValueError: bagit-python trips over some damaged manifests
            valid = False
        assert valid == (name in ("tagmanifest-sm3.txt", "timestamp.tsr")), name  # bagit-python reads neither


@pytest.mark.parametrize("world", ["ES256"], indirect=True)
def test_bad_packages_are_reported_with_their_reason(world: World) -> None:
    cert, data = _archived(world, pdf=False)
    files = archive.read_zip(data).files

    missing = {k: v for k, v in files.items() if k != "data/original/credential.jws"}
    reasons = [f.reason for f in _check(missing).failures()]
    assert "manifest-sha256.txt lists data/original/credential.jws, absent from the package" in reasons
    assert "manifest-sm3.txt lists data/original/credential.jws, absent from the package" in reasons

    extra = dict(files, **{"data/notes.txt": b"added later"})
    reasons = [f.reason for f in _check(extra).failures()]
    assert "data/notes.txt is in the package but not in manifest-sha256.txt" in reasons

    # A changed metadata value, with the manifests recomputed so that fixity alone does not catch it.
    meta = json.loads(files["data/metadata/gbt36903.json"])
    meta["CZZT"] = "李四"
    forged = _rebag(files, {"metadata/gbt36903.json": json.dumps(meta, ensure_ascii=False).encode()})
    failures = _check(forged).failures()
    assert [f.check for f in failures] == ["metadata signed"], failures
    assert "differs from the metadata signed" in failures[0].reason

    dat46 = json.loads(files["data/metadata/dat46.json"])
    dat46["电子文件号"] = "other"
    failures = _check(_rebag(files, {"metadata/dat46.json": json.dumps(dat46).encode()})).failures()
    assert [f.reason for f in failures] == [f"电子文件号 (DA/T 46) is other, the package is of {cert['identifier']}"]

    # A proof for other data: the inclusion proof of another audit record put in this package.
    other = world.issue()
    _checkpoint(world)
    made = world.client.post(f"/certhub/certificates/{other['identifier']}/archive", headers=world.issuer.headers).json()
    with world.hub.factory() as db:
        _, other_zip = service.archive_package(
            db,
            who=world.hub.admin_principal(),
            storage=world.hub.app.state.storage,
            identifier=other["identifier"],
            package_id=made["id"],
        )
    other_proofs = json.loads(archive.read_zip(other_zip).files["data/evidence/audit-inclusion.json"])
    proofs = json.loads(files["data/evidence/audit-inclusion.json"])
    proofs[0]["record"] = other_proofs[0]["record"]  # another record, with this package's proof
    failures = _check(_rebag(files, {"evidence/audit-inclusion.json": json.dumps(proofs).encode()})).failures()
    assert {f.check for f in failures} == {"audit inclusion", "audit records concern the record"}, failures
    assert "inclusion proof does not lead to the checkpoint's root" in failures[0].reason

    # An executable slipped in (listed in the manifests): refused as unsafe and unusable.
    failures = _check(_rebag(files, {"original/run.txt": b"#!/bin/sh\nrm -rf /\n"})).failures()
    assert {(f.property, f.check) for f in failures} >= {("security", "executable content"), ("integrity", "metadata files")}

    # What is not a package at all is a clear 422, not a 500.
    response = world.client.post(
        "/archive/check", files={"file": ("x.zip", b"not a zip", "application/zip")}, headers=world.hub.admin.headers
    )
    assert response.status_code == 422 and "not a zip" in response.json()["detail"]


def _rebag(files: dict[str, bytes], changes: dict[str, bytes]) -> dict[str, bytes]:
    """The same bag with payload files changed and every manifest recomputed (a forger's work)."""
    payload = {name[5:]: data for name, data in files.items() if name.startswith("data/")} | changes
    info = archive.Bag(files).info()
    info.pop("Payload-Oxum", None)
    return archive.read_zip(archive.write_bag(payload, info=info, root="bag")).files


def test_only_the_issuer_or_the_platform_archives(world: World) -> None:
    cert = world.issue()
    _checkpoint(world)
    url = f"/certhub/certificates/{cert['identifier']}/archive"
    refused = world.client.post(url, headers=world.window.headers)
    assert refused.status_code in (403, 404), refused.text
    assert world.client.post(url, headers=world.hub.admin.headers).status_code == 201
    unknown = world.client.get("/certhub/certificates/NOPE/archive-packages", headers=world.issuer.headers)
    assert unknown.status_code == 404


def test_the_command_archives_the_versions_issued_in_a_period(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import argparse
    from datetime import UTC, datetime, timedelta

    from certhub.cli import _archive

    issued = [world.issue()["identifier"] for _ in range(2)]
    today = datetime.now(UTC).date()
    args = argparse.Namespace(since=today, until=today + timedelta(days=1), department=None, out=tmp_path / "out")
    with world.hub.factory() as db:
        _archive(db, world.hub.settings, args)
        db.commit()
    printed = capsys.readouterr()
    assert {line.split("\t")[0] for line in printed.out.splitlines()} >= set(issued), printed
    zips = sorted((tmp_path / "out").glob("*.zip"))
    assert len(zips) >= 2
    for package in zips:
        report = archive.check_path(package, service.ARCHIVE_PROFILES)
        assert report.ok, report.failures()
        where = _unpack(package.read_bytes(), tmp_path / package.stem)
        assert bagit.Bag(str(where)).is_valid()


def test_a_package_of_the_wrong_shapes_is_reported_never_crashes(world: World) -> None:
    _, data = _archived(world)
    files = archive.read_zip(data).files
    odd: list[dict[str, bytes]] = [
        {"signature/issuer-key.json": b"not json", "signature/seal-ca.json": b'{"roots": 5, "intermediates": [1]}'},
        {"metadata/dat46.json": b'{"\\u8ba1\\u7b97\\u673a\\u6587\\u4ef6": 7}', "metadata/gbt36903.json": b"[]"},
        {"evidence/audit-inclusion.json": b'[1, {"record": "[]", "leaf_index": -1, "proof": 3}]'},
        {"evidence/checkpoint.json": b'{"body": "x", "signature": "!!", "public_key": "AAAA"}', "metadata/package.json": b"{}"},
    ]
    for changes in odd:
        report = _check(_rebag(files, changes))
        assert not report.ok and all(f.reason for f in report.failures()), changes
    for bad, why in ((b"PK\x03\x04broken", "not a zip"), (_rezip({"x": b"1"}, root="a") + b"", "")):
        response = world.client.post(
            "/archive/check", files={"file": ("p.zip", bad, "application/zip")}, headers=world.hub.admin.headers
        )
        assert response.status_code in (200, 422), response.text
        if why:
            assert why in response.json()["detail"]


def test_a_package_re_signed_with_another_key_fails_only_against_the_published_keys(world: World) -> None:
    """The keys inside a package prove it consistent; who signed it is proved by the keys the hub publishes."""
    import base64

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    from certhub import sdjwt

    _, data = _archived(world, pdf=False)
    files = archive.read_zip(data).files
    key = json.loads(files["data/signature/issuer-key.json"])
    forger = Ed25519PrivateKey.generate()

    class Signer:
        alg, kid = "EdDSA", key["kid"]

        def sign(self, data: bytes) -> bytes:
            return forger.sign(data)

    def resign(token: str) -> str:
        head, *rest = token.split("~")
        parsed = sdjwt.parse_jws(head)
        payload = dict(parsed.payload)
        if "face" in payload:
            payload["face"] = dict(payload["face"], address="伪造地址")
        return "~".join([sdjwt.sign_jws(Signer(), payload, typ=parsed.header["typ"]), *rest])

    raw = forger.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    jwk = {"kty": "OKP", "crv": "Ed25519", "x": base64.urlsafe_b64encode(raw).rstrip(b"=").decode(), "kid": key["kid"]}
    jws = resign(files["data/original/credential.jws"].decode()).encode()
    sd = resign(files["data/original/credential.sd-jwt"].decode()).encode()
    dat46 = json.loads(files["data/metadata/dat46.json"])
    for entry in dat46["计算机文件"]:
        content = {"original/credential.jws": jws, "original/credential.sd-jwt": sd}[entry["计算机文件名"]]
        entry.update(
            {"计算机文件大小": len(content), "SHA-256": archive.digest("sha256", content), "SM3": archive.digest("sm3", content)}
        )
    forged = _rebag(
        files,
        {
            "original/credential.jws": jws,
            "original/credential.sd-jwt": sd,
            "signature/issuer-key.json": json.dumps({"alg": "EdDSA", "kid": key["kid"], "jwk": jwk}).encode(),
            "metadata/dat46.json": json.dumps(dat46).encode(),
        },
    )
    assert _check(forged).ok  # consistent in itself...
    published = archive.Trust.from_documents([world.client.get("/certhub/.well-known/jwks.json").json()])
    report = archive.check_bag(archive.Bag(forged), service.ARCHIVE_PROFILES, published)
    assert [(f.check, f.file) for f in report.failures()] == [("issuer key trusted", "data/signature/issuer-key.json")]
    assert "not among the published keys" in report.failures()[0].reason
    # The endpoint takes the same trust files.
    response = world.client.post(
        "/archive/check",
        files=[
            ("file", ("p.zip", _rezip(forged), "application/zip")),
            ("trust", ("jwks.json", json.dumps(world.client.get("/certhub/.well-known/jwks.json").json()), "application/json")),
        ],
        headers=world.hub.admin.headers,
    )
    assert response.status_code == 200 and not response.json()["ok"], response.text
    bad = world.client.post(
        "/archive/check",
        files=[("file", ("p.zip", _rezip(forged), "application/zip")), ("trust", ("t.json", b"[1]", "application/json"))],
        headers=world.hub.admin.headers,
    )
    assert bad.status_code == 422 and "trust file" in bad.json()["detail"]


@pytest.mark.parametrize("world", ["SM2"], indirect=True)
def test_a_certificate_with_a_sealed_ofd_copy_is_archived_with_it_and_its_seal_checked_from_the_package(
    world: World, tmp_path: Path
) -> None:
    cert, data = _archived(world)
    assert cert["has_ofd"] is True  # the issuer has an SM2 seal: the copy is an OFD
    files = archive.read_zip(data).files
    assert "data/original/copy.ofd" in files and "data/original/copy.pdf" not in files
    assert bagit.Bag(str(_unpack(data, tmp_path / "bag"))).is_valid()
    report = _check(files)
    assert report.ok, report.failures()
    passed = {f.check for f in report.findings if f.ok}
    assert {"ofd references", "ofd signature file", "seal signature", "seal chain"} <= passed, passed
    # the copy's page changed inside the OFD, the package's manifests and metadata made to match: the seal fails
    copy = zipfile.ZipFile(io.BytesIO(files["data/original/copy.ofd"]))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as changed:
        for item in copy.infolist():
            body = copy.read(item.filename)
            if item.filename.endswith("Page_0/Content.xml"):
                body = body.replace("居民身份证".encode(), "居民户口簿".encode())
            changed.writestr(item.filename, body)
    report = _check(_rebag(files, {"original/copy.ofd": out.getvalue()}))
    failed = {f.check: f.reason for f in report.failures()}
    assert "ofd references" in failed and "Content.xml" in failed["ofd references"], failed
