"""People who sign in through the identity provider: who may place them in a department, and what each
administrator sees of them."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from ops.identity import service as identity
from tests.conftest import Hub


def newcomer(session_factory: sessionmaker[Session], subject: str, name: str) -> str:
    """A person's first sign-in at the provider registers them, with no department yet."""
    with session_factory() as db:
        person = identity.signed_in_person(db, issuer="https://idp.gov.test", subject=subject, name=name, id_number=None)
        db.commit()
        return person.id


def test_a_department_admin_places_newcomers_in_their_own_department_only(
    client: TestClient, hub: Hub, session_factory: sessionmaker[Session]
) -> None:
    police, transport = hub.department("市公安局"), hub.department("市交通局")
    police_admin = hub.actor(police, "department_admin", name="公安局管理员")
    transport_admin = hub.actor(transport, "department_admin", name="交通局管理员")
    alice, bob = newcomer(session_factory, "alice", "艾丽"), newcomer(session_factory, "bob", "鲍勃")

    listed = client.get("/people", headers=police_admin.headers).json()["items"]
    assert {p["id"] for p in listed} == {alice, bob}  # nobody has placed them yet: every department may
    elsewhere = client.put(
        f"/people/{alice}/assignment", json={"department_id": transport.id, "roles": ["window"]}, headers=police_admin.headers
    )
    assert elsewhere.status_code == 403 and "own department" in elsewhere.json()["detail"]
    too_high = client.put(
        f"/people/{alice}/assignment",
        json={"department_id": police.id, "roles": ["platform_admin"]},
        headers=police_admin.headers,
    )
    assert too_high.status_code == 403
    system_role = client.put(
        f"/people/{alice}/assignment",
        json={"department_id": police.id, "roles": ["department_system"]},
        headers=hub.admin.headers,
    )
    assert system_role.status_code == 422 and "for systems" in system_role.json()["detail"]
    placed = client.put(
        f"/people/{alice}/assignment", json={"department_id": police.id, "roles": ["window"]}, headers=police_admin.headers
    )
    assert placed.status_code == 200 and placed.json()["department_id"] == police.id

    seen_by_transport = {p["id"] for p in client.get("/people", headers=transport_admin.headers).json()["items"]}
    assert seen_by_transport == {bob}  # alice is the police's now
    taken = client.put(
        f"/people/{alice}/assignment", json={"department_id": transport.id, "roles": ["window"]}, headers=transport_admin.headers
    )
    assert taken.status_code == 404
    stale = client.put(
        f"/people/{alice}/assignment",
        json={"department_id": police.id, "roles": ["department_admin"]},
        headers={**hub.admin.headers, "If-Match": '"1"'},
    )
    assert stale.status_code == 412
    assert client.get("/people", headers=hub.system(police).headers).status_code == 403


def test_a_person_without_a_department_or_roles_is_told_to_ask_their_administrator(
    db: Session, session_factory: sessionmaker[Session]
) -> None:
    person_id = newcomer(session_factory, "carol", "卡罗")
    person = identity.get_person(db, who=Hub.admin_principal(None), person_id=person_id)  # type: ignore[arg-type]
    try:
        identity.person_principal(db, person)
    except identity.NoDepartment as exc:
        assert exc.status == 403 and "Ask your department's administrator" in exc.detail and person_id in exc.detail
    else:
        raise AssertionError("a person with no department was let in")
