"""The rules of the sharing exchange (统一受理、平台授权, seed 002 §六(一)): the domain's one public surface.

Endpoints, the console, jobs, commands and other domains import the exchange from here; the rules
live in modules of one concern each:

- `exchange.states`: the request's state machine (`TRANSITIONS`), the deadline policy (`Policy`), the
  exchange's clock, and what every step records (history, events, notifications, audit);
- `exchange.requests`: filing, the platform's review, the provider's decision, withdrawal, extension,
  escalation, coordination, rating, and reading a request with its deadline;
- `exchange.grants`: issuing, revoking and expiring grants;
- `exchange.access`: data access through a grant (the batched granted lookups, the hot path; paged
  exports; calls to the provider's API), counted and recorded, refused queries too;
- `exchange.supervision`: the overdue sweep, deadlines recomputed for a new calendar, webhooks, the
  departments' report and the state gauges.
"""

from __future__ import annotations

from exchange.access import (
    DEFAULT_LOOKUP_ROWS,
    MAX_EXPORT_PAGE,
    AccessJournal,
    FieldsNotGranted,
    GrantNotUsable,
    LookupAsk,
    LookupResult,
    Lookups,
    PendingAccess,
    SubjectAccess,
    accesses_about_holder,
    call_api,
    export,
    lookup,
    mask,
    pending_access,
    record_refused_access,
    run_lookups,
    settle_accesses,
)
from exchange.grants import delivery_event, expire_grants, get_grant, revoke_grant, usable_grant_on
from exchange.models import OPEN_STATES, RequestState, SharingRequest
from exchange.repository import history, list_accesses, list_requests
from exchange.requests import (
    accept,
    available_actions,
    coordinate,
    deadline_of,
    deadlines_of,
    decide,
    decide_extension,
    decision_event,
    escalate,
    file_request,
    get_request,
    provide,
    rate,
    rating_for,
    refuse,
    request_extension,
    routes_directly,
    withdraw,
)
from exchange.schemas import (
    CoordinationOutcome,
    ExtensionCreate,
    ExtensionDecision,
    ProviderDecision,
    RatingCreate,
    Reason,
    RequestCreate,
    RequestDeadlineRead,
)
from exchange.states import PLATFORM, RATEABLE_STATES, SENSITIVE_GRADES, TRANSITIONS, Policy, now, today
from exchange.supervision import publish_gauges, recompute_deadlines, report, set_webhook, sign, sweep_overdue

__all__ = [
    "DEFAULT_LOOKUP_ROWS",
    "MAX_EXPORT_PAGE",
    "OPEN_STATES",
    "PLATFORM",
    "RATEABLE_STATES",
    "SENSITIVE_GRADES",
    "TRANSITIONS",
    "AccessJournal",
    "CoordinationOutcome",
    "ExtensionCreate",
    "ExtensionDecision",
    "FieldsNotGranted",
    "GrantNotUsable",
    "LookupAsk",
    "LookupResult",
    "Lookups",
    "PendingAccess",
    "Policy",
    "ProviderDecision",
    "RatingCreate",
    "Reason",
    "RequestCreate",
    "RequestDeadlineRead",
    "RequestState",
    "SharingRequest",
    "SubjectAccess",
    "accept",
    "accesses_about_holder",
    "available_actions",
    "call_api",
    "coordinate",
    "deadline_of",
    "deadlines_of",
    "decide",
    "decide_extension",
    "decision_event",
    "delivery_event",
    "escalate",
    "expire_grants",
    "export",
    "file_request",
    "get_grant",
    "get_request",
    "history",
    "list_accesses",
    "list_requests",
    "lookup",
    "mask",
    "now",
    "pending_access",
    "provide",
    "publish_gauges",
    "rate",
    "rating_for",
    "recompute_deadlines",
    "record_refused_access",
    "refuse",
    "report",
    "request_extension",
    "revoke_grant",
    "routes_directly",
    "run_lookups",
    "set_webhook",
    "settle_accesses",
    "sign",
    "sweep_overdue",
    "today",
    "usable_grant_on",
    "withdraw",
]
