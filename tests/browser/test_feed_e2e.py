"""The job feed in a real Chromium: tile actions and lineage, the image viewer, queue control, a phone-sized run."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from studio_browser import Studio, StudioPage, needs_chromium, studio_on_test_host

pytestmark = [pytest.mark.browser, needs_chromium, pytest.mark.asyncio(loop_scope="module")]

PHONE = {"viewport": {"width": 390, "height": 844}, "has_touch": True, "is_mobile": True, "device_scale_factor": 2}


@pytest_asyncio.fixture(loop_scope="module")
async def studio(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Studio]:
    marker = request.node.get_closest_marker("node_delay")
    async with studio_on_test_host(tmp_path, node_delay=marker.args[0] if marker else 0.3) as s:
        yield s


async def image_actions(studio: Studio) -> list[dict]:
    """The actions a tile offers, in its order (GET /actions, those that need one image and no mask)."""
    status, body = await studio.api.get("/actions")
    assert status == 200, body
    return [a for a in body["data"] if a.get("needs_image") is not False and not a.get("needs_mask")]


async def images_loaded(ui: StudioPage) -> None:
    """Every image on screen has loaded (tiles below the fold load lazily, when scrolled to)."""
    await ui.page.wait_for_function(
        "() => [...document.querySelectorAll('.tile img')].filter((i) => i.getBoundingClientRect().top < innerHeight)"
        ".every((i) => i.complete && i.naturalWidth > 0)"
    )


async def test_an_action_from_a_tile_toolbar_adds_a_child_job_at_once(studio: Studio, ui: StudioPage) -> None:
    source = await studio.generate("a lighthouse on a cliff --ar 16:9")
    image = source["images"][0]
    action = (await image_actions(studio))[0]  # the first action has its own button on every tile
    page = ui.page
    await ui.open(studio.url)
    tile = page.locator(f"[data-job-id='{source['id']}'] .tile.image").first
    toolbar = tile.get_by_role("toolbar", name="Image 1 actions")
    assert await toolbar.evaluate("e => getComputedStyle(e).opacity") == "0"  # hidden until hovered
    await tile.hover()
    await page.wait_for_function("e => getComputedStyle(e).opacity === '1'", arg=await toolbar.element_handle())
    await images_loaded(ui)
    await ui.shot("1-hover-toolbar")

    async with page.expect_response(lambda r: r.url.endswith(f"/actions/{action['slot']}/run")) as ran:
        await toolbar.get_by_role("button", name=action["label"], exact=True).click()
    child_id = (await (await ran.value).json())["data"]["id"]
    child = page.locator(f"[data-job-id='{child_id}']")
    await child.wait_for(timeout=1000)  # in the feed before the job has done anything
    assert await child.get_attribute("data-state") in ("queued", "running")
    assert await page.locator("[data-job-id]").first.get_attribute("data-job-id") == child_id  # on top
    await child.locator(".head .prompt").filter(has_text=action["label"]).wait_for(timeout=1000)  # titled by its action
    await ui.shot("2-child-queued")
    await page.locator(f"[data-job-id='{child_id}'][data-state=done] .tile.image img").wait_for()
    await images_loaded(ui)
    await page.mouse.move(5, 500)
    await ui.shot("3-child-done")

    job = await studio.job(child_id)
    assert job["state"] == "done" and job["images"]
    status, lineage = await studio.api.get(f"/lineage/{job['images'][0]['id']}")
    assert status == 200, lineage
    assert job["parent_image_id"] == image["id"] and job["action_slot"] == action["slot"], job
    assert lineage["data"]["path"] == [image["id"], job["images"][0]["id"]], lineage
    run_job = (await (await ran.value).json())["data"]
    assert run_job["parent_image_id"] == image["id"] and run_job["action"] == action["slot"], run_job
    toast = await ui.job_toasts(child_id)
    assert toast["max"] == 1 and toast["titles"][-1] == "Done", toast
    ui.assert_clean()


async def test_the_image_viewer_walks_the_feed_with_arrow_keys_and_closes_on_escape(
    studio: Studio, ui: StudioPage
) -> None:
    prompts = ["a harbour in fog", "a red fox in the snow", "a desert road at noon"]
    for text in prompts:
        await studio.generate(text)
    newest_first = prompts[::-1]
    page = ui.page
    await ui.open(studio.url)
    await images_loaded(ui)
    opener = page.get_by_role("button", name="Open image 1 of job").first
    await opener.click()
    viewer = page.get_by_role("dialog", name="Image viewer")
    await viewer.wait_for()
    full = viewer.locator("img.full")

    async def shows(i: int) -> None:
        await viewer.locator(".count").filter(has_text=f"{i + 1} / 3").wait_for()
        await viewer.locator(".prompt").filter(has_text=newest_first[i]).wait_for()
        await page.wait_for_function("e => e.complete && e.naturalWidth > 0", arg=await full.element_handle())
        assert await full.get_attribute("alt") == newest_first[i]

    await shows(0)
    assert await page.evaluate("document.activeElement.getAttribute('aria-label')") == "Close viewer (Esc)"
    assert await viewer.get_by_role("button", name="Previous image").is_disabled()
    await ui.shot("1-first")
    await page.keyboard.press("ArrowRight")
    await shows(1)
    await viewer.get_by_role("button", name="Next image").click()
    await shows(2)
    assert await viewer.get_by_role("button", name="Next image").is_disabled()
    await page.keyboard.press("ArrowRight")  # already the last: stays
    await shows(2)
    await ui.shot("2-last")
    await page.keyboard.press("ArrowLeft")
    await shows(1)
    await page.keyboard.press("Escape")
    await viewer.wait_for(state="detached")
    assert await page.evaluate("document.activeElement.getAttribute('aria-label')") == await opener.get_attribute(
        "aria-label"
    )  # focus goes back to the tile it came from
    ui.assert_clean()


@pytest.mark.node_delay(1.5)
async def test_the_queue_pill_counts_pending_jobs_and_the_ui_cancels_and_interrupts(
    studio: Studio, ui: StudioPage
) -> None:
    page = ui.page
    await ui.open(studio.url)
    prompt = page.get_by_role("combobox")
    await prompt.click()
    ids = []
    # Three different sizes: ComfyUI would run an identical graph from its cache, at once.
    for text in ("first in line --ar 1:1", "second in line --ar 2:1", "third in line --ar 1:2"):
        await page.keyboard.type(text)
        async with page.expect_response(lambda r: r.url.endswith("/generate")) as sent:
            await page.keyboard.press("Enter")
        ids.append((await (await sent.value).json())["data"]["id"])
    first, second, third = ids
    pill = page.get_by_role("button", name="Queue controls")
    await page.wait_for_function(
        "() => document.querySelector('.status-btn').getAttribute('aria-label').includes('1 running · 2 pending')"
    )
    assert "1 running · 2 queued" in await pill.inner_text()
    await page.locator(f"[data-job-id='{third}'] .placeholder").filter(has_text="Queued · #2").wait_for()
    await ui.shot("1-three-queued")

    await page.locator(f"[data-job-id='{third}']").get_by_role("button", name="Cancel").click()
    await page.locator(f"[data-job-id='{third}'][data-state=cancelled]").wait_for()
    await page.locator(f"[data-job-id='{third}']").get_by_text("Removed from the queue before it ran.").wait_for()
    await page.wait_for_function(
        "() => document.querySelector('.status-btn').getAttribute('aria-label').includes('1 running · 1 pending')"
    )

    await pill.click()
    panel = page.get_by_role("dialog", name="Queue")
    await panel.wait_for()
    assert await panel.locator("dd").all_inner_texts() == ["1", "1"]
    await ui.shot("2-queue-dialog")
    await panel.get_by_role("button", name="Interrupt running").click()
    await page.locator(f"[data-job-id='{first}'][data-state=interrupted]").wait_for()
    await page.locator(f"[data-job-id='{second}'][data-state=running]").wait_for()
    await page.keyboard.press("Escape")
    await panel.wait_for(state="detached")
    await page.mouse.move(5, 700)
    await ui.shot("3-interrupted")
    # The row's own Stop button interrupts the one that took its place.
    await page.locator(f"[data-job-id='{second}']").get_by_role("button", name="Stop").click()
    await page.locator(f"[data-job-id='{second}'][data-state=interrupted]").wait_for()
    await page.wait_for_function(
        "() => document.querySelector('.status-btn').getAttribute('aria-label').includes('0 running · 0 pending')"
    )
    assert (await pill.inner_text()).strip().endswith("Idle")
    states = {i: (await studio.job(i))["state"] for i in ids}
    assert states == {first: "interrupted", second: "interrupted", third: "cancelled"}
    await page.locator(f"[data-job-id='{first}']").get_by_text("Stopped before it finished.").wait_for()
    await ui.shot("4-settled")
    ui.assert_clean()


async def no_horizontal_overflow(ui: StudioPage) -> None:
    widths = await ui.page.evaluate("() => [document.scrollingElement.scrollWidth, window.innerWidth]")
    assert widths[0] <= widths[1], widths


@pytest.mark.context(**PHONE)
async def test_on_a_phone_the_bar_feed_and_toolbars_fit_and_work_by_touch(studio: Studio, ui: StudioPage) -> None:
    await studio.generate("a tall tower --ar 9:16")
    source = await studio.generate("a long beach at low tide --ar 21:9")
    page = ui.page
    await ui.open(studio.url)
    await images_loaded(ui)
    assert await page.evaluate("() => matchMedia('(hover: none)').matches")
    await no_horizontal_overflow(ui)
    await ui.shot("1-feed")

    # Without hover, every tile shows its toolbar, inside the tile and the screen.
    tile = page.locator(f"[data-job-id='{source['id']}'] .tile.image").first
    toolbar = tile.get_by_role("toolbar", name="Image 1 actions")
    assert await toolbar.evaluate("e => getComputedStyle(e).opacity") == "1"
    tile_box, bar_box = await tile.bounding_box(), await toolbar.bounding_box()
    assert tile_box["x"] >= 0 and tile_box["x"] + tile_box["width"] <= 390
    assert bar_box["x"] >= tile_box["x"] and bar_box["x"] + bar_box["width"] <= tile_box["x"] + tile_box["width"]
    buttons = toolbar.get_by_role("button")
    assert await buttons.count() >= 2
    action = (await image_actions(studio))[0]
    async with page.expect_response(lambda r: r.url.endswith(f"/actions/{action['slot']}/run")) as ran:
        await toolbar.get_by_role("button", name=action["label"], exact=True).tap()
    child_id = (await (await ran.value).json())["data"]["id"]
    await page.locator(f"[data-job-id='{child_id}']").wait_for()
    await no_horizontal_overflow(ui)

    prompt = page.get_by_role("combobox")
    await prompt.tap()
    await page.keyboard.type("a lighthouse seen from a very small boat in a storm --ar 3:4 --st")
    menu = page.get_by_role("listbox", name="Shortcode suggestions")
    await menu.wait_for()
    box = await menu.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 390, box
    await no_horizontal_overflow(ui)
    await ui.shot("2-typing")
    await page.keyboard.press("Tab")
    await page.keyboard.type("8")
    async with page.expect_response(lambda r: r.url.endswith("/generate")) as sent:
        await page.get_by_role("button", name="Generate").tap()
    assert (await sent.value).status == 201
    new_id = (await (await sent.value).json())["data"]["id"]
    await page.locator(f"[data-job-id='{new_id}'][data-state=done] .tile.image img").wait_for()
    await page.locator(f"[data-job-id='{child_id}'][data-state=done] .tile.image img").wait_for()
    await images_loaded(ui)
    await no_horizontal_overflow(ui)
    await ui.shot("3-generated")

    await page.get_by_role("button", name="Queue controls").tap()
    panel = page.get_by_role("dialog", name="Queue")
    await panel.wait_for()
    box = await panel.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 390, box
    await no_horizontal_overflow(ui)
    await ui.shot("4-queue")
    ui.assert_clean()
