"""Certhub fixtures: the example catalogue, an issuing department with a seal, holders and windows."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import Actor, Hub
from tests.factories import citizen_id, uscc
from tests.seal.helpers import grant, make_seal

ID_CARD = "11100000000019713D001"  # 居民身份证
DRIVING = "11100000000019713D003"  # 机动车驾驶证
LICENCE = "11100000MB0143028R001"  # 营业执照


@dataclass
class World:
    """A hub with the example catalogue, a 公安 bureau that issues ID cards and driving licences, a window."""

    hub: Hub
    client: TestClient
    issuer: Actor
    window: Actor
    other_window: Actor
    algorithm: str = "ES256"

    def issue(
        self, holder: str | None = None, *, type_code: str = ID_CARD, face: dict[str, Any] | None = None, **extra: Any
    ) -> dict[str, Any]:
        holder = holder or citizen_id()
        body = {
            "type_code": type_code,
            "holder": {"code": holder, "kind": "person", "name": "张三"},
            "face": face or id_face(holder),
        }
        body.update(extra)
        body.setdefault("render_pdf", False)
        response = self.client.post("/certhub/certificates", json=body, headers=self.issuer.headers)
        assert response.status_code == 201, response.text
        return dict(response.json())

    def show(
        self, holder: Actor, identifier: str, *, fields: list[str], audience: str | None = None, **extra: Any
    ) -> dict[str, Any]:
        assert self.window.department is not None
        body = {"fields": fields, "audience": audience or self.window.department.code, **extra}
        response = self.client.post(f"/certhub/me/certificates/{identifier}/presentations", json=body, headers=holder.headers)
        assert response.status_code == 201, response.text
        return dict(response.json())

    def verify(self, token: str, *, window: Actor | None = None, nonce: str | None = None) -> dict[str, Any]:
        response = self.client.post(
            "/certhub/verifications", json={"token": token, "nonce": nonce}, headers=(window or self.window).headers
        )
        assert response.status_code == 200, response.text
        return dict(response.json())


def unknown_identifier(cert: dict[str, Any]) -> str:
    """A well-formed identifier no certificate has: the next serials of the same type and issuer, right check
    character (what anyone computes from public data)."""
    from certhub.service import make_identifier

    serial = f"{int(cert['serial']) + 7777:0{len(cert['serial'])}d}"
    return make_identifier(type_code=cert["type_code"], issuer_code=cert["issuer_code"], serial=serial, version=1)


def assert_same_refusal(response: Any, unknown: Any, *, identifier: str, unknown_id: str) -> None:
    """`response` (about `identifier`) tells the caller nothing `unknown` (about `unknown_id`) does not."""

    def shape(r: Any, ident: str) -> tuple[int, str | None, dict[str, Any]]:
        body = {k: v for k, v in r.json().items() if k != "request_id"}
        return r.status_code, r.headers.get("content-type"), json.loads(json.dumps(body, ensure_ascii=False).replace(ident, "ID"))

    assert shape(response, identifier) == shape(unknown, unknown_id), (response.text, unknown.text)


def driving_face(holder: str) -> dict[str, Any]:
    return {
        "name": "张三", "sex": "男", "nationality": "中国", "address": "北京", "birth_date": id_face(holder)["birth_date"],
        "first_issued": "2010-05-01", "vehicle_classes": "C1", "file_number": "110100123456",
    }  # fmt: skip


def id_face(holder: str, **changes: Any) -> dict[str, Any]:
    face = {
        "name": "张三",
        "sex": "男",
        "ethnicity": "汉",
        "birth_date": f"{holder[6:10]}-{holder[10:12]}-{holder[12:14]}",
        "address": "北京市东城区正义路1号",
        "id_number": holder,
        "authority": "北京市公安局东城分局",
    }
    face.update(changes)
    return face


@pytest.fixture()
def world(hub: Hub, client: TestClient, request: pytest.FixtureRequest) -> World:
    admin = hub.admin
    assert client.post("/certhub/types/examples", headers=admin.headers).status_code == 200
    bureau = hub.department("北京市公安局", code=uscc(region="110000"))
    algorithm = getattr(request, "param", "ES256")
    with hub.factory() as db:
        seal = make_seal(db, hub.app.state.vault, bureau.id, algorithm=algorithm)
        grant(db, seal.id, "certhub", kind="system")  # the bureau lets the hub seal its certificates' PDF copies
        db.commit()
    for code in (ID_CARD, DRIVING):
        response = client.patch(f"/certhub/types/{code}", json={"issuer_codes": [bureau.code]}, headers=admin.headers)
        assert response.status_code == 200, response.text
    window_department = hub.department("北京市政务服务中心", code=uscc(region="110000"))
    other_department = hub.department("天津市政务服务中心", code=uscc(region="120000"), region="120000")
    return World(
        hub=hub,
        client=client,
        issuer=hub.system(bureau, name="公安制证系统"),
        window=hub.actor(window_department, "window", name="东城窗口"),
        other_window=hub.actor(other_department, "window", name="天津窗口"),
        algorithm=algorithm,
    )
