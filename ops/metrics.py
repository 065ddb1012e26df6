"""Prometheus metrics of the hub (multiprocess-safe when PROMETHEUS_MULTIPROC_DIR is set)."""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client import multiprocess as _multiprocess

HTTP_REQUESTS = Counter("govhub_http_requests_total", "HTTP requests served", ["method", "route", "status"])
HTTP_LATENCY = Histogram(
    "govhub_http_request_duration_seconds",
    "HTTP request latency",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)

# Business metrics. Domains increment these; the names are part of the operations contract
# (dashboards and alerts use them).
SHARING_REQUEST_EVENTS = Counter("govhub_sharing_request_events_total", "Sharing-request transitions", ["event"])
DATA_ACCESSES = Counter("govhub_data_accesses_total", "Queries of shared data through grants", ["kind", "outcome"])
CERTIFICATE_EVENTS = Counter(
    "govhub_certificate_events_total", "Certificate lifecycle events", ["event"]
)  # event: issued / changed / revoked / suspended / verified / verify_failed
VERIFICATION_LATENCY = Histogram(
    "govhub_certificate_verification_seconds",
    "Time to verify a certificate presentation",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1),
)
SEAL_USES = Counter("govhub_seal_uses_total", "Seal uses (用印)", ["kind"])  # kind: pdf / detached
# Detached seal signatures whose time stamp the TSA did not give at once: event awaiting / stamped_later / failed.
SEAL_TIMESTAMP_EVENTS = Counter(
    "govhub_seal_timestamp_events_total", "Seal signatures made awaiting a time stamp, and the later stamping", ["event"]
)
SEAL_USES_AWAITING_TIMESTAMP = Gauge(
    "govhub_seal_uses_awaiting_timestamp",
    "Seal uses whose signature still waits for its RFC 3161 time stamp (the TSA was unreachable)",
    multiprocess_mode="mostrecent",
)
CATALOGUE_EVENTS = Counter("govhub_catalogue_events_total", "Catalogue lifecycle events", ["event"])

# State gauges: a domain sets them from a scheduled job (which runs once per cluster), so the
# multiprocess mode keeps the most recent value written by any process.
SHARING_REQUESTS_BY_STATE = Gauge(
    "govhub_sharing_requests", "Sharing requests by state", ["state"], multiprocess_mode="mostrecent"
)
OVERDUE_BY_DEPARTMENT = Gauge(
    "govhub_sharing_requests_overdue",
    "Overdue sharing requests by responding department",
    ["department"],
    multiprocess_mode="mostrecent",
)
ON_TIME_RATE = Gauge(
    "govhub_sharing_requests_on_time_ratio",
    "Share of decided requests answered within the deadline",
    multiprocess_mode="mostrecent",
)
GRANTS_ACTIVE = Gauge("govhub_grants_active", "Data-access grants currently active", multiprocess_mode="mostrecent")
CERTIFICATES_BY_STATE = Gauge("govhub_certificates", "Certificates by state", ["state"], multiprocess_mode="mostrecent")

# The audit log and the scheduler (ops).
AUDIT_LOG_SIZE = Gauge("govhub_audit_log_entries", "Leaves in the audit Merkle log", multiprocess_mode="mostrecent")
AUDIT_LOG_UNSEQUENCED = Gauge(
    "govhub_audit_log_unsequenced", "Audit records not yet added to the log", multiprocess_mode="mostrecent"
)
AUDIT_LOG_CHECKPOINTS = Counter("govhub_audit_log_checkpoints_signed_total", "Audit-log checkpoints signed")
ARCHIVE_PACKAGES_AWAITING_TIMESTAMP = Gauge(
    "govhub_archive_packages_awaiting_timestamp",
    "Archive packages written while the time-stamp authority was unreachable, still without their RFC 3161 stamp",
    multiprocess_mode="mostrecent",
)
AUDIT_LOG_AWAITING_TIMESTAMP = Gauge(
    "govhub_audit_log_checkpoints_awaiting_timestamp",
    "Signed audit-log checkpoints still waiting for their RFC 3161 time stamp (the TSA was unreachable)",
    multiprocess_mode="mostrecent",
)
# The scheduled job's name is the label `task`: `job` is Prometheus's own target label (a scraped `job`
# label would be renamed `exported_job`, and the target's `job` would stand in its place).
JOB_RUNS = Counter("govhub_job_runs_total", "Scheduled job runs", ["task", "outcome"])  # outcome: success / failure
JOB_DURATION = Histogram(
    "govhub_job_duration_seconds",
    "Scheduled job run time",
    ["task"],
    buckets=(0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300),
)
JOB_LAST_SUCCESS = Gauge(
    "govhub_job_last_success_timestamp_seconds", "When a job last succeeded (Unix time)", ["task"], multiprocess_mode="max"
)
HOLIDAY_CALENDAR_MISSING = Gauge(
    "govhub_holiday_calendar_missing",
    "1 when next year's holiday calendar is not loaded and 1 December has passed",
    ["year"],
    multiprocess_mode="mostrecent",
)


def render() -> tuple[bytes, str]:
    """The metrics exposition, merged across worker processes in multiprocess mode."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        _multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    from prometheus_client import REGISTRY

    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
