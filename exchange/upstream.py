"""Calls to a provider department's own API (an API distribution of a catalogue entry)."""

from __future__ import annotations

import time
from typing import Any

import httpx

from exchange.sources import ApiDistribution
from ops.errors import UpstreamError, UpstreamTimeout

RETRIES = 2  # extra attempts, for idempotent calls only (GET), or when nothing reached the provider


def _rows(payload: Any) -> list[dict[str, Any]]:
    """The records of a provider's answer: a list, {"data": [...]}, {"data": {...}} or one object."""
    if isinstance(payload, dict) and "data" in payload:
        payload = payload["data"]
    if isinstance(payload, dict):
        return [payload]
    if isinstance(payload, list) and all(isinstance(r, dict) for r in payload):
        return list(payload)
    raise UpstreamError("the provider's service answered with JSON that holds no records")


def call(api: ApiDistribution, params: dict[str, str]) -> list[dict[str, Any]]:
    """Call the provider's endpoint and return its records; its failures become clear problems."""
    method = api.method.upper()
    idempotent = method == "GET"
    timeout = httpx.Timeout(api.timeout_seconds)
    last: Exception | None = None
    for attempt in range(RETRIES + 1):
        try:
            with httpx.Client(timeout=timeout, follow_redirects=False) as client:
                response = client.get(api.url, params=params) if method == "GET" else client.request(method, api.url, json=params)
        except httpx.ConnectError as exc:  # nothing reached the provider: safe to retry
            last = exc
        except httpx.TimeoutException as exc:
            last = exc
            if not idempotent:
                raise UpstreamTimeout(f"the provider's service did not answer within {api.timeout_seconds} s") from exc
        except httpx.HTTPError as exc:
            raise UpstreamError(f"the provider's service could not be called: {exc}") from exc
        else:
            if response.status_code == 404:
                return []
            if response.status_code >= 500 and idempotent and attempt < RETRIES:
                last = UpstreamError(f"HTTP {response.status_code}")
                time.sleep(0.1 * (attempt + 1))
                continue
            if response.status_code >= 400:
                raise UpstreamError(
                    f"the provider's service refused the query: HTTP {response.status_code} {response.text[:200]}",
                    extra={"upstream_status": response.status_code},
                )
            try:
                return _rows(response.json())
            except ValueError as exc:
                raise UpstreamError("the provider's service did not answer with JSON") from exc
        if attempt < RETRIES:
            time.sleep(0.1 * (attempt + 1))
    if isinstance(last, httpx.TimeoutException):
        raise UpstreamTimeout(f"the provider's service did not answer within {api.timeout_seconds} s ({RETRIES + 1} tries)")
    raise UpstreamError(f"the provider's service is unreachable ({RETRIES + 1} tries): {last}")
