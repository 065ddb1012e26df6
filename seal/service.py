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
``seal/ltv.py``            long-term validation: PAdES levels B-B … B-LTA, the kept B-LTA PDFs and
                           the renewal of their document time stamp chain, the evidence "as of" a time
``seal/archiving.py``      电子档案: the archive package of a sealed document (one use), its checks in
                           四性检测
``seal/sm2ca.py``          the SM2 chain (root, issuing CA, seal maker) and the CRLs of both chains
``seal/ocsp.py``           the OCSP responder (RFC 6960) of both issuing CAs
``seal/tsa.py``            the hub's own time-stamp authority (RFC 3161) and the time stampers (the
                           hub's in process, or an external TSA's)
``seal/caches.py``         what verification remembers in the process (trusted certificates, seals'
                           status, use records), and :func:`clear_caches` to empty it
``seal/common.py``         small helpers the modules share
``seal/repository.py``     every query
=========================  ========================================================================

This module defines nothing: it re-exports.
"""

from __future__ import annotations

from seal.archiving import PROFILES as ARCHIVE_PROFILES
from seal.archiving import archive_use, archive_uses_between, check_ofd_copy, trusted_ca_pem, use_package, use_packages
from seal.authority import ensure_authority
from seal.caches import clear_all as clear_caches
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
from seal.ltv import RenewalRun, lta_record, renew_due
from seal.ocsp import MAX_REQUEST_BYTES as OCSP_MAX_REQUEST_BYTES
from seal.ocsp import decode_get as ocsp_decode_get
from seal.ocsp import issuing_certificate_der
from seal.ocsp import respond as ocsp_respond
from seal.ofdsign import WrittenOfd
from seal.sealing import (
    DetachedSignature,
    SealedOfd,
    can_seal_with,
    detached_result,
    document_bytes,
    seal_ofd,
    seal_pdf,
    seal_written_ofd,
    sign_detached,
    sign_detached_der,
    sign_detached_use,
)
from seal.sm2ca import current_crl
from seal.stamplater import AWAITING, STAMPED, STAMPED_LATER, StampRun, UseSignature, stamp_pending, use_signature
from seal.tsa import MAX_REQUEST_BYTES as TSA_MAX_REQUEST_BYTES
from seal.tsa import HubTimeStamper, ensure_tsa, hub_timestamper, timestamper
from seal.tsa import respond as time_stamp_reply
from seal.tsa import stamper as time_stamper
from seal.tsa import trust_source as time_stamp_trust
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
    "ARCHIVE_PROFILES",
    "AWAITING",
    "CERTHUB",
    "OCSP_MAX_REQUEST_BYTES",
    "STAMPED",
    "STAMPED_LATER",
    "TSA_MAX_REQUEST_BYTES",
    "DetachedSignature",
    "HubTimeStamper",
    "RenewalRun",
    "SealUseRefused",
    "SealedOfd",
    "Signer",
    "StampRun",
    "UseSignature",
    "WrittenOfd",
    "archive_use",
    "archive_uses_between",
    "authorise",
    "authority_certificates",
    "can_seal_with",
    "change_status",
    "check_ofd_copy",
    "check_picture",
    "clear_caches",
    "current_crl",
    "decide",
    "department_jwks",
    "department_signer",
    "detached_result",
    "document_bytes",
    "ensure_authority",
    "ensure_tsa",
    "expire_seals",
    "get_seal",
    "hub_timestamper",
    "issue_seal",
    "issuing_certificate_der",
    "lta_record",
    "make_seal_der",
    "migrate_der",
    "ocsp_decode_get",
    "ocsp_respond",
    "recent_uses",
    "record_verification",
    "refused_attempts",
    "renew_due",
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
    "sign_detached_use",
    "signer_for",
    "stamp_pending",
    "time_stamp_reply",
    "time_stamp_trust",
    "time_stamper",
    "timestamper",
    "trusted_ca_pem",
    "use_actions",
    "use_package",
    "use_packages",
    "use_requests",
    "use_signature",
    "verify_der",
    "verify_detached",
    "verify_jose_signature",
    "verify_ofd",
    "verify_pdf",
    "visible_seals",
    "withdraw",
]
