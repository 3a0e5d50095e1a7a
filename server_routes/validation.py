"""Reading request input at the boundary: size caps, content types, JSON depth, declarative schemas."""

from __future__ import annotations

import json
from typing import TypeVar

from aiohttp import web
from pydantic import BaseModel, ConfigDict, ValidationError

from ..engine.errors import StudioError
from ..engine.graph import json_depth

M = TypeVar("M", bound=BaseModel)

MAX_JSON_DEPTH = 32


class Schema(BaseModel):
    """Request schemas: unknown fields refused, strings stripped of nothing, types strict."""

    model_config = ConfigDict(extra="forbid", strict=True)


def _validation_details(exc: ValidationError) -> list[dict[str, object]]:
    return [
        {"loc": [str(p) for p in err["loc"]], "message": err["msg"], "type": err["type"]}
        for err in exc.errors(include_url=False, include_input=False)
    ]


def parse_model(model: type[M], data: object, *, strict: bool | None = None) -> M:
    try:
        return model.model_validate(data, strict=strict)
    except ValidationError as exc:
        details = _validation_details(exc)
        first = details[0]
        where = ".".join(first["loc"]) or "body"  # type: ignore[arg-type]
        raise StudioError("validation_error", f"{where}: {first['message']}", details) from None


async def read_body(request: web.Request, limit: int) -> bytes:
    """The body, refused with 413 as soon as it passes limit (whatever Content-Length claims)."""
    if request.content_length is not None and request.content_length > limit:
        raise StudioError("payload_too_large", f"The request body is over {limit // 1024} KiB")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > limit:
            raise StudioError("payload_too_large", f"The request body is over {limit // 1024} KiB")
        chunks.append(chunk)
    return b"".join(chunks)


async def read_json(request: web.Request, model: type[M], *, limit: int) -> M:
    if request.content_type != "application/json":
        raise StudioError("unsupported_media_type", "Send the body as Content-Type: application/json")
    raw = await read_body(request, limit)
    if not raw.strip():
        data: object = {}
    else:
        try:
            data = json.loads(raw)
        except (ValueError, RecursionError):
            raise StudioError("bad_json", "The body is not valid JSON") from None
    if json_depth(data, MAX_JSON_DEPTH) > MAX_JSON_DEPTH:  # type: ignore[arg-type]
        raise StudioError("validation_error", f"The JSON is nested deeper than {MAX_JSON_DEPTH} levels")
    return parse_model(model, data)


def query_model(request: web.Request, model: type[M]) -> M:
    """Query parameters through a schema (values arrive as strings, so coercion is allowed here)."""
    return parse_model(model, dict(request.query), strict=False)
