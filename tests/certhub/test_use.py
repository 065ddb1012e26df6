"""一证通办 and 授权用证: fetching a holder's certificate with an authorisation and a useCause; delegation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from certhub.models import Access
from ops import audit
from seal import service as seal_service
from tests.certhub.conftest import DRIVING, ID_CARD, World, assert_same_refusal, driving_face, unknown_identifier
from tests.factories import citizen_id, corrupt_check


def _later(days: int = 30) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).isoformat()


def _fetch(world: World, holder: str, cause: object = "办理居住证需核验身份") -> object:
    body = {"holder_code": holder, "type_code": ID_CARD, "useCause": cause}
    return world.client.post("/certhub/fetch", json=body, headers=world.window.headers)


def test_without_an_authorisation_a_department_gets_403_saying_so_and_the_attempt_is_recorded(world: World) -> None:
    holder = citizen_id()
    world.issue(holder)
    response = _fetch(world, holder)
    assert response.status_code == 403  # type: ignore[attr-defined]
    assert "no authorisation exists" in response.json()["detail"]  # type: ignore[attr-defined]
    with world.hub.factory() as db:
        denied = [r for r in audit.records_for(db, object_type="certificate_type") if r.outcome == "denied"]
        assert denied and denied[0].purpose == "办理居住证需核验身份" and denied[0].subject_ref == audit.subject_ref(holder)


def test_with_the_holders_authorisation_the_window_fetches_the_certificate_and_the_holder_sees_why(world: World) -> None:
    holder_code = citizen_id()
    cert = world.issue(holder_code)
    holder = world.hub.holder(holder_code)
    grant = world.client.post(
        "/certhub/me/authorisations",
        json={
            "type_code": ID_CARD,
            "department_code": world.window.department.code,
            "purpose": "办理居住证",
            "valid_until": _later(),
        },  # type: ignore[union-attr]
        headers=holder.headers,
    )
    assert grant.status_code == 201, grant.text
    response = _fetch(world, holder_code)
    assert response.status_code == 200  # type: ignore[attr-defined]
    assert response.json()["identifier"] == cert["identifier"]  # type: ignore[attr-defined]
    accesses = world.client.get("/certhub/me/accesses", headers=holder.headers).json()["items"]
    assert accesses[0]["action"] == "fetch" and accesses[0]["use_cause"] == "办理居住证需核验身份"
    assert accesses[0]["accessor_department_name"] == "北京市政务服务中心"
    # withdrawn: refused again at once
    assert world.client.delete(f"/certhub/me/authorisations/{grant.json()['id']}", headers=holder.headers).status_code == 200
    assert _fetch(world, holder_code).status_code == 403  # type: ignore[attr-defined]


def test_an_expired_authorisation_no_longer_works(world: World) -> None:
    holder_code = citizen_id()
    world.issue(holder_code)
    holder = world.hub.holder(holder_code)
    body = {"type_code": ID_CARD, "department_code": world.window.department.code, "purpose": "x", "valid_until": _later(-1)}  # type: ignore[union-attr]
    response = world.client.post("/certhub/me/authorisations", json=body, headers=holder.headers)
    assert response.status_code == 422 and "future" in response.json()["detail"]


def test_an_authorisation_or_delegation_until_a_time_without_a_time_zone_is_refused_at_the_field(world: World) -> None:
    holder = world.hub.holder(citizen_id())
    naive = "2030-01-01T00:00:00"  # which instant? it depends on where the reader is
    authorisation = {"type_code": ID_CARD, "department_code": world.window.department.code, "purpose": "x", "valid_until": naive}  # type: ignore[union-attr]
    delegation = {"agent_code": citizen_id(), "agent_name": "李四", "actions": ["list"], "valid_until": naive}
    for url, body in (("/certhub/me/authorisations", authorisation), ("/certhub/me/delegations", delegation)):
        response = world.client.post(url, json=body, headers=holder.headers)
        assert response.status_code == 422, response.text
        assert [e["field"] for e in response.json()["errors"]] == ["valid_until"] and "time zone" in response.text


def test_the_issuer_fetches_its_own_certificate_without_authorisation(world: World) -> None:
    holder = citizen_id()
    world.issue(holder)
    body = {"holder_code": holder, "type_code": ID_CARD, "useCause": "核对制证信息"}
    assert world.client.post("/certhub/fetch", json=body, headers=world.issuer.headers).status_code == 200


def test_a_use_cause_that_is_empty_or_too_long_or_a_bad_holder_code_is_refused(world: World) -> None:
    holder = citizen_id()
    world.issue(holder)
    for cause, words in (("", "required"), ("   ", "required"), ("因" * 201, "at most 200")):
        response = _fetch(world, holder, cause)
        assert response.status_code == 422, cause  # type: ignore[attr-defined]
        assert words in response.json()["detail"] and response.json()["errors"][0]["field"] == "useCause"  # type: ignore[attr-defined]
    response = world.client.post(
        "/certhub/fetch", json={"holder_code": holder, "type_code": ID_CARD}, headers=world.window.headers
    )
    assert response.status_code == 422
    response = _fetch(world, corrupt_check(holder))
    assert response.status_code == 422 and "holder_code" in response.json()["detail"]  # type: ignore[attr-defined]


def test_the_pdf_copy_needs_a_reason_and_is_recorded(world: World) -> None:
    holder_code = citizen_id()
    cert = world.issue(holder_code, render_pdf=True)
    assert cert["has_pdf"] is True
    holder = world.hub.holder(holder_code)
    url = f"/certhub/certificates/{cert['identifier']}/pdf"
    assert world.client.get(url, headers=holder.headers).status_code == 422
    response = world.client.get(url, params={"useCause": "打印留档"}, headers=holder.headers)
    assert response.status_code == 200 and response.content.startswith(b"%PDF")
    assert response.headers["content-type"] == "application/pdf"
    with world.hub.factory() as db:
        report = seal_service.verify_pdf(db, pdf_bytes=response.content, settings=world.hub.settings)
    assert report.verdict == "valid" and len(report.signatures) == 1, report
    assert b"/ByteRange" in response.content
    assert world.client.get(url, params={"useCause": "看看"}, headers=world.window.headers).status_code == 404
    with world.hub.factory() as db:
        downloads = db.query(Access).filter_by(certificate_identifier=cert["identifier"], action="download").all()
        assert [d.use_cause for d in downloads] == ["打印留档"]


def test_an_agent_acts_for_the_holder_only_within_the_delegation(world: World) -> None:
    holder_code, agent_code = citizen_id(), citizen_id()
    cert = world.issue(holder_code)
    holder, agent = world.hub.holder(holder_code), world.hub.holder(agent_code, name="李四")
    url = f"/certhub/me/certificates?on_behalf_of={holder_code}"
    assert world.client.get(url, headers=agent.headers).status_code == 403
    delegation = world.client.post(
        "/certhub/me/delegations",
        json={
            "agent_code": agent_code,
            "agent_name": "李四",
            "type_codes": [ID_CARD],
            "actions": ["list", "show"],
            "valid_until": _later(),
        },
        headers=holder.headers,
    )
    assert delegation.status_code == 201, delegation.text
    listed = world.client.get(url, headers=agent.headers).json()["items"]
    assert [c["identifier"] for c in listed] == [cert["identifier"]]
    shown = world.client.post(
        f"/certhub/me/certificates/{cert['identifier']}/presentations?on_behalf_of={holder_code}",
        json={"fields": ["name"], "audience": world.window.department.code},  # type: ignore[union-attr]
        headers=agent.headers,
    )
    assert shown.status_code == 201 and world.verify(shown.json()["token"])["valid"] is True
    # "authorise" was not delegated
    body = {"type_code": ID_CARD, "department_code": world.window.department.code, "purpose": "x", "valid_until": _later()}  # type: ignore[union-attr]
    response = world.client.post(f"/certhub/me/authorisations?on_behalf_of={holder_code}", json=body, headers=agent.headers)
    assert response.status_code == 403 and "no delegation" in response.json()["detail"]
    world.client.delete(f"/certhub/me/delegations/{delegation.json()['id']}", headers=holder.headers)
    assert world.client.get(url, headers=agent.headers).status_code == 403


def test_a_department_cannot_use_holder_endpoints(world: World) -> None:
    assert world.client.get("/certhub/me/certificates", headers=world.window.headers).status_code == 403


def test_the_pdf_download_answers_the_same_for_an_unknown_certificate_and_someone_elses(world: World) -> None:
    holder_code = citizen_id()
    cert = world.issue(holder_code, render_pdf=True)
    unknown_id = unknown_identifier(cert)
    holder = world.hub.holder(holder_code)

    def download(identifier: str, who: object) -> object:
        url = f"/certhub/certificates/{identifier}/pdf"
        return world.client.get(url, params={"useCause": "办理居住证"}, headers=who.headers)  # type: ignore[attr-defined]

    for stranger in (world.window, world.hub.system(name="别的系统"), world.hub.holder(citizen_id())):
        response = download(cert["identifier"], stranger)
        assert response.status_code == 404  # type: ignore[attr-defined]
        assert_same_refusal(response, download(unknown_id, stranger), identifier=cert["identifier"], unknown_id=unknown_id)
    # with the holder's authorisation the window downloads it; withdrawn, it is a stranger again
    body = {
        "type_code": ID_CARD,
        "department_code": world.window.department.code,
        "purpose": "办理居住证",
        "valid_until": _later(),
    }  # type: ignore[union-attr]
    grant = world.client.post("/certhub/me/authorisations", json=body, headers=holder.headers)
    assert grant.status_code == 201, grant.text
    assert download(cert["identifier"], world.window).status_code == 200  # type: ignore[attr-defined]
    assert world.client.delete(f"/certhub/me/authorisations/{grant.json()['id']}", headers=holder.headers).status_code == 200
    assert download(cert["identifier"], world.window).status_code == 404  # type: ignore[attr-defined]
    assert download(cert["identifier"], world.issuer).status_code == 200  # type: ignore[attr-defined]


def test_an_agent_learns_nothing_about_a_certificate_outside_the_delegation(world: World) -> None:
    holder_code, agent_code = citizen_id(), citizen_id()
    holder, agent = world.hub.holder(holder_code), world.hub.holder(agent_code, name="李四")
    licence = world.issue(holder_code, type_code=DRIVING, face=driving_face(holder_code))
    someone_elses = world.issue(citizen_id(), type_code=DRIVING, face=driving_face(holder_code))
    delegation = {
        "agent_code": agent_code,
        "agent_name": "李四",
        "type_codes": [ID_CARD],
        "actions": ["show"],
        "valid_until": _later(),
    }
    assert world.client.post("/certhub/me/delegations", json=delegation, headers=holder.headers).status_code == 201
    unknown_id = unknown_identifier(licence)

    def show(identifier: str) -> object:
        url = f"/certhub/me/certificates/{identifier}/presentations?on_behalf_of={holder_code}"
        body = {"fields": ["name"], "audience": world.window.department.code}  # type: ignore[union-attr]
        return world.client.post(url, json=body, headers=agent.headers)

    unknown = show(unknown_id)
    assert unknown.status_code == 404  # type: ignore[attr-defined]
    for cert in (licence, someone_elses):
        assert_same_refusal(show(cert["identifier"]), unknown, identifier=cert["identifier"], unknown_id=unknown_id)


def test_a_client_spells_use_cause_and_expires_at_as_the_rest_of_the_api(world: World) -> None:
    """snake_case throughout: `use_cause` in bodies and queries; an authorisation ends at a moment, `expires_at`."""
    holder_code = citizen_id()
    cert = world.issue(holder_code, render_pdf=True)
    holder = world.hub.holder(holder_code)
    until = _later()
    body = {"type_code": ID_CARD, "department_code": world.window.department.code, "purpose": "办理居住证", "expires_at": until}  # type: ignore[union-attr]
    granted = world.client.post("/certhub/me/authorisations", json=body, headers=holder.headers)
    assert granted.status_code == 201, granted.text
    assert datetime.fromisoformat(granted.json()["expires_at"]) == datetime.fromisoformat(until)
    fetch = {"holder_code": holder_code, "type_code": ID_CARD, "use_cause": "办理居住证"}
    assert world.client.post("/certhub/fetch", json=fetch, headers=world.window.headers).status_code == 200
    url = f"/certhub/certificates/{cert['identifier']}/pdf"
    pdf = world.client.get(url, params={"use_cause": "打印留档"}, headers=holder.headers)
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    too_long = world.client.get(url, params={"use_cause": "因" * 201}, headers=holder.headers)
    assert too_long.status_code == 422 and too_long.json()["errors"][0]["field"] == "use_cause"
