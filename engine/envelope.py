"""The response envelope every JSON route answers with (see docs/api.md)."""

from __future__ import annotations

from .errors import StudioError
from .jsoncodec import JSON


def success(data: object, request_id: str) -> dict[str, object]:
    # data is what a handler answered, written out by jsoncodec.dumps; not every service types it as JSON.
    return {"ok": True, "data": data, "error": None, "meta": {"request_id": request_id}}


def failure(error: StudioError, request_id: str) -> dict[str, JSON]:
    return {
        "ok": False,
        "data": None,
        "error": {"code": error.code, "message": error.message, "details": error.details},
        "meta": {"request_id": request_id},
    }
