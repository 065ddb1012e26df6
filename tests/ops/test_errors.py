"""Bad input gets a clear problem response, never a 500."""

from __future__ import annotations

import json
import logging

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from ops.logs import JsonFormatter
from tests.conftest import Hub


def _problem(response: object) -> dict[str, object]:
    assert response.headers["content-type"] == "application/problem+json"  # type: ignore[attr-defined]
    body: dict[str, object] = response.json()  # type: ignore[attr-defined]
    assert {"type", "title", "status", "detail", "code", "request_id"} <= set(body)
    return body


def test_malformed_json_is_400_and_says_so(client: TestClient, hub: Hub) -> None:
    response = client.post(
        "/departments", headers={**hub.admin.headers, "content-type": "application/json"}, content=b'{"name": '
    )
    assert response.status_code == 400
    assert "malformed JSON" in _problem(response)["detail"]  # type: ignore[operator]


def test_wrong_types_and_unknown_enum_values_name_the_field(client: TestClient, hub: Hub) -> None:
    response = client.post(
        "/departments", headers=hub.admin.headers, json={"code": 12, "name": ["x"], "level": "planet", "region_code": "110000"}
    )
    assert response.status_code == 422
    fields = {e["field"] for e in _problem(response)["errors"]}  # type: ignore[attr-defined]
    assert {"code", "name", "level"} <= fields


def test_an_oversize_body_is_413(client: TestClient, hub: Hub) -> None:
    limit = hub.settings.max_body_bytes
    response = client.post(
        "/departments", headers={**hub.admin.headers, "content-type": "application/json"}, content=b"[" + b"1," * limit + b"1]"
    )
    assert response.status_code == 413
    assert str(limit) in _problem(response)["detail"]  # type: ignore[operator]


def test_an_oversize_chunked_body_is_413(client: TestClient, hub: Hub) -> None:
    limit = hub.settings.max_body_bytes

    def chunks():  # type: ignore[no-untyped-def]
        for _ in range(limit // 65536 + 2):
            yield b" " * 65536

    response = client.post("/departments", headers={**hub.admin.headers, "content-type": "application/json"}, content=chunks())
    assert response.status_code == 413


def test_unknown_routes_and_methods_are_problems(client: TestClient) -> None:
    missing = client.get("/no/such/thing")
    assert missing.status_code == 404 and "/no/such/thing" in _problem(missing)["detail"]  # type: ignore[operator]
    wrong_method = client.delete("/healthz")
    assert wrong_method.status_code == 405
    _problem(wrong_method)


def test_the_request_id_is_echoed_in_the_header_and_the_problem(client: TestClient) -> None:
    response = client.get("/me", headers={"X-Request-ID": "trace-12345678"})
    assert response.headers["x-request-id"] == "trace-12345678"
    assert _problem(response)["request_id"] == "trace-12345678"


def test_a_500_carries_its_request_id_in_the_body_the_header_and_the_log(app: FastAPI, caplog: pytest.LogCaptureFixture) -> None:
    def broken() -> None:
        raise RuntimeError("a bug nobody foresaw")

    app.add_api_route("/broken", broken)
    with TestClient(app, raise_server_exceptions=False) as client, caplog.at_level(logging.ERROR, logger="govhub.errors"):
        response = client.get("/broken", headers={"X-Request-ID": "trace-50050050"})
    assert response.status_code == 500
    assert response.headers["x-request-id"] == "trace-50050050"
    body = _problem(response)
    assert body["request_id"] == "trace-50050050" and body["code"] == "internal"
    assert "a bug nobody foresaw" not in response.text  # the details stay in the log
    (line,) = [r for r in caplog.records if r.name == "govhub.errors"]
    assert line.request_id == "trace-50050050" and line.exc_info is not None  # type: ignore[attr-defined]
    assert json.loads(JsonFormatter().format(line))["request_id"] == "trace-50050050"


def test_the_openapi_describes_every_error_as_a_problem(client: TestClient) -> None:
    """A client generated from the description, or a fuzzer checking answers against it, expects the
    problem+json the hub sends, not FastAPI's own validation-error shape."""
    description = client.get("/openapi.json").json()
    problem = {"$ref": "#/components/schemas/Problem"}
    assert {"type", "title", "status", "detail", "code"} <= set(description["components"]["schemas"]["Problem"]["required"])
    assert "HTTPValidationError" not in description["components"]["schemas"]
    for path, operations in description["paths"].items():
        for method, operation in operations.items():
            errors = {status: r for status, r in operation["responses"].items() if status[0] in "45"}
            assert {"4XX", "5XX"} <= set(errors), (method, path)
            for status, response in errors.items():
                content = response["content"]
                assert content["application/problem+json"] == {"schema": problem}, (method, path, status)
                # beside it, only a protocol's own binary error answer (an OCSP malformedRequest), never JSON
                others = {k: v for k, v in content.items() if k != "application/problem+json"}
                binary = all(not k.endswith("json") and v["schema"]["format"] == "binary" for k, v in others.items())
                assert binary, (method, path, status, others)


def test_a_method_a_resource_does_not_take_is_405_with_every_method_it_does(client: TestClient) -> None:
    types = client.request("OPTIONS", "/certhub/types")
    assert types.status_code == 405 and types.headers["allow"] == "GET, POST"
    assert "GET, POST" in _problem(types)["detail"]  # type: ignore[operator]
    # a literal path is its own resource, as OpenAPI reads it, not an instance of /certhub/types/{code}
    examples = client.request("OPTIONS", "/certhub/types/examples")
    assert examples.status_code == 405 and examples.headers["allow"] == "POST"


def test_the_metrics_are_described_as_the_text_they_are(client: TestClient) -> None:
    described = client.get("/openapi.json").json()["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
    answered = client.get("/metrics").headers["content-type"]
    assert list(described) == ["text/plain"] and answered.startswith("text/plain")
