"""Small helpers the seal modules share: field errors, and the purpose a seal's wrapped key is bound to."""

from __future__ import annotations

from ops.errors import Invalid


def key_purpose(seal_id: str) -> str:
    return f"seal-key:{seal_id}"


def field_error(field: str, message: str) -> Invalid:
    return Invalid(f"{field}: {message}", errors=[{"field": field, "message": message}])
