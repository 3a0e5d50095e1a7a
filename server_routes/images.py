"""Images: uploads in, files and thumbnails out, always by id (never by a path from the client)."""

from __future__ import annotations

import asyncio

from aiohttp import BodyPartReader, web

from ..engine.errors import StudioError
from .context import CREATED, path_id, studio, user_id

routes = web.RouteTableDef()

IMMUTABLE = "private, max-age=31536000, immutable"


async def _read_upload(request: web.Request, limit: int) -> bytes:
    if request.content_type != "multipart/form-data":
        raise StudioError("unsupported_media_type", "Upload the image as multipart/form-data in a field named image")
    if request.content_length is not None and request.content_length > limit + 64 * 1024:
        raise StudioError("payload_too_large", f"Images are limited to {limit // (1024 * 1024)} MiB")
    reader = await request.multipart()
    image: bytes | None = None
    async for part in reader:
        if not isinstance(part, BodyPartReader):
            raise StudioError("validation_error", "Nested multipart bodies are not accepted")
        if part.name != "image":
            raise StudioError(
                "validation_error",
                f"Unknown upload field {part.name!r}",
                [{"loc": ["body", part.name or ""], "message": "unknown field", "type": "extra_forbidden"}],
            )
        if image is not None:
            raise StudioError("validation_error", "Upload one image at a time")
        chunks: list[bytes] = []
        size = 0
        while chunk := await part.read_chunk(64 * 1024):
            size += len(chunk)
            if size > limit:
                raise StudioError("payload_too_large", f"Images are limited to {limit // (1024 * 1024)} MiB")
            chunks.append(chunk)
        image = b"".join(chunks)
    if not image:
        raise StudioError(
            "validation_error",
            "No image in the upload",
            [{"loc": ["body", "image"], "message": "field required", "type": "missing"}],
        )
    return image


@routes.post("/api/v1/uploads")
async def upload_image(request: web.Request) -> object:
    app = studio(request)
    data = await _read_upload(request, app.config.max_upload_bytes)
    request[CREATED] = True
    return await app.jobs.upload(user_id(request), data)


@routes.get("/api/v1/images/{image_id}")
async def get_image(request: web.Request) -> web.StreamResponse:
    app = studio(request)
    data, mime = await app.jobs.image_file(user_id(request), path_id(request, "image_id"))
    return web.Response(
        body=data,
        content_type=mime,
        headers={"Cache-Control": IMMUTABLE, "X-Content-Type-Options": "nosniff"},
    )


@routes.get("/api/v1/images/{image_id}/thumb")
async def get_thumbnail(request: web.Request) -> web.StreamResponse:
    app = studio(request)
    image = await app.jobs.image_row(user_id(request), path_id(request, "image_id"))
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
