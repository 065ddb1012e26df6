"""The seal commands, as an operator uses them from a shell on a fresh data directory."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from govhub.cli import main
from ops.config import get_settings
from tests.conftest import MASTER_KEY
from tests.factories import uscc
from tests.seal.helpers import png_picture
from tests.seal.test_der import SAMPLES


def _govhub(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    """Run one `govhub` command in this process (the environment is the operator's) and return its output."""
    get_settings.cache_clear()
    try:
        main(list(args))
    finally:
        get_settings.cache_clear()
    return capsys.readouterr().out


def test_an_operator_issues_lists_revokes_and_rewraps_seals_from_the_shell(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("logging.basicConfig", lambda **_kwargs: None)  # leave the test run's logging alone
    monkeypatch.setenv("GOVHUB_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("GOVHUB_MASTER_KEY", MASTER_KEY)
    monkeypatch.delenv("GOVHUB_DATABASE_URL", raising=False)
    _govhub(capsys, "db", "upgrade")
    code = uscc(region="440300")
    _govhub(
        capsys, "departments", "create", "--code", code, "--name", "深圳市市场监督管理局", "--level", "city", "--region", "440300"
    )
    picture = tmp_path / "seal.png"
    picture.write_bytes(png_picture())
    seal = json.loads(
        _govhub(
            capsys,
            "seals",
            "issue",
            "--department",
            code,
            "--name",
            "深圳市市场监督管理局",
            "--type",
            "公章",
            "--picture",
            str(picture),
        )
    )
    assert seal["algorithm"] == "SM2" and "alg" not in seal  # as the API spells it (SealRead)
    listed = _govhub(capsys, "seals", "list", "--department", code)
    assert seal["id"] in listed and "active" in listed
    with pytest.raises(SystemExit, match="no picture file"):
        _govhub(
            capsys,
            "seals",
            "issue",
            "--department",
            code,
            "--name",
            "x",
            "--type",
            "公章",
            "--picture",
            str(tmp_path / "none.png"),
        )
    assert "0 seal(s) given their GB/T 38540 v4 DER structure" in _govhub(capsys, "seals", "migrate-der")
    sample = SAMPLES / "ofd" / "sesv4-gomain-invoice.ofd"
    if sample.is_file():  # another producer's DER seal signature, verified from the shell
        with zipfile.ZipFile(sample) as ofd:
            (tmp_path / "Signature.xml").write_bytes(ofd.read("Doc_0/Signs/Sign_0/Signature.xml"))
            (tmp_path / "SignedValue.dat").write_bytes(ofd.read("Doc_0/Signs/Sign_0/SignedValue.dat"))
        report = json.loads(
            _govhub(capsys, "seals", "verify", str(tmp_path / "Signature.xml"), "--signature", str(tmp_path / "SignedValue.dat"))
        )
        assert report["checks"]["signature"]["status"] == "passed" and report["verdict"] == "indeterminate"
    assert "revoked" in _govhub(capsys, "seals", "revoke", seal["id"], "--reason", "机构改革")
    with pytest.raises(SystemExit, match="cannot be revoked"):
        _govhub(capsys, "seals", "revoke", seal["id"], "--reason", "再次")
    monkeypatch.setenv("GOVHUB_MASTER_KEY", "bmV3LW1hc3Rlci1rZXktMzItYnl0ZXMtbG9uZyEhISE=")  # a new 32-byte key
    monkeypatch.setenv("GOVHUB_PREVIOUS_MASTER_KEYS", MASTER_KEY)
    # the seal key, the authority keys of both chains (P-256 root, issuing CA, maker; the same for SM2) and the
    # time-stamp authority's key
    assert "re-wrapped 8" in _govhub(capsys, "seals", "rewrap")
    assert "re-wrapped 0" in _govhub(capsys, "seals", "rewrap")


def test_an_operator_renews_the_time_stamp_chains_that_are_due_from_the_shell(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("logging.basicConfig", lambda **_kwargs: None)
    monkeypatch.setenv("GOVHUB_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("GOVHUB_MASTER_KEY", MASTER_KEY)
    monkeypatch.delenv("GOVHUB_DATABASE_URL", raising=False)
    _govhub(capsys, "db", "upgrade")
    assert json.loads(_govhub(capsys, "seals", "renew-lta")) == {"renewed": [], "failed": {}}
