"""Images: uploads in, files and thumbnails out, always by id (never by a path from the client)."""

from __future__ import annotations

import asyncio

from aiohttp import web

from ..engine.errors import StudioError
from ..engine.ids import IMAGE
from ..services.image_metadata import with_parameters
from .context import CREATED, path_id, studio, user_id
from .routing import DataRoutes
from .validation import FormPart, read_multipart

routes = DataRoutes()

IMMUTABLE = "private, max-age=31536000, immutable"


async def _read_upload(request: web.Request, limit: int) -> bytes:
    parts = await read_multipart(request, {"image": limit}, expected="the image in a field named image")
    image = parts.get("image")
    if image is None or not image.data:
        raise StudioError(
            "validation_error",
            "No image in the upload",
            [{"loc": ["body", "image"], "message": "field required", "type": "missing"}],
        )
    return image.data


@routes.post("/api/v1/uploads")
async def upload_image(request: web.Request) -> object:
    app = studio(request)
    data = await _read_upload(request, app.config.max_upload_bytes)
    request[CREATED] = True
    return await app.files.upload(user_id(request), data)


@routes.post("/api/v1/edits")
async def upload_edit(request: web.Request) -> object:
    """The editor's submit: the edited image (or the id of one) and its mask, checked together."""
    app = studio(request)
    limit = app.config.max_upload_bytes
    parts = await read_multipart(
        request,
        {"image": limit, "mask": limit, "image_id": 64, "source_image_id": 64},
        expected="the mask (mask) with the image (image) or its id (image_id)",
    )
    mask = parts.get("mask")
    if mask is None or not mask.data:
        raise StudioError(
            "validation_error",
            "No mask in the upload",
            [{"loc": ["body", "mask"], "message": "field required", "type": "missing"}],
        )
    image = parts.get("image")
    ids = {name: _id_field(parts, name) for name in ("image_id", "source_image_id")}
    result = await app.files.upload_edit(
        user_id(request),
        mask=mask.data,
        image=image.data if image is not None and image.data else None,
        image_id=ids["image_id"],
        source_image_id=ids["source_image_id"],
    )
    request[CREATED] = True
    return result


def _id_field(parts: dict[str, FormPart], name: str) -> str | None:
    part = parts.get(name)
    if part is None or not part.data.strip():
        return None
    value = part.data.decode("ascii", "replace").strip()
    if not IMAGE.matches(value):
        raise StudioError(
            "validation_error",
            f"{name} is not an image id",
            [{"loc": ["body", name], "message": "malformed image id", "type": "id_format"}],
        )
    return value


@routes.get("/api/v1/images/{image_id}")
async def get_image(request: web.Request) -> web.StreamResponse:
    app = studio(request)
    image_id = path_id(request, "image_id")
    data, mime = await app.files.image_file(user_id(request), image_id)
    headers = {"Cache-Control": IMMUTABLE, "X-Content-Type-Options": "nosniff"}
    if request.query.get("download") in ("1", "true"):
        # A saved copy carries its prompt and settings for other tools (A1111 `parameters`).
        image = await app.files.image_row(user_id(request), image_id)
        data = await with_parameters(app.store, image, data, mime)
        ext = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}.get(mime, "bin")
        headers["Content-Disposition"] = f'attachment; filename="{image_id}.{ext}"'
    return web.Response(body=data, content_type=mime, headers=headers)


@routes.get("/api/v1/images/{image_id}/thumb")
async def get_thumbnail(request: web.Request) -> web.StreamResponse:
    app = studio(request)
    image = await app.files.image_row(user_id(request), path_id(request, "image_id"))
    path = app.config.thumbs_dir / f"{image.id}.webp"
    try:
        data = await asyncio.to_thread(path.read_bytes)
    except FileNotFoundError:
        raise StudioError("not_found", "This image has no thumbnail") from None
    return web.Response(
        body=data,
        content_type="image/webp",
        headers={"Cache-Control": IMMUTABLE, "X-Content-Type-Options": "nosniff"},
    )
