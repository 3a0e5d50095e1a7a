"""First run in a real Chromium: the no-checkpoint banner, live model lists, and toasts that do not pile up."""

from __future__ import annotations

import copy
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio
from harness import StudioRun, start_studio
from studio_api import Api, load_workflow
from studio_browser import (
    Studio,
    eventually,
    needs_chromium,
    short_name,
    studio_on_test_host,
    studio_page,
)

pytestmark = [pytest.mark.browser, needs_chromium, pytest.mark.asyncio(loop_scope="module")]

LIVE_WITHIN_S = 10.0
PHONE = {"viewport": {"width": 390, "height": 844}, "has_touch": True, "is_mobile": True, "device_scale_factor": 2}
DESKTOP = {"viewport": {"width": 1280, "height": 860}}


@pytest_asyncio.fixture(loop_scope="module")
async def fresh(tmp_path: Path) -> AsyncIterator[StudioRun]:
    """A first run: the default library as seeded, no model in ComfyUI's folders."""
    run = await start_studio(tmp_path)
    yield run
    await run.stop()


def drop(run: StudioRun, folder: str, name: str) -> None:
    path = run.host.server.registry.models.folder(folder) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"a model file")


@pytest.mark.parametrize("theme", ["dark", "light"])
@pytest.mark.parametrize("size", ["desktop", "phone"])
async def test_the_banner_says_what_is_missing_before_anything_is_typed(
    fresh: StudioRun, browser: object, request: pytest.FixtureRequest, theme: str, size: str
) -> None:
    options = {**(PHONE if size == "phone" else DESKTOP), "color_scheme": theme}
    async with studio_page(browser, short_name(request), **options) as ui:
        page = ui.page
        await ui.open(fresh.url)
        banner = page.get_by_role("status").filter(has_text="No checkpoint installed yet")
        await banner.wait_for()
        text = await banner.inner_text()
        assert "models/checkpoints" in text
        assert "Generate" in text and "more actions" in text, text
        assert str(fresh.host.base_dir) not in text  # a folder inside ComfyUI, never a server path
        assert await page.get_by_role("combobox").input_value() == ""
        widths = await page.evaluate("() => [document.scrollingElement.scrollWidth, window.innerWidth]")
        assert widths[0] <= widths[1], widths
        box = await banner.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= options["viewport"]["width"]
        await ui.shot("banner")


async def test_a_checkpoint_dropped_into_comfyui_removes_the_banner_live(
    fresh: StudioRun, browser: object, request: pytest.FixtureRequest
) -> None:
    async with studio_page(browser, short_name(request)) as ui:
        page = ui.page
        await ui.open(fresh.url)
        banner = page.get_by_role("status").filter(has_text="No checkpoint installed yet")
        await banner.wait_for()

        drop(fresh, "embeddings", "easynegative.safetensors")
        drop(fresh, "checkpoints", "dreamshaper_8.safetensors")
        started = time.monotonic()
        await banner.wait_for(state="detached", timeout=LIVE_WITHIN_S * 1000)
        took = time.monotonic() - started
        assert took < LIVE_WITHIN_S
        found = page.get_by_role("region", name="Notifications").get_by_text("Checkpoint found")
        await found.wait_for()
        await ui.shot("checkpoint-found")

        # The same within the API, and the embedding in the prompt bar's suggestions, all without a reload.
        async with aiohttp.ClientSession() as session:
            api = Api(session, fresh.api)
            _, body = await api.get("/actions/status")
            assert body["data"]["checkpoint"] == "dreamshaper_8.safetensors"
            _, body = await api.get("/actions")
            assert all(a["ready"] for a in body["data"])
        prompt = page.get_by_role("combobox")
        await prompt.click()
        await page.keyboard.type("a cat, embedding:eas", delay=10)
        menu = page.get_by_role("listbox")
        await menu.wait_for()
        assert await menu.get_by_role("option").locator(".opt-label").all_inner_texts() == ["embedding:easynegative"]
        await ui.shot("embedding-suggestion")
        await page.keyboard.press("Tab")
        assert await prompt.input_value() == "a cat, embedding:easynegative "


# -- toasts ---------------------------------------------------------------------------------------------------


@pytest_asyncio.fixture(loop_scope="module")
async def studio(tmp_path: Path) -> AsyncIterator[Studio]:
    async with studio_on_test_host(tmp_path, node_delay=0.1) as s:
        yield s


def failing_graph() -> dict:
    graph = copy.deepcopy(load_workflow("t2i_standin"))
    graph["5"] = {"class_type": "StudioTestFail", "inputs": {"image": ["3", 0], "message": "out of paint"}}
    graph["4"]["inputs"]["images"] = ["5", 0]
    return graph


async def test_finished_jobs_collapse_into_one_toast_and_errors_stay(
    studio: Studio, browser: object, request: pytest.FixtureRequest
) -> None:
    async with studio_page(browser, short_name(request)) as ui:
        page = ui.page
        await ui.open(studio.url)
        prompt = page.get_by_role("combobox")
        for text in ("a red fox", "a green owl", "a blue whale"):
            await prompt.click()
            await page.keyboard.type(text)
            async with page.expect_response(lambda r: r.url.endswith("/generate")) as sent:
                await page.keyboard.press("Enter")
            assert (await sent.value).status == 201
        status, body = await studio.api.post("/jobs", json={"graph": failing_graph(), "prompt": "doomed"})
        assert status == 201, body
        failed_id = body["data"]["id"]

        stack = page.get_by_role("region", name="Notifications")
        group = stack.locator("li[data-jobs='3']")
        await group.wait_for(timeout=20_000)
        assert "3 jobs finished" in await group.inner_text()
        failed = stack.locator(f"li[data-job='{failed_id}']").filter(has_text="Failed")
        await failed.wait_for(timeout=20_000)
        assert "out of paint" in await failed.inner_text()
        # one toast for the three finished jobs: none of them has its own any more
        assert await stack.locator("li.success").count() == 1
        await ui.shot("collapsed")

        # The finished ones time out; the error waits for the user.
        await group.wait_for(state="detached", timeout=10_000)
        await page.wait_for_timeout(1000)
        assert await failed.is_visible()
        await ui.shot("error-stays")
        await failed.get_by_role("button", name="Dismiss notification").click()
        await eventually(lambda: _count(stack), what="an empty stack")


async def _count(stack: object) -> bool:
    return await stack.locator("li").count() == 0  # type: ignore[attr-defined]
