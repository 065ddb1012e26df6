"""Offline verification: check a presentation with a cached trust list and status lists, no network.

A window terminal that may lose its connection caches two things while it is online:

- the trust list: `GET /certhub/trust-bundle` (this hub's keys and those of every trusted hub);
- the status lists: `GET <statusListCredential>` for each URL the trust bundle names
  (`…/certhub/status-lists/revocation` and `…/suspension` of each hub), as the signed JWT text.

Then, without any network::

    from certhub.offline import verify_offline

    verdict = verify_offline(
        token,                       # the scanned QR code
        trust_bundle=bundle,         # dict, as returned by /certhub/trust-bundle
        status_lists=lists,          # {status list URL: its JWT text}
        audience="11110000…",        # this window's department 统一社会信用代码
        nonce=nonce,                 # the nonce this window gave the holder (or None)
        seen_nonces=seen,            # a set kept by the terminal: a replayed nonce is refused
    )
    if verdict.valid:
        show(verdict.disclosed)      # only the fields the holder chose to disclose
    else:
        print(verdict.code, verdict.message)

Every check of the online verifier runs here too: format, issuer key in the trust list, signatures
(EdDSA and ES256 here; SM2 through the seal service's SM2 library, still offline), validity window,
audience, nonce and presentation age, disclosures, and status (revoked or suspended) read from the
cached, signature-checked status lists. A status list older than a day is refused ("status_unavailable").
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from certhub import sdjwt, statuslist
from certhub.sdjwt import Rejected, ResolvedKey, SignatureCheck, Verdict, default_signature_check


def verify_offline(
    token: str,
    *,
    trust_bundle: dict[str, Any],
    status_lists: dict[str, str],
    audience: str,
    nonce: str | None = None,
    seen_nonces: set[str] | None = None,
    now: datetime | None = None,
    max_age_seconds: int = 600,
    check_signature: SignatureCheck = default_signature_check,
) -> Verdict:
    """Verify a presentation against a cached trust bundle and cached status lists (no network)."""
    hubs = {str(h.get("issuer")): h for h in trust_bundle.get("hubs", []) if isinstance(h, dict)}

    def resolve_key(iss: str, kid: str) -> ResolvedKey | None:
        hub = hubs.get(iss)
        if hub is None:
            return None
        for jwk in hub.get("jwks", {}).get("keys", []):
            if jwk.get("kid") == kid and isinstance(jwk.get("alg"), str):
                dept = None if jwk.get("use") == "presentation" else jwk.get("dept_code")
                return ResolvedKey(jwk=jwk, alg=jwk["alg"], hub=iss, dept_code=str(dept) if dept else None)
        return None

    def resolve_status(entries: list[dict[str, Any]], identifier: str, iss: str) -> str:
        hub = hubs[iss]
        if not entries:
            raise Rejected("status_unavailable", "the certificate carries no status entry")
        result = "active"
        for entry in entries:
            url = str(entry.get("statusListCredential", ""))
            if not any(url.startswith(str(prefix)) for prefix in hub.get("status_list_urls", [])):
                raise Rejected("status_unavailable", f"status list {url} is not one the trust list names for {iss}")
            cached = status_lists.get(url)
            if cached is None:
                raise Rejected("status_unavailable", f"status list {url} is not in the cache; refresh it while online")
            if statuslist.status_bit(cached, entry, jwks=hub.get("jwks", {}), hub=iss, check=check_signature):
                result = (
                    "revoked" if entry.get("statusPurpose") == "revocation" else ("suspended" if result == "active" else result)
                )
        return result

    verdict = sdjwt.verify_presentation(
        token,
        resolve_key=resolve_key,
        resolve_status=resolve_status,
        audience=audience,
        nonce=nonce,
        now=now,
        max_age_seconds=max_age_seconds,
        check_signature=check_signature,
    )
    if seen_nonces is not None and verdict.nonce and verdict.code in ("valid", "revoked", "suspended"):
        if verdict.nonce in seen_nonces:
            return Verdict(valid=False, code="replayed", message="this presentation was already used (its nonce was seen before)")
        seen_nonces.add(verdict.nonce)
    return verdict
