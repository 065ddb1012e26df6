"""Request and response bodies of the audit log API."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator


class CheckpointRead(BaseModel):
    """A signed checkpoint. Verify `signature` (Ed25519, base64) over the UTF-8 bytes of `body`."""

    model_config = ConfigDict(from_attributes=True)

    tree_size: int
    root_hash: str = Field(description="hex SHA-256 Merkle tree hash (RFC 9162)")
    signed_at: datetime
    key_id: str
    body: str
    signature: str
    timestamp_state: str = Field(
        description='"stamped", or "awaiting" an RFC 3161 time stamp (the TSA was unreachable; stamped later)'
    )
    timestamped_at: datetime | None = Field(description="the time stamp's genTime")
    timestamp_token: str | None = Field(
        description="the RFC 3161 token (DER, base64) over SHA-256 of the UTF-8 `body` followed by `signature`"
    )

    @field_validator("timestamp_token", mode="before")
    @classmethod
    def _base64(cls, value: object) -> object:
        return base64.b64encode(value).decode() if isinstance(value, bytes) else value


class LogKeyRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    key_id: str
    public_key: str = Field(description="raw Ed25519 public key, base64")
    created_at: datetime
    retired_at: datetime | None


class AuditRecordRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    at: datetime
    request_id: str | None
    actor: str
    role: str
    department_id: str | None
    action: str
    object_type: str
    object_id: str
    purpose: str | None
    outcome: str
    subject_ref: str | None
    detail: dict[str, Any]


class InclusionProofRead(BaseModel):
    """Proof that a record is leaf `leaf_index` of the tree signed in `checkpoint`."""

    audit_id: int
    leaf_index: int
    tree_size: int
    leaf_data: str = Field(description="the canonical record the leaf hashes: SHA-256(0x00 || leaf_data)")
    leaf_hash: str
    proof: list[str] = Field(description="audit path, hex, leaf to root")
    checkpoint: CheckpointRead


class ConsistencyProofRead(BaseModel):
    first: int
    second: int
    proof: list[str]


class VerifyReportRead(BaseModel):
    ok: bool
    entries: int
    checkpoints: int
    published_checkpoints: int = Field(description="signed checkpoints read from object storage")
    unsequenced: int
    timestamped: int = Field(description="checkpoints whose RFC 3161 time stamp verified")
    awaiting_timestamp: int = Field(description="checkpoints still waiting for a time stamp (the TSA was unreachable)")
    problems: list[dict[str, Any]]
