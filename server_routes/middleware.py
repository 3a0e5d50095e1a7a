"""The envelope middleware: the one place that builds every response and every error."""

from __future__ import annotations

import logging
import time
import traceback
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from ..engine.envelope import failure, success
from ..engine.errors import StudioError
from ..engine.jsoncodec import JSON, dumps
from .context import CREATED, REQUEST_ID

if TYPE_CHECKING:
    from aiohttp.typedefs import Middleware

log = logging.getLogger("comfyui_studio.http")

# Inside the envelope middleware a handler answers with data or a response; the envelope makes the response.
Handler = Callable[[web.Request], Awaitable[object]]


_HTTP_CODES = {
    400: "validation_error",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "too_many_requests",
}


def envelope_response(body: Mapping[str, object], status: int = 200) -> web.Response:
    # dumps writes NaN/Infinity (say, in a graph ComfyUI reported) as null: a response is always JSON.
    return web.Response(text=dumps(body), status=status, content_type="application/json")


def error_response(request: web.Request, error: StudioError, *, dev: bool, started: float) -> web.Response:
    body = failure(error, request.get(REQUEST_ID, ""))
    if dev:
        debug: dict[str, JSON] = {"elapsed_ms": round((time.perf_counter() - started) * 1000, 3)}
        if error.__cause__ is not None:
            debug["traceback"] = [*traceback.format_exception(error.__cause__)]
        body["debug"] = debug
    response = envelope_response(body, error.status)
    if error.code == "method_not_allowed" and "allow" in error.__dict__:
        response.headers["Allow"] = error.__dict__["allow"]
    return response


def envelope_middleware(*, dev: bool) -> Middleware:
    @web.middleware
    async def envelope(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        request[REQUEST_ID] = uuid.uuid4().hex[:16]
        try:
            result = await handler(request)
        except StudioError as exc:
            return error_response(request, exc, dev=dev, started=started)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            code = _HTTP_CODES.get(exc.status, "internal_error" if exc.status >= 500 else "validation_error")
            message = {404: "No such route", 405: f"{request.method} is not allowed here"}.get(exc.status, exc.reason)
            error = StudioError(code, message, status=exc.status)
            response = error_response(request, error, dev=dev, started=started)
            if isinstance(exc, web.HTTPMethodNotAllowed):
                response.headers["Allow"] = ",".join(sorted(exc.allowed_methods))
            return response
        except HttpProcessingError as exc:
            # aiohttp's parsers refuse malformed input (a NUL in a multipart header): the client's fault.
            status = exc.code if 400 <= exc.code < 500 else 400
            code = _HTTP_CODES.get(status, "validation_error")
            error = StudioError(code, "The request could not be read: it is malformed", status=status)
            return error_response(request, error, dev=dev, started=started)
        except Exception as exc:
            log.exception("Unhandled error on %s %s (request %s)", request.method, request.path, request[REQUEST_ID])
            error = StudioError("internal_error", "Something went wrong on the studio's side")
            error.__cause__ = exc
            return error_response(request, error, dev=dev, started=started)
        if isinstance(result, web.StreamResponse):
            return result
        status = 201 if request.method == "POST" and request.get(CREATED) else 200
        body = success(result, request[REQUEST_ID])
        if dev:
            body["debug"] = {"elapsed_ms": round((time.perf_counter() - started) * 1000, 3)}
        return envelope_response(body, status)

    return envelope
