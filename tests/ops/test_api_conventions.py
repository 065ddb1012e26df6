"""What a client generator reads in /openapi.json: one spelling per concept, constraints as enforced."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from fastapi.testclient import TestClient

from tests.conftest import Hub
from tests.factories import citizen_id


def _properties(spec: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for schema_name, schema in spec["components"]["schemas"].items():
        for name, prop in (schema.get("properties") or {}).items():
            yield schema_name, name, prop


def _parameters(spec: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                yield f"{method.upper()} {path}", parameter


def _types(prop: dict[str, Any]) -> set[str | None]:
    variants = prop.get("anyOf") or [prop]
    return {v.get("format") or v.get("type") for v in variants} - {"null"}


def test_every_field_and_query_parameter_is_spelt_in_snake_case(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    camel = re.compile(r"[a-z][A-Z]")
    fields = [f"{schema}.{name}" for schema, name, _ in _properties(spec) if camel.search(name)]
    params = [
        f"{where} ?{p['name']}"
        for where, p in _parameters(spec)
        if p["in"] == "query" and camel.search(p["name"]) and not p.get("deprecated")
    ]
    assert fields == [] and params == []


def test_a_name_means_one_type_everywhere(client: TestClient) -> None:
    """`valid_until` is a date wherever it appears; a moment is an `…_at`; a seal names its `algorithm`."""
    spec = client.get("/openapi.json").json()
    until = {f"{schema}.{name}": _types(prop) for schema, name, prop in _properties(spec) if name == "valid_until"}
    assert until and all(kinds == {"date"} for kinds in until.values()), until
    assert not [f"{schema}.{name}" for schema, name, _ in _properties(spec) if name == "alg"]


def test_the_use_cause_limit_documented_is_the_one_enforced(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    documented = {prop.get("maxLength") for _, name, prop in _properties(spec) if name == "use_cause" and "maxLength" in prop}
    documented |= {
        variant.get("maxLength")
        for _, p in _parameters(spec)
        if p["name"] in ("use_cause", "useCause")
        for variant in p["schema"].get("anyOf", [p["schema"]])
        if "maxLength" in variant
    }
    assert documented == {200}


def test_every_list_comes_in_the_same_page_envelope(client: TestClient) -> None:
    """A client reads `items` and follows `next_cursor` the same way on every list, never a bare array."""
    spec = client.get("/openapi.json").json()
    bare = [
        f"{method.upper()} {path}"
        for path, operations in spec["paths"].items()
        for method, operation in operations.items()
        for response in [operation.get("responses", {}).get("200") or operation.get("responses", {}).get("201") or {}]
        if (response.get("content", {}).get("application/json", {}).get("schema") or {}).get("type") == "array"
    ]
    assert bare == []


def test_a_holder_pages_through_authorisations_and_an_issuer_through_objections(client: TestClient, hub: Hub) -> None:
    holder = hub.holder(citizen_id())
    listed = client.get("/certhub/me/authorisations", headers=holder.headers, params={"limit": 1})
    assert listed.status_code == 200, listed.text
    assert listed.json() == {"items": [], "next_cursor": None}
    objections = client.get("/certhub/objections", headers=hub.admin.headers, params={"limit": 1})
    assert objections.status_code == 200 and set(objections.json()) == {"items", "next_cursor"}


def test_every_schema_and_operation_has_a_plain_name(client: TestClient) -> None:
    """A client generator makes classes `GrantReadPage` and methods `list_grants`, not `Page_GrantRead_` or
    `ops__pagination__Page_AccessRead___1`."""
    spec = client.get("/openapi.json").json()
    names = list(spec["components"]["schemas"])
    assert [n for n in names if not re.fullmatch(r"[A-Za-z][A-Za-z0-9]*(_[a-z0-9]+)*", n) or "__" in n] == []
    assert "GrantReadPage" in names and not [n for n in names if n.startswith("Page_")]
    operation_ids = [o["operationId"] for ops in spec["paths"].values() for o in ops.values()]
    assert len(operation_ids) == len(set(operation_ids))
    assert spec["paths"]["/exchange/grants"]["get"]["operationId"] == "list_grants"


def test_the_main_request_bodies_carry_an_example_their_operation_accepts(client: TestClient) -> None:
    from certhub.schemas import AuthorisationCreate, FetchRequest, IssueRequest
    from exchange.schemas import RequestCreate
    from ops.identity.schemas import ClientCreate, DepartmentCreate
    from seal.schemas import SealCreate

    spec = client.get("/openapi.json").json()["components"]["schemas"]
    for model in (DepartmentCreate, ClientCreate, RequestCreate, IssueRequest, FetchRequest, AuthorisationCreate, SealCreate):
        examples = spec[model.__name__].get("examples")
        assert examples, model.__name__
        for example in examples:
            model.model_validate(example)  # raises if the example is not a valid body
