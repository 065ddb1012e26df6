"""Input the database cannot hold is refused with a 422 naming the field, never a 500 (issue 15, finding 5).

Each case below answered 500 before: PostgreSQL refuses NUL characters and unpaired surrogates in text,
an integer past BIGINT overflowed, dates near the calendar's ends overflowed in working-day arithmetic.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ops.workdays.service import MAX_WORKING_DAYS
from tests.conftest import Hub
from tests.factories import uscc


def _refused(response: Any, field: str, where: str) -> dict[str, Any]:
    """A 422 problem like every other, naming the field and where it was sent."""
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["code"] == "invalid" and body["request_id"]
    assert any(e["field"] == field and e["in"] == where for e in body["errors"]), body["errors"]
    return body


def _department(name: str) -> dict[str, str]:
    return {"code": uscc(), "name": name, "level": "province", "region_code": "110000"}


@pytest.mark.parametrize("name", ["市\x00公安局", "市公安局\ud800"], ids=["NUL", "lone surrogate"])
def test_a_department_name_with_text_postgresql_cannot_store_is_refused(client: TestClient, hub: Hub, name: str) -> None:
    # the surrogate cannot even be encoded as UTF-8 by a client: send it as the JSON escape a fuzzer sends
    body = json.dumps(_department(name)).encode()
    response = client.post("/departments", headers={**hub.admin.headers, "content-type": "application/json"}, content=body)
    detail = _refused(response, "name", "body")["detail"]
    assert "cannot be stored" in detail
    assert client.get("/departments", headers=hub.admin.headers).json()["items"] == []  # nothing reached the database


def test_a_nul_in_a_path_id_or_a_query_filter_is_refused(client: TestClient, hub: Hub) -> None:
    _refused(client.get("/departments/abc%00def", headers=hub.admin.headers), "department_id", "path")
    _refused(client.get("/departments", params={"region_code": "11\x000000"}, headers=hub.admin.headers), "region_code", "query")
    _refused(client.get("/departments", params={"cursor": "\x00"}, headers=hub.admin.headers), "cursor", "query")


def test_a_nul_in_a_form_field_is_refused(client: TestClient) -> None:
    response = client.post("/auth/token", data={"grant_type": "client_credentials", "client_id": "a\x00b", "client_secret": "x"})
    _refused(response, "client_id", "body")


def test_a_nul_in_client_credentials_sent_as_json_is_refused(client: TestClient) -> None:
    response = client.post("/auth/token", json={"client_id": "a\x00b", "client_secret": "x"})
    _refused(response, "client_id", "body")


def test_an_audit_id_or_tree_size_past_bigint_is_refused(client: TestClient, hub: Hub) -> None:
    too_big = str(2**63)
    _refused(client.get(f"/audit/log/inclusion/{too_big}", headers=hub.admin.headers), "audit_id", "path")
    _refused(client.get(f"/audit/log/inclusion/{-(2**63) - 1}", headers=hub.admin.headers), "audit_id", "path")
    _refused(client.get("/audit/log/inclusion/1", params={"tree_size": too_big}, headers=hub.admin.headers), "tree_size", "query")
    # the largest BIGINT is a number like any other: no such record
    assert client.get(f"/audit/log/inclusion/{2**63 - 1}", headers=hub.admin.headers).status_code == 404


@pytest.mark.parametrize(
    ("start", "end"), [("0001-01-01", "0001-01-31"), ("9999-12-01", "9999-12-31")], ids=["year 1", "year 9999"]
)
def test_a_report_for_a_period_at_the_ends_of_the_calendar_is_refused(client: TestClient, hub: Hub, start: str, end: str) -> None:
    response = client.get("/exchange/report", params={"start": start, "end": end}, headers=hub.admin.headers)
    detail = _refused(response, "start", "query")["detail"]
    assert "1900-01-01" in detail and "2999-12-31" in detail
    within = client.get("/exchange/report", params={"start": "2999-12-01", "end": "2999-12-31"}, headers=hub.admin.headers)
    assert within.status_code == 200, within.text


def test_a_deadline_from_the_last_day_in_range_is_computed(client: TestClient, hub: Hub) -> None:
    longest = {"days": MAX_WORKING_DAYS, "start": "2999-12-31T12:00:00+08:00"}
    late = client.get("/calendar/deadline", params=longest, headers=hub.admin.headers)
    assert late.status_code == 200, late.text
    assert late.json()["last_day"].startswith("3001-")  # past the range, and nowhere near the calendar's end
    early = client.get("/calendar/deadline", params={"days": 20, "start": "0001-01-01T00:00:00+08:00"}, headers=hub.admin.headers)
    _refused(early, "start", "query")


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_a_number_that_is_not_finite_is_refused(client: TestClient, hub: Hub, number: str) -> None:
    body = json.dumps(_department("市公安局"))[:-1] + f', "extra": [{number}]}}'
    response = client.post("/departments", headers={**hub.admin.headers, "content-type": "application/json"}, content=body)
    _refused(response, "extra.0", "body")


def test_an_integer_past_bigint_inside_a_json_body_is_refused(client: TestClient, hub: Hub) -> None:
    response = client.post("/departments", headers=hub.admin.headers, json={**_department("市公安局"), "level": 2**64})
    _refused(response, "level", "body")


def test_a_date_in_a_json_body_is_bounded_too(client: TestClient, hub: Hub) -> None:
    department = hub.department("市公安局")
    system = hub.system(department)
    response = client.post(
        "/certhub/certificates",
        headers=system.headers,
        json={"type_code": "x", "holder": {"code": "x", "name": "x"}, "valid_from": "0001-01-01"},
    )
    _refused(response, "valid_from", "body")


def test_a_date_sent_as_a_unix_time_is_refused_as_the_openapi_says(client: TestClient, hub: Hub) -> None:
    """The description says `format: date-time`; a number used to be read as seconds since 1970."""
    response = client.get("/calendar/deadline", params={"days": 82, "start": "-106"}, headers=hub.admin.headers)
    assert "ISO 8601" in _refused(response, "start", "query")["detail"]
    report = client.get("/exchange/report", params={"start": "1700000000", "end": "2026-01-31"}, headers=hub.admin.headers)
    _refused(report, "start", "query")


def test_the_openapi_says_where_integers_end(client: TestClient) -> None:
    """A client (or a fuzzer) reads the bounds from the description instead of meeting them."""
    inclusion = client.get("/openapi.json").json()["paths"]["/audit/log/inclusion/{audit_id}"]["get"]
    schemas = {p["name"]: p["schema"] for p in inclusion["parameters"]}
    assert schemas["audit_id"]["maximum"] == 2**63 - 1 and schemas["audit_id"]["minimum"] == -(2**63)
    assert schemas["tree_size"]["anyOf"][0]["minimum"] == 1  # a bound of its own is kept
