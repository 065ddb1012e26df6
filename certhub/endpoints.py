"""HTTP API of the certhub domain."""

from fastapi import APIRouter

router = APIRouter()
