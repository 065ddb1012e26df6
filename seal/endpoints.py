"""HTTP API of the seal domain."""

from fastapi import APIRouter

router = APIRouter()
