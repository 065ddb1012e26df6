"""HTTP API of the exchange domain."""

from fastapi import APIRouter

router = APIRouter()
