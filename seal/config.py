"""Settings of the seal domain (GOVHUB_SEAL_* environment variables)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class SealSettings(BaseSettings):
    """Where the time-stamp authority is, which other hubs are trusted, and input limits."""

    model_config = SettingsConfigDict(env_prefix="GOVHUB_SEAL_", extra="ignore")

    # RFC 3161 time-stamp authority; when set, PDFs are sealed as PAdES B-T.
    tsa_url: str = ""
    # PEM bundle of other hubs' root certificates whose seals verify here (互通互认).
    trusted_roots_file: Path | None = None
    vendor_id: str = Field(default="GOVHUB", min_length=1, max_length=32)  # GB/T 38540 header vid
    max_picture_bytes: int = Field(default=256 * 1024, ge=1024)
    max_pdf_bytes: int = Field(default=20 * 1024 * 1024, ge=1024)
    max_data_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)

    @field_validator("tsa_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("tsa_url must be an http(s) URL")
        return value


@lru_cache(maxsize=1)
def get_seal_settings() -> SealSettings:
    """The process-wide seal settings."""
    return SealSettings()
