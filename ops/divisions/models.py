"""The division table (GB/T 2260)."""

from __future__ import annotations

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from ops.db import Base


class Division(Base):
    """An administrative division: a province, a prefecture or a county, under its parent."""

    __tablename__ = "divisions"

    code: Mapped[str] = mapped_column(String(6), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    level: Mapped[str] = mapped_column(String(16))  # province / prefecture / county
    parent_code: Mapped[str | None] = mapped_column(String(6), index=True)
