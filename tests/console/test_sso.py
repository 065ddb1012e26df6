"""Signing in to the console through the identity provider (统一身份认证), against a real OpenID Provider:
staff are people the platform or their department places, holders come with their verified 公民身份号码,
platform administration asks for a second factor, and every wrong answer gets a page that says what to do."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session, sessionmaker

from certhub import service as certhub_service
from govhub.app import create_app
from govhub.console.models import ConsoleSession, PendingSignIn
from ops.audit import AuditRecord
from ops.auth import TOKENS
from ops.config import Settings
from ops.crypto import KeyVault
from ops.db import utcnow
from ops.hubprocess import free_port
from ops.identity.models import Department, Person
from ops.identity.oidc import RelyingParty, SignInRefused
from ops.storage import LocalStore
from tests.certhub.conftest import ID_CARD, World, world
from tests.conftest import Hub
from tests.console.sharing import sharing
from tests.console.test_pages import _csrf, sign_in
from tests.oidc.provider import HOLDER_ID, OTP, Driver, Provider, query_of

__all__ = ["world"]

HUB = "http://testserver"
CALLBACK = f"{HUB}/console/oidc/callback"
TWO_FACTOR = "urn:govhub:acr:two-factor"


@pytest.fixture(scope="module")
def registered(oidc_provider: Provider) -> tuple[str, str]:
    """The console registered at the provider as a relying party."""
    return oidc_provider.register(redirect_uri=CALLBACK, post_logout_redirect_uri="http://hub.test/console/login")


def sso_settings(settings: Settings, provider: Provider, registered: tuple[str, str], **changes: Any) -> Settings:
    client_id, secret = registered
    values: dict[str, Any] = {
        "oidc_issuer": provider.issuer,
        "oidc_client_id": client_id,
        "oidc_client_secret": SecretStr(secret),
        "oidc_redirect_url": CALLBACK,
        "oidc_scopes": "openid profile govhub_id",
        "oidc_timeout_seconds": 2.0,
    }
    return settings.model_copy(update=values | changes)


def make_app(settings: Settings, engine: Engine, session_factory: sessionmaker[Session], storage: LocalStore) -> FastAPI:
    from govhub.database import ensure_keys

    certhub_service.clear_caches()
    with session_factory() as session:
        ensure_keys(session, KeyVault.from_settings(settings))
        session.commit()
    TOKENS.clear()
    return create_app(settings, engine=engine, session_factory=session_factory, storage=storage)


@pytest.fixture()
def app(
    settings: Settings,
    engine: Engine,
    session_factory: sessionmaker[Session],
    storage: LocalStore,
    oidc_provider: Provider,
    registered: tuple[str, str],
) -> FastAPI:
    """The hub with single sign-on at the test provider (the development sign-in stays on for the set-up)."""
    return make_app(sso_settings(settings, oidc_provider, registered), engine, session_factory, storage)


def browser(app: FastAPI) -> TestClient:
    """A person's browser at the hub: its own cookies."""
    return TestClient(app, raise_server_exceptions=False)


def start(hub: TestClient, *, audience: str = "staff", query: str = "") -> str:
    response = hub.get(f"/console/oidc/start?as={audience}{query}", follow_redirects=False)
    assert response.status_code == 303, response.text
    return str(response.headers["location"])


def answer(hub: TestClient, driver: Driver, *, login: str, otp: str = "", audience: str = "staff", query: str = "") -> str:
    """Begin a sign-in at the hub and log in at the provider; returns the URL the provider sends back."""
    return driver.sign_in(start(hub, audience=audience, query=query), login=login, otp=otp, back_to=CALLBACK)


def finish(hub: TestClient, back: str) -> Any:
    return hub.get(back.removeprefix(HUB), follow_redirects=False)


def sso(app: FastAPI, provider: Provider, *, login: str, otp: str = "", audience: str = "staff") -> tuple[TestClient, Any]:
    """A new browser signs in through the provider; returns it and the hub's answer to the callback."""
    hub = browser(app)
    return hub, finish(hub, answer(hub, Driver(provider), login=login, otp=otp, audience=audience))


def person(session_factory: sessionmaker[Session], subject: str) -> Person:
    with session_factory() as db:
        found = db.scalars(select(Person).where(Person.subject == subject)).one()
        db.expunge(found)
        return found


def place(hub: Hub, person_id: str, department: Department | None, *roles: str) -> None:
    """The platform gives a person a department and roles (through the API)."""
    client = TestClient(hub.app, raise_server_exceptions=False)
    body = {"department_id": department.id if department else None, "roles": list(roles)}
    response = client.put(f"/people/{person_id}/assignment", json=body, headers=hub.admin.headers)
    assert response.status_code == 200, response.text


def audit_of(session_factory: sessionmaker[Session], **where: Any) -> list[AuditRecord]:
    with session_factory() as db:
        query = select(AuditRecord).order_by(AuditRecord.id)
        for key, value in where.items():
            query = query.where(getattr(AuditRecord, key) == value)
        return list(db.scalars(query))


# ---- staff: people, placed by their department or the platform ---------------------------------------------


def test_a_person_without_a_department_signs_in_is_told_so_and_the_department_admin_adds_them(
    app: FastAPI, hub: Hub, oidc_provider: Provider, session_factory: sessionmaker[Session]
) -> None:
    login = browser(app).get("/console/login")
    assert 'id="sso-staff"' in login.text and "开发环境" in login.text  # the development sign-in is marked

    _, first = sso(app, oidc_provider, login="nodept")
    assert first.status_code == 403
    assert "尚未分配部门" in first.text and "Ask your department" in first.text
    newcomer = person(session_factory, "nodept")
    assert newcomer.name == "赵无部" and newcomer.department_id is None and newcomer.id in first.text

    # The department's administrator (signed in with its client in this development set-up) adds them.
    department = hub.department("市人社局")
    admin = hub.actor(department, "department_admin", name="人社局管理员")
    assert admin.client is not None
    console = browser(app)
    csrf = sign_in(console, admin.client.client_id, admin.extra["secret"])
    listed = console.get("/console/people")
    assert listed.status_code == 200 and "赵无部" in listed.text and "未分配" in listed.text
    too_much = console.post(
        f"/console/people/{newcomer.id}", data={"csrf": csrf, "department_id": department.id, "roles": ["platform_admin"]}
    )
    assert too_much.status_code == 403 and "department_admin and window only" in too_much.text
    placed = console.post(
        f"/console/people/{newcomer.id}", data={"csrf": csrf, "department_id": department.id, "roles": ["window"]}
    )
    assert placed.status_code == 200 and "已为 赵无部 设置部门和角色" in placed.text

    signed, again = sso(app, oidc_provider, login="nodept")
    assert again.status_code == 303 and again.headers["location"] == "/console/"
    home = signed.get("/console/")
    assert home.status_code == 200 and "赵无部" in home.text and "市人社局" in home.text

    (assigned,) = audit_of(session_factory, action="person.assign", object_id=newcomer.id)
    assert assigned.actor == admin.client.client_id and assigned.detail["roles"] == ["window"]
    signed_in = audit_of(session_factory, action="console.sign_in", actor=newcomer.id)
    assert signed_in and signed_in[-1].detail["actor_name"] == "赵无部" and signed_in[-1].detail["person_id"] == newcomer.id
    assert signed_in[-1].detail["amr"] == ["pwd"]


def test_a_decision_on_a_request_names_the_person_who_made_it(
    app: FastAPI, client: TestClient, hub: Hub, oidc_provider: Provider, session_factory: sessionmaker[Session]
) -> None:
    s = sharing(client, hub)
    req = s.file()
    s.api(s.admin, req["id"], "accept")
    _, first = sso(app, oidc_provider, login="staff2")
    assert first.status_code == 403
    staff = person(session_factory, "staff2")
    place(hub, staff.id, s.provider.department, "department_admin")

    officer, signed = sso(app, oidc_provider, login="staff2")
    assert signed.status_code == 303
    csrf = _csrf(officer.get("/console/exchange/decisions").text)
    refused = officer.post(
        f"/console/exchange/requests/{req['id']}/decision",
        data={"csrf": csrf, "version": s.version(req["id"]), "approve": "false", "reason": "该数据仅限户籍业务使用"},
        follow_redirects=True,
    )
    assert refused.status_code == 200 and "提供部门不予批准" in refused.text
    (decision,) = [r for r in audit_of(session_factory, object_id=req["id"]) if r.actor == staff.id]
    assert decision.detail["actor_name"] == "韩梅梅" and decision.detail["person_id"] == staff.id
    assert decision.department_id == s.provider.department_id


# ---- holders: the code comes from the verified claim --------------------------------------------------------


def test_a_holder_signs_in_with_the_verified_id_number_and_authorises_a_department(
    world: World, oidc_provider: Provider, session_factory: sessionmaker[Session]
) -> None:
    world.issue(HOLDER_ID)
    holder, signed = sso(world.hub.app, oidc_provider, login="holder1", audience="holder")
    assert signed.status_code == 303, signed.text
    mine = holder.get("/console/me/certificates")
    assert mine.status_code == 200 and "张三" in mine.text
    assert world.window.department is not None
    until = (utcnow().date() + timedelta(days=30)).isoformat()
    granted = holder.post(
        "/console/me/authorisations",
        data={
            "csrf": _csrf(mine.text),
            "type_code": ID_CARD,
            "department_code": world.window.department.code,
            "purpose": "办理居住证",
            "valid_until": until,
        },
    )
    assert granted.status_code == 200 and "已授权" in granted.text
    records = [r for r in audit_of(session_factory, actor=HOLDER_ID) if r.action != "console.sign_in"]
    assert records and records[-1].detail["actor_name"] == "张三"

    # A window clerk, a person of the window's department, fetches it with that authorisation (一证通办).
    sso(world.hub.app, oidc_provider, login="staff2")
    clerk_id = person(session_factory, "staff2").id
    place(world.hub, clerk_id, world.window.department, "window")
    clerk, _ = sso(world.hub.app, oidc_provider, login="staff2")
    counter = clerk.get("/console/verify/fetch")
    fetched = clerk.post(
        "/console/verify/fetch",
        data={"csrf": _csrf(counter.text), "holder_code": HOLDER_ID, "type_code": ID_CARD, "use_cause": "办理居住证（受理号 7）"},
    )
    assert fetched.status_code == 200, fetched.text
    actions = {r.action: r for r in audit_of(session_factory, actor=clerk_id)}
    used = actions["certificate.fetch"]
    assert used.detail["actor_name"] == "韩梅梅" and used.detail["person_id"] == clerk_id
    assert used.department_id == world.window.department.id and used.purpose == "办理居住证（受理号 7）"


def test_a_holder_claim_that_fails_its_check_digit_is_refused_with_what_to_do(app: FastAPI, oidc_provider: Provider) -> None:
    holder, refused = sso(app, oidc_provider, login="holder2", audience="holder")
    assert refused.status_code == 422
    assert "fails its check" in refused.text and "ask the provider to correct" in refused.text
    assert holder.get("/console/", follow_redirects=False).status_code == 303  # no session was opened


def test_with_the_external_holder_provider_holders_sign_in_through_it(
    settings: Settings,
    engine: Engine,
    session_factory: sessionmaker[Session],
    storage: LocalStore,
    oidc_provider: Provider,
    registered: tuple[str, str],
) -> None:
    external = sso_settings(
        settings,
        oidc_provider,
        registered,
        holder_idp="external",
        holder_idp_issuer=oidc_provider.issuer,
        holder_idp_jwks_url=f"{oidc_provider.issuer}/jwks",
        console_client_sign_in=False,
    )
    app = make_app(external, engine, session_factory, storage)
    login = browser(app).get("/console/login")
    assert 'id="sso-holder"' in login.text and "/console/holder-login" not in login.text
    assert 'name="client_secret"' not in login.text  # the production setting: no client secrets here
    form = browser(app)
    form.get("/console/login")
    csrf = form.cookies["govhub_login_csrf"]  # the form a script would post (the page offers none)
    posted = form.post("/console/holder-login", data={"csrf": csrf, "holder_code": HOLDER_ID, "holder_kind": "person"})
    assert posted.status_code == 403 and "持证人请通过统一身份认证登录" in posted.text
    secret = form.post("/console/login", data={"csrf": csrf, "client_id": "x", "client_secret": "y"})
    assert secret.status_code == 403 and "turned off" in secret.text

    holder, signed = sso(app, oidc_provider, login="holder1", audience="holder")
    assert signed.status_code == 303, signed.text
    assert "张三" in holder.get("/console/").text


# ---- step-up: platform administration needs a second factor --------------------------------------------------


def test_platform_administration_asks_for_a_second_factor_and_the_console_restarts_the_sign_in(
    app: FastAPI, hub: Hub, oidc_provider: Provider
) -> None:
    hub_browser, driver = browser(app), Driver(oidc_provider)
    first = finish(hub_browser, answer(hub_browser, driver, login="admin1"))
    assert first.status_code == 403  # not placed yet
    with TestClient(app) as api:
        people = api.get("/people", headers=hub.admin.headers).json()["items"]
    admin_id = next(p["id"] for p in people if p["subject"] == "admin1")
    place(hub, admin_id, None, "platform_admin")

    signed = finish(hub_browser, answer(hub_browser, driver, login="admin1"))  # the provider remembers them: no form
    assert signed.status_code == 303
    needs = hub_browser.get("/console/departments")
    assert needs.status_code == 403 and "sign in again with a second factor" in needs.text
    assert 'id="step-up-button"' in needs.text and "step_up=1" in needs.text

    before_step_up = hub_browser.cookies["govhub_session"]
    url = start(hub_browser, query="&step_up=1&next=/console/departments")
    assert query_of(url)["acr_values"] == TWO_FACTOR and query_of(url)["prompt"] == "login"
    back = driver.sign_in(url, login="admin1", otp=OTP, back_to=CALLBACK)
    stepped = finish(hub_browser, back)
    assert stepped.status_code == 303 and stepped.headers["location"] == "/console/departments"
    assert hub_browser.get("/console/departments").status_code == 200
    stale = browser(app)
    stale.cookies.set("govhub_session", before_step_up)
    assert stale.get("/console/", follow_redirects=False).status_code == 303  # the stepped-up session replaced it

    # Without the second factor at the provider the step-up is refused, saying what to do.
    url = start(hub_browser, query="&step_up=1")
    refused = finish(hub_browser, driver.sign_in(url, login="admin1", back_to=CALLBACK))
    assert refused.status_code == 403 and "did not confirm a second factor" in refused.text


# ---- the provider's keys, sessions and logout ----------------------------------------------------------------


def test_a_sign_in_still_works_after_the_provider_rotates_its_key(
    app: FastAPI, hub: Hub, oidc_provider: Provider, session_factory: sessionmaker[Session]
) -> None:
    sso(app, oidc_provider, login="staff1")
    place(hub, person(session_factory, "staff1").id, hub.department("市公安局"), "window")
    _, before = sso(app, oidc_provider, login="staff1")
    assert before.status_code == 303
    rp: RelyingParty = app.state.oidc_relying_party
    kids = rp.known_kids
    oidc_provider.rotate_keys()
    _, after = sso(app, oidc_provider, login="staff1")
    assert after.status_code == 303, after.text
    assert "key-b" in rp.known_kids and rp.known_kids > kids


def test_an_expired_session_sends_the_person_to_sign_in_again_and_says_why(
    app: FastAPI, hub: Hub, oidc_provider: Provider, session_factory: sessionmaker[Session]
) -> None:
    sso(app, oidc_provider, login="staff1")
    place(hub, person(session_factory, "staff1").id, hub.department("市公安局"), "window")
    signed, _ = sso(app, oidc_provider, login="staff1")
    assert signed.get("/console/").status_code == 200
    with session_factory() as db:
        db.execute(update(ConsoleSession).values(expires_at=utcnow() - timedelta(seconds=1)))
        db.commit()
    back = signed.get("/console/", follow_redirects=True)
    assert "登录已过期" in back.text and 'id="sso-staff"' in back.text


def test_signing_out_ends_the_providers_session_too(
    app: FastAPI, hub: Hub, oidc_provider: Provider, session_factory: sessionmaker[Session]
) -> None:
    sso(app, oidc_provider, login="staff1")
    place(hub, person(session_factory, "staff1").id, hub.department("市公安局"), "window")
    signed, _ = sso(app, oidc_provider, login="staff1")
    csrf = _csrf(signed.get("/console/").text)
    out = signed.post("/console/logout", data={"csrf": csrf}, follow_redirects=False)
    assert out.status_code == 303
    target = out.headers["location"]
    assert target.startswith(f"{oidc_provider.issuer}/session/end")
    assert query_of(target)["post_logout_redirect_uri"] == "http://hub.test/console/login"
    assert signed.get("/console/", follow_redirects=False).status_code == 303
    ended = Driver(oidc_provider).http.get(target)
    assert ended.status_code == 200 and "<form" in ended.text  # the provider asks to confirm, then signs out


# ---- bad answers: each refused with a page that says what to do ---------------------------------------------


def test_a_wrong_state_a_replayed_answer_and_a_replayed_code_are_refused(
    app: FastAPI, hub: Hub, oidc_provider: Provider, session_factory: sessionmaker[Session]
) -> None:
    hub_browser, driver = browser(app), Driver(oidc_provider)
    robot = hub_browser.get("/console/oidc/start?as=robot", follow_redirects=False)
    assert robot.status_code == 422 and "sign in as staff or holder" in robot.text
    back = answer(hub_browser, driver, login="staff2")
    wrong = hub_browser.get(f"/console/oidc/callback?code={query_of(back)['code']}&state=forged")
    assert wrong.status_code == 401 and "does not belong to the sign-in this browser began" in wrong.text
    with session_factory() as db:  # a wrong state does not use up the real one
        assert db.scalars(select(PendingSignIn)).first() is not None

    used = finish(hub_browser, back)
    assert used.status_code == 403  # staff2 has no department: the answer itself was good
    again = finish(hub_browser, back)  # the browser's state cookie went with the first answer
    assert again.status_code == 401 and "does not belong to the sign-in this browser began" in again.text
    hub_browser.cookies.set("govhub_oidc_state", query_of(back)["state"], domain="testserver.local", path="/console/oidc")
    replayed = finish(hub_browser, back)  # even with the cookie kept, the state was used once
    assert replayed.status_code == 401 and "already used" in replayed.text

    # A fresh sign-in, answered with the first one's code: the provider refuses the used code.
    fresh = answer(hub_browser, driver, login="staff2")
    old_code = query_of(back)["code"]
    replay = hub_browser.get(f"/console/oidc/callback?code={old_code}&state={query_of(fresh)['state']}")
    assert replay.status_code == 401 and "already used or has expired" in replay.text
    assert "重新通过统一身份认证登录" in replay.text


def test_a_provider_that_is_down_or_hangs_gets_a_clear_page_not_a_hung_browser(
    settings: Settings, engine: Engine, session_factory: sessionmaker[Session], storage: LocalStore, registered: tuple[str, str]
) -> None:
    down = Provider(f"http://127.0.0.1:{free_port()}", process=None)  # type: ignore[arg-type]
    app = make_app(sso_settings(settings, down, registered, oidc_timeout_seconds=1.0), engine, session_factory, storage)
    response = browser(app).get("/console/oidc/start?as=staff", follow_redirects=False)
    assert response.status_code == 503
    assert "did not answer" in response.text and "稍后重试" in response.text

    # A provider that takes the connection and never answers: the configured timeout ends the wait. Without
    # it the request would hang for good, so the bound below is generous and still cannot pass by luck.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        hanging = Provider(f"http://127.0.0.1:{silent.getsockname()[1]}", process=None)  # type: ignore[arg-type]
        app = make_app(sso_settings(settings, hanging, registered, oidc_timeout_seconds=0.5), engine, session_factory, storage)
        began = time.monotonic()
        response = browser(app).get("/console/oidc/start?as=staff", follow_redirects=False)
        waited = time.monotonic() - began
    assert response.status_code == 503 and "did not answer" in response.text and "Timeout" in response.text
    assert waited < 30, f"the sign-in page waited {waited:.1f} s for a silent provider"


@pytest.fixture(scope="module")
def other_app(oidc_provider: Provider) -> tuple[str, str]:
    """Another application registered at the same provider."""
    return oidc_provider.register(redirect_uri=CALLBACK, post_logout_redirect_uri="http://hub.test/console/login")


def _id_token(rp: RelyingParty, provider: Provider, login: str) -> tuple[str, str]:
    """A real ID token for `rp` from the provider, and the nonce it was asked with."""
    request = rp.authorization_request()
    back = Driver(provider).sign_in(request.url, login=login, back_to=CALLBACK)
    return rp.exchange_code(code=query_of(back)["code"], code_verifier=request.code_verifier), request.nonce


@pytest.fixture()
def rps(
    settings: Settings, oidc_provider: Provider, registered: tuple[str, str], other_app: tuple[str, str]
) -> Iterator[tuple[RelyingParty, RelyingParty]]:
    ours = RelyingParty(sso_settings(settings, oidc_provider, registered))
    theirs = RelyingParty(sso_settings(settings, oidc_provider, other_app))
    yield ours, theirs
    ours.close()
    theirs.close()


def test_id_tokens_with_a_bad_signature_another_audience_or_an_old_nonce_are_refused(
    rps: tuple[RelyingParty, RelyingParty], oidc_provider: Provider
) -> None:
    ours, theirs = rps
    token, nonce = _id_token(ours, oidc_provider, "staff1")
    assert ours.verify_id_token(token, nonce=nonce).subject == "staff1"

    head, body, signature = token.split(".")
    forged = f"{head}.{body}.{signature[:-8]}{'A' * 8 if not signature.endswith('A' * 8) else 'B' * 8}"
    with pytest.raises(SignInRefused, match="signature does not verify"):
        ours.verify_id_token(forged, nonce=nonce)

    foreign, foreign_nonce = _id_token(theirs, oidc_provider, "staff1")
    with pytest.raises(SignInRefused, match="another application"):
        ours.verify_id_token(foreign, nonce=foreign_nonce)

    _, newer_nonce = _id_token(ours, oidc_provider, "staff1")
    with pytest.raises(SignInRefused, match="nonce"):
        ours.verify_id_token(token, nonce=newer_nonce)


def test_a_sign_in_left_at_the_provider_too_long_is_refused_and_then_purged(
    app: FastAPI, oidc_provider: Provider, session_factory: sessionmaker[Session]
) -> None:
    from govhub.console import service

    hub_browser = browser(app)
    back = answer(hub_browser, Driver(oidc_provider), login="staff2")
    abandoned = start(browser(app))  # another sign-in nobody finishes
    with session_factory() as db:
        db.execute(update(PendingSignIn).values(created_at=utcnow() - timedelta(minutes=11)))
        db.commit()
    late = finish(hub_browser, back)
    assert late.status_code == 401 and "took too long" in late.text
    with session_factory() as db:
        assert service.purge_expired(db) >= 1
        db.commit()
        assert db.scalars(select(PendingSignIn)).first() is None
    assert query_of(abandoned)["state"]
