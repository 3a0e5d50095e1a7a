"""Explore in a real Chromium against the studio on the test host, with the fake Civitai server as its
Civitai: scrolling through several pages of images without a duplicate, and "generate from this prompt"
landing in the Create page's prompt bar with the right shortcodes (focused, nothing submitted)."""

from __future__ import annotations

import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from civitai_fake import FakeCivitai
from studio_browser import Studio, StudioPage, needs_chromium, studio_on_test_host

pytestmark = [pytest.mark.browser, needs_chromium, pytest.mark.asyncio(loop_scope="module")]

SCREENSHOTS = Path("/tmp")


@pytest_asyncio.fixture(loop_scope="module")
async def fake_civitai() -> AsyncIterator[FakeCivitai]:
    async with FakeCivitai() as fake:
        yield fake


@pytest_asyncio.fixture(loop_scope="module")
async def studio(tmp_path: Path, fake_civitai: FakeCivitai) -> AsyncIterator[Studio]:
    async with studio_on_test_host(tmp_path, node_delay=0.05) as s:
        # the fake server is just another Civitai address (a studio-wide setting, changed by the owner)
        status, body = await s.api.call("PATCH", "/settings", json={"values": {"civitai_url": fake_civitai.url}})
        assert status == 200, body
        yield s


async def shot(ui: StudioPage, step: str) -> None:
    path = await ui.shot(step)
    shutil.copy(path, SCREENSHOTS / f"explore-{ui.test}-{step}.png")


async def tile_ids(ui: StudioPage) -> list[str]:
    return await ui.page.eval_on_selector_all(
        "[aria-label='Civitai images'] article[data-id]", "els => els.map(e => e.dataset.id)"
    )


async def test_explore_scrolls_through_pages_without_duplicates(studio: Studio, ui: StudioPage) -> None:
    page = ui.page
    pages: list[dict] = []

    async def on_response(resp: object) -> None:
        if "/studio/api/v1/civitai/images" in resp.url and resp.status == 200:  # type: ignore[attr-defined]
            pages.append((await resp.json())["data"])  # type: ignore[attr-defined]

    page.on("response", on_response)
    await page.goto(studio.url + "/explore", wait_until="domcontentloaded")
    await page.get_by_role("heading", name="Explore", level=1).wait_for()
    grid = page.get_by_role("list", name="Civitai images")
    await grid.locator("article[data-id]").first.wait_for()
    # thumbnails load from Civitai's host (the fake's): the page's CSP lets them through
    await page.wait_for_function(
        "() => [...document.querySelectorAll(\"[aria-label='Civitai images'] img\")]"
        ".filter(i => i.complete && i.naturalWidth > 0).length >= 5"
    )
    await shot(ui, "1-images")

    for _ in range(60):
        ids = await tile_ids(ui)
        assert len(ids) == len(set(ids)), f"a tile is shown twice: {ids}"
        if len(pages) >= 4 or (pages and pages[-1]["next_cursor"] is None):
            break
        await page.mouse.wheel(0, 2500)
        await page.wait_for_timeout(150)
    ended = pages[-1]["next_cursor"] is None
    # several pages, or every page the fake server has (then the page says it reached the end)
    assert len(pages) >= 3 or (ended and len(pages) >= 2), f"only {len(pages)} pages were loaded while scrolling"
    if ended:
        await page.get_by_text("That's everything.").wait_for()
    await page.wait_for_function("() => !document.querySelector('#explore-panel[aria-busy=true]')")
    await shot(ui, "2-scrolled")

    # everything the pages brought is in the list once, in order: duplicates across pages are dropped
    seen: list[int] = []
    for p in pages:
        for item in p["items"]:
            if item["id"] not in seen:
                seen.append(item["id"])
    count = int(await grid.get_attribute("data-count") or 0)
    assert count == len(seen)
    # only what is near the viewport is in the DOM
    assert len(await tile_ids(ui)) < count


async def test_generate_from_this_prompt_lands_in_the_prompt_bar(studio: Studio, ui: StudioPage) -> None:
    page = ui.page
    await page.goto(studio.url + "/explore?tab=prompts", wait_until="domcontentloaded")
    card = page.locator("[aria-label='Civitai prompts'] article.text-card").first
    await card.wait_for()
    await shot(ui, "1-prompts")

    # the detail view shows how the image was made
    await card.locator("button.tile-open").click()
    dialog = page.get_by_role("dialog")
    prompt_shown = await dialog.get_by_test_id("detail-prompt").inner_text()
    assert prompt_shown.strip()
    await shot(ui, "2-detail")

    async with page.expect_response(lambda r: r.url.endswith("/civitai/prompt")) as answer:
        await dialog.get_by_role("button", name="Generate from this prompt").click()
    data = (await (await answer.value).json())["data"]
    box = page.get_by_role("combobox", name="Prompt")
    await box.wait_for()
    await page.wait_for_function("t => document.querySelector('#prompt-input')?.value === t", arg=data["text"])
    assert await page.evaluate("() => document.activeElement?.id") == "prompt-input"
    text = await box.input_value()
    # A1111 tags never reach the text encoder; the settings come as the studio's shortcodes
    assert "<lora:" not in text and "embedding:" not in text.lower()
    for code in ("--seed", "--steps", "--cfg"):
        assert re.search(rf"{code} \S+", text), f"{code} missing from {text!r}"
    if data["warnings"] or data["resources"]:
        await page.get_by_test_id("draft-note").wait_for()
    await shot(ui, "3-prompt-bar")

    # nothing was submitted
    status, body = await studio.api.get("/jobs")
    assert status == 200 and body["data"]["items"] == [], body
