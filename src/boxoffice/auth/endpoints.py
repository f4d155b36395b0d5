"""HTTP endpoints of this domain (filled in by its issue)."""

from fastapi import APIRouter

router = APIRouter()
