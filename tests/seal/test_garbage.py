"""Damaged and hostile input to sealing and verification gets a 4xx problem, never a 500."""

from __future__ import annotations

import base64
import copy
import random
from collections.abc import Iterator
from typing import Any

from fastapi.testclient import TestClient

from tests.conftest import Hub
from tests.seal.helpers import one_page_pdf, seal_body, sealer

REPLACEMENTS: list[Any] = [None, 1, "x", "AAAA", [], {}, base64.b64encode(b"\x30\x03\x02\x01\x01").decode()]
_DELETE = object()


def _paths(value: Any, path: tuple[Any, ...] = (), depth: int = 3) -> Iterator[tuple[Any, ...]]:
    if depth == 0:
        return
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else []
    for key, child in items:
        yield (*path, key)
        yield from _paths(child, (*path, key), depth - 1)


def _damaged(signature: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    copied = copy.deepcopy(signature)
    target = copied
    for key in path[:-1]:
        target = target[key]
    if value is _DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return copied


def _mutated(document: bytes, rng: random.Random) -> bytes:
    damaged = bytearray(document)
    position = rng.randrange(len(damaged))
    kind = rng.choice(["flip", "truncate", "zero"])
    if kind == "flip":
        damaged[position] ^= 0xFF
    elif kind == "truncate":
        del damaged[position:]
    else:
        damaged[position : position + 24] = b"\x00" * 24
    return bytes(damaged)


def test_a_damaged_seal_signature_is_answered_with_a_4xx_or_a_report(client: TestClient, hub: Hub) -> None:
    """Bytes of the DER seal signature flipped, cut or zeroed; other values in its place: a 422 or a verdict."""
    rng = random.Random(20261206)
    department = hub.department()
    client.post("/seals", headers=hub.admin.headers, json=seal_body(department.id, algorithm="SM2")).raise_for_status()
    signed = client.post(
        "/seal/sign", headers=sealer(hub, department).headers, json={"purpose": "回执", "document": {"a": 1}}
    ).json()
    der = base64.b64decode(signed["der_base64"])
    answers = set()
    candidates: list[Any] = [base64.b64encode(_mutated(der, rng)).decode() for _ in range(120)]
    candidates += [value for value in REPLACEMENTS if value is not None] + [{"der_base64": "%%%"}, {"der_base64": 5}]
    for candidate in candidates:
        response = client.post("/seal/verify/signature", json={"signature": candidate, "document": {"a": 1}})
        assert response.status_code < 500, (candidate, response.text)
        answers.add(response.status_code if response.status_code != 200 else response.json()["verdict"])
    assert answers <= {422, "invalid", "indeterminate", "valid"} and 422 in answers and "invalid" in answers
    # the earlier JSON form is still read: damaged, it is refused or reported too
    legacy = {"toSign": {"version": 4, "eseal": {}}, "cert": "AAAA", "signatureAlgorithm": "1.2.156.10197.1.501"}
    for path in _paths(legacy):
        for value in [_DELETE, *REPLACEMENTS]:
            response = client.post(
                "/seal/verify/signature", json={"signature": _damaged(legacy, path, value), "document": {"a": 1}}
            )
            assert response.status_code < 500, (path, value, response.text)


def test_damaged_pdfs_are_refused_or_reported_never_a_500(client: TestClient, hub: Hub) -> None:
    rng = random.Random(20261124)
    department = hub.department()
    client.post("/seals", headers=hub.admin.headers, json=seal_body(department.id)).raise_for_status()
    system = sealer(hub, department)
    original = one_page_pdf()
    sealed = client.post(
        "/seal/pdf", headers=system.headers, files={"file": ("a.pdf", original)}, data={"purpose": "用印"}
    ).content
    for _ in range(40):
        verify = client.post("/seal/verify/pdf", files={"file": ("x.pdf", _mutated(sealed, rng))})
        assert verify.status_code < 500, verify.text
        if verify.status_code == 200:  # still readable: the damage is never reported as a valid seal
            assert verify.json()["verdict"] != "valid", verify.json()
        seal = client.post(
            "/seal/pdf", headers=system.headers, files={"file": ("x.pdf", _mutated(original, rng))}, data={"purpose": "用印"}
        )
        assert seal.status_code < 500, seal.text
