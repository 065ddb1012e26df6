"""A real OpenID Provider for the tests: panva's certified ``oidc-provider`` (npm), run by node on loopback.

``npm ci`` in tests/oidc installs it (.ci/run does). Without node or the package the tests that need it
skip and say why. ``Driver`` plays a person's browser at the provider's own login page, without a browser.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
import pytest

from ops.hubprocess import free_port

HERE = Path(__file__).parent
PASSWORD, OTP = "pw", "123456"
HOLDER_ID = "11010519491231002X"  # holder1's verified 公民身份号码; holder2's fails its check digit


@dataclass
class Provider:
    """A running provider: its issuer, and what the tests ask of it."""

    issuer: str
    process: subprocess.Popen[bytes]

    def register(self, *, redirect_uri: str, post_logout_redirect_uri: str) -> tuple[str, str]:
        """Register a relying party (RFC 7591 dynamic registration); returns its client id and secret."""
        response = httpx.post(
            f"{self.issuer}/reg",
            json={
                "redirect_uris": [redirect_uri],
                "post_logout_redirect_uris": [post_logout_redirect_uri],
                "token_endpoint_auth_method": "client_secret_basic",
                "response_types": ["code"],
                "grant_types": ["authorization_code"],
            },
            timeout=5,
        )
        assert response.status_code == 201, response.text
        body = response.json()
        return str(body["client_id"]), str(body["client_secret"])

    def rotate_keys(self) -> None:
        """Make the provider sign with its second key (the first stays published)."""
        assert httpx.post(f"{self.issuer}/_test/rotate", timeout=5).status_code == 200


def start_provider() -> Provider:
    """Start the provider on a free loopback port (skip, saying why, when it cannot run here)."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the OpenID Connect tests need it (apt-get install nodejs)")
    if not (HERE / "node_modules" / "oidc-provider").exists():
        pytest.skip("the test OpenID Provider is not installed: run `npm ci` in tests/oidc (.ci/run does)")
    port = free_port()
    process = subprocess.Popen(
        [node, str(HERE / "provider.mjs"), str(port)], cwd=HERE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    assert process.stdout is not None
    line = process.stdout.readline().decode()  # "ready <issuer>"; the process prints it once it listens
    if not line.startswith("ready "):
        process.kill()
        raise RuntimeError(f"the test OpenID Provider did not start: {line!r}")
    return Provider(line.split()[1], process)


def stop_provider(provider: Provider) -> None:
    provider.process.terminate()
    try:
        provider.process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        provider.process.kill()


@dataclass
class Driver:
    """A person's browser at the provider: follows its redirects and fills its login page."""

    provider: Provider
    http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=10, follow_redirects=False))
    pages: list[str] = field(default_factory=list)

    def sign_in(self, authorize_url: str, *, login: str, otp: str = "", back_to: str) -> str:
        """Go from the authorization URL through the login page; returns the URL the provider sends the
        browser back to (``back_to`` + ``?code=…&state=…``), without following it."""
        url, submitted = authorize_url, False
        for _ in range(12):
            response = self.http.get(url)
            if response.is_redirect:
                url = urljoin(url, response.headers["location"])
                if url.startswith(back_to):
                    return url
                continue
            self.pages.append(response.text)
            found = re.search(r'<form method="post" action="([^"]+)"', response.text)
            text = re.sub(r"<[^>]+>|\s+", " ", response.text.split("</style>")[-1])[:600]
            assert found and not submitted, f"unexpected provider page ({response.status_code}): {text}"
            submitted = True
            posted = self.http.post(urljoin(url, found.group(1)), data={"login": login, "password": PASSWORD, "otp": otp})
            assert posted.is_redirect, posted.text[:500]
            url = urljoin(url, posted.headers["location"])
        raise AssertionError("the provider never sent the browser back")


def query_of(url: str) -> dict[str, Any]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def wait_for(predicate: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.05)
