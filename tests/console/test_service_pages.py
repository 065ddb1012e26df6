"""The service pages of the console: the platform edits a published service (a new version), bad input is
shown at its field with nothing written; the window's prefill names what is wrong."""

from __future__ import annotations

import json

from certhub.models import ServiceItem
from tests.certhub.conftest import World, world
from tests.certhub.test_services import RESIDENCE, register_and_publish, service_body
from tests.console.sharing import field_error
from tests.console.test_certhub_pages import clerk, holder_signed_in
from tests.console.test_pages import _csrf
from tests.factories import citizen_id, corrupt_check

__all__ = ["world"]  # the certificate hub's scenario fixture, used here as it is


def _versions(world: World) -> int:
    with world.hub.factory() as db:
        return db.query(ServiceItem).count()


def test_editing_a_published_service_in_the_console_makes_a_new_draft_and_bad_json_is_named(world: World) -> None:
    register_and_publish(world, service_body(world))
    browser, _ = clerk(world, world.hub.admin)
    page = browser.get(f"/console/services/{RESIDENCE}")
    assert page.status_code == 200 and "生成第 2 版草稿" in page.text
    form = {"csrf": _csrf(page.text), "name": "居住证申领", "holder_kind": "person", "form_fields": "[]"}

    before = _versions(world)
    broken = browser.post(f"/console/services/{RESIDENCE}/versions", data={**form, "materials": "[{"})
    assert broken.status_code == 422 and "不是有效的 JSON" in field_error(broken.text, "materials")
    empty = browser.post(f"/console/services/{RESIDENCE}/versions", data={**form, "materials": "[]"})
    assert empty.status_code == 422 and "at least one material" in field_error(empty.text, "materials")
    assert _versions(world) == before

    one = json.dumps([{"key": "photo", "name": "近期免冠照片", "kind": "submit"}], ensure_ascii=False)
    saved = browser.post(f"/console/services/{RESIDENCE}/versions", data={**form, "materials": one}, follow_redirects=True)
    assert saved.status_code == 200 and "修改草稿（第 2 版）" in saved.text
    assert _versions(world) == before + 1
    published = browser.post(
        f"/console/services/{RESIDENCE}/versions/2/publish", data={"csrf": _csrf(saved.text)}, follow_redirects=True
    )
    assert published.status_code == 200 and "已被新版本替代" in published.text  # version 1 stays, replaced
    twice = browser.post(f"/console/services/{RESIDENCE}/versions/2/publish", data={"csrf": _csrf(saved.text)})
    assert twice.status_code == 409 and "already published" in twice.text


def test_the_window_is_told_what_is_wrong_with_a_prefill_and_cannot_edit_services(world: World) -> None:
    register_and_publish(world, service_body(world))
    browser, csrf = clerk(world, world.window)
    assert browser.get("/console/services").status_code == 403
    page = browser.get("/console/window/prefill")
    assert page.status_code == 200 and RESIDENCE in page.text
    holder = citizen_id()
    form = {"csrf": csrf, "service_code": RESIDENCE, "holder_code": corrupt_check(holder), "use_cause": "办理居住证"}
    bad = browser.post("/console/window/prefill", data=form)
    assert bad.status_code == 422 and "公民身份号码" in field_error(bad.text, "holder_code")
    unknown = browser.post("/console/window/prefill", data={**form, "holder_code": holder, "service_code": "NO-SUCH"})
    assert unknown.status_code == 404 and "尚未发布" in field_error(unknown.text, "service_code")
    refused = browser.post("/console/window/prefill", data={**form, "holder_code": holder})
    assert refused.status_code == 403 and "无授权" in refused.text
    garbage = browser.post(
        "/console/window/prefill", data={**form, "holder_code": holder, "presentation": "不是亮证码", "action": "fetch"}
    )
    assert garbage.status_code == 403 and "malformed" in field_error(garbage.text, "presentation")


def test_a_holder_authorises_a_whole_service_once_and_bad_input_is_named(world: World) -> None:
    register_and_publish(world, service_body(world))
    browser, csrf = holder_signed_in(world, citizen_id())
    page = browser.get("/console/me/services")
    assert page.status_code == 200 and RESIDENCE in page.text
    assert world.window.department is not None
    form = {"csrf": csrf, "service_code": RESIDENCE, "department_code": world.window.department.code, "purpose": "办理居住证"}
    past = browser.post("/console/me/services", data={**form, "valid_until": "2020-01-01"})
    assert past.status_code == 422 and "future" in field_error(past.text, "valid_until")
    nobody = browser.post("/console/me/services", data={**form, "department_code": "X" * 18, "valid_until": "2099-01-01"})
    assert nobody.status_code == 422 and field_error(nobody.text, "department_code")
    unknown = browser.post("/console/me/services", data={**form, "service_code": "NO-SUCH", "valid_until": "2099-01-01"})
    assert unknown.status_code == 404 and "尚未发布" in field_error(unknown.text, "service_code")
    done = browser.post("/console/me/services", data={**form, "valid_until": "2099-01-01"})
    assert done.status_code == 200 and "2 项授权" in done.text  # the ID card and the driving licence
    listed = browser.get("/console/me/authorisations").text
    assert listed.count("北京市政务服务中心") >= 2 and "机动车驾驶证" in listed
