"""The editor's upload (POST /edits): image and mask checked together, masks linked and fed to workflows."""

from __future__ import annotations

import io
import json

import aiohttp
import pytest
from harness import StudioRun
from PIL import Image
from sqlalchemy import func, select
from studio_api import Api
from test_actions_api import STANDINS, png, run_action, upload, use_standins

from comfyui_studio.db.models import Image as ImageRow
from comfyui_studio.db.models import Job
from comfyui_studio.engine.masks import mask_form
from comfyui_studio.services.images import mask_png, read_mask


def mask_bytes(size: tuple[int, int], box: tuple[int, int, int, int] | None, *, form: str = "alpha") -> bytes:
    """A mask repainting ``box`` (x0, y0, x1, y1), as the editor writes it (alpha) or as a grayscale file."""
    if form == "alpha":
        img = Image.new("RGBA", size, (0, 0, 0, 255))
        if box:
            img.paste((0, 0, 0, 0), box)
    else:
        img = Image.new("L", size, 0)
        if box:
            img.paste(255, box)
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


def edit_form(**fields: bytes | str) -> aiohttp.FormData:
    form = aiohttp.FormData()
    for name, value in fields.items():
        if isinstance(value, bytes):
            form.add_field(name, value, filename=f"{name}.png", content_type="image/png")
        else:
            form.add_field(name, value)
    return form


async def image_rows(run: StudioRun) -> int:
    async with run.studio.store.session() as session:
        return await session.scalar(select(func.count()).select_from(ImageRow))


async def test_an_edit_stores_the_composite_and_its_mask_linked_to_the_source(run: StudioRun, api: Api) -> None:
    source = await upload(api, png((101, 67)))
    composite = png((101 + 16, 67), (10, 200, 30))
    status, body = await api.post(
        "/edits",
        data=edit_form(image=composite, mask=mask_bytes((117, 67), (0, 0, 16, 67)), source_image_id=source["id"]),
    )
    assert status == 201, body
    data = body["data"]
    assert data["source_image_id"] == source["id"]
    assert (data["image"]["kind"], data["image"]["width"], data["image"]["height"]) == ("upload", 117, 67)
    assert (data["mask"]["kind"], data["mask"]["width"], data["mask"]["height"]) == ("mask", 117, 67)
    async with run.studio.store.session() as session:
        mask_row = await session.get(ImageRow, data["mask"]["id"])
        image_row = await session.get(ImageRow, data["image"]["id"])
    assert mask_row.source_image_id == image_row.id and image_row.source_image_id == source["id"]
    stored = Image.open(run.host.input_dir / mask_row.subfolder / mask_row.filename)
    assert stored.mode == "RGBA" and stored.size == (117, 67)
    assert stored.getpixel((3, 30))[3] == 0 and stored.getpixel((16, 30))[3] == 255


async def test_a_mask_for_an_image_the_studio_has_needs_no_new_image(run: StudioRun, api: Api) -> None:
    source = await upload(api, png((64, 48)))
    status, body = await api.post(
        "/edits", data=edit_form(image_id=source["id"], mask=mask_bytes((64, 48), (8, 8, 20, 20), form="L"))
    )
    assert status == 201, body
    assert body["data"]["image"]["id"] == source["id"]
    assert await image_rows(run) == 2


@pytest.mark.parametrize(
    "fields,status,code,loc",
    [
        ({"image": "png:64x48", "mask": "png:64x49"}, 400, "validation_error", ["body", "mask"]),
        ({"image": "png:64x48", "mask": "empty:64x48"}, 400, "validation_error", ["body", "mask"]),
        ({"image": "png:64x48"}, 400, "validation_error", ["body", "mask"]),
        ({"mask": "png:64x48"}, 400, "validation_error", ["body", "image"]),
        ({"image": "png:64x48", "image_id": "source", "mask": "png:64x48"}, 400, "validation_error", ["body", "image"]),
        ({"image": "png:64x48", "mask": "jpeg:64x48"}, 415, "unsupported_media_type", None),
        ({"image": "text", "mask": "png:64x48"}, 415, "unsupported_media_type", None),
        ({"image": "png:64x48", "mask": "text"}, 415, "unsupported_media_type", None),
        ({"image": "png:200x200", "mask": "png:200x200"}, 413, "image_too_large", None),
        ({"image_id": "i_nope", "mask": "png:64x48"}, 400, "validation_error", ["body", "image_id"]),
        ({"image_id": "i_01ARZ3NDEKTSV4RRFFQ69G5FAV", "mask": "png:64x48"}, 404, "not_found", ["body", "image_id"]),
        ({"image": "png:64x48", "mask": "png:64x48", "wombat": "1"}, 400, "validation_error", ["body", "wombat"]),
    ],
    ids=[
        "sizes-differ",
        "empty-mask",
        "no-mask",
        "no-image",
        "image-and-id",
        "jpeg-mask",
        "not-an-image",
        "mask-not-an-image",
        "over-pixel-limit",
        "malformed-id",
        "unknown-id",
        "unknown-field",
    ],
)
async def test_a_bad_edit_is_refused_with_a_clear_error_and_nothing_stored(
    run: StudioRun, api: Api, fields: dict[str, str], status: int, code: str, loc: list[str] | None
) -> None:
    source = await upload(api, png((64, 48)))
    run.studio.config.max_image_pixels = 150 * 150
    before = await image_rows(run)
    form: dict[str, bytes | str] = {}
    for name, spec in fields.items():
        kind, _, size = spec.partition(":")
        dims = tuple(int(n) for n in size.split("x")) if size else (0, 0)
        if kind == "png" and name == "mask":
            form[name] = mask_bytes(dims, (0, 0, 4, 4))  # type: ignore[arg-type]
        elif kind == "png":
            form[name] = png(dims)  # type: ignore[arg-type]
        elif kind == "empty":
            form[name] = mask_bytes(dims, None)  # type: ignore[arg-type]
        elif kind == "jpeg":
            out = io.BytesIO()
            Image.new("RGB", dims, (255, 255, 255)).save(out, "JPEG")
            form[name] = out.getvalue()
        elif kind == "text":
            form[name] = b"not an image"
        else:
            form[name] = source["id"] if spec == "source" else spec
    got, body = await api.post("/edits", data=edit_form(**form))
    assert (got, body["ok"], body["error"]["code"]) == (status, False, code), body
    assert body["error"]["message"]
    if loc is not None:
        assert body["error"]["details"][0]["loc"] == loc, body
    assert await image_rows(run) == before


async def test_a_body_that_is_not_multipart_is_refused(api: Api) -> None:
    status, body = await api.post("/edits", json={"mask": "x"})
    assert (status, body["error"]["code"]) == (415, "unsupported_media_type")


async def test_a_malformed_multipart_body_is_a_clear_error(run: StudioRun, api: Api) -> None:
    await api.get("/session")
    status, body = await api.post(
        "/edits",
        data=b'--b\r\nContent-Disposition: form-data; name="mask"\r\n\r\nabc',
        headers={"Content-Type": "multipart/form-data; boundary=b"},
    )
    assert status == 400 and body["error"]["code"] == "validation_error", body


async def test_an_inpaint_run_receives_the_edits_mask_aligned_pixel_for_pixel(run: StudioRun, api: Api) -> None:
    await use_standins(api)
    size = (97, 61)  # odd sides: a misaligned mask would show
    box = (10, 5, 31, 22)
    status, body = await api.post("/edits", data=edit_form(image=png(size, (0, 0, 255)), mask=mask_bytes(size, box)))
    assert status == 201, body
    image, mask = body["data"]["image"], body["data"]["mask"]
    job = await run_action(api, "inpaint", image_id=image["id"], mask_id=mask["id"], text="a patch")
    async with run.studio.store.session() as session:
        row = await session.get(Job, job["id"])
    assert row.mask_image_id == mask["id"] and row.parent_image_id == image["id"]
    received = Image.open(run.host.input_dir / row.graph["2"]["inputs"]["image"]).convert("RGBA")
    assert received.size == size
    for y in range(size[1]):
        for x in range(size[0]):
            inside = box[0] <= x < box[2] and box[1] <= y < box[3]
            assert received.getpixel((x, y))[3] == (0 if inside else 255), (x, y)
    async with api.session.get(run.host.url + job["images"][0]["url"]) as resp:
        out = Image.open(io.BytesIO(await resp.read())).convert("RGB")
    assert out.getpixel((box[0], box[1])) == (255, 0, 0)  # the stand-in paints red where the mask repaints
    assert out.getpixel((box[2], box[3])) == (0, 0, 255)


async def test_a_grayscale_mask_loader_receives_a_grayscale_copy(run: StudioRun, api: Api) -> None:
    graph = json.loads((STANDINS / "inpaint.api.json").read_text())
    graph["2"] = {"class_type": "LoadImageMask", "inputs": {"image": "example.png", "channel": "red"}}
    graph["4"]["inputs"]["mask"] = ["2", 0]
    status, body = await api.post("/workflows", json={"name": "grey mask inpaint", "document": graph})
    assert status == 201, body
    status, body = await api.call("PATCH", "/actions/inpaint", json={"workflow_id": body["data"]["id"]})
    assert status == 200, body
    size = (40, 30)
    status, body = await api.post("/edits", data=edit_form(image=png(size), mask=mask_bytes(size, (0, 0, 10, 30))))
    assert status == 201, body
    status, resp = await api.post(
        "/actions/inpaint/run", json={"image_id": body["data"]["image"]["id"], "mask_id": body["data"]["mask"]["id"]}
    )
    assert status == 201, resp
    async with run.studio.store.session() as session:
        row = await session.get(Job, resp["data"]["id"])
    name = row.graph["2"]["inputs"]["image"]
    assert name.endswith("_l.png")
    grey = Image.open(run.host.input_dir / name)
    assert grey.mode == "L" and grey.getpixel((5, 5)) == 255 and grey.getpixel((20, 5)) == 0


@pytest.mark.parametrize(
    "node,form",
    [
        ({"class_type": "LoadImage", "inputs": {"image": "x.png"}}, "alpha"),
        ({"class_type": "LoadImageMask", "inputs": {"image": "x.png", "channel": "alpha"}}, "alpha"),
        ({"class_type": "LoadImageMask", "inputs": {"image": "x.png", "channel": "green"}}, "luminance"),
        ({"class_type": "StudioMask", "inputs": {"name": "mask", "image": "x.png"}}, "alpha"),
    ],
)
def test_the_mask_form_follows_the_bound_loader(node: dict, form: str) -> None:
    assert mask_form({"1": node}, {"selector": "id:1", "input": "image"}) == form
    assert mask_form({"1": node}, None) == "alpha"


@pytest.mark.parametrize("mode", ["RGBA", "LA", "L", "RGB"])
def test_either_mask_convention_reads_the_same(mode: str) -> None:
    size = (13, 7)
    if mode in ("RGBA", "LA"):
        img = Image.new(mode, size, (0, 255) if mode == "LA" else (0, 0, 0, 255))
        img.paste((0, 0) if mode == "LA" else (0, 0, 0, 0), (2, 1, 5, 4))
    else:
        img = Image.new(mode, size, 0 if mode == "L" else (0, 0, 0))
        img.paste(255 if mode == "L" else (255, 255, 255), (2, 1, 5, 4))
    out = io.BytesIO()
    img.save(out, "PNG")
    repaint, got_size, painted = read_mask(out.getvalue())
    assert got_size == size and painted
    expected = bytes(255 if 2 <= x < 5 and 1 <= y < 4 else 0 for y in range(7) for x in range(13))
    assert repaint == expected
    back = Image.open(io.BytesIO(mask_png(repaint, size, "alpha")))
    assert back.getpixel((2, 1)) == (0, 0, 0, 0) and back.getpixel((0, 0)) == (0, 0, 0, 255)
