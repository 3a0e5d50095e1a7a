"""What a handler reads from its request: the studio, the user, and ids from the path."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from ..engine.errors import StudioError
from ..engine.ids import BOARD, IMAGE, JOB
from ..services.studio import Studio
from .keys import STUDIO


def request_key(name: str, kind: type) -> Any:
    """A typed request-storage key (aiohttp ≥ 3.13), or the plain name on the older aiohttp ComfyUI may ship."""
    factory = getattr(web, "RequestKey", None)
    return factory(name, kind) if factory is not None else name


USER_ID = request_key("studio_user_id", int)
USER_ROLE = request_key("studio_user_role", str)
REQUEST_ID = request_key("studio_request_id", str)
CREATED = request_key("studio_created", bool)

_ID_PATTERNS = {
    "job_id": re.compile(JOB.pattern),
    "image_id": re.compile(IMAGE.pattern),
    "board_id": re.compile(BOARD.pattern),
    "call_id": re.compile(r"[0-9]{1,18}"),
    "user_id": re.compile(r"[0-9]{1,18}"),
    "run_id": re.compile(r"[0-9]{1,18}"),
    "token_id": re.compile(r"[0-9]{1,18}"),
}


def studio(request: web.Request) -> Studio:
    return request.config_dict[STUDIO]


def user_id(request: web.Request) -> int:
    uid = request.get(USER_ID)
    if uid is None:
        raise StudioError("unauthorized", "Log in to use the studio")
    return uid


def is_owner(request: web.Request) -> bool:
    return request.get(USER_ROLE) == "owner"


def checked_id(name: str, value: str, where: str = "path") -> str:
    """An id checked against its shape: never a file name or a path."""
    if not _ID_PATTERNS[name].fullmatch(value):
        raise StudioError(
            "validation_error",
            f"{name} is not a valid id",
            [{"loc": [where, name], "message": "malformed id", "type": "id_format"}],
        )
    return value


def path_id(request: web.Request, name: str) -> str:
    return checked_id(name, request.match_info[name])
