"""HTTP API of identity: tokens, JWKS, departments, clients and people."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Annotated, Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.concurrency import run_in_threadpool

from ops import audit
from ops.auth import AnyCaller, ClientManager, DepartmentOrAdmin, PlatformAdmin
from ops.db import DbSession, HubRoute, etag, reading, writing
from ops.errors import BadRequest, Unauthenticated, UnsupportedMediaType
from ops.identity import credentials, repository, service
from ops.identity.models import ApiClient
from ops.identity.schemas import (
    ClientCreate,
    ClientCreated,
    ClientKeyCreate,
    ClientKeyRead,
    ClientRead,
    ClientRevoke,
    DepartmentCreate,
    DepartmentRead,
    DepartmentUpdate,
    HolderTokenRequest,
    PersonAssign,
    PersonRead,
    RetiringSecretRead,
    SecretRotate,
    SecretRotated,
    TokenResponse,
    WhoAmI,
)
from ops.identity.tokens import rotate_signing_key
from ops.pagination import Page, whole_page

router = APIRouter(tags=["identity"], route_class=HubRoute)


async def _token_request(request: Request) -> dict[str, str]:
    """Read an OAuth2 token request: form (RFC 6749) or JSON, client auth by Basic or body."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip()
    raw = await request.body()
    fields: dict[str, str] = {}
    if content_type == "application/x-www-form-urlencoded":
        try:
            parsed = parse_qs(raw.decode(), strict_parsing=bool(raw))
        except (UnicodeDecodeError, ValueError) as exc:
            raise BadRequest("the form body cannot be parsed") from exc
        fields = {k: v[0] for k, v in parsed.items()}
    elif content_type == "application/json":
        try:
            body = json.loads(raw or b"{}")
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise BadRequest(f"malformed JSON: {exc}") from exc
        if not isinstance(body, dict):
            raise BadRequest("the JSON body must be an object")
        fields = {k: str(v) for k, v in body.items() if isinstance(v, (str, int))}
    elif raw:
        raise UnsupportedMediaType("send application/x-www-form-urlencoded or application/json")
    authorization = request.headers.get("authorization", "")
    if authorization.lower().startswith("basic "):
        try:
            decoded = base64.b64decode(authorization[6:], validate=True).decode()
            fields["client_id"], fields["client_secret"] = decoded.split(":", 1)
        except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
            raise Unauthenticated("the Basic authorization header is malformed") from exc
    return fields


_TOKEN_REQUEST = {
    "type": "object",
    "properties": {
        "grant_type": {"type": "string", "enum": ["client_credentials"]},
        "client_id": {"type": "string"},
        "client_secret": {"type": "string"},
        "client_assertion_type": {"type": "string", "enum": [credentials.ASSERTION_TYPE]},
        "client_assertion": {"type": "string", "description": "a JWT signed with a key the client registered (RFC 7523)"},
    },
}


@router.post(
    "/auth/token",
    response_model=TokenResponse,
    summary="Get an access token with client credentials: a secret, or a signed assertion (private_key_jwt)",
    # Read by the endpoint itself (RFC 6749 form, or JSON); declared so that the body gate and the
    # OpenAPI description know it (client credentials may also come in a Basic header, with no body).
    openapi_extra={
        "requestBody": {
            "content": {
                "application/x-www-form-urlencoded": {"schema": _TOKEN_REQUEST},
                "application/json": {"schema": _TOKEN_REQUEST},
            }
        }
    },
)
async def issue_token(request: Request) -> Any:
    """Exchange client_id and client_secret, or a client assertion signed with a registered key
    (`private_key_jwt`, RFC 7523), for a short-lived access token."""
    fields = await _token_request(request)
    if fields.get("grant_type", "client_credentials") != "client_credentials":
        raise BadRequest(
            f"grant_type {fields.get('grant_type')!r} is not supported; use client_credentials",
            extra={"error": "unsupported_grant_type"},
        )
    if "client_assertion" in fields or "client_assertion_type" in fields:
        client, claims = await run_in_threadpool(_check_assertion, request, fields)
        return _issue(request, client, claims)
    missing = [f for f in ("client_id", "client_secret") if not fields.get(f)]
    if missing:
        raise BadRequest(
            f"missing {', '.join(missing)}",
            extra={"error": "invalid_request"},
            errors=[{"field": f, "message": "required"} for f in missing],
        )

    def check() -> tuple[ApiClient, dict[str, Any]]:
        # scrypt and the database are blocking: keep them off the event loop.
        with reading(), request.app.state.sessionmaker() as db:
            client = service.authenticate_client(db, client_id=fields["client_id"], client_secret=fields["client_secret"])
            return client, service.token_claims(db, client)

    client, claims = await run_in_threadpool(check)
    return _issue(request, client, claims)


def _issue(request: Request, client: ApiClient, claims: dict[str, Any]) -> TokenResponse:
    settings = request.app.state.settings
    token = request.app.state.keyring.issue(
        subject=client.client_id,
        audience=settings.token_audience,
        issuer=settings.issuer,
        ttl=settings.token_ttl_seconds,
        **claims,
    )
    return TokenResponse(access_token=token, expires_in=settings.token_ttl_seconds)


def token_endpoint_audiences(request: Request) -> list[str]:
    """What a client assertion's `aud` may be: the token endpoint's URL, or the hub's issuer."""
    settings = request.app.state.settings
    return [f"{settings.public_url.rstrip('/')}/auth/token", settings.issuer]


def _check_assertion(request: Request, fields: dict[str, str]) -> tuple[ApiClient, dict[str, Any]]:
    if fields.get("client_assertion_type") != credentials.ASSERTION_TYPE:
        raise BadRequest(
            f"client_assertion_type must be {credentials.ASSERTION_TYPE}",
            extra={"error": "invalid_request"},
            errors=[{"field": "client_assertion_type", "message": "unsupported"}],
        )
    if not fields.get("client_assertion"):
        raise BadRequest(
            "missing client_assertion",
            extra={"error": "invalid_request"},
            errors=[{"field": "client_assertion", "message": "required"}],
        )
    if fields.get("client_secret"):
        raise BadRequest(
            "authenticate with one method only: a client_assertion or a client_secret, not both",
            extra={"error": "invalid_request"},
        )
    # The spent jti is written (a replay is refused by every hub process): this check writes.
    with writing(), request.app.state.sessionmaker() as db:
        client = credentials.authenticate_assertion(
            db,
            assertion=fields["client_assertion"],
            client_id=fields.get("client_id") or None,
            audiences=token_endpoint_audiences(request),
        )
        claims = service.token_claims(db, client)
        db.commit()
        return client, claims


@router.get("/.well-known/jwks.json", summary="The hub's public token-signing keys (JWKS)")
def jwks(request: Request, response: Response) -> dict[str, Any]:
    """Public keys that verify the hub's tokens, including recently rotated ones."""
    response.headers["Cache-Control"] = "public, max-age=60"
    result: dict[str, Any] = request.app.state.keyring.jwks()
    return result


@router.post(
    "/auth/holder-tokens",
    response_model=TokenResponse,
    summary="Mint a holder token (built-in development identity provider only)",
)
def holder_token(body: HolderTokenRequest, request: Request, db: DbSession, who: PlatformAdmin) -> Any:
    """For development and tests: a platform admin mints a token for a citizen or enterprise."""
    settings = request.app.state.settings
    code = service.check_holder_token_request(settings, body.holder_code, body.holder_kind)
    token = request.app.state.keyring.issue(
        subject=code,
        audience=settings.token_audience,
        issuer=settings.holder_issuer,
        ttl=settings.token_ttl_seconds,
        holder_kind=body.holder_kind,
        name=body.name,
    )
    audit.record(db, actor=who, action="holder_token.issue", object_type="holder", object_id=code[:6] + "…", subject=code)
    return TokenResponse(access_token=token, expires_in=settings.token_ttl_seconds)


@router.post("/admin/signing-keys/rotate", summary="Rotate the hub's token-signing key")
def rotate_keys(request: Request, db: DbSession, who: PlatformAdmin) -> dict[str, str]:
    """New tokens are signed with a new key; old tokens stay valid until they expire."""
    key = rotate_signing_key(db, request.app.state.vault, request.app.state.settings)
    audit.record(db, actor=who, action="signing_key.rotate", object_type="signing_key", object_id=key.kid)
    request.app.state.keyring.invalidate()
    return {"kid": key.kid}


@router.get("/me", response_model=WhoAmI, summary="Who the token says you are")
def whoami(who: AnyCaller) -> Any:
    return WhoAmI(
        subject=who.subject,
        roles=sorted(who.roles),
        department_id=who.department_id,
        department_code=who.department_code,
        holder_code=who.holder_code,
        holder_kind=who.holder_kind,
    )


@router.post("/departments", status_code=201, response_model=DepartmentRead, tags=["departments"])
def create_department(body: DepartmentCreate, db: DbSession, who: PlatformAdmin, response: Response) -> Any:
    """Register a department (组织机构) by its 统一社会信用代码."""
    department = service.create_department(db, who=who, data=body)
    response.headers["ETag"] = etag(department.version)
    return department


@router.get("/departments", response_model=Page[DepartmentRead], tags=["departments"])
def list_departments(
    db: DbSession,
    who: DepartmentOrAdmin,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    region_code: str | None = None,
    code: Annotated[str | None, Query(description="统一社会信用代码 (GB 32100), to find one department")] = None,
) -> Any:
    """Departments you may see: all for a platform admin, your own otherwise."""
    items, next_cursor = repository.list_departments(db, who, cursor=cursor, limit=limit, region_code=region_code, code=code)
    return Page[DepartmentRead](items=[DepartmentRead.model_validate(d) for d in items], next_cursor=next_cursor)


@router.get("/departments/{department_id}", response_model=DepartmentRead, tags=["departments"])
def get_department(department_id: str, db: DbSession, who: DepartmentOrAdmin, response: Response) -> Any:
    department = service.get_department(db, who=who, department_id=department_id)
    response.headers["ETag"] = etag(department.version)
    return department


@router.patch("/departments/{department_id}", response_model=DepartmentRead, tags=["departments"])
def update_department(
    department_id: str,
    body: DepartmentUpdate,
    db: DbSession,
    who: PlatformAdmin,
    response: Response,
    if_match: Annotated[str | None, Header()] = None,
) -> Any:
    """Change a department; send If-Match with the ETag you read to avoid lost updates."""
    department = service.update_department(db, who=who, department_id=department_id, data=body, if_match=if_match)
    response.headers["ETag"] = etag(department.version)
    return department


@router.post("/clients", status_code=201, response_model=ClientCreated, tags=["clients"])
def create_client(body: ClientCreate, db: DbSession, who: ClientManager) -> Any:
    """Create an API client; the secret in the response is shown only this once."""
    created = service.create_client(db, who=who, data=body)
    return ClientCreated(**ClientRead.model_validate(created.client).model_dump(), client_secret=created.secret)


@router.get("/clients", response_model=Page[ClientRead], tags=["clients"])
def list_clients(
    db: DbSession,
    who: DepartmentOrAdmin,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Any:
    items, next_cursor = repository.list_clients(db, who, cursor=cursor, limit=limit)
    return Page[ClientRead](items=[ClientRead.model_validate(c) for c in items], next_cursor=next_cursor)


@router.post("/clients/{client_id}/revoke", response_model=ClientRead, tags=["clients"])
def revoke_client(client_id: str, body: ClientRevoke, db: DbSession, who: ClientManager) -> Any:
    """Revoke a client; tokens it holds stop working immediately."""
    return service.revoke_client(db, who=who, client_id=client_id, reason=body.reason)


@router.get("/people", response_model=Page[PersonRead], tags=["people"])
def list_people(
    db: DbSession,
    who: ClientManager,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Any:
    """People who signed in through the identity provider: the platform sees everyone, a department's
    administrator its own people and those not yet placed in a department."""
    items, next_cursor = repository.list_people(db, who, cursor=cursor, limit=limit)
    return Page[PersonRead](items=[PersonRead.model_validate(p) for p in items], next_cursor=next_cursor)


@router.put("/people/{person_id}/assignment", response_model=PersonRead, tags=["people"])
def assign_person(
    person_id: str,
    body: PersonAssign,
    db: DbSession,
    who: ClientManager,
    response: Response,
    if_match: Annotated[str | None, Header()] = None,
) -> Any:
    """Give a person a department and roles (a department's administrator: in their own department,
    department_admin and window only)."""
    person = service.assign_person(db, who=who, person_id=person_id, data=body, if_match=if_match)
    response.headers["ETag"] = etag(person.version)
    return person
@router.post("/clients/{client_id}/keys", status_code=201, response_model=ClientKeyRead, tags=["clients"])
def register_client_key(client_id: str, body: ClientKeyCreate, db: DbSession, who: ClientManager) -> Any:
    """Register a public key the client signs its token requests with (`private_key_jwt`)."""
    return credentials.register_key(db, who=who, client_id=client_id, jwk=body.jwk)


@router.get("/clients/{client_id}/keys", response_model=Page[ClientKeyRead], tags=["clients"])
def list_client_keys(client_id: str, db: DbSession, who: DepartmentOrAdmin) -> Any:
    """The client's keys, removed ones with the moment they stopped working (a short list, one page)."""
    keys = credentials.list_keys(db, who=who, client_id=client_id)
    return whole_page([ClientKeyRead.model_validate(k) for k in keys])


@router.delete("/clients/{client_id}/keys/{kid}", response_model=ClientKeyRead, tags=["clients"])
def remove_client_key(client_id: str, kid: str, db: DbSession, who: ClientManager) -> Any:
    """Remove a key: assertions signed with it are refused from now on."""
    return credentials.remove_key(db, who=who, client_id=client_id, kid=kid)


@router.post("/clients/{client_id}/secrets/rotate", response_model=SecretRotated, tags=["clients"])
def rotate_client_secret(client_id: str, body: SecretRotate, db: DbSession, who: ClientManager) -> Any:
    """Issue a new secret (shown once); the current one keeps working for the hours asked (at most 30 days)."""
    rotated = credentials.rotate_secret(db, who=who, client_id=client_id, old_secret_valid_hours=body.old_secret_valid_hours)
    old = RetiringSecretRead.model_validate(rotated.retiring) if rotated.retiring else None
    return SecretRotated(client_id=rotated.client.client_id, client_secret=rotated.secret, old_secret=old)


@router.get("/clients/{client_id}/secrets", response_model=Page[RetiringSecretRead], tags=["clients"])
def list_former_secrets(client_id: str, db: DbSession, who: DepartmentOrAdmin) -> Any:
    """The client's former secrets: until when each works, or when it was revoked (one page)."""
    former = credentials.list_retiring_secrets(db, who=who, client_id=client_id)
    return whole_page([RetiringSecretRead.model_validate(s) for s in former])


@router.post("/clients/{client_id}/secrets/{secret_id}/revoke", response_model=RetiringSecretRead, tags=["clients"])
def revoke_former_secret(client_id: str, secret_id: str, db: DbSession, who: ClientManager) -> Any:
    """Stop a former secret at once, before its overlap ends."""
    return credentials.revoke_retiring_secret(db, who=who, client_id=client_id, secret_id=secret_id)
