"""Studio errors: one exception type that the envelope middleware turns into a response."""

from __future__ import annotations

from dataclasses import dataclass, field

from .jsoncodec import JSON

# Stable error codes the UI switches on, with their HTTP status.
ERROR_STATUS: dict[str, int] = {
    "validation_error": 400,
    "bad_json": 400,
    "unauthorized": 401,
    "csrf_failed": 403,
    "forbidden": 403,
    "host_not_allowed": 421,
    "not_found": 404,
    "method_not_allowed": 405,
    "conflict": 409,
    "gone": 410,
    "payload_too_large": 413,
    "image_too_large": 413,
    "unsupported_media_type": 415,
    "too_many_requests": 429,
    "internal_error": 500,
    "comfy_unavailable": 502,
    "insufficient_storage": 507,
}


@dataclass
class StudioError(Exception):
    """An error meant for the client: a stable code, a readable message and optional details."""

    code: str
    message: str
    details: list[JSON] = field(default_factory=list)
    status: int = 0

    def __post_init__(self) -> None:
        if not self.status:
            self.status = ERROR_STATUS.get(self.code, 400)
        super().__init__(self.message)


def not_found(what: str) -> StudioError:
    return StudioError("not_found", f"{what} not found")


def validation_error(message: str, loc: list[str | int] | None = None, kind: str = "value_error") -> StudioError:
    where: list[JSON] = list(loc or [])
    return StudioError("validation_error", message, [{"loc": where, "message": message, "type": kind}])
