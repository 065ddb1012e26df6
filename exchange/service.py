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
- `exchange.outbox`: the database outbox: dataset versions' change sets taken as events for the grants on
  their entries, supervision events (双推送);
- `exchange.subscriptions`: subscriptions to a grant's changes (webhook or feed) and to supervision
  events, what a subscriber receives (`rows_for_grant`: a grant's row scope), deliveries with retries,
  parking and replay, the hub-signed feed cursor;
- `exchange.broker`: every outbox event published to NATS JetStream where one is deployed;
- `exchange.archiving`: 电子档案: the archive package of a request's dossier, its checks in 四性检测;
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
from exchange.archiving import PROFILES as ARCHIVE_PROFILES
from exchange.archiving import archive_request, archive_requests_between, request_package, request_packages
from exchange.broker import publish_outbox
from exchange.grants import delivery_event, expire_grants, get_grant, revoke_grant, usable_grant_on
from exchange.models import OPEN_STATES, RequestState, SharingRequest
from exchange.outbox import EVENT_ROWS, SUPERVISION_EVENTS, record_supervision_event, take_change_sets
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
from exchange.subscriptions import (
    BadCursor,
    FeedPage,
    Subscribed,
    SubscriptionSummary,
    WebhookAddressRefused,
    check_webhook_url,
    cursor_key,
    deliveries,
    end_subscription,
    get_subscription,
    parked_of_grant,
    read_feed,
    replay,
    rows_for_grant,
    subscribe,
    subscribe_supervision,
    subscriptions_of_grant,
)
from exchange.subscriptions import deliver as deliver_subscriptions
from exchange.supervision import publish_gauges, recompute_deadlines, report, set_webhook, sign, sweep_overdue

__all__ = [
    "ARCHIVE_PROFILES",
    "DEFAULT_LOOKUP_ROWS",
    "EVENT_ROWS",
    "MAX_EXPORT_PAGE",
    "OPEN_STATES",
    "PLATFORM",
    "RATEABLE_STATES",
    "SENSITIVE_GRADES",
    "SUPERVISION_EVENTS",
    "TRANSITIONS",
    "AccessJournal",
    "BadCursor",
    "CoordinationOutcome",
    "ExtensionCreate",
    "ExtensionDecision",
    "FeedPage",
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
    "Subscribed",
    "SubscriptionSummary",
    "WebhookAddressRefused",
    "accept",
    "accesses_about_holder",
    "archive_request",
    "archive_requests_between",
    "available_actions",
    "call_api",
    "check_webhook_url",
    "coordinate",
    "cursor_key",
    "deadline_of",
    "deadlines_of",
    "decide",
    "decide_extension",
    "decision_event",
    "deliver_subscriptions",
    "deliveries",
    "delivery_event",
    "end_subscription",
    "escalate",
    "expire_grants",
    "export",
    "file_request",
    "get_grant",
    "get_request",
    "get_subscription",
    "history",
    "list_accesses",
    "list_requests",
    "lookup",
    "mask",
    "now",
    "parked_of_grant",
    "pending_access",
    "provide",
    "publish_gauges",
    "publish_outbox",
    "rate",
    "rating_for",
    "read_feed",
    "recompute_deadlines",
    "record_refused_access",
    "record_supervision_event",
    "refuse",
    "replay",
    "report",
    "request_extension",
    "request_package",
    "request_packages",
    "revoke_grant",
    "routes_directly",
    "rows_for_grant",
    "run_lookups",
    "set_webhook",
    "settle_accesses",
    "sign",
    "subscribe",
    "subscribe_supervision",
    "subscriptions_of_grant",
    "sweep_overdue",
    "take_change_sets",
    "today",
    "usable_grant_on",
    "withdraw",
]
