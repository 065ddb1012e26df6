"""JWS, SD-JWT VC and presentations: building and checking them, with no database and no network.

A certificate is issued as an SD-JWT VC (IETF SD-JWT, `typ: dc+sd-jwt`): the issuer-signed JWT carries
the identifier, type, issuer, validity and status entries in clear, and a digest (`_sd`) for each holder
and face field; each field is revealed by its disclosure `base64url([salt, name, value])`.

A presentation (亮证) is `<issuer-jwt>~<chosen disclosures>~<kb-jwt>`: the key-binding JWT carries the
audience, the nonce, its time and `sd_hash` over everything before it, and is signed by the hub that
keeps the holder's certificates (a custodial wallet: holders sign in to the hub, not with a key of theirs).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Protocol

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

SD_JWT_TYP = "dc+sd-jwt"
KB_JWT_TYP = "kb+jwt"
VC_JWT_TYP = "vc+jwt"
STATUS_LIST_TYP = "statuslist+jwt"
# Claims always in clear in the issuer-signed JWT; everything else is selectively disclosable.
CLEAR_CLAIMS = ("ZZBS", "ZZLXDM", "ZZMC", "ZZBFJG", "ZZBFJGDM", "ZZBFRQ")


class JoseSigner(Protocol):
    """What signs a JWS: the seal service's Signer, or the hub's own key."""

    @property
    def alg(self) -> str: ...
    @property
    def kid(self) -> str: ...
    def sign(self, data: bytes) -> bytes: ...


_URLSAFE = bytes.maketrans(b"+/", b"-_")


def b64u(data: bytes) -> str:
    return binascii.b2a_base64(data, newline=False).translate(_URLSAFE).rstrip(b"=").decode("ascii")


def unb64u(text: str) -> bytes:
    if any(c in text for c in "+/= \n"):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# One encoder each, made once (json.dumps with options builds a new encoder on every call).
_COMPACT = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), sort_keys=True)
_DISCLOSURE = json.JSONEncoder(ensure_ascii=False)
_json_string: Callable[[str], str] = json.encoder.encode_basestring  # a JSON string literal, as ensure_ascii=False writes it


def _json(value: Any) -> bytes:
    """Compact JSON with sorted keys, in UTF-8. orjson writes it several times faster; what orjson refuses
    (an integer beyond 64 bits, a key that is not text) the standard library writes. The two spell some small
    floats differently (``1e-05``, ``0.00001``): both are the same JSON number, and a signature covers the bytes
    written, whichever wrote them."""
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        return _COMPACT.encode(value).encode()


@lru_cache(maxsize=1024)
def _header(alg: str, kid: str, typ: str) -> str:
    return b64u(_json({"alg": alg, "kid": kid, "typ": typ}))


def sign_jws(signer: JoseSigner, payload: dict[str, Any], *, typ: str) -> str:
    """A compact JWS of `payload` (header alg, kid, typ)."""
    signing_input = f"{_header(signer.alg, signer.kid, typ)}.{b64u(_json(payload))}"
    return f"{signing_input}.{b64u(signer.sign(signing_input.encode('ascii')))}"


@dataclass(frozen=True)
class ParsedJws:
    header: dict[str, Any]
    payload: dict[str, Any]
    signing_input: bytes
    signature: bytes


class Rejected(Exception):
    """A token that fails verification; `code` says which check, the message says why."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def parse_jws(token: str, *, what: str = "token") -> ParsedJws:
    """Split and decode a compact JWS (signature not checked yet)."""
    parts = token.split(".")
    if len(parts) != 3:
        raise Rejected("malformed", f"the {what} is not a compact JWS (three base64url parts separated by dots)")
    try:
        header = json.loads(unb64u(parts[0]))
        payload = json.loads(unb64u(parts[1]))
        signature = unb64u(parts[2])
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise Rejected("malformed", f"the {what} cannot be decoded: it was altered or cut short") from exc
    if not isinstance(header, dict) or not isinstance(payload, dict):
        raise Rejected("malformed", f"the {what} header and payload must be JSON objects")
    return ParsedJws(header, payload, f"{parts[0]}.{parts[1]}".encode("ascii"), signature)


_KEY_CACHE: dict[str, Any] = {}  # public keys by their JWK members


def _key_members(alg: str, jwk: dict[str, Any]) -> str:
    # The members that make the key (RFC 7518 §6.2.1, RFC 8037 §2): cheaper than serialising the JWK.
    return f"{alg}|{jwk.get('kty')}|{jwk.get('crv')}|{jwk.get('x')}|{jwk.get('y')}"


def _public_key(alg: str, jwk: dict[str, Any]) -> Any:
    cache_key = _key_members(alg, jwk)
    key = _KEY_CACHE.get(cache_key)
    if key is None:
        if alg == "EdDSA":
            key = Ed25519PublicKey.from_public_bytes(unb64u(jwk["x"]))
        elif alg == "ES256":
            numbers = ec.EllipticCurvePublicNumbers(
                int.from_bytes(unb64u(jwk["x"]), "big"), int.from_bytes(unb64u(jwk["y"]), "big"), ec.SECP256R1()
            )
            key = numbers.public_key()
        else:
            raise ValueError(f"algorithm {alg} is not verified here")
        if len(_KEY_CACHE) > 4096:
            _KEY_CACHE.clear()
        _KEY_CACHE[cache_key] = key
    return key


def verify_builtin(*, alg: str, jwk: dict[str, Any], data: bytes, signature: bytes) -> bool:
    """Verify an EdDSA (Ed25519) or ES256 JOSE signature; other algorithms raise ValueError."""
    key = _public_key(alg, jwk)
    try:
        if alg == "EdDSA":
            key.verify(signature, data)
        else:
            if len(signature) != 64:
                return False
            der = encode_dss_signature(int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big"))
            key.verify(der, data, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


SignatureCheck = Callable[..., bool]


def default_signature_check(*, alg: str, jwk: dict[str, Any], data: bytes, signature: bytes) -> bool:
    """EdDSA and ES256 here; SM2 through the seal service (needs its SM2 library, no network)."""
    if alg in ("EdDSA", "ES256"):
        return verify_builtin(alg=alg, jwk=jwk, data=data, signature=signature)
    from certhub import sealing

    return sealing.verify_signature(alg=alg, jwk=jwk, data=data, signature=signature)


# ---- SD-JWT ---------------------------------------------------------------------------------


SALT_BYTES = 16


def make_disclosure(name: str, value: Any, *, salt: bytes | None = None) -> str:
    """`base64url([salt, name, value])`, with a fresh random salt unless one is given."""
    return _disclosure(b64u(salt or secrets.token_bytes(SALT_BYTES)), name, value)


def _disclosure(salt_text: str, name: str, value: Any) -> str:
    if isinstance(value, str):  # the common case, spelled out: the same text json.dumps gives
        text = f'["{salt_text}", {_name_json(name)}, {_json_string(value)}]'
    else:
        text = _DISCLOSURE.encode([salt_text, name, value])
    return b64u(text.encode())


_NAMES: dict[str, str] = {}  # claim name → its JSON string literal (the same few names on every certificate)


def _name_json(name: str) -> str:
    text = _NAMES.get(name)
    if text is None:
        text = _json_string(name)
        if len(_NAMES) < 4096:
            _NAMES[name] = text
    return text


def disclosure_digest(disclosure: str) -> str:
    return b64u(hashlib.sha256(disclosure.encode("ascii")).digest())


_SALT_CHARS = 22  # base64url characters of a salt: 132 random bits (SD-JWT asks for at least 128)


def _b64u_many(pieces: list[bytes]) -> list[str]:
    """`b64u` of each piece, with one translation and one decoding for them all."""
    joined = b"~".join([binascii.b2a_base64(piece, newline=False) for piece in pieces])
    return joined.translate(_URLSAFE).replace(b"=", b"").decode("ascii").split("~")


def _salts(count: int) -> list[str]:
    """`count` random salts from one read of the random source: the base64url text of random bytes is random
    characters, 6 bits each, cut into salts of 22 characters."""
    text = b64u(secrets.token_bytes((_SALT_CHARS * count * 6 + 23) // 24 * 3))
    return [text[i : i + _SALT_CHARS] for i in range(0, _SALT_CHARS * count, _SALT_CHARS)]


def issue_sd_jwt(signer: JoseSigner, *, clear: dict[str, Any], disclosable: dict[str, Any]) -> str:
    """An SD-JWT: `clear` claims in the signed payload, each `disclosable` claim behind a digest."""
    texts: list[bytes] = []
    for salt, (name, value) in zip(_salts(len(disclosable)), disclosable.items(), strict=True):
        if isinstance(value, str):  # the common case, spelled out: the same text json.dumps gives
            texts.append(f'["{salt}", {_name_json(name)}, {_json_string(value)}]'.encode())
        else:
            texts.append(_DISCLOSURE.encode([salt, name, value]).encode())
    disclosures = _b64u_many(texts) if texts else []
    sha256 = hashlib.sha256
    digests = _b64u_many([sha256(d.encode("ascii")).digest() for d in disclosures]) if disclosures else []
    digests.sort()
    payload = dict(clear)
    payload["_sd"] = digests
    payload["_sd_alg"] = "sha-256"
    disclosures.insert(0, sign_jws(signer, payload, typ=SD_JWT_TYP))
    disclosures.append("")
    return "~".join(disclosures)


def split_sd_jwt(sd_jwt: str) -> tuple[str, list[str], str]:
    """(issuer JWT, disclosures, key-binding JWT or "")."""
    parts = sd_jwt.split("~")
    if len(parts) < 2:
        raise Rejected("malformed", "the presentation is not an SD-JWT (issuer JWT~disclosures~key-binding JWT)")
    return parts[0], [p for p in parts[1:-1] if p], parts[-1]


def decode_disclosure(disclosure: str) -> tuple[str, Any]:
    try:
        salt, name, value = json.loads(unb64u(disclosure))
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError) as exc:
        raise Rejected("malformed", "a disclosure of the presentation cannot be decoded: it was altered") from exc
    if not isinstance(salt, str) or not isinstance(name, str):
        raise Rejected("malformed", "a disclosure of the presentation is not [salt, name, value]")
    return name, value


def select_disclosures(sd_jwt: str, names: list[str]) -> str:
    """The issuer JWT with only the disclosures of `names` (no key binding yet)."""
    jwt, disclosures, _ = split_sd_jwt(sd_jwt)
    wanted = set(names)
    chosen = [d for d in disclosures if decode_disclosure(d)[0] in wanted]
    return "~".join([jwt, *chosen]) + "~"


def present(
    sd_jwt: str,
    names: list[str],
    *,
    hub_signer: JoseSigner,
    audience: str,
    nonce: str,
    ttl_seconds: int,
    issued_at: int | None = None,
) -> str:
    """A presentation of chosen fields bound to an audience and nonce, valid for `ttl_seconds`."""
    body = select_disclosures(sd_jwt, names)
    now = issued_at if issued_at is not None else int(datetime.now(UTC).timestamp())
    kb = sign_jws(
        hub_signer,
        {
            "iat": now,
            "exp": now + ttl_seconds,
            "aud": audience,
            "nonce": nonce,
            "sd_hash": b64u(hashlib.sha256(body.encode("ascii")).digest()),
        },
        typ=KB_JWT_TYP,
    )
    return body + kb


# ---- verification ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ResolvedKey:
    """A key found in the trust list for (issuer, kid)."""

    jwk: dict[str, Any]
    alg: str
    hub: str  # the hub (issuer URL) that vouches for the key
    dept_code: str | None = None  # the department a seal key belongs to


@dataclass
class Verdict:
    """The outcome of a verification: valid, or which check failed and why."""

    valid: bool
    code: str = "valid"
    message: str = "the certificate presentation is valid"
    identifier: str | None = None
    issuer_hub: str | None = None
    claims: dict[str, Any] = field(default_factory=dict)  # clear claims of the certificate
    disclosed: dict[str, Any] = field(default_factory=dict)  # only what the holder chose to show
    status: str | None = None
    nonce: str | None = None
    expires_at: int | None = None
    holder_code: str | None = None  # only when the holder disclosed it


KeyResolver = Callable[[str, str], ResolvedKey | None]
# (credentialStatus entries, identifier, issuer hub) -> "active" | "revoked" | "suspended" | "superseded"
StatusResolver = Callable[[list[dict[str, Any]], str, str], str]


# Certificates' signatures already checked, by (key, signed bytes, signature): a holder shows the same certificate
# again and again, each time with a fresh key binding; the answer for the same bytes and key never changes.
_CHECKED: dict[tuple[str, bytes, bytes], bool] = {}
CHECKED_REMEMBERED = 4096


def _check_signature(parsed: ParsedJws, key: ResolvedKey, check: SignatureCheck, what: str, *, remember: bool = False) -> None:
    alg = parsed.header.get("alg")
    if alg != key.alg:
        raise Rejected("bad_signature", f"the {what} says alg {alg!r} but its key is {key.alg}")
    try:
        if remember and check is default_signature_check:
            memo = (_key_members(key.alg, key.jwk), parsed.signing_input, parsed.signature)
            known = _CHECKED.get(memo)
            if known is None:
                known = bool(check(alg=key.alg, jwk=key.jwk, data=parsed.signing_input, signature=parsed.signature))
                if len(_CHECKED) >= CHECKED_REMEMBERED:
                    _CHECKED.clear()
                _CHECKED[memo] = known
            ok = known
        else:
            ok = check(alg=key.alg, jwk=key.jwk, data=parsed.signing_input, signature=parsed.signature)
    except (ValueError, KeyError, TypeError) as exc:
        raise Rejected("bad_signature", f"the {what} signature cannot be checked: {exc}") from exc
    if not ok:
        raise Rejected("bad_signature", f"the {what} signature does not verify: it was altered or not signed by {key.hub}")


@dataclass(frozen=True)
class Presentation:
    """A presentation split and decoded, nothing checked yet: a verifier reads from it what to look up
    (the issuer hub, the kids of both signatures) before the cryptography, which then decodes nothing twice."""

    token: str
    issued: ParsedJws
    disclosures: list[str]
    kb_jwt: str
    kb: ParsedJws | Rejected  # the key-binding part, or why it cannot be decoded (reported in its turn)

    @property
    def iss(self) -> str:
        return str(self.issued.payload.get("iss", ""))

    @property
    def kids(self) -> list[str]:
        """The key ids of the certificate's signature and, when it can be read, the key binding's."""
        kids = [str(self.issued.header.get("kid", ""))]
        if isinstance(self.kb, ParsedJws):
            kids.append(str(self.kb.header.get("kid", "")))
        return kids


@lru_cache(maxsize=4096)  # a pure function of the text (read only: the parsed header and payload are shared)
def _parse_certificate(issuer_jwt: str) -> ParsedJws:
    return parse_jws(issuer_jwt, what="certificate")


def read_presentation(token: str) -> Presentation:
    """Split and decode a presentation; Rejected when it is not one (not ASCII, not an SD-JWT VC, no key binding)."""
    token = token.strip()
    if not token.isascii():
        raise Rejected("malformed", "the presentation contains characters that never appear in one: it was altered")
    issuer_jwt, disclosures, kb_jwt = split_sd_jwt(token)
    issued = _parse_certificate(issuer_jwt)
    if issued.header.get("typ") != SD_JWT_TYP:
        raise Rejected("malformed", f"the certificate is not an SD-JWT VC (typ {issued.header.get('typ')!r})")
    if not kb_jwt:
        raise Rejected("malformed", "the presentation has no key-binding part: it is not bound to an audience and nonce")
    kb: ParsedJws | Rejected
    try:
        kb = parse_jws(kb_jwt, what="presentation")
    except Rejected as exc:
        kb = exc
    return Presentation(token, issued, disclosures, kb_jwt, kb)


def verify_presentation(
    token: str | Presentation,
    *,
    resolve_key: KeyResolver,
    resolve_status: StatusResolver,
    audience: str,
    nonce: str | None = None,
    now: datetime | None = None,
    max_age_seconds: int = 600,
    leeway_seconds: int = 30,
    check_signature: SignatureCheck = default_signature_check,
    claim_nonce: Callable[[str], None] | None = None,
) -> Verdict:
    """Run every check of a presentation in order; returns a Verdict, never raises for a bad token.

    Checks: format; the issuer's key is in the trust list; the issuer's signature; the issuing
    department matches the key; the validity window; the key-binding signature (by the same hub);
    `sd_hash`; audience; nonce (when the verifier gave one); presentation age; every disclosure
    matches a digest; status (revoked / suspended / superseded). `claim_nonce` is called with the
    presentation's nonce once everything but the status has passed; it raises Rejected for a replay.
    `token` may come read already (:func:`read_presentation`), as a verifier that looked up its keys first has it.
    """
    try:
        return _verify(
            token if isinstance(token, Presentation) else read_presentation(token),
            resolve_key=resolve_key,
            resolve_status=resolve_status,
            audience=audience,
            nonce=nonce,
            now=now or datetime.now(UTC),
            max_age=max_age_seconds,
            leeway=leeway_seconds,
            check=check_signature,
            claim=claim_nonce,
        )
    except Rejected as exc:
        return Verdict(valid=False, code=exc.code, message=exc.message)


def _verify(
    presentation: Presentation,
    *,
    resolve_key: KeyResolver,
    resolve_status: StatusResolver,
    audience: str,
    nonce: str | None,
    now: datetime,
    max_age: int,
    leeway: int,
    check: SignatureCheck,
    claim: Callable[[str], None] | None,
) -> Verdict:
    issued, disclosures, kb_jwt = presentation.issued, presentation.disclosures, presentation.kb_jwt
    iss = presentation.iss
    kid = str(issued.header.get("kid", ""))
    key = resolve_key(iss, kid)
    if key is None:
        raise Rejected("untrusted_issuer", f"issuer {iss or '(none)'} with key {kid or '(none)'} is not in the trust list")
    _check_signature(issued, key, check, "certificate", remember=True)
    claims = issued.payload
    if key.dept_code and claims.get("ZZBFJGDM") != key.dept_code:
        raise Rejected("bad_signature", "the certificate is signed with the seal key of another department than its issuer")
    stamp = now.timestamp()
    nbf, exp = claims.get("nbf"), claims.get("exp")
    if isinstance(nbf, (int, float)) and stamp + leeway < nbf:
        raise Rejected("not_yet_valid", "the certificate is not valid yet")
    if isinstance(exp, (int, float)) and stamp - leeway >= exp:
        raise Rejected("expired", "the certificate has expired (its validity period has ended)")
    kb = presentation.kb
    if isinstance(kb, Rejected):
        raise kb
    if kb.header.get("typ") != KB_JWT_TYP:
        raise Rejected("malformed", "the key-binding part of the presentation has the wrong type")
    kb_key = resolve_key(iss, str(kb.header.get("kid", "")))
    if kb_key is None or kb_key.dept_code:
        raise Rejected("untrusted_issuer", "the presentation is not signed by a hub key in the trust list")
    _check_signature(kb, kb_key, check, "presentation")
    token = presentation.token
    body = token[: len(token) - len(kb_jwt)]
    if kb.payload.get("sd_hash") != b64u(hashlib.sha256(body.encode("ascii")).digest()):
        raise Rejected("bad_signature", "the presentation does not cover these disclosures: it was altered")
    if kb.payload.get("aud") != audience:
        raise Rejected("wrong_audience", f"the presentation is for {kb.payload.get('aud')!r}, not for this verifier ({audience})")
    presented_nonce = kb.payload.get("nonce")
    if not isinstance(presented_nonce, str) or not presented_nonce:
        raise Rejected("malformed", "the presentation carries no nonce")
    if nonce is not None and presented_nonce != nonce:
        raise Rejected("nonce_mismatch", "the presentation was made for another nonce than the one this verifier issued")
    iat, kb_exp = kb.payload.get("iat"), kb.payload.get("exp")
    if not isinstance(iat, int) or iat > stamp + leeway:
        raise Rejected("malformed", "the presentation time is missing or in the future")
    if stamp - leeway > iat + max_age or (isinstance(kb_exp, int) and stamp - leeway >= kb_exp):
        raise Rejected("presentation_expired", "the presentation has expired; ask the holder to show the certificate again")
    digests = set(claims.get("_sd", []))
    disclosed: dict[str, Any] = {}
    for disclosure in disclosures:
        if disclosure_digest(disclosure) not in digests:
            raise Rejected("bad_signature", "a disclosure is not one the issuer signed: it was altered")
        name, value = decode_disclosure(disclosure)
        disclosed[name] = value
    if claim is not None:
        claim(presented_nonce)
    identifier = str(claims.get("ZZBS", ""))
    entries = claims.get("credentialStatus") or []
    status = resolve_status(entries if isinstance(entries, list) else [], identifier, iss)
    clear = {k: v for k, v in claims.items() if k in CLEAR_CLAIMS or k in ("iss", "vct", "nbf", "exp", "iat")}
    verdict = Verdict(
        valid=True,
        identifier=identifier,
        issuer_hub=iss,
        claims=clear,
        disclosed=disclosed,
        status=status,
        nonce=presented_nonce,
        expires_at=kb_exp if isinstance(kb_exp, int) else iat + max_age,
        holder_code=disclosed.get("CZZTDM"),
    )
    apply_status(verdict, status)
    return verdict


STATUS_MESSAGES = {
    "revoked": "the certificate has been revoked (注销)",
    "suspended": "the certificate is suspended while an objection is handled",
    "superseded": "the certificate has been replaced by a newer version",
}


# A status resolver may answer this when its caller reads the status itself later (then calls apply_status).
STATUS_LATER = "pending"


def apply_status(verdict: Verdict, status: str) -> None:
    """Set the certificate's status on a verdict that passed every other check."""
    verdict.status = status
    if status not in ("active", STATUS_LATER):
        verdict.valid = False
        verdict.code = status
        verdict.message = STATUS_MESSAGES.get(status, f"the certificate status is {status}")
