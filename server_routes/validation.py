"""Reading request input at the boundary: size caps, content types, JSON depth, declarative schemas."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import HttpProcessingError
from pydantic import BaseModel, ConfigDict, ValidationError

from ..engine.errors import StudioError
from ..engine.jsoncodec import JSON, JSONInputError, loads_input

M = TypeVar("M", bound=BaseModel)

MAX_JSON_DEPTH = 32


class Schema(BaseModel):
    """Request schemas: unknown fields refused, strings stripped of nothing, types strict."""

    model_config = ConfigDict(extra="forbid", strict=True)


def parse_model(model: type[M], data: object, *, strict: bool | None = None) -> M:
    try:
        return model.model_validate(data, strict=strict)
    except ValidationError as exc:
        errors = [
            ([str(p) for p in err["loc"]], err["msg"], err["type"])
            for err in exc.errors(include_url=False, include_input=False)
        ]
        details: list[JSON] = [{"loc": [*loc], "message": message, "type": kind} for loc, message, kind in errors]
        first_loc, first_message, _ = errors[0]
        where = ".".join(first_loc) or "body"
        raise StudioError("validation_error", f"{where}: {first_message}", details) from None


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
    data: object = {}
    if raw.strip():
        data = json_input(raw, max_depth=MAX_JSON_DEPTH, what="The body", loc=["body"])
    return parse_model(model, data)


def json_input(raw: str | bytes, *, max_depth: int, what: str, loc: list[str]) -> object:
    """JSON from outside as a StudioError-raising read: bad syntax, depth, NaN/Infinity are 400s."""
    try:
        return loads_input(raw, max_depth=max_depth, what=what)
    except JSONInputError as exc:
        code = "bad_json" if exc.kind == "syntax" else "validation_error"
        raise StudioError(
            code, exc.message, [{"loc": [*loc, *exc.loc], "message": exc.message, "type": f"json_{exc.kind}"}]
        ) from None


# Room for a multipart body's boundaries and part headers beyond its fields' own limits.
MULTIPART_OVERHEAD = 64 * 1024


@dataclass
class FormPart:
    data: bytes
    filename: str | None


async def read_multipart(request: web.Request, limits: dict[str, int], *, expected: str) -> dict[str, FormPart]:
    """A multipart/form-data body of known fields, each read with a running cap (never whole first).

    limits maps each accepted field to its size limit; expected says what to send, for the errors.
    A Content-Length past the total is refused before a byte is read.
    """
    if request.content_type != "multipart/form-data":
        raise StudioError("unsupported_media_type", f"Send {expected} as multipart/form-data")
    total = sum(limits.values()) + MULTIPART_OVERHEAD
    if request.content_length is not None and request.content_length > total:
        raise StudioError("payload_too_large", _too_large(max(limits.values())))
    parts: dict[str, FormPart] = {}
    try:
        reader = await request.multipart()
        # reader.next() rather than `async for`: aiohttp's __aiter__ is mistyped before Python 3.11.
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                raise StudioError("validation_error", "Nested multipart bodies are not accepted")
            name = part.name or ""
            if name not in limits:
                raise StudioError(
                    "validation_error",
                    f"Unknown form field {name!r}: send {expected}",
                    [{"loc": ["body", name], "message": "unknown field", "type": "extra_forbidden"}],
                )
            if name in parts:
                raise StudioError(
                    "validation_error",
                    f"The field {name} was sent twice",
                    [{"loc": ["body", name], "message": "sent twice", "type": "duplicate"}],
                )
            limit = limits[name]
            chunks: list[bytes] = []
            size = 0
            while chunk := await part.read_chunk(64 * 1024):
                size += len(chunk)
                if size > limit:
                    raise StudioError("payload_too_large", _too_large(limit))
                chunks.append(chunk)
            parts[name] = FormPart(b"".join(chunks), part.filename)
    except (HttpProcessingError, ValueError, UnicodeDecodeError):
        # aiohttp's multipart parser refuses malformed part headers (NUL in a file name, bad boundary).
        raise StudioError(
            "validation_error", "The multipart body is malformed: its part headers cannot be read"
        ) from None
    return parts


def _too_large(limit: int) -> str:
    return f"Files are limited to {limit // (1024 * 1024)} MiB" if limit >= 1024 * 1024 else "The field is too large"


def query_model(request: web.Request, model: type[M]) -> M:
    """Query parameters through a schema (values arrive as strings, so coercion is allowed here)."""
    return parse_model(model, dict(request.query), strict=False)
