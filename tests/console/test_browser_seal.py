"""In the browser (Playwright, Debian's Chromium): a seal's page shows who may use and approve it, the use
requests, and an approver approves one there; the use that follows and a refused attempt show too (用印管理).

The hub is set up through its HTTP API, as the seal's department would."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import httpx

from tests.console.conftest import ADMIN_ID, ADMIN_SECRET, require_browser, shot
from tests.factories import uscc
from tests.seal.helpers import seal_body

require_browser()

NOTICE = "关于开展2027年度政务数据共享工作的通知".encode()


def _token(api: httpx.Client, client_id: str, secret: str) -> dict[str, str]:
    response = api.post("/auth/token", data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def _ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code in (200, 201), response.text
    return dict(response.json())


def _client(api: httpx.Client, admin: dict[str, str], department_id: str, name: str, role: str) -> dict[str, Any]:
    return _ok(api.post("/clients", json={"name": name, "roles": [role], "department_id": department_id}, headers=admin))


def test_an_approver_approves_a_use_on_the_seals_page_and_sees_the_use(browser: Any, hub_url: str) -> None:
    with httpx.Client(base_url=hub_url, timeout=30) as api:
        admin = _token(api, ADMIN_ID, ADMIN_SECRET)
        body = {"code": uscc(region="110000"), "name": "北京市市场监督管理局", "level": "province", "region_code": "110000"}
        department = _ok(api.post("/departments", json=body, headers=admin))
        seal = _ok(api.post("/seals", json=seal_body(department["id"], name="北京市市场监督管理局"), headers=admin))
        office = _client(api, admin, department["id"], "办公室主任", "department_admin")
        clerk = _client(api, admin, department["id"], "公文系统", "department_system")
        approver = _client(api, admin, department["id"], "分管领导", "department_admin")
        outsider = _client(api, admin, department["id"], "其他系统", "department_system")
        as_office = _token(api, office["client_id"], office["client_secret"])
        as_clerk = _token(api, clerk["client_id"], clerk["client_secret"])
        url = f"/seals/{seal['id']}"
        _ok(
            api.post(
                f"{url}/authorisations",
                json={"subject": clerk["client_id"], "subject_kind": "client", "note": "公文用印"},
                headers=as_office,
            )
        )
        grant = {
            "subject": approver["client_id"],
            "subject_kind": "client",
            "may_use": False,
            "may_approve": True,
            "note": "分管领导审批",
        }
        _ok(api.post(f"{url}/authorisations", json=grant, headers=as_office))
        etag = api.get(url, headers=as_office).headers["ETag"]
        policy = {"requires_approval": True, "approval_valid_hours": 24}
        _ok(api.put(f"{url}/use-policy", json=policy, headers={**as_office, "If-Match": etag}))
        request = {
            "document_name": "关于开展2027年度政务数据共享工作的通知.txt",
            "document_hash": hashlib.sha256(NOTICE).hexdigest(),
            "purpose": "发文用印",
        }
        requested = _ok(api.post(f"{url}/use-requests", json=request, headers=as_clerk))
        sign = {"purpose": "发文用印", "seal_id": seal["id"], "data_base64": base64.b64encode(NOTICE).decode()}
        refused = api.post("/seal/sign", json=sign, headers=_token(api, outsider["client_id"], outsider["client_secret"]))
        assert refused.status_code == 403

        page = browser.new_context(viewport={"width": 1366, "height": 900}, locale="zh-CN").new_page()
        page.goto(f"{hub_url}/console/login")
        page.fill("#client_id", approver["client_id"])
        page.fill("#client_secret", approver["client_secret"])
        page.click("form[action='/console/login'] button[type=submit]")
        page.wait_for_url("**/console/**")
        page.click("nav >> text=电子印章")
        page.click("#seals >> text=北京市市场监督管理局")
        assert "每次用印须经另一名有审批权的人员批准" in page.inner_text("#policy")
        assert clerk["client_id"] in page.inner_text("#authorisations")
        row = page.locator("#use-requests tbody tr", has_text="发文用印")
        assert "待审批" in row.inner_text()
        row.locator("button", has_text="批准").click()
        page.wait_for_load_state()
        assert "已批准" in page.inner_text("#use-requests")

        # The clerk seals the document with the approval; the page shows the use and the refused attempt.
        used = api.post("/seal/sign", json={**sign, "approval_id": requested["id"]}, headers=as_clerk)
        assert used.status_code == 200, used.text
        page.reload()
        assert "已用印" in page.inner_text("#use-requests")
        assert requested["id"] in page.inner_text("#uses")
        assert outsider["client_id"] in page.inner_text("#refusals")
        shot(page, "seal-use-control")
