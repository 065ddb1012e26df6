"""The seal's settings are part of the hub's one settings object: the same GOVHUB_SEAL_* variables, checked
at start with the others, and the hub a request runs in is the one whose limits apply."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from govhub.app import create_app
from ops.cli import load_settings
from ops.config import Settings, get_settings
from ops.storage import LocalStore
from tests.seal.helpers import one_page_pdf


def test_the_seal_is_configured_with_the_same_environment_variables_as_before(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    roots = tmp_path / "other-hubs.pem"
    for name, value in {
        "GOVHUB_SEAL_TSA_URL": "http://tsa.example/",
        "GOVHUB_SEAL_TRUSTED_ROOTS_FILE": str(roots),
        "GOVHUB_SEAL_VENDOR_ID": "ZJGOV",
        "GOVHUB_SEAL_MAX_PICTURE_BYTES": "4096",
        "GOVHUB_SEAL_MAX_PDF_BYTES": "8192",
        "GOVHUB_SEAL_MAX_DATA_BYTES": "2048",
    }.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    assert settings.seal_tsa_url == "http://tsa.example/"  # used as given
    assert settings.seal_trusted_roots_file == roots and settings.seal_vendor_id == "ZJGOV"
    assert (settings.seal_max_picture_bytes, settings.seal_max_pdf_bytes, settings.seal_max_data_bytes) == (4096, 8192, 2048)


def test_a_bad_seal_setting_stops_the_start_with_the_variables_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOVHUB_SEAL_TSA_URL", "tsa.example:318")
    get_settings.cache_clear()
    try:
        with pytest.raises(SystemExit) as stopped:
            load_settings()
    finally:
        get_settings.cache_clear()
    assert "GOVHUB_SEAL_TSA_URL" in str(stopped.value) and "http(s) URL" in str(stopped.value)


def test_the_pdf_limit_of_the_hub_serving_the_request_applies(
    settings: Settings, engine: Engine, session_factory: sessionmaker[Session], storage: LocalStore
) -> None:
    small = settings.model_copy(update={"seal_max_pdf_bytes": 1024})
    pdf = one_page_pdf() + b"%" + b"x" * 2048  # a 3 KB PDF (its tail a comment)
    app = create_app(small, engine=engine, session_factory=session_factory, storage=storage)
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.post("/seal/verify/pdf", files={"file": ("a.pdf", pdf, "application/pdf")})
    assert response.status_code == 413 and "1024 bytes" in response.json()["detail"]
