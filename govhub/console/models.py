"""Console sessions, kept on the server; the browser holds only an opaque cookie."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from ops.db import Base, utcnow


class ConsoleSession(Base):
    """A signed-in person. The cookie value is secret; only its SHA-256 is stored."""

    __tablename__ = "console_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # "client" | "holder" | "person"
    subject: Mapped[str] = mapped_column(String(64))  # client id, the holder's code, or the person's id
    holder_kind: Mapped[str | None] = mapped_column(String(16))
    display_name: Mapped[str] = mapped_column(String(200))
    csrf: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)
    # How the identity provider authenticated the person (its acr and space-separated amr), for step-up.
    acr: Mapped[str | None] = mapped_column(String(200), default=None)
    amr: Mapped[str | None] = mapped_column(String(200), default=None)


class PendingSignIn(Base):
    """An authorization request sent to the identity provider and not yet answered: its `state` (only the
    SHA-256 is kept), the `nonce` and PKCE verifier that go with it. Used once: the answer deletes it."""

    __tablename__ = "console_pending_sign_ins"

    state_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    nonce: Mapped[str] = mapped_column(String(64))
    code_verifier: Mapped[str] = mapped_column(String(128))
    audience: Mapped[str] = mapped_column(String(16))  # "staff" | "holder"
    next_url: Mapped[str] = mapped_column(String(500), default="")
    step_up: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
