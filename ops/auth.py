"""Who is calling: roles, the authenticated principal, and the dependencies endpoints declare."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import event
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from ops.config import Settings
from ops.db import reading
from ops.errors import Forbidden, Unauthenticated


class Role(StrEnum):
    """The roles a caller can hold."""

    PLATFORM_ADMIN = "platform_admin"  # 平台管理部门: reviews, supervises, audits
    DEPARTMENT_ADMIN = "department_admin"  # a department's administrator (its staff)
    DEPARTMENT_SYSTEM = "department_system"  # a department's own system calling the API
    WINDOW = "window"  # 窗口 / 自助终端: verifies certificates
    HOLDER = "holder"  # 持证主体: a citizen or an enterprise


CLIENT_ROLES = frozenset({Role.PLATFORM_ADMIN, Role.DEPARTMENT_ADMIN, Role.DEPARTMENT_SYSTEM, Role.WINDOW})


@dataclass(frozen=True)
class Principal:
    """The authenticated caller of a request."""

    subject: str  # client id, or the holder's code
    roles: frozenset[Role]
    department_id: str | None = None
    department_code: str | None = None
    holder_code: str | None = None  # 公民身份号码 or 统一社会信用代码 of a holder
    holder_kind: str | None = None  # "person" | "enterprise"
    holder_name: str | None = None
    token_id: str | None = None
    claims: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    # A person signed in through the identity provider (staff: their id in ``people``); None for a system.
    person_id: str | None = None
    display_name: str | None = None
    acr: str | None = None  # how the provider authenticated them (its ``acr`` and ``amr`` claims)
    amr: tuple[str, ...] = ()

    @property
    def primary_role(self) -> str:
        order = [Role.PLATFORM_ADMIN, Role.DEPARTMENT_ADMIN, Role.DEPARTMENT_SYSTEM, Role.WINDOW, Role.HOLDER]
        return next((r.value for r in order if r in self.roles), "none")

    @property
    def is_platform_admin(self) -> bool:
        return Role.PLATFORM_ADMIN in self.roles

    def has(self, *roles: Role) -> bool:
        return any(r in self.roles for r in roles)

    @property
    def is_person(self) -> bool:
        """A staff member signed in through the identity provider, not a system (a client)."""
        return self.person_id is not None

    def require_department(self) -> str:
        """The caller's department id, or Forbidden if it acts for none."""
        if self.department_id is None:
            raise Forbidden("this action needs a caller that belongs to a department")
        return self.department_id


class SecondFactorRequired(Forbidden):
    """The action needs a sign-in with a second factor; the console offers to sign in again."""

    code = "second_factor_required"


def _policy(settings: Settings | None) -> Settings:
    # Without the deployment's settings: the policy's defaults (never the environment, read only at start-up).
    return settings if settings is not None else Settings.model_construct()


def has_second_factor(who: Principal, settings: Settings | None = None) -> bool:
    """Whether the provider's ``acr``/``amr`` claims of `who`'s sign-in count as a second factor."""
    policy = _policy(settings)
    return (who.acr is not None and who.acr in policy.step_up_acr_set) or bool(set(who.amr) & policy.step_up_amr_set)


def require_second_factor(who: Principal, action: str, settings: Settings | None = None) -> None:
    """Refuse `action` (``platform_admin``, ``seal_use``) to a person signed in without a second factor when
    the step-up policy (``GOVHUB_STEP_UP_*`` of `settings`; its defaults when none is given) asks for one.
    Systems authenticating by key (clients) are exempt."""
    policy = _policy(settings)
    if action not in policy.step_up_action_set or not who.is_person or has_second_factor(who, policy):
        return
    raise SecondFactorRequired(
        f"{action.replace('_', ' ')} needs a second factor: sign in again with a second factor (请使用第二因素重新登录)",
        extra={"action": action, "step_up": True},
    )


_bearer = HTTPBearer(auto_error=False, description="A token from POST /auth/token")


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def authenticate(request: Request, token: str) -> Principal:
    """Verify a bearer token (hub client token or holder token) and build the principal."""
    from ops.identity import service as identity  # late: identity imports this module

    settings = _settings(request)
    keyring = request.app.state.keyring
    factory = request.app.state.sessionmaker
    if settings.holder_idp == "external":
        import jwt

        try:
            iss = jwt.decode(token, options={"verify_signature": False}).get("iss")
        except jwt.DecodeError as exc:
            raise Unauthenticated(f"the token is not a well-formed JWT: {exc}") from exc
        if iss == settings.holder_issuer:
            claims = keyring.verify_external(
                token,
                issuer=settings.holder_issuer,
                jwks_url=settings.holder_idp_jwks_url,
                audience=settings.holder_idp_audience,
            )
            return identity.holder_principal(claims)
        issuers = [settings.issuer]
    else:
        issuers = [settings.issuer, settings.holder_issuer]
    claims = keyring.verify(token, issuers=issuers, audience=settings.token_audience)
    if claims["iss"] == settings.holder_issuer:
        return identity.holder_principal(claims)
    with reading(), factory() as session:  # a check: it never waits for the writers
        return identity.client_principal(session, claims)


class TokenCache:
    """Principals of recently verified bearer tokens, so a busy caller is not re-verified on every call.

    An entry lives `ttl` seconds (``GOVHUB_TOKEN_CACHE_SECONDS``, 0 turns the cache off) and never past
    the token's own expiry. Revoking a client or (de)activating a department empties
    this process's cache when the change commits; other hub processes see it within `ttl` seconds.
    """

    def __init__(self, max_entries: int = 50_000) -> None:
        self._entries: OrderedDict[str, tuple[float, Principal]] = OrderedDict()
        self._lock = threading.Lock()
        self.max_entries = max_entries
        self._verifying: dict[str, asyncio.Task[Principal]] = {}  # checks under way, by token
        self._generation = 0  # bumped by clear(): a check begun before it must not refill the cache

    async def principal(self, token: str, verify: Callable[[], Principal], ttl: float) -> Principal:
        """The token's principal: from the cache, else from `verify` run once in a worker thread.
        Callers that present the same token while it is being checked wait for that one check
        instead of each making their own (a busy client's whole burst arrives when its entry expires)."""
        found = self.get(token)
        if found is not None:
            return found
        loop = asyncio.get_running_loop()
        check = self._verifying.get(token)
        if check is None or check.get_loop() is not loop:
            check = loop.create_task(self._check(token, verify, ttl))
            self._verifying[token] = check
            check.add_done_callback(lambda done: self._check_done(token, done))
        # Shielded: a caller that goes away does not cancel the check the others are waiting for.
        return await asyncio.shield(check)

    async def _check(self, token: str, verify: Callable[[], Principal], ttl: float) -> Principal:
        generation = self._generation
        principal = await run_in_threadpool(verify)
        if ttl > 0 and generation == self._generation:
            self.put(token, principal, ttl)
        return principal

    def _check_done(self, token: str, done: asyncio.Task[Principal]) -> None:
        if self._verifying.get(token) is done:
            del self._verifying[token]
        if not done.cancelled():
            done.exception()  # retrieved here too, in case every waiter went away

    def get(self, token: str) -> Principal | None:
        with self._lock:
            found = self._entries.get(token)
            if found is None:
                return None
            if found[0] <= time.monotonic():
                del self._entries[token]
                return None
            return found[1]

    def put(self, token: str, principal: Principal, ttl: float) -> None:
        exp = principal.claims.get("exp")
        lifetime = min(ttl, float(exp) - time.time()) if isinstance(exp, int | float) else ttl
        if lifetime <= 0:
            return
        with self._lock:
            self._entries[token] = (time.monotonic() + lifetime, principal)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._generation += 1
            self._entries.clear()

    def clear_after_commit(self, db: Session) -> None:
        """Empty the cache once `db` commits the change that makes cached principals stale."""
        event.listen(db, "after_commit", lambda _session: self.clear(), once=True)


TOKENS = TokenCache()


async def bearer_principal(request: Request, authorization: str | None) -> Principal:
    """The caller an ``Authorization`` header value names; 401 unless it is a valid bearer token.

    Checked once per request: the body-size middleware asks before a body is read (ops.middleware),
    the endpoint's dependency then gets the same answer."""
    known: Principal | None = getattr(request.state, "principal", None)
    if known is not None:
        return known
    scheme, _, token = (authorization or "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthenticated(
            "this endpoint needs a bearer token (Authorization: Bearer <token>)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    principal = TOKENS.get(token)
    if principal is None:
        # Signature check and the client's revocation check (a database read): in a worker thread.
        ttl = _settings(request).token_cache_seconds
        principal = await TOKENS.principal(token, lambda: authenticate(request, token), ttl)
    request.state.principal = principal
    return principal


async def get_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The authenticated caller; 401 when there is no valid bearer token."""
    return await bearer_principal(request, f"{credentials.scheme} {credentials.credentials}" if credentials else None)


def require_roles(*roles: Role) -> Callable[..., Awaitable[Principal]]:
    """A dependency accepting only callers with one of `roles` (403 otherwise).

    It takes the bearer credentials itself rather than depending on :func:`get_principal`: one
    dependency level less on every call, which the busiest endpoints notice."""
    names = ", ".join(r.value for r in roles)

    async def dependency(
        request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
    ) -> Principal:
        principal = await get_principal(request, credentials)
        if not principal.has(*roles):
            raise Forbidden(f"this action needs one of the roles: {names}")
        if roles == (Role.PLATFORM_ADMIN,):
            require_second_factor(principal, "platform_admin", _settings(request))
        return principal

    dependency.__name__ = f"require_{'_or_'.join(r.value for r in roles)}"
    return dependency


# The role sets of the dependencies below, for code that asks about a role itself (the console).
STAFF_ROLES = (Role.DEPARTMENT_ADMIN, Role.DEPARTMENT_SYSTEM)  # a department's staff and systems
STAFF_OR_ADMIN_ROLES = (Role.PLATFORM_ADMIN, *STAFF_ROLES)

AnyCaller = Annotated[Principal, Depends(get_principal)]
PlatformAdmin = Annotated[Principal, Depends(require_roles(Role.PLATFORM_ADMIN))]
DepartmentStaff = Annotated[Principal, Depends(require_roles(*STAFF_ROLES))]
DepartmentOrAdmin = Annotated[Principal, Depends(require_roles(*STAFF_OR_ADMIN_ROLES))]
ClientManager = Annotated[Principal, Depends(require_roles(Role.PLATFORM_ADMIN, Role.DEPARTMENT_ADMIN))]
WindowCaller = Annotated[Principal, Depends(require_roles(Role.WINDOW))]
Holder = Annotated[Principal, Depends(require_roles(Role.HOLDER))]
