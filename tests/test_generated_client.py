"""An integrator's client, generated from /openapi.json with openapi-python-client, talks to the hub: successes
are parsed into their models, problems (404, 409, 422) into the generated `Problem` with status, code and detail,
and a PDF copy comes back as bytes rather than a JSON parse error."""

from __future__ import annotations

import importlib
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.certhub.conftest import World, world  # noqa: F401 (the certhub world, for the PDF copy)
from tests.conftest import Hub
from tests.factories import citizen_id, corrupt_check, uscc

PACKAGE = "govhub_generated_client"
# What openapi-python-client 0.29 cannot express, and says so: bodies and answers that are not JSON, a form or
# plain bytes. Anything else it warns about is a fault in the hub's description.
UNSUPPORTED = ("Unsupported content type", "Unsupported content_type")


def _generator() -> str:
    beside = Path(sys.executable).parent / "openapi-python-client"
    found = str(beside) if beside.exists() else shutil.which("openapi-python-client")
    if found is None:
        pytest.skip("openapi-python-client is not installed (it is in the `test` extra)")
    return found


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ModuleType, str]]:
    """The client package generated from the hub's description, and what the generator said."""
    from tests.test_fuzz_openapi import _description

    where = tmp_path_factory.mktemp("generated")
    spec = where / "openapi.json"
    spec.write_text(json.dumps(_description()), encoding="utf-8")
    done = subprocess.run(
        [_generator(), "generate", "--path", str(spec), "--output-path", str(where / PACKAGE), "--meta", "none"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    sys.path.insert(0, str(where))
    try:
        yield importlib.import_module(PACKAGE), done.stdout
    finally:
        sys.path.remove(str(where))
        for name in [name for name in sys.modules if name.split(".")[0] == PACKAGE]:
            del sys.modules[name]


def _client(package: ModuleType, app: FastAPI, headers: dict[str, str]) -> Any:
    """The generated client over an in-process hub, calling as the given caller."""
    http = TestClient(app, raise_server_exceptions=False, headers=headers)
    return package.client.AuthenticatedClient(base_url="http://testserver", token="in-headers").set_httpx_client(http)


def _api(package: ModuleType, name: str) -> Any:
    return importlib.import_module(f"{package.__name__}.api.{name}")


def test_the_generator_warns_only_about_content_types_it_cannot_express(generated: tuple[ModuleType, str]) -> None:
    _, said = generated
    warnings = said.split("WARNING parsing")[1:]
    odd = [block.strip().splitlines()[0] for block in warnings if not any(reason in block for reason in UNSUPPORTED)]
    assert odd == [], said


def test_a_generated_client_parses_a_department_and_the_problems_it_meets(
    generated: tuple[ModuleType, str], app: FastAPI, hub: Hub
) -> None:
    package, _ = generated
    models = importlib.import_module(f"{PACKAGE}.models")
    create = _api(package, "identity.create_department")
    client = _client(package, app, hub.admin.headers)
    code = uscc(region="330000")
    body = models.DepartmentCreate(
        code=code, name="浙江省大数据发展管理局", level=models.DepartmentLevel("province"), region_code="330000"
    )

    created = create.sync_detailed(client=client, body=body)
    assert created.status_code == 201 and isinstance(created.parsed, models.DepartmentRead)
    assert created.parsed.code == code and created.parsed.name == "浙江省大数据发展管理局"

    again = create.sync_detailed(client=client, body=body)
    assert again.status_code == 409 and isinstance(again.parsed, models.Problem)
    assert again.parsed.status == 409 and again.parsed.code and code in again.parsed.detail

    missing = _api(package, "identity.get_department").sync_detailed("no-such-department", client=client)
    assert missing.status_code == 404 and isinstance(missing.parsed, models.Problem)
    assert missing.parsed.status == 404 and missing.parsed.code and missing.parsed.detail

    body.code = corrupt_check(uscc(region="330000"))
    refused = create.sync_detailed(client=client, body=body)
    assert refused.status_code == 422 and isinstance(refused.parsed, models.Problem)
    assert refused.parsed.status == 422 and refused.parsed.code and "code" in refused.parsed.detail
    assert [error.field for error in refused.parsed.errors] == ["code"]


def test_a_generated_client_downloads_a_pdf_copy_as_bytes(generated: tuple[ModuleType, str], world: World) -> None:  # noqa: F811
    package, _ = generated
    holder_code = citizen_id()
    certificate = world.issue(holder_code, render_pdf=True)
    holder = world.hub.holder(holder_code)
    client = _client(package, world.client.app, holder.headers)  # type: ignore[arg-type]
    copy = _api(package, "certhub.download_pdf").sync_detailed(certificate["identifier"], client=client, use_cause="打印留档")
    assert copy.status_code == 200 and copy.content.startswith(b"%PDF")
