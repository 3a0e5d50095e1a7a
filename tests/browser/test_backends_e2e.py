"""Settings › Backends in a real Chromium: the local ComfyUI, a remote one added by URL, a drain switch."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from studio_browser import Studio, StudioPage, needs_chromium, studio_on_test_host
from test_api_jobs import wait_for_state
from testhost import ComfyTestHost, start_test_host

from comfyui_studio.services.comfy_pool import BackendPool

pytestmark = [pytest.mark.browser, needs_chromium, pytest.mark.asyncio(loop_scope="module")]


@pytest_asyncio.fixture(loop_scope="module")
async def studio(tmp_path: Path) -> AsyncIterator[Studio]:
    async with studio_on_test_host(tmp_path / "plugin", node_delay=0.02) as s:
        assert isinstance(s.run.studio.host, BackendPool)
        s.run.studio.host.health_interval = 0.2
        yield s


@pytest_asyncio.fixture(loop_scope="module")
async def remote(tmp_path: Path) -> AsyncIterator[ComfyTestHost]:
    host = await start_test_host(tmp_path / "remote", node_delay=0.02)
    yield host
    await host.stop()


async def test_the_owner_adds_a_backend_and_drains_the_local_one(
    studio: Studio, remote: ComfyTestHost, ui: StudioPage
) -> None:
    page = ui.page
    await page.goto(studio.url + "/settings", wait_until="domcontentloaded")
    card = page.get_by_test_id("backends")
    local = card.locator("[data-backend=local]")
    await local.get_by_text("Healthy").wait_for()
    assert "This ComfyUI" in await local.inner_text()

    await card.get_by_label("ComfyUI backends").fill(remote.url)
    async with page.expect_response(lambda r: r.url.endswith("/settings") and r.request.method == "PATCH") as resp:
        await card.get_by_role("button", name="Save").click()
    assert (await resp.value).status == 200
    added = card.locator(f"[data-backend='{remote.url}']")
    await added.get_by_text("Healthy").wait_for(timeout=15_000)

    await local.get_by_role("switch").uncheck()
    await local.get_by_text("Draining").wait_for()
    await card.scroll_into_view_if_needed()
    await ui.shot("1-backends")
    status, body = await studio.api.post("/jobs", json={"graph": _graph()})
    assert status == 201, body
    assert body["data"]["backend"] == remote.url
    done = await wait_for_state(studio.api, body["data"]["id"], {"done"}, timeout=20)
    assert done["images"]


def _graph() -> dict:
    return {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": 255}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "e2e_backend"}},
    }
