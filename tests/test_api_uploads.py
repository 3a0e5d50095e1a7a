"""Uploading input images and reading them back by id."""

from __future__ import annotations

import io

import aiohttp
import pytest
from harness import StudioRun
from PIL import Image
from sqlalchemy import func, select
from studio_api import Api

from comfyui_studio.db.models import Image as ImageRow


def image_bytes(fmt: str, size: tuple[int, int] = (96, 64)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (200, 40, 90)).save(out, fmt)
    return out.getvalue()


def form(data: bytes, filename: str = "photo.png", field: str = "image") -> aiohttp.FormData:
    payload = aiohttp.FormData()
    payload.add_field(field, data, filename=filename, content_type="application/octet-stream")
    return payload


async def image_count(run: StudioRun) -> int:
    async with run.studio.store.session() as session:
        return await session.scalar(select(func.count()).select_from(ImageRow))


@pytest.mark.parametrize("fmt,mime", [("PNG", "image/png"), ("JPEG", "image/jpeg"), ("WEBP", "image/webp")])
async def test_an_uploaded_image_lands_in_comfyuis_input_and_reads_back(
    run: StudioRun, api: Api, fmt: str, mime: str
) -> None:
    data = image_bytes(fmt)
    status, body = await api.post("/uploads", data=form(data, "../../evil name.png"))
    assert status == 201, body
    image = body["data"]
    assert (image["kind"], image["mime"], image["width"], image["height"]) == ("upload", mime, 96, 64)
    stored = list((run.host.input_dir / "studio").iterdir())
    assert len(stored) == 1 and stored[0].name.startswith("studio_"), "the name comes from the content"
    async with api.session.get(run.host.url + image["url"]) as resp:
        assert resp.status == 200 and resp.content_type == mime
        assert await resp.read() == data
    async with api.session.get(run.host.url + image["thumb_url"]) as resp:
        assert resp.status == 200 and resp.content_type == "image/webp"


async def test_the_same_image_twice_is_stored_once_in_comfyui(run: StudioRun, api: Api) -> None:
    data = image_bytes("PNG")
    for _ in range(2):
        status, _body = await api.post("/uploads", data=form(data))
        assert status == 201
    assert len(list((run.host.input_dir / "studio").iterdir())) == 1


@pytest.mark.parametrize(
    "payload,code,status",
    [
        (b"not an image at all", "unsupported_media_type", 415),
        (b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>", "unsupported_media_type", 415),
        (b"<html><script>alert(1)</script></html>", "unsupported_media_type", 415),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "unsupported_media_type", 415),
    ],
    ids=["text", "svg", "html", "truncated-png"],
)
async def test_a_file_that_is_not_an_accepted_image_is_refused_and_nothing_stored(
    run: StudioRun, api: Api, payload: bytes, code: str, status: int
) -> None:
    got_status, body = await api.post("/uploads", data=form(payload, "looks.png"))
    assert (got_status, body["error"]["code"]) == (status, code)
    assert await image_count(run) == 0
    assert not (run.host.input_dir / "studio").exists()


async def test_an_image_over_the_pixel_limit_is_refused_before_decoding(run: StudioRun, api: Api) -> None:
    run.studio.config.max_image_pixels = 100 * 100
    status, body = await api.post("/uploads", data=form(image_bytes("PNG", (200, 200))))
    assert (status, body["error"]["code"]) == (413, "image_too_large")
    assert await image_count(run) == 0


async def test_an_upload_over_the_size_limit_is_413(run: StudioRun, api: Api) -> None:
    run.studio.config.max_upload_bytes = 1024
    status, body = await api.post("/uploads", data=form(b"\x89PNG\r\n\x1a\n" + b"0" * 4096))
    assert (status, body["error"]["code"]) == (413, "payload_too_large")


async def test_an_upload_with_an_unknown_field_or_no_image_is_400(api: Api) -> None:
    status, body = await api.post("/uploads", data=form(image_bytes("PNG"), field="file"))
    assert (status, body["error"]["code"]) == (400, "validation_error")
    status, body = await api.post("/uploads", json={"image": "x"})
    assert (status, body["error"]["code"]) == (415, "unsupported_media_type")


async def test_another_id_or_a_path_never_reads_a_file(api: Api) -> None:
    status, body = await api.get("/images/i_00000000000000000000000000")
    assert (status, body["error"]["code"]) == (404, "not_found")
    status, body = await api.get("/images/..%2F..%2Fuser%2F__studio%2Fstudio.db")
    assert status in (400, 404) and body["ok"] is False
