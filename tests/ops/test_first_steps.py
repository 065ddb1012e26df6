"""A newcomer's first minutes: `govhub serve --port N` with no GOVHUB_PUBLIC_URL, the page at `/`, the
README's "First steps" pasted into a shell, and a new administrator when the first secret is lost."""

from __future__ import annotations

import base64
import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ops.hubprocess import ADMIN_ID, ADMIN_SECRET, HubProcess

pytestmark = pytest.mark.slow

README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.fixture(scope="module")
def hub() -> Iterator[HubProcess]:
    """A hub on a port of its own, with GOVHUB_PUBLIC_URL left empty (as good as unset)."""
    with HubProcess(env={"GOVHUB_PUBLIC_URL": ""}, scheduler=False) as served:
        yield served


def _claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


def test_a_hub_served_on_another_port_advertises_the_address_it_listens_on(hub: HubProcess) -> None:
    assert hub.port != 8000
    assert _claims(hub.token())["iss"] == hub.base

    status, metadata = hub.request("GET", "/certhub/.well-known/issuer")
    assert status == 200
    assert metadata["issuer"] == hub.base
    assert metadata["jwks_uri"] == f"{hub.base}/certhub/.well-known/jwks.json"
    assert metadata["status_list_uris"]
    assert all(uri.startswith(f"{hub.base}/certhub/status-lists/") for uri in metadata["status_list_uris"])

    status, catalogue = hub.request("GET", "/catalog/dcat.jsonld", auth=True)
    assert status == 200
    text = json.dumps(catalogue)
    assert hub.base in text
    assert ":8000" not in text


def test_the_root_page_leads_to_the_console_and_the_api_docs(hub: HubProcess) -> None:
    status, page = hub.request("GET", "/")
    assert status == 200
    assert 'href="/console/"' in page
    assert 'href="/docs"' in page
    assert hub.request("GET", "/docs")[0] == 200


def _first_steps() -> str:
    """The README's "First steps" shell block, exactly as a reader would paste it."""
    section = README.read_text(encoding="utf-8").split("## First steps", 1)[1]
    match = re.search(r"```sh\n(.*?)```", section, re.DOTALL)
    assert match is not None, "README's First steps has no sh block"
    return match.group(1)


def test_the_readme_first_steps_run_as_pasted(hub: HubProcess) -> None:
    script = _first_steps()
    # What the reader does by hand: the hub's address, and the credential `serve` printed.
    for line, value in (
        ("HUB=http://127.0.0.1:8000", f"HUB={hub.base}"),
        ("ID='paste client_id here'", f"ID='{ADMIN_ID}'"),
        ("SECRET='paste client_secret here'", f"SECRET='{ADMIN_SECRET}'"),
    ):
        assert line in script
        script = script.replace(line, value)
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],  # noqa: S607
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    me = json.loads(done.stdout.strip().splitlines()[-1])
    assert me["roles"] == ["department_system"]
    assert me["department_code"] == "11110000000019357B"


def test_a_lost_administrator_secret_is_replaced_from_the_shell_as_the_readme_says(hub: HubProcess) -> None:
    readme = README.read_text(encoding="utf-8")
    command = 'govhub clients create --name "second administrator" --role platform_admin'
    assert command in readme
    created = hub.govhub("clients", "create", "--name", "second administrator", "--role", "platform_admin")
    assert created.returncode == 0, created.stderr
    client = json.loads(created.stdout)
    form = {"grant_type": "client_credentials", "client_id": client["client_id"], "client_secret": client["client_secret"]}
    status, body = hub.request("POST", "/auth/token", form=form)
    assert status == 200
    assert _claims(body["access_token"])["roles"] == ["platform_admin"]
