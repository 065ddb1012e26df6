"""What several rooms of the certificate hub share: GB/T 36904/36903 constants, the status-list base URL,
and a few small helpers (one refusal for an unknown certificate, closing an objection)."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from certhub.models import Objection, ObjectionStatus
from ops.config import Settings
from ops.db import utcnow
from ops.errors import Invalid, NotFound

ROOT = "1.2.156.3005.2"  # GB/T 36904 root of every certificate identifier
SHANGHAI = ZoneInfo("Asia/Shanghai")
HOLDER_CODE_TYPE = {"person": "111", "enterprise": "001"}  # CZZTDMLX: 公民身份号码 / 统一社会信用代码
# GB/T 36903 metadata items and their Chinese names.
METADATA_LABELS = {
    "ZZMC": "证照名称",
    "ZZLXDM": "证照类型代码",
    "ZZBH": "证照编号",
    "ZZBS": "证照标识",
    "ZZBFJG": "颁发机构",
    "ZZBFJGDM": "颁发机构代码",
    "ZZBFRQ": "颁发日期",
    "CZZT": "持证主体",
    "CZZTDM": "持证主体代码",
    "CZZTDMLX": "持证主体代码类型",
    "ZZYXQQSRQ": "有效期起始日期",
    "ZZYXQJZRQ": "有效期截止日期",
}


def status_base_of(public_url: str) -> str:
    return f"{public_url}/certhub/status-lists"


def status_base(settings: Settings) -> str:
    return status_base_of(settings.public_url)


def field_errors(errors: list[dict[str, Any]], summary: str) -> Invalid:
    detail = summary + ": " + "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
    return Invalid(detail, errors=errors)


def not_found(identifier: str) -> NotFound:
    """The one refusal for a certificate the caller has no business with: word for word an unknown one's."""
    return NotFound(f"certificate {identifier} not found")


def face_rows(*, certificate: Any, schema: dict[str, Any]) -> list[tuple[str, str]]:
    """A certificate's face as (label, value) rows, in the order its PDF and OFD copies print them: holder, number,
    the schema's fields (titled), then any others."""
    properties: dict[str, Any] = schema.get("properties", {})
    rows: list[tuple[str, str]] = [("持证主体", certificate.holder_name), ("证照编号", certificate.number)]
    for name, spec in properties.items():
        if name in certificate.face:
            rows.append((str(spec.get("title", name)), str(certificate.face[name])))
    for name, value in certificate.face.items():
        if name not in properties:
            rows.append((name, str(value)))
    return rows


def close_objection(objection: Objection, status: ObjectionStatus, resolution: str, by: str) -> None:
    objection.status = status.value
    objection.resolution = resolution
    objection.resolved_at = utcnow()
    objection.history = [*objection.history, {"at": utcnow().isoformat(), "by": by, "step": status.value, "note": resolution}]


class NeedsDatabase(Exception):
    """A verification's lookups without a session found no answer in the caches (a key, a department's
    name) or need another hub's trust-list entry: look them up with a session, in a thread."""
