"""Boards in a real Chromium: make one, drop a tile on it, filter the feed by it, take the image out, delete it;
and put a selection in a new board from the "Add to board" dialog."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from studio_browser import (
    Studio,
    StudioPage,
    eventually,
    needs_chromium,
    studio_on_test_host,
)

pytestmark = [pytest.mark.browser, needs_chromium, pytest.mark.asyncio(loop_scope="module")]


@pytest_asyncio.fixture(loop_scope="module")
async def studio(tmp_path: Path) -> AsyncIterator[Studio]:
    async with studio_on_test_host(tmp_path, node_delay=0.05) as s:
        yield s


async def stored_boards(studio: Studio) -> list[dict]:
    status, body = await studio.api.get("/boards")
    assert status == 200, body
    return body["data"]["items"]


async def images_loaded(ui: StudioPage) -> None:
    await ui.page.wait_for_function(
        "() => [...document.querySelectorAll('.tile img, .boards img')]"
        ".filter((i) => i.getBoundingClientRect().top < innerHeight).every((i) => i.complete && i.naturalWidth > 0)"
    )


async def feed_is(page: object, expected: list[str] | None, *, count: int | None = None) -> bool:
    """The feed shows these jobs, in this order (or this many jobs)."""
    shown = await page.evaluate(  # type: ignore[attr-defined]
        "() => [...document.querySelectorAll('[data-job-id]')].map((e) => e.dataset.jobId)"
    )
    return shown == expected if expected is not None else len(shown) == count


async def test_a_board_is_made_filled_by_drag_and_drop_filtered_emptied_and_deleted(
    studio: Studio, ui: StudioPage
) -> None:
    fox = await studio.generate("a red fox in the snow")
    await studio.generate("a lighthouse on a cliff")
    whale = await studio.generate("a blue whale at dusk")
    page = ui.page
    page.on("dialog", lambda d: d.accept())
    await ui.open(studio.url)
    strip = page.get_by_role("navigation", name="Boards")

    # a new board, from the keyboard
    await strip.get_by_role("button", name="New board").click()
    await page.keyboard.type("Keepers")
    await ui.shot("1-naming")
    async with page.expect_response(lambda r: r.url.endswith("/boards") and r.request.method == "POST"):
        await page.keyboard.press("Enter")
    chip = strip.locator(".board", has_text="Keepers")
    await chip.wait_for()
    (board,) = await stored_boards(studio)
    assert board["name"] == "Keepers" and board["count"] == 0
    # focus is back on the new board, so the keyboard can carry on
    assert await page.evaluate("document.activeElement.textContent.includes('Keepers')")

    # drag two tiles onto it
    for job in (fox, whale):
        tile = page.locator(f"[data-job-id='{job['id']}'] .tile.image").first
        async with page.expect_response(lambda r: r.url.endswith(f"/boards/{board['id']}/images")) as changed:
            await tile.drag_to(chip)
        assert (await (await changed.value).json())["data"]["added"] == [job["images"][0]["id"]]
    await chip.locator(".count").filter(has_text="2").wait_for()
    await images_loaded(ui)
    await page.mouse.move(5, 500)
    await ui.shot("2-dropped")

    # the board filters the feed
    await chip.locator("button.name").click()
    await eventually(lambda: feed_is(page, [whale["id"], fox["id"]]), what="the board's jobs")
    assert await chip.locator("button.name").get_attribute("aria-pressed") == "true"
    await images_loaded(ui)
    await page.mouse.move(5, 500)
    await ui.shot("3-filtered")

    # take the fox out of the board from its tile's tools
    tile = page.locator(f"[data-job-id='{fox['id']}'] .tile.image").first
    await tile.hover()
    remove = tile.get_by_role("button", name="Remove from Keepers")
    if not await remove.count():
        await tile.get_by_role("button", name="More actions").click()
        remove = page.get_by_role("menuitem", name="Remove from Keepers")
    async with page.expect_response(lambda r: r.url.endswith(f"/boards/{board['id']}/images")):
        await remove.click()
    await eventually(lambda: feed_is(page, [whale["id"]]), what="the fox to leave the board's results")
    await chip.locator(".count").filter(has_text="1").wait_for()
    assert [b["count"] for b in await stored_boards(studio)] == [1]
    await page.mouse.move(5, 500)
    await ui.shot("4-removed")

    # delete the board with the keyboard: the feed goes back to every image, which all stay
    await chip.locator("button.name").focus()
    async with page.expect_response(
        lambda r: r.url.endswith(f"/boards/{board['id']}") and r.request.method == "DELETE"
    ):
        await page.keyboard.press("Delete")
    await chip.wait_for(state="detached")
    assert await stored_boards(studio) == []
    await eventually(lambda: feed_is(page, None, count=3), what="every job back in the feed")
    await ui.shot("5-deleted")
    ui.assert_clean()


async def test_the_selection_goes_into_a_new_board_from_the_add_to_board_dialog(studio: Studio, ui: StudioPage) -> None:
    jobs = [await studio.generate(text) for text in ("a harbour in fog", "a desert road at noon")]
    page = ui.page
    await ui.open(studio.url)
    await page.get_by_role("button", name="Select", exact=True).click()
    for job in jobs:
        await page.get_by_role("checkbox", name=f"Select image 1 of job {job['id']}").click()
    await page.get_by_role("button", name="Add selected to a board").click()
    dialog = page.get_by_role("dialog", name="Add 2 images to a board")
    await dialog.wait_for()
    await page.keyboard.type("Trip")
    await dialog.get_by_role("option", name="New board “Trip”").wait_for()
    await images_loaded(ui)
    await ui.shot("1-dialog")
    await page.keyboard.press("Enter")
    await dialog.wait_for(state="detached")
    chip = page.get_by_role("navigation", name="Boards").locator(".board", has_text="Trip")
    await chip.locator(".count").filter(has_text="2").wait_for()
    (board,) = await stored_boards(studio)
    assert board["name"] == "Trip" and board["count"] == 2
    await images_loaded(ui)
    await ui.shot("2-added")
    ui.assert_clean()
