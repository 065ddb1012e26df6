"""OpenID Connect relying party: sign-in at the provincial identity provider (统一身份认证).

Authorization code flow with PKCE (S256), `state` and `nonce`; the ID token is checked against the
provider's discovery document and JWKS. A `kid` the cached JWKS lacks makes it fetch the JWKS once more
(the provider rotated its keys). Every call to the provider gives up after ``oidc_timeout_seconds``: a
provider that is down is answered with :class:`ProviderUnavailable` (503), never a hang.
No database, no web framework: the console (govhub.console) keeps the pending requests and sessions.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import jwt

from ops.config import Settings
from ops.errors import HubError, Unauthenticated, Unavailable

# Signature algorithms accepted for ID tokens (never "none", never HMAC with a guessable key).
ALGORITHMS = ["RS256", "PS256", "ES256", "ES384", "RS384", "RS512", "EdDSA"]
DISCOVERY_TTL = 3600.0  # seconds the discovery document is kept
LEEWAY = 30  # seconds of clock difference allowed on exp/iat


class ProviderUnavailable(Unavailable):
    """The identity provider could not be reached or answered with something unusable."""

    code = "identity_provider_unavailable"


class SignInRefused(Unauthenticated):
    """The provider's answer does not prove who signed in (bad token, wrong audience, replay...)."""

    code = "sign_in_refused"


@dataclass(frozen=True)
class AuthorizationRequest:
    """What to send the browser to, and what to keep until the provider answers."""

    url: str
    state: str
    nonce: str
    code_verifier: str


@dataclass(frozen=True)
class VerifiedSignIn:
    """The checked claims of an ID token."""

    claims: dict[str, Any]

    @property
    def issuer(self) -> str:
        return str(self.claims["iss"])

    @property
    def subject(self) -> str:
        return str(self.claims["sub"])

    @property
    def name(self) -> str:
        return str(self.claims.get("name") or self.claims["sub"])

    @property
    def acr(self) -> str | None:
        value = self.claims.get("acr")
        return str(value) if value else None

    @property
    def amr(self) -> tuple[str, ...]:
        value = self.claims.get("amr") or []
        return tuple(str(v) for v in value) if isinstance(value, list) else ()


def pkce_challenge(verifier: str) -> str:
    """The S256 code challenge of a PKCE verifier (RFC 7636)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


class RelyingParty:
    """The hub as a client of one OpenID Provider (one per process, kept on ``app.state``)."""

    def __init__(self, settings: Settings, *, transport: httpx.BaseTransport | None = None) -> None:
        self.settings = settings
        self._http = httpx.Client(timeout=settings.oidc_timeout_seconds, transport=transport, follow_redirects=False)
        self._lock = threading.Lock()
        self._metadata: dict[str, Any] | None = None
        self._metadata_at = 0.0
        self._keys: dict[str, jwt.PyJWK] = {}

    # -- the provider's documents ------------------------------------------------------------------

    def _get_json(self, url: str, what: str) -> dict[str, Any]:
        try:
            response = self._http.get(url, headers={"accept": "application/json"})
        except httpx.HTTPError as exc:
            raise ProviderUnavailable(
                f"the identity provider did not answer ({what}: {type(exc).__name__}); try again in a few minutes, "
                "or ask the platform's operators whether it is down (统一身份认证平台暂时无法访问)"
            ) from exc
        if response.status_code != 200:
            raise ProviderUnavailable(f"the identity provider answered {response.status_code} for its {what}; try again later")
        try:
            body = response.json()
        except ValueError as exc:
            raise ProviderUnavailable(f"the identity provider's {what} is not JSON; try again later") from exc
        if not isinstance(body, dict):
            raise ProviderUnavailable(f"the identity provider's {what} is not a JSON object")
        return body

    def metadata(self) -> dict[str, Any]:
        """The provider's discovery document (OpenID Connect Discovery 1.0), cached for an hour."""
        with self._lock:
            if self._metadata is not None and time.monotonic() - self._metadata_at < DISCOVERY_TTL:
                return self._metadata
        issuer = self.settings.oidc_issuer
        body = self._get_json(f"{issuer.rstrip('/')}/.well-known/openid-configuration", "discovery document")
        if body.get("issuer") != issuer:
            raise ProviderUnavailable(
                f"the identity provider's discovery document names issuer {body.get('issuer')!r}, not {issuer!r}: "
                "check GOVHUB_OIDC_ISSUER"
            )
        for needed in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            if not isinstance(body.get(needed), str):
                raise ProviderUnavailable(f"the identity provider's discovery document lacks {needed}")
        with self._lock:
            self._metadata, self._metadata_at = body, time.monotonic()
        return body

    def _load_keys(self) -> None:
        body = self._get_json(str(self.metadata()["jwks_uri"]), "key set (JWKS)")
        keys: dict[str, jwt.PyJWK] = {}
        for jwk in body.get("keys", []):
            if not isinstance(jwk, dict) or jwk.get("use", "sig") != "sig" or "kid" not in jwk:
                continue
            try:
                keys[str(jwk["kid"])] = jwt.PyJWK.from_dict(jwk)
            except jwt.PyJWTError:
                continue  # a key type this library cannot use is not one the provider signs our tokens with
        with self._lock:
            self._keys = keys

    def signing_key(self, kid: str) -> jwt.PyJWK:
        """The provider's key `kid`; a kid not in the cached JWKS makes it fetch the JWKS once more."""
        with self._lock:
            found = self._keys.get(kid)
        if found is None:
            self._load_keys()
            with self._lock:
                found = self._keys.get(kid)
        if found is None:
            raise SignInRefused(
                f"the ID token is signed with a key ({kid}) the identity provider does not publish; sign in again"
            )
        return found

    # -- the flow ----------------------------------------------------------------------------------

    def authorization_request(self, *, acr_values: str | None = None, prompt: str | None = None) -> AuthorizationRequest:
        """A new authorization request (code flow, PKCE S256, fresh state and nonce)."""
        endpoint = str(self.metadata()["authorization_endpoint"])
        state, nonce, verifier = secrets.token_urlsafe(32), secrets.token_urlsafe(32), secrets.token_urlsafe(64)
        params = {
            "response_type": "code",
            "client_id": self.settings.oidc_client_id,
            "redirect_uri": self.settings.oidc_callback_url,
            "scope": self.settings.oidc_scopes,
            "state": state,
            "nonce": nonce,
            "code_challenge": pkce_challenge(verifier),
            "code_challenge_method": "S256",
        }
        if acr_values:
            params["acr_values"] = acr_values
        if prompt:
            params["prompt"] = prompt
        separator = "&" if "?" in endpoint else "?"
        return AuthorizationRequest(f"{endpoint}{separator}{urlencode(params)}", state, nonce, verifier)

    def exchange_code(self, *, code: str, code_verifier: str) -> str:
        """Trade the authorization code for tokens at the token endpoint; returns the ID token."""
        endpoint = str(self.metadata()["token_endpoint"])
        data = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self.settings.oidc_callback_url,
            "code_verifier": code_verifier,
        }
        secret = self.settings.oidc_client_secret.get_secret_value()
        headers = {"accept": "application/json"}
        if secret:  # client_secret_basic: both parts form-encoded first (RFC 6749 §2.3.1)
            pair = f"{quote(self.settings.oidc_client_id, safe='')}:{quote(secret, safe='')}"
            headers["authorization"] = "Basic " + base64.b64encode(pair.encode()).decode("ascii")
        else:
            data["client_id"] = self.settings.oidc_client_id
        try:
            response = self._http.post(endpoint, data=data, headers=headers)
        except httpx.HTTPError as exc:
            raise ProviderUnavailable(
                f"the identity provider did not answer the token request ({type(exc).__name__}); sign in again in a few minutes"
            ) from exc
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.status_code == 400 and body.get("error") == "invalid_grant":
            raise SignInRefused(
                "the identity provider refused the sign-in code: it was already used or has expired; start the sign-in again"
            )
        if response.status_code != 200 or not isinstance(body.get("id_token"), str):
            error = body.get("error") if isinstance(body, dict) else None
            raise ProviderUnavailable(
                f"the identity provider refused the token request ({response.status_code} {error or ''}); "
                "check the hub's client id and secret (GOVHUB_OIDC_CLIENT_ID / _SECRET)"
            )
        return str(body["id_token"])

    def verify_id_token(self, token: str, *, nonce: str) -> VerifiedSignIn:
        """Check an ID token: signature by a published key, issuer, audience, expiry, and our nonce."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise SignInRefused(f"the identity provider's ID token is malformed ({exc}); sign in again") from exc
        alg = header.get("alg")
        if alg not in ALGORITHMS:
            raise SignInRefused(f"the ID token's algorithm {alg!r} is not accepted; sign in again")
        key = self.signing_key(str(header.get("kid", "")))
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key=key.key,
                algorithms=[str(alg)],
                audience=self.settings.oidc_client_id,
                issuer=self.settings.oidc_issuer,
                leeway=LEEWAY,
                options={"require": ["iss", "sub", "aud", "exp", "iat"]},
            )
        except jwt.InvalidSignatureError as exc:
            raise SignInRefused(
                "the ID token's signature does not verify: it was not issued by the identity provider; sign in again"
            ) from exc
        except jwt.InvalidAudienceError as exc:
            raise SignInRefused(
                "the ID token was issued for another application (audience); sign in again from this console"
            ) from exc
        except jwt.ExpiredSignatureError as exc:
            raise SignInRefused("the ID token has expired; sign in again") from exc
        except jwt.PyJWTError as exc:
            raise SignInRefused(f"the ID token is not valid ({exc}); sign in again") from exc
        azp = claims.get("azp")
        if isinstance(claims.get("aud"), list) and len(claims["aud"]) > 1 and azp != self.settings.oidc_client_id:
            raise SignInRefused("the ID token was issued for another application (azp); sign in again from this console")
        if not isinstance(claims.get("nonce"), str) or not secrets.compare_digest(str(claims["nonce"]), nonce):
            raise SignInRefused("the ID token answers another sign-in (its nonce is not this one's); start the sign-in again")
        return VerifiedSignIn(claims)

    def logout_url(self, *, post_logout_redirect_uri: str) -> str | None:
        """Where to send the browser to end the provider's session too (RP-initiated logout), if it offers it."""
        try:
            endpoint = self.metadata().get("end_session_endpoint")
        except HubError:
            return None  # signing out of the hub must not wait on a provider that is down
        if not isinstance(endpoint, str):
            return None
        params = {"client_id": self.settings.oidc_client_id, "post_logout_redirect_uri": post_logout_redirect_uri}
        separator = "&" if "?" in endpoint else "?"
        return f"{endpoint}{separator}{urlencode(params)}"

    @property
    def known_kids(self) -> frozenset[str]:
        """The ids of the provider's keys this relying party has fetched."""
        with self._lock:
            return frozenset(self._keys)

    def close(self) -> None:
        self._http.close()
