"""The certificate hub seals the PDF copies of the certificates it issues only with a seal its department
authorised it to use (用印管理); the use names who issued the certificate."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from ops.audit import AuditRecord
from ops.auth import Principal, Role
from seal import service as seals
from seal.models import Seal, SealUse
from tests.certhub.conftest import World, id_face
from tests.factories import citizen_id


def _issue_with_pdf(world: World) -> tuple[int, dict[str, object]]:
    holder = citizen_id()
    body = {"type_code": "11100000000019713D001", "holder": {"code": holder, "kind": "person", "name": "张三"}}
    body |= {"face": id_face(holder), "render_pdf": True}
    response = world.client.post("/certhub/certificates", json=body, headers=world.issuer.headers)
    return response.status_code, response.json()


def test_a_certificate_copy_is_sealed_only_with_a_seal_authorised_for_the_certificate_hub(world: World, db: Session) -> None:
    status, issued = _issue_with_pdf(world)
    assert status == 201, issued
    seal = db.scalars(select(Seal).where(Seal.department_id == world.issuer.department_id)).one()
    use = db.scalars(select(SealUse).where(SealUse.seal_id == seal.id)).one()
    assert use.kind == "pdf" and use.actor == world.issuer.client.client_id  # type: ignore[union-attr]
    record = db.scalars(select(AuditRecord).where(AuditRecord.action == "seal.use.pdf", AuditRecord.object_id == seal.id)).one()
    assert record.detail["through"] == "certhub"
    # The department withdraws the hub's authorisation: certificates with a PDF copy are refused, saying why.
    admin = Principal(subject="部门管理员", roles=frozenset({Role.DEPARTMENT_ADMIN}), department_id=seal.department_id)
    (granted,) = [a for a in seals.seal_authorisations(db, who=admin, seal_id=seal.id) if a.withdrawn_at is None]
    seals.withdraw(db, who=admin, seal_id=seal.id, authorisation_id=granted.id, reason="改用电子证照专用章")
    db.commit()
    status, refused = _issue_with_pdf(world)
    assert status == 403 and "certhub is not authorised to use seal" in str(refused["detail"])
    # A seal that needs an approval for each use cannot seal copies automatically.
    seals.authorise(
        db, who=admin, seal_id=seal.id, subject="certhub", subject_kind="system", may_use=True, may_approve=False, note=None
    )
    seals.set_policy(db, who=admin, seal_id=seal.id, requires_approval=True, approval_valid_hours=24, if_match=None)
    db.commit()
    status, conflict = _issue_with_pdf(world)
    assert status == 409 and "requires an approval for every use" in str(conflict["detail"])
