"""Tables of departments, API clients and the hub's token-signing keys."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ops.db import Base, IdMixin, TimestampMixin, VersionedMixin, utcnow


class DepartmentLevel(StrEnum):
    """Administrative level of a department (省/市/县/乡/村)."""

    PROVINCE = "province"
    CITY = "city"
    COUNTY = "county"
    TOWNSHIP = "township"
    VILLAGE = "village"


class Department(IdMixin, TimestampMixin, VersionedMixin, Base):
    """A government department (组织机构), identified by its 统一社会信用代码."""

    __tablename__ = "departments"

    code: Mapped[str] = mapped_column(String(18), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    level: Mapped[DepartmentLevel] = mapped_column(String(16))
    region_code: Mapped[str] = mapped_column(String(6), index=True)
    parent_id: Mapped[str | None] = mapped_column(ForeignKey("departments.id"), index=True)
    active: Mapped[bool] = mapped_column(default=True)


class ApiClient(IdMixin, TimestampMixin, Base):
    """A system or person that authenticates with client credentials (client id + secret)."""

    __tablename__ = "api_clients"

    client_id: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    secret_hash: Mapped[str] = mapped_column(String(255))
    roles: Mapped[list[Any]] = mapped_column(JSON)
    department_id: Mapped[str | None] = mapped_column(ForeignKey("departments.id"), index=True)
    created_by: Mapped[str | None] = mapped_column(String(64))
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)
    revoked_reason: Mapped[str | None] = mapped_column(String(500))


class SigningKey(Base):
    """A hub key that signs access tokens; the private half is encrypted at rest."""

    __tablename__ = "hub_signing_keys"
    __table_args__ = (Index("ix_hub_signing_keys_active", "retired_at"),)

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    alg: Mapped[str] = mapped_column(String(16))
    public_jwk: Mapped[dict[str, Any]] = mapped_column(JSON)
    private_key: Mapped[dict[str, Any]] = mapped_column(JSON)  # WrappedSecret.as_dict()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    retired_at: Mapped[datetime | None] = mapped_column(default=None)
    # After this instant no token signed by the key can still be valid: it leaves the JWKS.
    verify_until: Mapped[datetime | None] = mapped_column(default=None)
    note: Mapped[str | None] = mapped_column(Text)


class Person(IdMixin, TimestampMixin, VersionedMixin, Base):
    """A person who signs in through the identity provider (统一身份认证): known by the provider's issuer
    and subject, given a department and roles by that department's administrator or by the platform."""

    __tablename__ = "people"
    __table_args__ = (Index("uq_people_issuer_subject", "issuer", "subject", unique=True),)

    issuer: Mapped[str] = mapped_column(String(500))
    subject: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(200))
    id_number: Mapped[str | None] = mapped_column(String(18))  # 公民身份号码, from a verified claim
    department_id: Mapped[str | None] = mapped_column(ForeignKey("departments.id"), index=True)
    roles: Mapped[list[Any]] = mapped_column(JSON, default=list)
    active: Mapped[bool] = mapped_column(default=True)
    assigned_by: Mapped[str | None] = mapped_column(String(64))
    last_sign_in_at: Mapped[datetime | None] = mapped_column(default=None)
class ClientKey(IdMixin, Base):
    """A public key a client registered to authenticate with `private_key_jwt` (RFC 7523)."""

    __tablename__ = "api_client_keys"
    __table_args__ = (UniqueConstraint("client_id", "kid", name="uq_api_client_keys_client_kid"),)

    client_id: Mapped[str] = mapped_column(ForeignKey("api_clients.client_id"), index=True)
    kid: Mapped[str] = mapped_column(String(128))
    alg: Mapped[str] = mapped_column(String(16))
    public_jwk: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(128))
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)


class RetiringSecret(IdMixin, Base):
    """A client's former secret, still accepted until `expires_at` while the client moves to its new one
    (rotation without downtime); only its hash is stored."""

    __tablename__ = "api_client_retiring_secrets"

    client_id: Mapped[str] = mapped_column(ForeignKey("api_clients.client_id"), index=True)
    secret_hash: Mapped[str] = mapped_column(String(255))
    retired_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)
    created_by: Mapped[str] = mapped_column(String(128))


class UsedAssertion(Base):
    """The `jti` of a client assertion already used, kept until the assertion expires (replay refused)."""

    __tablename__ = "api_client_used_assertions"
    __table_args__ = (Index("ix_api_client_used_assertions_expires_at", "expires_at"),)

    client_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    jti: Mapped[str] = mapped_column(String(200), primary_key=True)
    expires_at: Mapped[datetime]
