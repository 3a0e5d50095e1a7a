"""The prompt grammar in a real Chromium: a permuted prompt becomes live jobs, --lora completes from the list."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from studio_browser import Studio, StudioPage, eventually, needs_chromium, studio_on_test_host
from test_api_jobs import wait_for_state
from test_models_live import drop

pytestmark = [pytest.mark.browser, needs_chromium, pytest.mark.asyncio(loop_scope="module")]


@pytest_asyncio.fixture(loop_scope="module")
async def studio(tmp_path: Path) -> AsyncIterator[Studio]:
    async with studio_on_test_host(tmp_path, node_delay=0.1) as s:
        yield s


async def test_a_permuted_prompt_previews_its_jobs_and_runs_each_live(studio: Studio, ui: StudioPage) -> None:
    page = ui.page
    await ui.open(studio.url)
    await page.get_by_text("Nothing here yet").wait_for()
    prompt = page.get_by_role("combobox")
    await prompt.click()
    await page.keyboard.type("a {red, blue} fox in the snow --ar {1:1, 16:9}", delay=10)
    await page.keyboard.press("Escape")  # the value list of --ar
    listed = page.get_by_role("list", name="Prompts this makes").get_by_role("listitem")
    await eventually(lambda: _count_is(listed, 4), what="the four expansions under the bar")
    assert await listed.all_inner_texts() == [
        "a red fox in the snow --ar 1:1",
        "a red fox in the snow --ar 16:9",
        "a blue fox in the snow --ar 1:1",
        "a blue fox in the snow --ar 16:9",
    ]
    assert await page.locator(".expansions .msg").inner_text() == "4 jobs"
    await ui.shot("1-expansions")

    await prompt.focus()
    await page.keyboard.press("Enter")
    rows = page.locator("[data-job-id]")
    await eventually(lambda: _count_is(rows, 4), what="four job rows")
    ids = [await rows.nth(i).get_attribute("data-job-id") for i in range(4)]
    for job_id in ids:
        job = await wait_for_state(studio.api, str(job_id), {"done", "error", "rejected"}, timeout=30)
        assert job["state"] == "done", job
        assert job["prompt_text"] == "a {red, blue} fox in the snow --ar {1:1, 16:9}"
    texts = sorted([(await studio.job(str(j)))["expansion"]["text"] for j in ids])
    assert texts == sorted(
        ["a red fox in the snow --ar 1:1", "a red fox in the snow --ar 16:9", "a blue fox in the snow --ar 1:1",
         "a blue fox in the snow --ar 16:9"]
    )  # fmt: skip
    await eventually(lambda: _all_done(page), timeout=20, what="every row done")
    await ui.shot("2-four-jobs-done")
    ui.assert_clean()


async def test_lora_names_complete_from_comfyuis_list_with_the_keyboard_and_follow_new_files(
    studio: Studio, ui: StudioPage
) -> None:
    drop(studio.run, "loras", "add_detail.safetensors")
    drop(studio.run, "loras", "styles/film_grain.safetensors")
    page = ui.page
    await ui.open(studio.url)
    prompt = page.get_by_role("combobox")
    await prompt.click()
    menu = page.get_by_role("listbox", name="Shortcode suggestions")
    labels = menu.locator("[role=option] .opt-label")

    async def shows(*names: str) -> bool:
        # the studio reads ComfyUI's lists every 2 s: type the value again until they are in
        if not await menu.is_visible() or not set(names) <= set(await labels.all_inner_texts()):
            await prompt.fill("a fox --lora fil")
            await prompt.press("m")
            await prompt.press("Backspace")
        return await menu.is_visible() and set(names) <= set(await labels.all_inner_texts())

    await page.keyboard.type("a fox --lora fil", delay=15)
    await eventually(lambda: shows("styles/film_grain.safetensors"), timeout=15, what="the LoRA in the list")
    first = menu.locator("[role=option]").first
    assert (await first.locator(".opt-desc").inner_text()) == "loras/styles"
    await ui.shot("1-lora-suggestions")

    # a LoRA copied into ComfyUI's folder while the list is open joins it (the `models` event)
    drop(studio.run, "loras", "film_noir.safetensors")
    await eventually(lambda: _has_label(labels, "film_noir.safetensors"), timeout=15, what="the new LoRA listed")
    await ui.shot("2-new-lora-listed")
    names = await labels.all_inner_texts()
    await page.keyboard.press("ArrowDown")
    await page.keyboard.press("Enter")
    assert await prompt.input_value() == f"a fox --lora {names[1]} "
    await page.keyboard.press("Backspace")  # the space after the name: a weight follows it
    await page.keyboard.type(":0.7")
    await eventually(lambda: _hidden(menu), what="no names while a weight is typed")  # Enter would submit
    # the stand-in workflow has no checkpoint loader: the preview marks the LoRA as a code without effect
    await page.wait_for_function(
        "(want) => [...document.querySelectorAll('.overlay span.hl-warning')].some(e => e.textContent === want)",
        arg=f"--lora {names[1]}:0.7",
    )
    await ui.shot("3-lora-chosen")
    ui.assert_clean()


async def _count_is(locator: object, n: int) -> bool:
    return await locator.count() == n  # type: ignore[attr-defined]


async def _all_done(page: object) -> bool:
    states = await page.locator("[data-job-id]").evaluate_all("rows => rows.map(r => r.dataset.state)")  # type: ignore[attr-defined]
    return bool(states) and all(s == "done" for s in states)


async def _has_label(labels: object, name: str) -> bool:
    return name in await labels.all_inner_texts()  # type: ignore[attr-defined]


async def _hidden(locator: object) -> bool:
    return not await locator.is_visible()  # type: ignore[attr-defined]
