"""Boards: create, rename and delete your boards, and put gallery images in them or take them out."""

from __future__ import annotations

from aiohttp import web
from pydantic import Field

from ..engine.errors import validation_error
from ..engine.ids import IMAGE
from ..services.boards import MAX_CHANGE
from .context import CREATED, path_id, studio, user_id
from .routing import DataRoutes
from .validation import Schema, read_json

routes = DataRoutes()


class BoardName(Schema):
    # the service trims and counts characters; this caps what is read at all
    name: str = Field(min_length=1, max_length=256)


class BoardImages(Schema):
    add: list[str] = Field(default_factory=list, max_length=MAX_CHANGE)
    remove: list[str] = Field(default_factory=list, max_length=MAX_CHANGE)


def _checked_images(ids: list[str], field: str) -> list[str]:
    for n, image_id in enumerate(ids):
        if not IMAGE.matches(image_id):
            raise validation_error(f"{field}[{n}] is not a valid image id", ["body", field, n], "id_format")
    return ids


@routes.get("/api/v1/boards")
async def list_boards(request: web.Request) -> object:
    return await studio(request).boards.list(user_id(request))


@routes.post("/api/v1/boards")
async def create_board(request: web.Request) -> object:
    body = await read_json(request, BoardName, limit=studio(request).config.max_json_bytes)
    board = await studio(request).boards.create(user_id(request), body.name)
    request[CREATED] = True
    return board


@routes.patch("/api/v1/boards/{board_id}")
async def rename_board(request: web.Request) -> object:
    board_id = path_id(request, "board_id")
    body = await read_json(request, BoardName, limit=studio(request).config.max_json_bytes)
    return await studio(request).boards.rename(user_id(request), board_id, body.name)


@routes.delete("/api/v1/boards/{board_id}")
async def delete_board(request: web.Request) -> object:
    return await studio(request).boards.delete(user_id(request), path_id(request, "board_id"))


@routes.post("/api/v1/boards/{board_id}/images")
async def change_board_images(request: web.Request) -> object:
    board_id = path_id(request, "board_id")
    body = await read_json(request, BoardImages, limit=studio(request).config.max_json_bytes)
    add, remove = _checked_images(body.add, "add"), _checked_images(body.remove, "remove")
    if not add and not remove:
        raise validation_error("Name images to add or remove", ["body"], "missing")
    return await studio(request).boards.change_images(user_id(request), board_id, add, remove)
