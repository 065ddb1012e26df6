"""HTTP API of the catalog_registry domain."""

from fastapi import APIRouter

router = APIRouter()
