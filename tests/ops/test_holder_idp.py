"""Holder tokens from an external identity provider, verified against its published JWKS."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi.testclient import TestClient
from jwt.algorithms import ECAlgorithm
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from govhub.app import create_app
from ops.config import Settings
from ops.storage import LocalStore
from tests.conftest import MASTER_KEY

IDP_KEY = ec.generate_private_key(ec.SECP256R1())


class _JwksHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        jwk = json.loads(ECAlgorithm.to_jwk(IDP_KEY.public_key()))
        jwk.update({"kid": "idp-1", "alg": "ES256", "use": "sig"})
        body = json.dumps({"keys": [jwk]}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: Any) -> None:
        return


@pytest.fixture(scope="module")
def idp_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _JwksHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture()
def external_client(
    idp_url: str, settings: Settings, engine: Engine, session_factory: sessionmaker[Session], tmp_path: Any
) -> Iterator[TestClient]:
    external = Settings(
        data_dir=settings.data_dir,
        database_url=settings.database_url,
        master_key=MASTER_KEY,  # type: ignore[arg-type]
        public_url="http://hub.test",
        holder_idp="external",
        holder_idp_issuer="https://idp.gov.test",
        holder_idp_jwks_url=f"{idp_url}/jwks.json",
        holder_idp_audience="govhub",
    )
    app = create_app(external, engine=engine, session_factory=session_factory, storage=LocalStore(tmp_path))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def _idp_token(**overrides: Any) -> str:
    now = int(time.time())
    claims = {
        "iss": "https://idp.gov.test",
        "sub": "11010519491231002X",
        "aud": "govhub",
        "iat": now,
        "exp": now + 300,
        "holder_kind": "person",
        "name": "张三",
    }
    claims.update(overrides)
    return jwt.encode(claims, IDP_KEY, algorithm="ES256", headers={"kid": "idp-1"})


def test_a_citizen_signed_in_at_the_provincial_provider_is_a_holder_here(external_client: TestClient) -> None:
    me = external_client.get("/me", headers={"Authorization": f"Bearer {_idp_token()}"})
    assert me.status_code == 200, me.text
    assert me.json()["roles"] == ["holder"] and me.json()["holder_code"] == "11010519491231002X"


def test_provider_tokens_that_are_wrong_are_refused(external_client: TestClient) -> None:
    cases = {
        "expired": _idp_token(iat=int(time.time()) - 900, exp=int(time.time()) - 600),
        "other audience": _idp_token(aud="someone-else"),
        "bad identity number": _idp_token(sub="110105194912310021"),
        "forged key": jwt.encode(
            {
                "iss": "https://idp.gov.test",
                "sub": "11010519491231002X",
                "aud": "govhub",
                "iat": int(time.time()),
                "exp": int(time.time()) + 60,
            },
            ec.generate_private_key(ec.SECP256R1()),
            algorithm="ES256",
            headers={"kid": "idp-1"},
        ),
    }
    for name, token in cases.items():
        response = external_client.get("/me", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401, name


def test_the_builtin_holder_tokens_are_off_with_an_external_provider(external_client: TestClient, hub: Any) -> None:
    response = external_client.post(
        "/auth/holder-tokens",
        headers=hub.admin.headers,
        json={"holder_code": "11010519491231002X", "holder_kind": "person", "name": "张三"},
    )
    assert response.status_code == 400 and "external identity provider" in response.json()["detail"]
