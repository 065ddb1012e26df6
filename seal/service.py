"""The seal domain's one public surface (with ``seal.keys``): other packages (endpoints, console, CLI,
jobs, certhub, tests) import the seal rules from here. Each concern lives in a module of its own:

=========================  ========================================================================
``seal/issuance.py``       seal issuance (制发): the picture, making a seal; suspend, resume, revoke,
                           expire
``seal/custody.py``        key custody: keys at rest (re-wrapped under a new master key), the signers
                           other domains use, the public keys (JWKS) of what the seals signed
``seal/sealing.py``        sealing (用印): a PAdES-sealed PDF, a sealed OFD document or a detached seal
                           signature, each use recorded
``seal/ofdsign.py``        an OFD package gaining a seal signature (GB/T 33190 §18), no database
``seal/usage.py``          seal use under control (用印管理): who may use and approve a seal, use
                           requests and their approval by a second person (用印审批), the check
                           every sealing path makes first
``seal/verification.py``   verification (核验): a detached signature, a sealed PDF or OFD, the checks and
                           the verdict, the audit of a verification, the certificates verifiers trust
``seal/sesder.py``         GB/T 38540 seal and seal signature in DER (version 4; the version-1 layout read)
``seal/ofd.py``            reading an OFD package safely (ZIP and XML limits) and its seal signatures
``seal/sm2ca.py``          the SM2 chain (root, issuing CA, seal maker) and the CRLs of both chains
``seal/common.py``         small helpers the modules share
``seal/repository.py``     every query
=========================  ========================================================================

This module defines nothing: it re-exports.
"""

from __future__ import annotations

from seal.authority import ensure_authority
from seal.custody import department_jwks, department_signer, rewrap_keys, signer_for, verify_jose_signature
from seal.issuance import (
    change_status,
    check_picture,
    expire_seals,
    get_seal,
    issue_seal,
    make_seal_der,
    migrate_der,
    revoke_seal,
)
from seal.keys import Signer
from seal.ofdsign import WrittenOfd
from seal.sealing import (
    SealedOfd,
    can_seal_with,
    detached_result,
    document_bytes,
    seal_ofd,
    seal_pdf,
    seal_written_ofd,
    sign_detached,
    sign_detached_der,
)
from seal.sm2ca import current_crl
from seal.usage import (
    CERTHUB,
    SealUseRefused,
    authorise,
    decide,
    recent_uses,
    refused_attempts,
    request_use,
    seal_authorisations,
    set_policy,
    use_actions,
    use_requests,
    visible_seals,
    withdraw,
)
from seal.verification import (
    authority_certificates,
    record_verification,
    verify_der,
    verify_detached,
    verify_ofd,
    verify_pdf,
)

__all__ = [
    "CERTHUB",
    "SealUseRefused",
    "SealedOfd",
    "Signer",
    "WrittenOfd",
    "authorise",
    "authority_certificates",
    "can_seal_with",
    "change_status",
    "check_picture",
    "current_crl",
    "decide",
    "department_jwks",
    "department_signer",
    "detached_result",
    "document_bytes",
    "ensure_authority",
    "expire_seals",
    "get_seal",
    "issue_seal",
    "make_seal_der",
    "migrate_der",
    "recent_uses",
    "record_verification",
    "refused_attempts",
    "request_use",
    "revoke_seal",
    "rewrap_keys",
    "seal_authorisations",
    "seal_ofd",
    "seal_pdf",
    "seal_written_ofd",
    "set_policy",
    "sign_detached",
    "sign_detached_der",
    "signer_for",
    "use_actions",
    "use_requests",
    "verify_der",
    "verify_detached",
    "verify_jose_signature",
    "verify_ofd",
    "verify_pdf",
    "visible_seals",
    "withdraw",
]
