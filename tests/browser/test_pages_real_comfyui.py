""" "Send workflow to Studio" in ComfyUI's own editor (COMFYUI_DIR; skipped without it): the menu command,
run in Chromium on the real frontend, lands the open workflow in the studio with the editor's own export."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio
from studio_api import Api
from studio_browser import ARTIFACTS, chromium, needs_chromium
from test_real_comfyui import comfyui
from test_real_comfyui import pytestmark as real_marks

__all__ = ["comfyui"]
pytestmark = [*real_marks, pytest.mark.browser, needs_chromium, pytest.mark.asyncio(loop_scope="module")]

UI_WORKFLOW = Path(__file__).resolve().parents[1] / "fixtures" / "ui_workflows" / "passthrough.json"


@pytest_asyncio.fixture(loop_scope="module")
async def studio_api(comfyui: tuple[str, Path]) -> AsyncIterator[Api]:  # noqa: F811
    async with aiohttp.ClientSession() as session:
        yield Api(session, comfyui[0] + "/studio/api/v1")


async def test_the_editors_send_command_lands_its_own_export_in_the_studio(
    comfyui: tuple[str, Path],  # noqa: F811
    studio_api: Api,
) -> None:
    url = comfyui[0]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    async with chromium() as browser:
        context = await browser.new_context(viewport={"width": 1280, "height": 860})  # type: ignore[attr-defined]
        page = await context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(f"{e} {e.stack}"))
        await page.goto(url, wait_until="domcontentloaded")
        await page.wait_for_function(
            "() => window.app && window.app.graph && window.app.extensionManager", timeout=60_000
        )
        # The extension registered its command under the Studio menu.
        commands = await page.evaluate("() => window.app.extensionManager.command.commands.map((c) => c.id)")
        assert "comfyui-studio.send" in commands and "comfyui-studio.open" in commands
        await page.evaluate("(w) => window.app.loadGraphData(w)", json.loads(UI_WORKFLOW.read_text()))
        exported = await page.evaluate("async () => (await window.app.graphToPrompt()).output")
        # Through the editor's own menu: its logo opens it, Studio › Send workflow to Studio.
        await page.keyboard.press("Escape")  # a first run shows the template browser
        await page.locator(".comfyui-logo").click()
        await page.get_by_role("menuitem", name="Studio", exact=True).hover()
        send = page.get_by_role("menuitem", name="Send workflow to Studio")
        await send.wait_for()
        await page.screenshot(path=str(ARTIFACTS / "real-comfyui-menu.png"))
        async with context.expect_page() as opened:  # the studio opens on the new workflow
            await send.click()
        studio_tab = await opened.value
        await studio_tab.wait_for_load_state("domcontentloaded")
        assert "/studio/workflows/w_" in studio_tab.url
        workflow_id = studio_tab.url.rsplit("/", 1)[1]
        await page.screenshot(path=str(ARTIFACTS / "real-comfyui-send.png"))
        await studio_tab.get_by_role("heading", level=1).wait_for()
        await studio_tab.screenshot(path=str(ARTIFACTS / "real-comfyui-sent-workflow.png"))
        # The frontend logs errors of its own on start-up (a settings list of this build); ours must not add any.
        assert [e for e in errors if "/extensions/" in e] == []
        await context.close()
    status, body = await studio_api.get(f"/workflows/{workflow_id}")
    assert status == 200, body
    workflow = body["data"]
    assert workflow["source_format"] == "editor" and workflow["head"]["has_source"]
    assert workflow["head"]["graph"] == exported, "the studio keeps exactly what the editor exported"
    assert workflow["readiness"]["ready"] is True
