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
    kind: Mapped[str] = mapped_column(String(16))  # "client" | "holder"
    subject: Mapped[str] = mapped_column(String(64))  # client id, or the holder's code
    holder_kind: Mapped[str | None] = mapped_column(String(16))
    display_name: Mapped[str] = mapped_column(String(200))
    csrf: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)
