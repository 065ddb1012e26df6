"""One typed settings object, read from GOVHUB_* environment variables.

How code reaches it: the composition roots read it once (``create_app``, the command line's
``load_settings``, both through :func:`get_settings`) and hand it on: a request reaches it as
``request.app.state.settings``, a service, job or command gets it as an argument (jobs and calendar
listeners are built from it at the composition root). Nothing else reads the environment or calls
:func:`get_settings`.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ops.private import keep_private, private_dir

DEFAULT_PUBLIC_URL = "http://127.0.0.1:8000"


class Settings(BaseSettings):
    """Runtime configuration. Defaults run on one machine with nothing else installed."""

    model_config = SettingsConfigDict(env_prefix="GOVHUB_", extra="ignore")

    data_dir: Path = Path("./govhub-data")
    # Empty means: a SQLite file inside data_dir.
    database_url: str = ""
    database_pool_size: int = Field(default=10, ge=1, le=200)
    # PostgreSQL: a statement of the serving hub that runs longer, or waits longer for a lock, is
    # cancelled and its request answered 503 (0: no limit). Migrations and commands are not limited.
    database_statement_timeout_seconds: float = Field(default=10.0, ge=0, le=3600)
    database_lock_timeout_seconds: float = Field(default=3.0, ge=0, le=3600)
    # How long a write waits for its turn when other writers hold the database (SQLite has one writer at
    # a time); past it the request gets 503 database_busy.
    database_busy_timeout_seconds: float = Field(default=5.0, gt=0, le=300)
    # Writer threads of each group commit (the busy paths' shared commits, ops.groupcommit); 0: one on
    # SQLite, three on PostgreSQL, where a batch mostly waits for the server's answers.
    group_commit_writers: int = Field(default=0, ge=0, le=32)

    storage_backend: Literal["local", "s3"] = "local"
    # Empty means: data_dir/objects.
    storage_dir: Path | None = None
    s3_endpoint: str = ""
    s3_access_key: SecretStr = SecretStr("")
    s3_secret_key: SecretStr = SecretStr("")
    s3_bucket: str = "govhub"
    s3_region: str = "us-east-1"
    s3_secure: bool = True

    # Key-encryption key for private keys at rest: 32 bytes, base64. Empty in the embedded
    # default means: generated once into data_dir/master.key (mode 0600).
    master_key: SecretStr = SecretStr("")
    # Old master keys still accepted for unwrapping during a rotation (comma-separated base64).
    previous_master_keys: SecretStr = SecretStr("")

    # The address clients reach the hub at: tokens' issuer, issuer metadata, JWKS, status lists, DCAT.
    # Unset or empty: `govhub serve` advertises the address it listens on (`bound_to`).
    public_url: str = DEFAULT_PUBLIC_URL
    token_issuer: str = ""
    token_audience: str = "govhub"  # noqa: S105 (an audience name, not a secret)
    token_ttl_seconds: int = Field(default=900, ge=60, le=86400)
    # How long a verified bearer token's caller is remembered by one hub process (0: check every call).
    # Revocations reach the other processes within this time.
    token_cache_seconds: float = Field(default=5.0, ge=0, le=60)

    # Holder (citizen / enterprise) tokens come from an external identity provider.
    # "builtin" lets platform administrators mint holder tokens: for development and tests only.
    holder_idp: Literal["builtin", "external"] = "builtin"
    holder_idp_issuer: str = ""
    holder_idp_jwks_url: str = ""
    holder_idp_audience: str = "govhub"

    # OpenID Connect sign-in of the console (staff and holders) at the provincial identity provider
    # (统一身份认证). Empty issuer: no single sign-on (the embedded default's development sign-in only).
    oidc_issuer: str = ""
    oidc_client_id: str = ""
    oidc_client_secret: SecretStr = SecretStr("")
    # Where the provider sends the browser back; empty means public_url + /console/oidc/callback.
    oidc_redirect_url: str = ""
    oidc_scopes: str = "openid profile"
    # The verified claim that carries a holder's 公民身份号码 (checked with its check digit).
    oidc_holder_id_claim: str = "id_number"
    # Network calls to the provider give up after this long: a provider that is down gets a clear page.
    oidc_timeout_seconds: float = Field(default=3.0, gt=0, le=60)
    # Staff may sign in to the console with an API client's id and secret (development; off in production).
    console_client_sign_in: bool = True

    # Step-up (二次认证): the actions that need a second factor, and which of the provider's `acr` values
    # or `amr` methods count as one (comma-separated). The first acr value is the one asked for.
    step_up_actions: str = "platform_admin,seal_use"
    step_up_acr_values: str = "urn:govhub:acr:two-factor"
    step_up_amr_values: str = "otp,hwk,sms,mfa,swk,sc"

    # 电子档案 retention (保管期限) per record class, in years from the record's end (a certificate's expiry or
    # revocation, a sharing request's closing, a sealing): `class=years,...`; a class not named is kept for ever.
    archive_retention_years: str = "certificate_version=30,sealed_document=30,sharing_dossier=10"

    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    max_upload_bytes: int = Field(default=512 * 1_048_576, ge=1024)

    # First platform administrator client; when unset one is generated and printed once.
    bootstrap_admin_client_id: str = ""
    bootstrap_admin_secret: SecretStr = SecretStr("")

    # Sharing exchange policy, in working days (seed 002 §六(一): review 3, direct provision 3,
    # provider decision 10). Other jurisdictions use other numbers; each deployment sets its own.
    review_working_days: int = Field(default=3, ge=1, le=60)
    direct_provision_working_days: int = Field(default=3, ge=1, le=60)
    provider_decision_working_days: int = Field(default=10, ge=1, le=60)
    coordination_working_days: int = Field(default=10, ge=1, le=60)
    max_extension_working_days: int = Field(default=10, ge=0, le=60)
    max_grant_days: int = Field(default=1096, ge=1, le=3660)
    default_grant_rate_limit_per_minute: int = Field(default=600, ge=1, le=1_000_000)
    exchange_webhook_max_attempts: int = Field(default=5, ge=1, le=50)
    # Subscriptions to grants (pushed changes): webhooks to loopback, private and link-local addresses are
    # refused unless this deployment allows them (a test rig, or a closed government network).
    webhook_allow_private: bool = False
    # A subscriber's event is tried this many times (exponential backoff), then parked for a replay.
    subscription_max_attempts: int = Field(default=8, ge=1, le=50)
    subscription_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    # NATS with JetStream (nats://host:4222): when set, every outbox event is also published there, one
    # subject per grant (govhub.grants.<grant id>.changes). Empty: the database outbox only.
    nats_url: str = ""
    # 电子证照异议处理: working days the issuer has to correct or dismiss an objection.
    certificate_objection_working_days: int = Field(default=5, ge=1, le=60)
    # 亮证码: seconds a short code stays redeemable at the window it was made for (minutes, not hours).
    short_code_ttl_seconds: int = Field(default=180, ge=30, le=600)
    # Public 验真 (the QR code on a certificate copy): checks per minute from one client address.
    public_verification_per_minute: int = Field(default=30, ge=1, le=100_000)
    # 好差评: working days a department has to reply to a poor rating (整改), and how long a rating link lasts.
    rectification_working_days: int = Field(default=5, ge=1, le=60)
    rating_token_days: int = Field(default=30, ge=1, le=366)

    # Electronic seals (seal/, GOVHUB_SEAL_*). An external RFC 3161 time-stamp authority (production); empty,
    # the hub's own (seal/tsa.py). It stamps sealed PDFs (PAdES B-T), detached signatures, audit checkpoints.
    seal_tsa_url: str = ""
    # When that TSA does not answer, a detached seal signature is made without its time stamp, answered
    # "awaiting" and stamped later by the `seal.stamp_pending` job (True, the default); False: refused with 502.
    seal_stamp_later: bool = True
    # PEM bundle of other hubs' root certificates whose seals verify here (互通互认).
    seal_trusted_roots_file: Path | None = None
    seal_vendor_id: str = Field(default="GOVHUB", min_length=1, max_length=32)  # GB/T 38540 header vid
    # PAdES B-LTA (seal/ltv.py): a document time stamp chain is renewed this many days before the last stamp's
    # TSA certificate expires, or at once when its digest algorithm is listed as weakened (comma-separated,
    # e.g. "sha1,sha224"); each renewal stamps with `seal_lta_digest_algorithm`.
    seal_lta_renewal_margin_days: int = Field(default=365, ge=1, le=3650)
    seal_lta_weakened_digests: str = ""
    seal_lta_digest_algorithm: Literal["sha256", "sha384", "sha512", "sha3_256", "sha3_512"] = "sha256"
    seal_max_picture_bytes: int = Field(default=256 * 1024, ge=1024)
    seal_max_pdf_bytes: int = Field(default=20 * 1024 * 1024, ge=1024)
    seal_max_data_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    # How long one hub process remembers a seal's status and the hub's trusted certificates when it verifies
    # seal signatures (0: read them every time). A seal revoked in another process is refused within this time.
    seal_status_cache_seconds: float = Field(default=5.0, ge=0, le=60)
    # A CJK TrueType font (.ttf/.ttc with TrueType outlines) whose glyphs OFD certificate copies embed; empty:
    # the first of certhub.ofdfont.KNOWN_FONTS installed (Debian's fonts-wqy-zenhei).
    ofd_font: str = ""

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    run_scheduler: bool = True

    @field_validator("database_url")
    @classmethod
    def _supported_database(cls, value: str) -> str:
        if value and not value.startswith(("sqlite", "postgresql")):
            raise ValueError("database_url must be a sqlite:// or postgresql+psycopg:// URL")
        return value

    @field_validator("archive_retention_years")
    @classmethod
    def _check_retention(cls, value: str) -> str:
        _retention(value)
        return value

    @field_validator("master_key", "bootstrap_admin_secret")
    @classmethod
    def _check_master_key(cls, value: SecretStr, info: object) -> SecretStr:
        field = getattr(info, "field_name", "")
        raw = value.get_secret_value()
        if field == "master_key" and raw:
            decode_key(raw)
        if field == "bootstrap_admin_secret" and raw and len(raw) < 16:
            raise ValueError("bootstrap_admin_secret must be at least 16 characters")
        return value

    @field_validator("public_url", "s3_endpoint", "holder_idp_jwks_url", "seal_tsa_url", "oidc_issuer", "oidc_redirect_url")
    @classmethod
    def _url(cls, value: str, info: object) -> str:
        field = getattr(info, "field_name", "")
        if not value:
            return value
        if field == "s3_endpoint":
            if "://" in value:
                raise ValueError("s3_endpoint is host:port, without a scheme (see s3_secure)")
            return value
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"{field} must be an http(s) URL")
        if field == "oidc_issuer":
            return value  # compared with the provider's `iss` exactly as configured
        return value if field == "seal_tsa_url" else value.rstrip("/")  # a TSA's URL is used as given

    @model_validator(mode="before")
    @classmethod
    def _empty_public_url_is_unset(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("public_url") == "":
            return {key: value for key, value in data.items() if key != "public_url"}
        return data

    @model_validator(mode="after")
    def _s3_complete(self) -> Settings:
        if self.storage_backend == "s3" and not self.s3_endpoint:
            raise ValueError("storage_backend=s3 needs GOVHUB_S3_ENDPOINT")
        if self.oidc_issuer and not self.oidc_client_id:
            raise ValueError("GOVHUB_OIDC_ISSUER needs GOVHUB_OIDC_CLIENT_ID (and usually GOVHUB_OIDC_CLIENT_SECRET)")
        if self.holder_idp == "external" and not (self.holder_idp_issuer and self.holder_idp_jwks_url):
            raise ValueError("holder_idp=external needs GOVHUB_HOLDER_IDP_ISSUER and GOVHUB_HOLDER_IDP_JWKS_URL")
        return self

    def bound_to(self, host: str, port: int) -> Settings:
        """These settings for a hub listening on host:port: without GOVHUB_PUBLIC_URL it advertises that
        address (a wildcard host as the loopback one: set GOVHUB_PUBLIC_URL when others reach it)."""
        if "public_url" in self.model_fields_set:
            return self
        host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)  # noqa: S104 (compared, not bound)
        if ":" in host:
            host = f"[{host}]"
        return self.model_copy(update={"public_url": f"http://{host}:{port}"})

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'govhub.db').resolve()}"

    @property
    def effective_storage_dir(self) -> Path:
        return self.storage_dir or self.data_dir / "objects"

    @property
    def issuer(self) -> str:
        return self.token_issuer or self.public_url

    @property
    def holder_issuer(self) -> str:
        return self.holder_idp_issuer or f"{self.issuer}/holder-idp"

    @property
    def oidc_enabled(self) -> bool:
        return bool(self.oidc_issuer)

    @property
    def oidc_callback_url(self) -> str:
        return self.oidc_redirect_url or f"{self.public_url}/console/oidc/callback"

    @property
    def archive_retention(self) -> dict[str, int]:
        """Years of retention by record class (validated at start-up)."""
        return _retention(self.archive_retention_years)

    @property
    def step_up_action_set(self) -> frozenset[str]:
        return _words(self.step_up_actions)

    @property
    def step_up_acr_set(self) -> frozenset[str]:
        return _words(self.step_up_acr_values)

    @property
    def step_up_acr_wanted(self) -> str:
        """The acr value a step-up sign-in asks the provider for."""
        return next((v.strip() for v in self.step_up_acr_values.split(",") if v.strip()), "")

    @property
    def step_up_amr_set(self) -> frozenset[str]:
        return _words(self.step_up_amr_values)

    def master_keys(self) -> list[bytes]:
        """The current master key first, then any previous ones still accepted for unwrapping."""
        keys = [self._current_master_key()]
        for part in self.previous_master_keys.get_secret_value().split(","):
            if part.strip():
                keys.append(decode_key(part.strip()))
        return keys

    def _current_master_key(self) -> bytes:
        raw = self.master_key.get_secret_value()
        if raw:
            return decode_key(raw)
        path = self.data_dir / "master.key"
        if not path.exists():
            private_dir(self.data_dir)
            # Written whole under a temporary name, then linked into place: several processes
            # starting together on one data directory all end up reading the same complete key.
            tmp = self.data_dir / f".master.key.{os.getpid()}.{secrets.token_hex(4)}"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(base64.b64encode(secrets.token_bytes(32)).decode())
                handle.flush()
                os.fsync(handle.fileno())
            try:
                os.link(tmp, path)
            except FileExistsError:
                pass  # another process won; use its key
            finally:
                tmp.unlink(missing_ok=True)
        keep_private(path)
        return decode_key(path.read_text().strip())


def _retention(text: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        name, _, years = part.partition("=")
        if not name.strip() or not years.strip().isdigit() or not 1 <= int(years) <= 1000:
            raise ValueError(f"archive_retention_years: {part!r} is not class=years (1..1000)")
        out[name.strip()] = int(years)
    return out


def _words(text: str) -> frozenset[str]:
    return frozenset(part.strip() for part in text.split(",") if part.strip())


def decode_key(raw: str) -> bytes:
    """Decode a base64 32-byte key, or raise ValueError saying what is wrong."""
    try:
        key = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("master key must be base64") from exc
    if len(key) != 32:
        raise ValueError(f"master key must be 32 bytes, got {len(key)}")
    return key


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (read once from the environment)."""
    return Settings()
