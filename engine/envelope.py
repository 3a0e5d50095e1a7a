"""The response envelope every JSON route answers with (see docs/api.md)."""

from __future__ import annotations

from .errors import JSONValue, StudioError


def success(data: JSONValue, request_id: str) -> dict[str, JSONValue]:
    return {"ok": True, "data": data, "error": None, "meta": {"request_id": request_id}}


def failure(error: StudioError, request_id: str) -> dict[str, JSONValue]:
    return {
        "ok": False,
        "data": None,
        "error": {"code": error.code, "message": error.message, "details": error.details},
        "meta": {"request_id": request_id},
    }
