"""Request and response models of departments, clients and tokens."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator

from ops.auth import Role
from ops.codes import region_code_problem, uscc_problem
from ops.identity.models import DepartmentLevel


class DepartmentBase(BaseModel):
    name: str = Field(min_length=2, max_length=200, description="Department name, e.g. 北京市公安局")
    level: DepartmentLevel = Field(description="province / city / county / township / village (省/市/县/乡/村)")
    region_code: str = Field(description="6-digit administrative region code (GB/T 2260), e.g. 110000")
    parent_id: str | None = Field(default=None, description="Id of the parent department, if any")

    @field_validator("region_code")
    @classmethod
    def _region(cls, value: str) -> str:
        problem = region_code_problem(value.strip())
        if problem:
            raise ValueError(f"not an administrative region code: {problem}")
        return value.strip()


class DepartmentCreate(DepartmentBase):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"code": "11110000T5MY01MRN4", "name": "北京市公安局", "level": "province", "region_code": "110000"}]
        }
    )

    code: str = Field(description="统一社会信用代码 (18 characters, GB 32100 check character)")

    @field_validator("code")
    @classmethod
    def _code(cls, value: str) -> str:
        normalised = value.strip().upper()
        problem = uscc_problem(normalised)
        if problem:
            raise ValueError(f"not a valid 统一社会信用代码: {problem}")
        return normalised


class DepartmentUpdate(BaseModel):
    name: str | None = Field(default=None, min_length=2, max_length=200)
    active: bool | None = None
    parent_id: str | None = None
    region_code: str | None = Field(
        default=None, description="6-digit administrative division code (GB/T 2260) the platform's division table holds"
    )

    @field_validator("region_code")
    @classmethod
    def _region(cls, value: str | None) -> str:
        if value is None:
            raise ValueError("a department keeps a region code; give the corrected one")
        problem = region_code_problem(value.strip())
        if problem:
            raise ValueError(f"not an administrative region code: {problem}")
        return value.strip()


class DepartmentRead(DepartmentBase):
    model_config = ConfigDict(from_attributes=True)

    id: str
    code: str
    active: bool
    version: int
    created_at: datetime
    updated_at: datetime


ClientRole = Literal["platform_admin", "department_admin", "department_system", "window"]


class ClientCreate(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"name": "户籍系统", "roles": ["department_system"], "department_id": "6f1c2b7e-0d4a-4c1e-9a53-2f1f0c1d9e11"}
            ]
        }
    )

    name: str = Field(min_length=2, max_length=200, description="What the client is, e.g. 户籍系统")
    roles: list[ClientRole] = Field(min_length=1, description="Roles the client acts in")
    department_id: str | None = Field(
        default=None, description="The department it acts for (required except for platform admins)"
    )


class ClientRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    client_id: str
    name: str
    roles: list[Role]
    department_id: str | None
    created_at: datetime
    revoked_at: datetime | None


class ClientCreated(ClientRead):
    client_secret: str = Field(description="Shown once; the hub keeps only a hash")


class ClientRevoke(BaseModel):
    reason: str = Field(min_length=2, max_length=500)


class TokenResponse(BaseModel):
    access_token: str
    token_type: Literal["Bearer"] = "Bearer"  # noqa: S105
    expires_in: int


class HolderTokenRequest(BaseModel):
    holder_code: str = Field(description="公民身份号码 (person) or 统一社会信用代码 (enterprise)")
    holder_kind: Literal["person", "enterprise"]
    name: str = Field(min_length=1, max_length=200)


class WhoAmI(BaseModel):
    subject: str
    roles: list[Role]
    department_id: str | None
    department_code: str | None
    holder_code: str | None
    holder_kind: str | None


class PersonAssign(BaseModel):
    """A person's department and roles, as their department's administrator (or the platform) sets them."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"department_id": None, "roles": ["window"]}]})

    department_id: str | None = Field(default=None, description="The department the person works for")
    roles: list[Role] = Field(default_factory=list, description="platform_admin, department_admin or window")
    active: bool | None = Field(default=None, description="false withdraws the person's access")


class PersonRead(BaseModel):
    """A person who signs in through the identity provider (the 公民身份号码 is not shown)."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    issuer: str
    subject: str
    department_id: str | None
    roles: list[str]
    active: bool
    last_sign_in_at: datetime | None
    created_at: datetime
class ClientKeyCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "jwk": {
                        "kty": "EC",
                        "crv": "P-256",
                        "kid": "2026-12-a",
                        "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
                        "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0",
                    }
                }
            ]
        },
    )

    jwk: dict[str, Any] = Field(
        description="the public key (JWK, RFC 7517): EC P-256/P-384, RSA of 2048 bits or more, or Ed25519; "
        "without kid, its RFC 7638 thumbprint becomes the kid"
    )


class ClientKeyRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    kid: str
    algorithm: str = Field(validation_alias=AliasChoices("algorithm", "alg"), description="what the key signs with")
    public_jwk: dict[str, Any]
    created_at: datetime
    created_by: str
    revoked_at: datetime | None


class SecretRotate(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"old_secret_valid_hours": 72}]})

    old_secret_valid_hours: int = Field(
        ge=0,
        le=720,
        description="how long the current secret keeps working beside the new one (0: it stops now; at most 30 days)",
    )


class RetiringSecretRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    retired_at: datetime
    expires_at: datetime
    revoked_at: datetime | None


class SecretRotated(BaseModel):
    client_id: str
    client_secret: str = Field(description="The new secret, shown once; the hub keeps only a hash")
    old_secret: RetiringSecretRead | None = Field(
        description="the former secret while it still works (none if it stopped at once)"
    )
