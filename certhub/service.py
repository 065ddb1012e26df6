"""The certificate hub's one public surface: other packages (endpoints, console, CLI, jobs, tests) import
the hub's rules from here. Each concern lives in a module of its own:

==========================  ========================================================================
``certhub/cert_types.py``   certificate types (证照目录), who may issue them, face-field validation
``certhub/issuance.py``     issue (签发), change (变更), revoke (注销); GB/T 36904
                            identifiers and GB/T 36903 metadata
``certhub/bulk.py``         bulk issuance (归集) from JSON Lines or CSV
``certhub/reservations.py`` serials and status-list positions reserved in blocks per process (PostgreSQL)
``certhub/holders.py``      a holder's certificates: list, show (亮证), authorise (授权用证), delegate (委托用证)
``certhub/accesses.py``     the access list: every use of a certificate, for its holder and the audit trail
``certhub/downloads.py``    a department fetches a holder's certificate (一证通办); the sealed copy (OFD, PDF)
``certhub/verification.py`` window verification (证照验证) of a presentation, settled in group commits
``certhub/services.py``     service items (政务服务事项) and their materials, versions, the public lists
                            (两个免于提交, 一证通办, 一照通办)
``certhub/prefill.py``      a service's form filled for a holder; 一证通办 in one step; one authorisation
                            for a whole service
``certhub/shortcodes.py``   亮证码: a short code the window redeems once for the verdict of a presentation
``certhub/public.py``       public 验真 of a certificate copy from its QR code (rate limited, public fields only)
``certhub/objections.py``   objections (异议处理) and reports of suspected errors (反馈纠错)
``certhub/trust.py``        the trust list (互通互认): other hubs' keys and status lists
``certhub/hubkey.py``       the hub's own key, its published keys and issuer metadata
``certhub/status.py``       the published status lists
``certhub/caches.py``       every in-process cache, and :func:`clear_caches` to empty them all
``certhub/common.py``       constants and small helpers the rooms share
``certhub/archiving.py``    电子档案: the archive package of a certificate version, its checks in 四性检测
``certhub/repository.py``   every query
==========================  ========================================================================
"""

from __future__ import annotations

from certhub.accesses import holder_accesses, rating_event
from certhub.archiving import PROFILES as ARCHIVE_PROFILES
from certhub.archiving import archive_certificate, archive_package, archive_packages, archive_range
from certhub.bulk import bulk_issue, parse_rows
from certhub.caches import STATUS_CACHE_SECONDS
from certhub.caches import clear_all as clear_caches
from certhub.cert_types import allow_issuer, create_type, example_types, get_type, load_types, update_type
from certhub.downloads import COPY_MEDIA_TYPES, fetch_for_department, pdf_copy, record_denied_fetch, sealed_copy
from certhub.holders import (
    acting_holder,
    authorise,
    delegate,
    department_directory,
    field_labels,
    holder_authorisations,
    holder_certificates,
    presentable_fields,
    revoke_authorisation,
    revoke_delegation,
    show,
)
from certhub.hubkey import hub_jwks, hub_signer, issuer_metadata
from certhub.issuance import (
    IssueContext,
    change,
    get_certificate,
    identifier_problem,
    issue,
    make_identifier,
    ofd_copy,
    reinstate_issued,
    revoke,
    suspend_issued,
)
from certhub.models import Certificate
from certhub.objections import (
    answer_feedback,
    correct_objection,
    dismiss_objection,
    file_feedback,
    file_objection,
    get_feedback,
    get_objection,
    mark_overdue_objections,
    recompute_objection_deadlines,
)
from certhub.prefill import (
    IDENTITY_TYPES,
    MISSING_REASONS,
    Prefilled,
    authorise_service,
    holder_code_of,
    prefill,
    service_certificates,
)
from certhub.public import PUBLIC_API_PATH, PUBLIC_PAGE_PATH, PublicCheck, check_public
from certhub.repository import list_types
from certhub.schemas import (
    AuthorisationCreate,
    DownloadQuery,
    FetchRequest,
    PrefillRequest,
    ServiceAuthorisationCreate,
    ServiceCreate,
    ServiceUpdate,
    ShowRequest,
    VerifyRequest,
)
from certhub.services import (
    KIND_NAMES,
    LISTS,
    SERVICE_EDITOR_ROLES,
    PublicList,
    edit_draft,
    editable_service_list,
    get_service,
    may_edit_services,
    new_version,
    public_list,
    publish_service,
    published_service_choices,
    register_service,
    service_history,
)
from certhub.shortcodes import MadeShortCode, is_short_code, make_short_code, record_refused_redeem
from certhub.shortcodes import redeem as redeem_short_code
from certhub.status import status_list_jwt
from certhub.trust import add_trusted_hub, fetch_url, remove_trusted_hub, trust_bundle, update_trusted_hub
from certhub.verification import (
    VERIFIER_ROLES,
    Lookups,
    PendingVerification,
    acts_as_verifier,
    lookups,
    new_nonce,
    settle_verifications,
    verdict_outcome,
    verify,
    verify_async,
)

__all__ = [
    "ARCHIVE_PROFILES",
    "COPY_MEDIA_TYPES",
    "IDENTITY_TYPES",
    "KIND_NAMES",
    "LISTS",
    "MISSING_REASONS",
    "PUBLIC_API_PATH",
    "PUBLIC_PAGE_PATH",
    "SERVICE_EDITOR_ROLES",
    "STATUS_CACHE_SECONDS",
    "VERIFIER_ROLES",
    "AuthorisationCreate",
    "Certificate",
    "DownloadQuery",
    "FetchRequest",
    "IssueContext",
    "Lookups",
    "MadeShortCode",
    "PendingVerification",
    "PrefillRequest",
    "Prefilled",
    "PublicCheck",
    "PublicList",
    "ServiceAuthorisationCreate",
    "ServiceCreate",
    "ServiceUpdate",
    "ShowRequest",
    "VerifyRequest",
    "acting_holder",
    "acts_as_verifier",
    "add_trusted_hub",
    "allow_issuer",
    "answer_feedback",
    "archive_certificate",
    "archive_package",
    "archive_packages",
    "archive_range",
    "authorise",
    "authorise_service",
    "bulk_issue",
    "change",
    "check_public",
    "clear_caches",
    "correct_objection",
    "create_type",
    "delegate",
    "department_directory",
    "dismiss_objection",
    "edit_draft",
    "editable_service_list",
    "example_types",
    "fetch_for_department",
    "fetch_url",
    "field_labels",
    "file_feedback",
    "file_objection",
    "get_certificate",
    "get_feedback",
    "get_objection",
    "get_service",
    "get_type",
    "holder_accesses",
    "holder_authorisations",
    "holder_certificates",
    "holder_code_of",
    "hub_jwks",
    "hub_signer",
    "identifier_problem",
    "is_short_code",
    "issue",
    "issuer_metadata",
    "list_types",
    "load_types",
    "lookups",
    "make_identifier",
    "make_short_code",
    "mark_overdue_objections",
    "may_edit_services",
    "new_nonce",
    "new_version",
    "ofd_copy",
    "parse_rows",
    "pdf_copy",
    "prefill",
    "presentable_fields",
    "public_list",
    "publish_service",
    "published_service_choices",
    "rating_event",
    "recompute_objection_deadlines",
    "record_denied_fetch",
    "record_refused_redeem",
    "redeem_short_code",
    "register_service",
    "reinstate_issued",
    "remove_trusted_hub",
    "revoke",
    "revoke_authorisation",
    "revoke_delegation",
    "sealed_copy",
    "service_certificates",
    "service_history",
    "settle_verifications",
    "show",
    "status_list_jwt",
    "suspend_issued",
    "trust_bundle",
    "update_trusted_hub",
    "update_type",
    "verdict_outcome",
    "verify",
    "verify_async",
]
