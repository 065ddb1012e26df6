"""The seal service as certhub uses it: the issuing department's signer, its public keys, PDF and OFD sealing."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from certhub.ofdcopy import OfdCopy
from ops.archive import service as archive
from ops.audit import Actor
from ops.config import Settings
from ops.crypto import KeyVault
from seal import service as seal_service
from seal.keys import Signer


def department_signer(db: Session, *, department_id: str, vault: KeyVault) -> Signer:
    """The signer of the department's active seal (Conflict with a clear message if it has none).

    Signing a certificate is not a use of the seal on a document (用印) and needs no use authorisation:
    it is the issuing itself, which the certificate catalogue already allows only to the type's issuing
    departments (``cert_types``), and every issuance is recorded with who issued it. The visible seal on a
    certificate's PDF copy is a use, and is controlled (``seal_pdf`` below)."""
    return seal_service.department_signer(db, department_id=department_id, vault=vault)


def verify_signature(*, alg: str, jwk: dict[str, Any], data: bytes, signature: bytes) -> bool:
    """Verify a signature made by a seal signer (EdDSA, ES256 or SM2)."""
    return seal_service.verify_jose_signature(alg=alg, jwk=jwk, data=data, signature=signature)


def authority_chain(db: Session, *, vault: KeyVault) -> dict[str, Any]:
    """The hub CA's root and issuing certificates (PEM) that a sealed PDF copy's seal chains to."""
    return seal_service.authority_certificates(db, vault=vault)


def archive_trust(db: Session) -> dict[str, list[str]]:
    """The hub CA certificates of both chains (PEM) that a sealed copy's seal chains to, for an archive package."""
    return seal_service.trusted_ca_pem(db)


def check_ofd_copy(payload: dict[str, bytes], ofd_file: str, ca_file: str, report: archive.Report) -> None:
    """四性检测 of a sealed OFD copy in a package: its seal signatures, from the package alone (seal domain)."""
    seal_service.check_ofd_copy(payload, ofd_file, ca_file, report)


def department_jwks(db: Session) -> dict[str, Any]:
    """Public keys of every department's active and previously active seals."""
    return seal_service.department_jwks(db)


def seal_pdf(
    db: Session, *, vault: KeyVault, settings: Settings, department_id: str, pdf: bytes, purpose: str, actor: Actor
) -> bytes:
    """PAdES-seal a PDF with the department's seal (visible stamp): a use by the certificate hub, which the
    department must have authorised on the seal (用印管理); `actor`, who issued the certificate, is recorded."""
    return seal_service.seal_pdf(
        db,
        vault=vault,
        settings=settings,
        department_id=department_id,
        pdf=pdf,
        purpose=purpose,
        actor=actor,
        system=seal_service.CERTHUB,
    )


def can_seal_ofd(db: Session, *, department_id: str, actor: Actor) -> bool:
    """Whether the department has an SM2 seal the certificate hub may seal copies with (an OFD copy's seal)."""
    return seal_service.can_seal_with(db, department_id=department_id, algorithm="SM2", actor=actor, system=seal_service.CERTHUB)


def seal_ofd(
    db: Session,
    *,
    vault: KeyVault,
    settings: Settings,
    department_id: str,
    copy: OfdCopy,
    purpose: str,
    actor: Actor,
    box: tuple[float, float, float, float],
) -> bytes:
    """Seal an OFD copy the hub has just drawn (its files, not read back: see ``seal_written_ofd``) with the
    department's SM2 seal, its picture in `box` (x, y, width; mm from the page's top left): a use by the
    certificate hub, controlled and recorded as for the PDF copy."""
    x, y, width, _ = box
    sealed = seal_service.seal_written_ofd(
        db,
        vault=vault,
        settings=settings,
        department_id=department_id,
        written=seal_service.WrittenOfd(files=copy.files, doc_root=copy.doc_root, page_id=copy.page_id, page_box=copy.page_box),
        purpose=purpose,
        actor=actor,
        x_mm=x,
        y_mm=y,
        size_mm=width,
        system=seal_service.CERTHUB,
    )
    return sealed.data
