"""Logging set-up: structured JSON lines with the request id; personal identifiers masked, secrets never written."""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime
from typing import Any

from ops.context import current_request_id

# 公民身份号码 (GB 11643): 6-digit region, birth date, sequence, check character.
_CITIZEN_ID = re.compile(
    r"(?<![0-9A-Za-z])(\d{6})(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}([\dXx])(?![0-9A-Za-z])"
)
_MOBILE = re.compile(r"(?<!\d)(1[3-9]\d)\d{4}(\d{4})(?!\d)")
_JWT = re.compile(r"eyJ[\w-]{4,}\.[\w-]{4,}\.[\w-]*")
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[\w\-.~+/=]+")
_SECRET_FIELD = re.compile(
    r"(?i)(\"?(?:client_secret|secret|password|passwd|token|access_token|refresh_token|master_key|private_key|"
    r"s3_secret_key|authorization)\"?\s*[:=]\s*)(\"[^\"]*\"|'[^']*'|[^\s,&}]+)"
)
_SECRET_KEY = re.compile(
    r"(?i)^(client_secret|secret|password|passwd|token|access_token|refresh_token|master_key|private_key|"
    r"s3_secret_key|authorization)$"
)
_RESERVED = set(logging.LogRecord("x", 0, "x", 0, "x", None, None).__dict__) | {"message", "asctime", "color_message"}


def redact(text: str) -> str:
    """Mask personal identifiers and remove anything that looks like a credential."""
    text = _SECRET_FIELD.sub(lambda m: m.group(1) + "[redacted]", text)
    text = _JWT.sub("[redacted-token]", text)
    text = _BEARER.sub(lambda m: m.group(1) + " [redacted]", text)
    text = _CITIZEN_ID.sub(lambda m: m.group(1) + "********" + m.group(0)[-4:], text)
    return _MOBILE.sub(lambda m: m.group(1) + "****" + m.group(2), text)


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: "[redacted]" if _SECRET_KEY.match(str(k)) else _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, (int, float, bool)) or value is None:
        return value
    return redact(str(value))


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
            "request_id": getattr(record, "request_id", None) or current_request_id(),
        }
        for key, value in record.__dict__.items():
            if key not in _RESERVED and key not in entry and not key.startswith("_"):
                entry[key] = "[redacted]" if _SECRET_KEY.match(key) else _clean(value)
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure_logging(level: str = "INFO") -> None:
    """Send JSON log lines to stderr."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
