"""The Edit page in a real Chromium: painting, erasing, undo/redo, layers, outpaint padding, submit, drafts."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from PIL import Image
from studio_browser import Studio, StudioPage, eventually, needs_chromium, studio_on_test_host
from studio_browser import studio_page as open_page
from test_actions_api import png, upload

from comfyui_studio.db.models import Image as ImageRow
from comfyui_studio.db.models import Job

pytestmark = [pytest.mark.browser, needs_chromium, pytest.mark.asyncio(loop_scope="module")]


@pytest_asyncio.fixture(loop_scope="module")
async def studio(tmp_path: Path) -> AsyncIterator[Studio]:
    async with studio_on_test_host(tmp_path, node_delay=0.05) as s:
        yield s


async def open_editor(ui: StudioPage, studio: Studio, image_id: str) -> None:
    await ui.page.goto(f"{studio.url}/edit/{image_id}", wait_until="domcontentloaded")
    await ui.page.get_by_test_id("edit-stage").wait_for()
    await ui.page.get_by_role("listbox", name="Layers").wait_for()


async def screen_point(ui: StudioPage, x: float, y: float) -> tuple[float, float]:
    """Where canvas pixel (x, y) is on the page, from the stage's view (scale and offset)."""
    stage = ui.page.get_by_test_id("edit-stage")
    scale, ox, oy = (float(v) for v in (await stage.get_attribute("data-view") or "").split())
    box = await stage.bounding_box()
    assert box is not None
    return box["x"] + ox + (x + 0.5) * scale, box["y"] + oy + (y + 0.5) * scale


async def drag(ui: StudioPage, start: tuple[float, float], end: tuple[float, float]) -> None:
    """A stroke from canvas pixel `start` to `end`."""
    x0, y0 = await screen_point(ui, *start)
    x1, y1 = await screen_point(ui, *end)
    mouse = ui.page.mouse
    await mouse.move(x0, y0)
    await mouse.down()
    await mouse.move(x1, y1, steps=25)
    await mouse.up()


async def button_enabled(ui: StudioPage, name: str) -> bool:
    return await ui.page.get_by_role("button", name=name, exact=True).is_enabled()


async def test_paint_erase_undo_redo_layers_extend_and_inpaint_send_an_aligned_mask(
    studio: Studio, ui: StudioPage
) -> None:
    page = ui.page
    width, height = 301, 203  # odd sides: any misalignment of the mask shows
    source = await upload(studio.api, png((width, height), (0, 0, 255)))
    await open_editor(ui, studio, source["id"])
    await ui.shot("1-opened")

    # Brush: 48 px, hardness 80 %: a solid core of ±19 px around the stroke.
    assert await page.get_by_test_id("brush-size").text_content() == "48"
    await drag(ui, (60, 100), (240, 100))
    assert await button_enabled(ui, "Undo")
    await ui.shot("2-stroke")

    await page.keyboard.press("e")
    assert await page.get_by_role("button", name="Eraser").get_attribute("aria-pressed") == "true"
    await drag(ui, (150, 40), (150, 160))
    await ui.shot("3-erased")

    await page.keyboard.press("Control+z")
    assert await button_enabled(ui, "Redo")
    await ui.shot("4-undone")
    await page.keyboard.press("Control+Shift+z")
    assert not await button_enabled(ui, "Redo")
    await ui.shot("5-redone")

    await page.keyboard.press("]")
    assert await page.get_by_test_id("brush-size").text_content() == "53"
    await page.keyboard.press("[")  # steps grow with the brush: 10 px above 50
    assert await page.get_by_test_id("brush-size").text_content() == "43"

    # A paint layer, active at once, painted white (the picture then goes up as a new file).
    await page.get_by_role("button", name="Paint", exact=True).click()
    layers = page.get_by_role("listbox", name="Layers").get_by_role("option")
    assert await layers.count() == 3
    assert await page.locator("[data-layer-id=l2]").get_attribute("aria-selected") == "true"
    await page.keyboard.press("b")
    await drag(ui, (30, 30), (31, 30))

    # Outpaint: 64 px on the right by number, some at the bottom by the handle.
    await page.get_by_label("Extend right (pixels)").fill("64")
    await page.get_by_label("Extend right (pixels)").press("Enter")
    await page.get_by_role("button", name="Extend canvas").click()
    handle = page.get_by_role("button", name="Extend bottom")
    box = await handle.bounding_box()
    assert box is not None
    await page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    await page.mouse.down()
    await page.mouse.move(box["x"] + box["width"] / 2, box["y"] + 60, steps=8)
    await page.mouse.up()
    bottom = int(await page.get_by_label("Extend bottom (pixels)").input_value())
    assert bottom > 0 and bottom % 8 == 0
    await ui.shot("6-extended")

    await page.get_by_label("Action").select_option("inpaint")
    prompt = page.get_by_role("combobox", name="Prompt")
    await prompt.fill("a red patch --seed 5")
    await page.get_by_role("button", name="Run Inpaint").click()
    result = page.locator(".results .result[data-state=done] img")
    await result.first.wait_for(timeout=20_000)
    await page.wait_for_function("() => [...document.querySelectorAll('.results img')].every(i => i.complete)")
    await ui.shot("7-result")

    job_id = await page.locator(".results .result").first.get_attribute("data-job-id")
    async with studio.run.studio.store.session() as session:
        job = await session.get(Job, job_id)
        mask_row = await session.get(ImageRow, job.mask_image_id)
        picture_row = await session.get(ImageRow, job.parent_image_id)
    assert job.action_slot == "inpaint" and picture_row.source_image_id == source["id"]
    mask = Image.open(studio.run.host.input_dir / job.graph["2"]["inputs"]["image"]).convert("RGBA")
    full = (width + 64, height + bottom)
    assert mask.size == full and (mask_row.width, mask_row.height) == full
    alpha = mask.getchannel("A")
    # where the stroke was, outside the erased band: repainted (transparent)
    for y in range(100 - 15, 100 + 16):
        for x in list(range(60, 150 - 26)) + list(range(150 + 26, 241)):
            assert alpha.getpixel((x, y)) == 0, (x, y)
    # the erased band, and image away from the stroke: kept (opaque)
    for y in range(100 - 15, 100 + 16):
        for x in range(150 - 15, 150 + 16):
            assert alpha.getpixel((x, y)) == 255, (x, y)
    for y in list(range(0, 100 - 30)) + list(range(100 + 31, height)):
        for x in range(0, width):
            if not (x < 60 and y < 60):  # the paint layer's dab is not mask
                assert alpha.getpixel((x, y)) == 255, (x, y)
    # the new area: repainted
    for x, y in ((width, 0), (width + 63, height - 1), (0, height), (width + 63, height + bottom - 1)):
        assert alpha.getpixel((x, y)) == 0, (x, y)
    picture = Image.open(studio.run.host.input_dir / picture_row.subfolder / picture_row.filename).convert("RGB")
    assert picture.size == full
    assert picture.getpixel((30, 30)) == (255, 255, 255)  # the paint layer
    assert picture.getpixel((200, 180)) == (0, 0, 255)  # the image itself, in place
    assert picture.getpixel((width + 10, 10)) == (128, 128, 128)  # new area: ImagePadForOutpaint's grey

    # The result is on the Create page too, and opens again in the editor for another round.
    await page.get_by_role("link", name="See them on the Create page").click()
    await page.locator(f'[data-job-id="{job_id}"]').wait_for()
    await ui.shot("8-create-page")
    await page.go_back()
    await page.locator(".results").wait_for(state="detached")  # the strip is this visit's
    await page.get_by_test_id("edit-stage").wait_for()


async def test_an_edit_of_a_2048_image_with_two_layers_and_a_mask_survives_a_reload(
    studio: Studio, ui: StudioPage
) -> None:
    page = ui.page
    out = io.BytesIO()
    Image.new("RGB", (2048, 2048), (40, 120, 90)).save(out, "PNG")
    source = await upload(studio.api, out.getvalue())
    await open_editor(ui, studio, source["id"])
    await drag(ui, (300, 300), (1700, 1500))  # the mask
    await page.get_by_role("button", name="Mask", exact=True).click()  # a second mask layer
    await drag(ui, (1800, 200), (200, 1800))
    await page.get_by_role("button", name="Paint", exact=True).click()  # and a paint layer
    await drag(ui, (1000, 100), (1000, 1900))
    await page.get_by_label("Paint 1 opacity").fill("40")
    await page.get_by_label("Paint 1 opacity").dispatch_event("change")
    await page.locator('[data-draft="saved"]').wait_for(timeout=15_000)
    before = await draft_fingerprint(ui, source["id"])
    assert before["layers"] == [["l1", "mask", 1], ["l2", "mask", 1], ["l3", "paint", 0.4]]
    assert all(n > 0 for n in before["painted"]), before
    screen_before = await surface_pixels(ui)
    await ui.shot("1-before-reload")

    await page.reload(wait_until="domcontentloaded")
    await page.get_by_text("Your edit in progress was restored").wait_for(timeout=15_000)
    await page.get_by_test_id("edit-stage").wait_for()
    names = await page.locator("[data-layer-id] .title").all_text_contents()
    assert names == ["Paint 1", "Mask 2", "Mask 1", "Image"]
    await ui.shot("2-after-reload")
    assert await surface_pixels(ui) == screen_before

    # The restored document itself, saved again, holds the very same pixels.
    await page.get_by_role("button", name="Hide Mask 1").click()
    await page.get_by_role("button", name="Show Mask 1").click()
    await page.locator('[data-draft="saved"]').wait_for(timeout=15_000)
    await eventually(lambda: _saved_after(ui, source["id"], before["savedAt"]), what="the draft saved again")
    after = await draft_fingerprint(ui, source["id"])
    assert after["layers"] == before["layers"] and after["sums"] == before["sums"]


async def _saved_after(ui: StudioPage, image_id: str, when: float) -> bool:
    return (await draft_fingerprint(ui, image_id))["savedAt"] > when


DRAFT_SCRIPT = """async (id) => {
  const db = await new Promise((ok, no) => { const r = indexedDB.open('studio-editor');
    r.onsuccess = () => ok(r.result); r.onerror = () => no(r.error) })
  const draft = await new Promise((ok, no) => { const r = db.transaction('drafts').objectStore('drafts').get(id);
    r.onsuccess = () => ok(r.result); r.onerror = () => no(r.error) })
  db.close()
  const sums = [], painted = []
  for (const l of draft.layers) {
    const b = new Uint8Array(l.pixels); let s = 0, n = 0
    for (let i = 0; i < b.length; i++) { s = (s * 31 + b[i]) >>> 0; if (b[i]) n++ }
    sums.push(s); painted.push(n)
  }
  return { layers: draft.layers.map(l => [l.id, l.kind, l.opacity]), sums, painted, savedAt: draft.savedAt }
}"""


async def draft_fingerprint(ui: StudioPage, image_id: str) -> dict:
    return await ui.page.evaluate(DRAFT_SCRIPT, image_id)


async def surface_pixels(ui: StudioPage) -> str:
    await ui.page.mouse.move(1, 1)  # no brush cursor on the canvas
    await ui.page.wait_for_timeout(100)
    return await ui.page.evaluate("() => document.querySelector('.surface').toDataURL()")


async def test_the_editor_opens_from_a_tile_and_from_an_upload_and_runs_outpaint_from_its_padding(
    studio: Studio, ui: StudioPage
) -> None:
    page = ui.page
    job = await studio.generate("a lighthouse at dusk")
    image = job["images"][0]
    await ui.open(studio.url)
    tile = page.locator(f'[data-job-id="{job["id"]}"] figure').first
    await tile.hover()
    await tile.get_by_role("button", name="Edit", exact=True).click()
    await page.wait_for_url(f"**/studio/edit/{image['id']}")
    await page.get_by_test_id("edit-stage").wait_for()
    assert await page.title() == "Edit · Studio"

    # Extending the canvas offers the outpaint action, which pads by itself: the padding becomes its values.
    await page.get_by_role("button", name="+64 all").click()
    assert await page.get_by_label("Action").input_value() == "outpaint"
    await ui.shot("1-outpaint")
    await page.get_by_role("button", name="Run Outpaint").click()
    done = page.locator(".results .result[data-state=done]")
    await done.first.wait_for(timeout=20_000)
    job_id = await done.first.get_attribute("data-job-id")
    result = await studio.job(job_id)
    assert result["action"] == "outpaint" and result["parent_image_id"] == image["id"]
    assert {k: result["parameters"][k] for k in ("left", "top", "right", "bottom")} == dict.fromkeys(
        ("left", "top", "right", "bottom"), 64
    )
    out = result["images"][0]
    assert (out["width"], out["height"]) == (image["width"] + 128, image["height"] + 128)

    # Another round: the result opens in the editor.
    await done.first.get_by_role("button").click()
    await page.wait_for_url(f"**/studio/edit/{out['id']}")
    await page.get_by_text(f"{out['width']} × {out['height']} px").wait_for()

    # Without an image: pick a file, which is uploaded and opened.
    await page.get_by_role("link", name="Edit", exact=True).click()
    await page.get_by_role("heading", name="Edit an image").wait_for()
    await ui.shot("2-pick")
    await page.locator("input[type=file]").set_input_files(
        files=[{"name": "photo.png", "mimeType": "image/png", "buffer": png((120, 80), (250, 200, 10))}]
    )
    await page.get_by_text("120 × 80 px").wait_for()
    assert "/studio/edit/i_" in page.url


@pytest.mark.parametrize(
    "context",
    [{"viewport": {"width": 390, "height": 844}, "has_touch": True, "is_mobile": True, "color_scheme": "light"}],
)
async def test_on_a_phone_a_finger_paints_the_mask(studio: Studio, browser: object, context: dict) -> None:
    source = await upload(studio.api, png((160, 240), (30, 30, 30)))
    async with open_page(browser, "editor_phone", **context) as ui:
        await open_editor(ui, studio, source["id"])
        await ui.shot("1-opened")
        assert not await button_enabled(ui, "Undo")
        x, y = await screen_point(ui, 80, 120)
        await ui.page.touchscreen.tap(x, y)
        await eventually(lambda: button_enabled(ui, "Undo"), what="the tap's dab to be undoable")
        await ui.shot("2-tapped")


async def test_wheel_zooms_about_the_pointer_space_drag_pans_and_fit_brings_it_back(
    studio: Studio, ui: StudioPage
) -> None:
    page = ui.page
    source = await upload(studio.api, png((640, 360), (90, 90, 200)))
    await open_editor(ui, studio, source["id"])
    stage = page.get_by_test_id("edit-stage")

    async def view() -> list[float]:
        return [float(v) for v in (await stage.get_attribute("data-view") or "").split()]

    fitted = await view()
    x, y = await screen_point(ui, 320, 180)
    await page.mouse.move(x, y)
    await page.mouse.wheel(0, -300)
    await eventually(lambda: _changed(view, fitted), what="the wheel to zoom")
    zoomed = await view()
    assert zoomed[0] > fitted[0]
    assert [round(v) for v in await screen_point(ui, 320, 180)] == [round(x), round(y)]  # about the pointer

    await page.keyboard.down(" ")
    await page.mouse.down()
    await page.mouse.move(x + 100, y + 40, steps=5)
    await page.mouse.up()
    await page.keyboard.up(" ")
    panned = await view()
    assert (round(panned[1] - zoomed[1]), round(panned[2] - zoomed[2])) == (100, 40)
    assert not await button_enabled(ui, "Undo"), "panning paints nothing"

    await page.get_by_role("button", name="Fit to screen").click()
    assert await view() == fitted

    # A picture as a layer: placed on the canvas, active, undoable.
    await page.get_by_label("Add an image layer").set_input_files(
        files=[{"name": "stamp.png", "mimeType": "image/png", "buffer": png((200, 100), (250, 220, 0))}]
    )
    await page.locator("[data-layer-id=l2] .title", has_text="stamp.png").wait_for()
    assert await page.locator("[data-layer-id=l2]").get_attribute("aria-selected") == "true"
    assert await button_enabled(ui, "Undo")
    await ui.shot("image-layer")


async def _changed(view: object, before: list[float]) -> bool:
    return await view() != before  # type: ignore[operator]
