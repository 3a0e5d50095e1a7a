"""The prompt bar in a real Chromium: shortcodes, autocomplete, submit and live jobs, history, image prompts, theme."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from studio_browser import Studio, StudioPage, needs_chromium, studio_on_test_host
from test_actions_api import png

pytestmark = [pytest.mark.browser, needs_chromium, pytest.mark.asyncio(loop_scope="module")]


@pytest_asyncio.fixture(loop_scope="module")
async def studio(tmp_path: Path) -> AsyncIterator[Studio]:
    async with studio_on_test_host(tmp_path, node_delay=0.3) as s:
        yield s


async def test_a_prompt_with_shortcodes_runs_live_to_a_16_9_image(studio: Studio, ui: StudioPage) -> None:
    page = ui.page
    await ui.open(studio.url)
    await page.get_by_text("Nothing here yet").wait_for()
    await ui.shot("1-empty")

    prompt = page.get_by_role("combobox")
    await prompt.click()
    await page.keyboard.type("a lighthouse at dusk --ar 16:9 --st", delay=15)
    menu = page.get_by_role("listbox", name="Shortcode suggestions")
    await menu.wait_for()
    options = menu.get_by_role("option")
    labels = await options.locator(".opt-label").all_inner_texts()
    assert "--steps" in labels, labels
    assert await prompt.get_attribute("aria-expanded") == "true"
    await ui.shot("2-autocomplete")

    # ↓ moves the highlight (aria-activedescendant follows it), Enter takes the highlighted one.
    await page.keyboard.press("ArrowDown")
    active = menu.locator("[role=option][aria-selected=true]")
    assert await active.count() == 1
    picked = (await active.locator(".opt-label").inner_text()).strip()
    assert picked == labels[1]
    assert await prompt.get_attribute("aria-activedescendant") == await active.get_attribute("id")
    await page.keyboard.press("Enter")
    assert (await prompt.input_value()).startswith(f"a lighthouse at dusk --ar 16:9 {picked}")
    # start over with the code we want, picked with Tab this time
    await prompt.fill("")
    await page.keyboard.type("a lighthouse at dusk --ar 16:9 --ste", delay=15)
    await menu.wait_for()
    first = (await menu.locator("[role=option][aria-selected=true] .opt-label").inner_text()).strip()
    assert first == "--steps"
    await page.keyboard.press("Tab")
    assert await prompt.input_value() == "a lighthouse at dusk --ar 16:9 --steps "
    assert await page.evaluate("document.activeElement.id") == "prompt-input"  # Tab did not move focus
    await page.keyboard.type("12")
    # Inline highlighting: once the server's preview is in, each code with its value is one span. The
    # stand-in workflow has no sampler, so --steps is underlined as a code without effect.
    await page.wait_for_function(
        "() => [...document.querySelectorAll('.overlay span[class^=hl-]')].map(e => e.className + ':' + e.textContent)"
        ".join('|') === 'hl-code:--ar 16:9|hl-warning:--steps 12'"
    )
    code = page.locator(".overlay .hl-code")
    words = page.locator(".overlay")
    assert await code.evaluate("e => getComputedStyle(e).color") != await words.evaluate(
        "e => getComputedStyle(e).color"
    )
    assert await code.evaluate("e => getComputedStyle(e).backgroundColor") != "rgba(0, 0, 0, 0)"
    assert "wavy" in await page.locator(".overlay .hl-warning").evaluate("e => getComputedStyle(e).textDecorationStyle")
    assert await page.locator(".help .msg.error").count() == 0
    await page.locator(".help .msg.warning").wait_for()
    if await menu.is_visible():
        await page.keyboard.press("Escape")  # values for --steps: none wanted
    await ui.shot("3-highlighted")

    async with page.expect_response(lambda r: r.url.endswith("/generate") and r.request.method == "POST") as sent:
        await page.keyboard.press("Enter")
    job_id = (await (await sent.value).json())["data"]["id"]
    assert await prompt.input_value() == ""
    row = page.locator(f"[data-job-id='{job_id}']")
    await row.wait_for()
    await page.locator(f"[data-job-id='{job_id}'][data-state=running] .pct").wait_for()
    await ui.shot("4-generating")
    await page.locator(f"[data-job-id='{job_id}'][data-state=done] .tile.image img").wait_for()
    await page.wait_for_function(
        "id => { const i = document.querySelector(`[data-job-id='${id}'] .tile.image img`);"
        " return i && i.complete && i.naturalWidth > 0 }",
        arg=job_id,
    )
    await ui.shot("5-done")

    states = await ui.job_states(job_id)
    # The tile only moves forward: queued → generating with a rising percentage → done with its image.
    order = {"queued": 0, "running": 1, "done": 2}
    ranks = [order[s.split(" | ")[0]] for s in states]
    assert ranks == sorted(ranks) and ranks[-1] == 2, states
    shown = [int(s.rsplit(" ", 1)[1].rstrip("%")) for s in states if s.startswith("running | Generating · ")]
    assert len(shown) >= 2 and shown == sorted(shown), states
    # One toast for the job, updated in place until it says Done.
    toast = await ui.job_toasts(job_id)
    assert toast["max"] == 1, toast
    assert toast["titles"] in (["Queued", "Generating", "Done"], ["Generating", "Done"]), toast
    assert await page.locator(f"[aria-label=Notifications] li[data-job='{job_id}']").count() == 1

    job = await studio.job(job_id)
    assert job["prompt_text"] == "a lighthouse at dusk --ar 16:9 --steps 12"
    (image,) = job["images"]
    # 16:9 at the stand-in's 256×192 pixels, on the 64 px grid sizes snap to: 320×192 (1.67, nearest to 1.78)
    assert (image["width"], image["height"]) == (320, 192), image
    box = await row.locator(".tile.image").bounding_box()
    assert abs(box["width"] / box["height"] - 320 / 192) < 0.02, box
    ui.assert_clean()


async def test_arrow_up_recalls_the_last_prompt_from_the_server_across_a_reload(studio: Studio, ui: StudioPage) -> None:
    page = ui.page
    await ui.open(studio.url)
    prompt = page.get_by_role("combobox")
    await prompt.click()
    await page.keyboard.type("a quiet harbour at dawn")
    async with page.expect_response(lambda r: r.url.endswith("/generate")) as sent:
        await page.keyboard.press("Enter")
    assert (await sent.value).status == 201
    # A newer prompt from another tab: only the server's history (GET /prompts/history) knows it.
    await studio.generate("an old map of the harbour --ar 3:2")

    async with page.expect_response(lambda r: "/prompts/history" in r.url) as history:
        await page.reload(wait_until="domcontentloaded")
    assert (await history.value).ok
    await ui.ready()
    await page.locator("[data-state=done]").nth(1).wait_for()
    await prompt.click()
    assert await prompt.input_value() == ""
    await page.keyboard.press("ArrowUp")
    assert await prompt.input_value() == "an old map of the harbour --ar 3:2"
    await page.wait_for_function("() => document.querySelectorAll('.overlay .hl-code').length === 1")
    await ui.shot("1-recalled")
    await page.keyboard.press("ArrowUp")  # the caret sits at the start: ↑ goes further back
    assert await prompt.input_value() == "a quiet harbour at dawn"
    await page.keyboard.press("End")
    await page.keyboard.press("ArrowDown")
    assert await prompt.input_value() == "an old map of the harbour --ar 3:2"
    ui.assert_clean()


async def test_a_dropped_png_becomes_an_image_prompt_that_runs_img2img(studio: Studio, ui: StudioPage) -> None:
    """A dropped image becomes a chip; submitting runs the img2img action on it with the prompt's text."""
    page = ui.page
    await ui.open(studio.url)
    drop = {"b64": base64.b64encode(png((96, 64), (40, 160, 90))).decode(), "name": "green.png"}
    await page.evaluate(
        """({ b64, name }) => {
          const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
          const dt = new DataTransfer();
          dt.items.add(new File([bytes], name, { type: 'image/png' }));
          window.__dropped = dt;
          const bar = document.querySelector('form.bar');
          for (const type of ['dragenter', 'dragover'])
            bar.dispatchEvent(new DragEvent(type, { dataTransfer: dt, bubbles: true, cancelable: true }));
        }""",
        drop,
    )
    await page.get_by_text("Drop an image to use it as a prompt").wait_for()
    await ui.shot("1-dragging")
    async with page.expect_response(lambda r: r.url.endswith("/uploads")) as uploaded:
        await page.evaluate(
            "() => document.querySelector('form.bar').dispatchEvent("
            "new DragEvent('drop', { dataTransfer: window.__dropped, bubbles: true, cancelable: true }))"
        )
    assert (await uploaded.value).status == 201
    image = (await (await uploaded.value).json())["data"]
    assert image["kind"] == "upload" and (image["width"], image["height"]) == (96, 64)
    await page.get_by_text("Drop an image to use it as a prompt").wait_for(state="detached")

    chips = page.get_by_role("list", name="Image prompts").get_by_role("listitem")
    await chips.first.get_by_role("img", name="green.png").wait_for()
    # The hidden input behind "Add an image prompt" takes files too.
    async with page.expect_response(lambda r: r.url.endswith("/uploads")):
        await page.locator("input[type=file]").set_input_files(
            files=[{"name": "red.png", "mimeType": "image/png", "buffer": png((64, 64))}]
        )
    await chips.nth(1).get_by_role("img", name="red.png").wait_for()
    await page.wait_for_function(
        "() => [...document.querySelectorAll('.chips img')].every((i) => i.complete && i.naturalWidth > 0)"
    )
    await ui.shot("2-chips")
    await page.get_by_role("button", name="Remove red.png").click()
    assert await chips.count() == 1

    prompt = page.get_by_role("combobox")
    await prompt.click()
    await page.keyboard.type("the same field in autumn")
    # one image chip runs the img2img action itself, with the chip's strength as its denoise
    async with page.expect_response(lambda r: r.url.endswith("/actions/img2img/run")) as sent:
        await page.keyboard.press("Enter")
    response = await sent.value
    body = await response.json()
    assert response.status == 201, body
    job = body["data"]
    assert job["action_slot"] == "img2img" and job["parent_image_id"] == image["id"]
    assert job["parameters"]["denoise"] == 0.6
    tile = page.get_by_role("article").filter(has_text="the same field in autumn").first
    await tile.get_by_role("img").first.wait_for(timeout=15_000)
    await ui.shot("3-img2img-done")
    status, read = await studio.api.get(f"/jobs/{job['id']}")
    assert read["data"]["state"] == "done" and read["data"]["images"]
    ui.assert_clean()


async def test_the_chosen_theme_survives_a_reload_without_a_flash(studio: Studio, ui: StudioPage) -> None:
    await studio.generate("a red fox in the snow --ar 3:2")
    page = ui.page  # the system prefers dark
    await ui.open(studio.url)

    async def painted() -> tuple[str, str]:
        await page.wait_for_function(
            "() => [...document.querySelectorAll('.tile img')].every((i) => i.complete && i.naturalWidth > 0)"
        )
        return await page.evaluate(
            "() => [document.documentElement.dataset.theme, getComputedStyle(document.body).backgroundColor]"
        )

    theme, dark_bg = await painted()
    assert theme == "dark"
    await ui.shot("1-dark")

    await page.get_by_role("button", name="Switch to light theme").click()
    theme, light_bg = await painted()
    assert theme == "light" and light_bg != dark_bg
    assert await page.evaluate("() => localStorage.getItem('studio.theme')") == "light"

    for chosen, button in (("light", "Switch to dark theme"), ("dark", "Switch to light theme")):
        await page.reload(wait_until="domcontentloaded")
        await ui.ready()
        assert await page.evaluate("() => window.__themeAtDomContentLoaded") == chosen
        # Every value data-theme ever took on this load, and whether <body> existed yet: the inline script
        # in <head> sets the choice before the body is parsed, and nothing sets another theme later.
        changes = await page.evaluate("() => window.__themes")
        assert all(c["theme"] == chosen for c in changes), changes
        if chosen == "light":
            assert changes and changes[0] == {"theme": "light", "body": False}, changes
        assert (await painted())[0] == chosen
        await page.get_by_role("button", name=button).wait_for()
        await ui.shot(f"2-reloaded-{chosen}")
        await page.get_by_role("button", name=button).click()
    ui.assert_clean()
