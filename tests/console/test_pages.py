"""The console as a person uses it: sign in, forms that explain mistakes, sessions that end."""

from __future__ import annotations

import re
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from govhub.console.models import ConsoleSession
from tests.conftest import Hub
from tests.factories import uscc


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "the page has no CSRF field"
    return found.group(1)


def sign_in(client: TestClient, client_id: str, secret: str) -> str:
    """Sign in through the form; returns the CSRF token of the first page."""
    login = client.get("/console/login")
    response = client.post(
        "/console/login", data={"csrf": _csrf(login.text), "client_id": client_id, "client_secret": secret}, follow_redirects=True
    )
    assert response.status_code == 200, response.text
    return _csrf(response.text)


def test_pages_need_a_session_and_send_you_to_sign_in(client: TestClient) -> None:
    response = client.get("/console/departments", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/console/login?next=/console/departments"


def test_a_wrong_secret_shows_the_form_again_with_a_message(client: TestClient, hub: Hub) -> None:
    login = client.get("/console/login")
    response = client.post(
        "/console/login",
        data={
            "csrf": _csrf(login.text),
            "client_id": hub.admin.client.client_id,  # type: ignore[union-attr]
            "client_secret": "wrong",
        },
    )
    assert response.status_code == 401
    assert "客户端标识或密钥不正确" in response.text
    assert hub.admin.client.client_id in response.text  # type: ignore[union-attr]


def test_a_sign_in_form_without_its_csrf_token_is_refused(client: TestClient, hub: Hub) -> None:
    client.get("/console/login")
    response = client.post("/console/login", data={"csrf": "forged", "client_id": "x", "client_secret": "y"})
    assert response.status_code == 403 and "已过期" in response.text


def test_a_sign_in_with_text_the_database_cannot_store_shows_a_page(client: TestClient) -> None:
    """A NUL typed (or pasted) into a form is refused before the database sees it, on a page, not in JSON."""
    login = client.get("/console/login")
    response = client.post("/console/login", data={"csrf": _csrf(login.text), "client_id": "gh_\x00", "client_secret": "x"})
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("text/html") and "client_id" in response.text


def test_an_administrator_registers_a_department_and_sees_mistakes_next_to_the_field(client: TestClient, hub: Hub) -> None:
    csrf = sign_in(client, hub.admin.client.client_id, hub.admin.extra["secret"])  # type: ignore[union-attr]
    bad = client.post(
        "/console/departments",
        data={"csrf": csrf, "code": "91350100M000100Y44", "name": "福州市数据管理局", "level": "city", "region_code": "350100"},
    )
    assert bad.status_code == 422
    assert 'id="code-error"' in bad.text and "GB 32100" in bad.text
    assert 'value="福州市数据管理局"' in bad.text  # what was typed is kept
    code = uscc(region="350100")
    good = client.post(
        "/console/departments",
        data={"csrf": csrf, "code": code, "name": "福州市数据管理局", "level": "city", "region_code": "350100"},
    )
    assert good.status_code == 200 and f"已登记部门：福州市数据管理局（{code}）" in good.text


def test_a_form_posted_with_another_sessions_token_is_refused(client: TestClient, hub: Hub) -> None:
    sign_in(client, hub.admin.client.client_id, hub.admin.extra["secret"])  # type: ignore[union-attr]
    response = client.post(
        "/console/departments",
        data={"csrf": "not-this-session", "code": uscc(), "name": "某局", "level": "city", "region_code": "110000"},
    )
    assert response.status_code == 403 and "CSRF" in response.text


def test_a_window_clerk_does_not_see_administration_pages(client: TestClient, hub: Hub) -> None:
    clerk = hub.actor(hub.department("政务服务中心"), "window", name="一号窗口")
    sign_in(client, clerk.client.client_id, clerk.extra["secret"])  # type: ignore[union-attr]
    home = client.get("/console/").text
    assert "/console/departments" not in home
    refused = client.get("/console/departments")
    assert refused.status_code == 403 and "platform_admin" in refused.text


def test_a_new_client_secret_is_shown_once(client: TestClient, hub: Hub) -> None:
    department = hub.department("人社局")
    admin = hub.actor(department, "department_admin", name="人社局管理员")
    csrf = sign_in(client, admin.client.client_id, admin.extra["secret"])  # type: ignore[union-attr]
    created = client.post("/console/clients", data={"csrf": csrf, "name": "社保系统", "roles": ["department_system"]})
    assert created.status_code == 200 and 'id="new-secret"' in created.text
    assert 'id="new-secret"' not in client.get("/console/clients").text
    no_role = client.post("/console/clients", data={"csrf": csrf, "name": "无角色"})
    assert no_role.status_code == 422 and "field-error" in no_role.text


def test_loading_a_calendar_with_a_bad_line_names_the_line(client: TestClient, hub: Hub) -> None:
    csrf = sign_in(client, hub.admin.client.client_id, hub.admin.extra["secret"])  # type: ignore[union-attr]
    bad = client.post(
        "/console/calendar/2027",
        data={"csrf": csrf, "source": "国办通知（测试）", "holidays": "2027-01-01 元旦\n2027-13-40 错误", "workdays": ""},
    )
    assert bad.status_code == 422 and "第 2 行" in bad.text
    weekday = client.post(
        "/console/calendar/2027",
        data={"csrf": csrf, "source": "国办通知（测试）", "holidays": "2027-01-01 元旦", "workdays": "2027-03-03 错误"},
    )
    assert weekday.status_code == 422 and "weekday" in weekday.text
    good = client.post(
        "/console/calendar/2027", data={"csrf": csrf, "source": "国办通知（测试）", "holidays": "2027-01-01 元旦", "workdays": ""}
    )
    assert good.status_code == 200 and "已载入 2027 年日历" in good.text


def test_sign_out_and_idle_expiry_end_the_session(client: TestClient, hub: Hub, db: Session) -> None:
    csrf = sign_in(client, hub.admin.client.client_id, hub.admin.extra["secret"])  # type: ignore[union-attr]
    client.post("/console/logout", data={"csrf": csrf})
    assert client.get("/console/", follow_redirects=False).status_code == 303

    sign_in(client, hub.admin.client.client_id, hub.admin.extra["secret"])  # type: ignore[union-attr]
    for row in db.query(ConsoleSession).all():
        row.last_seen_at = row.last_seen_at - timedelta(minutes=31)
    db.commit()
    assert client.get("/console/", follow_redirects=False).status_code == 303


def test_a_revoked_client_is_signed_out(client: TestClient, hub: Hub) -> None:
    staff = hub.system(name="将被吊销的系统")
    sign_in(client, staff.client.client_id, staff.extra["secret"])  # type: ignore[union-attr]
    client.post(f"/clients/{staff.client.client_id}/revoke", headers=hub.admin.headers, json={"reason": "测试"})  # type: ignore[union-attr]
    assert client.get("/console/", follow_redirects=False).status_code == 303


def test_a_holder_signs_in_with_the_development_provider(client: TestClient) -> None:
    login = client.get("/console/login")
    bad = client.post(
        "/console/holder-login",
        data={"csrf": _csrf(login.text), "holder_code": "110105194912310021", "holder_kind": "person", "name": "张三"},
    )
    assert bad.status_code == 422 and "公民身份号码" in bad.text
    good = client.post(
        "/console/holder-login",
        data={"csrf": _csrf(login.text), "holder_code": "11010519491231002X", "holder_kind": "person", "name": "张三"},
        follow_redirects=True,
    )
    assert good.status_code == 200 and "110105********002X" in good.text
