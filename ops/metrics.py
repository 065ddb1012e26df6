"""Prometheus metrics of the hub (multiprocess-safe when PROMETHEUS_MULTIPROC_DIR is set)."""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
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
CATALOGUE_EVENTS = Counter("govhub_catalogue_events_total", "Catalogue lifecycle events", ["event"])


def render() -> tuple[bytes, str]:
    """The metrics exposition, merged across worker processes in multiprocess mode."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        _multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    from prometheus_client import REGISTRY

    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
