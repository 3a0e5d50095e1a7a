"""The response envelope every JSON route answers with (see docs/api.md)."""

from __future__ import annotations

from .errors import StudioError
from .jsoncodec import JSON


def success(data: JSON, request_id: str) -> dict[str, JSON]:
    return {"ok": True, "data": data, "error": None, "meta": {"request_id": request_id}}


def failure(error: StudioError, request_id: str) -> dict[str, JSON]:
    return {
        "ok": False,
        "data": None,
        "error": {"code": error.code, "message": error.message, "details": error.details},
        "meta": {"request_id": request_id},
    }
