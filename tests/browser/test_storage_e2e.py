"""Settings › Storage and the Trash in a real Chromium: usage chart, dry run, a run with its progress, restore."""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from maintenance_store import png_bytes
from studio_browser import (
    Studio,
    StudioPage,
    eventually,
    needs_chromium,
    studio_on_test_host,
)

from comfyui_studio.services import maintenance

pytestmark = [pytest.mark.browser, needs_chromium, pytest.mark.asyncio(loop_scope="module")]


@pytest_asyncio.fixture(loop_scope="module")
async def studio(tmp_path: Path) -> AsyncIterator[Studio]:
    async with studio_on_test_host(tmp_path, node_delay=0.02) as s:
        yield s


def old_previews(studio: Studio, count: int) -> list[Path]:
    temp = studio.run.host.server.paths.temp_dir
    png = png_bytes(64)
    then = time.time() - 3 * 86400
    paths = []
    for i in range(count):
        path = temp / f"ComfyUI_temp_e2e_{i:05d}_.png"
        path.write_bytes(png)
        os.utime(path, (then, then))
        paths.append(path)
    return paths


async def test_storage_section_shows_usage_dry_runs_and_runs_with_progress(
    studio: Studio, ui: StudioPage, monkeypatch: pytest.MonkeyPatch
) -> None:
    for text in ("a lighthouse at dusk", "a red fox in snow"):
        await studio.generate(text)
    previews = old_previews(studio, 400)
    await ui.page.goto(studio.url + "/settings", wait_until="domcontentloaded")
    card = ui.page.get_by_test_id("storage")
    await card.get_by_role("heading", name="Storage").wait_for()
    # the page lists the settings first (their choices ask ComfyUI), then the card asks for its report
    # either the report's legend or the card's error: a refused report fails with its own words
    shown = card.locator(".legend li[data-category=originals]").or_(card.get_by_role("alert"))
    await shown.first.wait_for(timeout=60_000)
    assert not await card.get_by_role("alert").count(), await card.get_by_role("alert").inner_text()
    legend = await card.locator(".legend").inner_text()
    assert "Your work" in legend and "Previews & temp" in legend and "Database" in legend
    assert await card.locator(".bar .seg").count() >= 3
    await card.scroll_into_view_if_needed()
    await ui.shot("1-usage")

    await card.get_by_role("button", name="Dry run").click()
    dry = card.get_by_test_id("dry-run")
    await dry.wait_for()
    assert "400 files" in await dry.inner_text()
    assert all(p.exists() for p in previews), "a dry run removes nothing"
    await dry.scroll_into_view_if_needed()
    await ui.shot("2-dry-run")

    # a slow disk, so the run lasts long enough to watch its progress
    unlink = maintenance._unlink

    def slow_unlink(path: str) -> int:
        time.sleep(0.01)
        return unlink(path)

    monkeypatch.setattr(maintenance, "_unlink", slow_unlink)
    await card.get_by_role("button", name="Run maintenance").click()
    progress = card.get_by_test_id("run-progress")
    await progress.filter(has_text="Removing expired files").wait_for()
    await ui.shot("3-progress")
    await progress.wait_for(state="detached", timeout=30_000)
    assert not any(p.exists() for p in previews)
    runs = card.get_by_test_id("runs")
    await eventually(lambda: _first_run_is(runs, "Run"), what="the run listed")
    first = await runs.locator("tbody tr").first.inner_text()
    assert "400" in first and "done" in first
    await ui.page.get_by_text("Removed 400 files").wait_for()
    await runs.scroll_into_view_if_needed()
    await ui.shot("4-after-run")


async def _first_run_is(runs: object, kind: str) -> bool:
    rows = runs.locator("tbody tr")  # type: ignore[attr-defined]
    return await rows.count() > 0 and kind in (await rows.first.inner_text()).split("\t")[1]


async def test_trash_lists_deleted_jobs_and_restores_one(studio: Studio, ui: StudioPage) -> None:
    kept = await studio.generate("a quiet harbour")
    gone = await studio.generate("a stormy sea")
    status, _ = await studio.api.delete(f"/jobs/{gone['id']}")
    assert status == 200
    await ui.page.goto(studio.url + "/settings", wait_until="domcontentloaded")
    await ui.page.get_by_role("link", name="Open Trash").click(timeout=30_000)
    await ui.page.get_by_role("heading", name="Trash", level=1).wait_for()
    row = ui.page.locator(f"[data-job='{gone['id']}']")
    await row.wait_for()
    assert "a stormy sea" in await row.inner_text() and "files removed in 30 days" in await row.inner_text()
    assert await ui.page.locator(f"[data-job='{kept['id']}']").count() == 0
    await row.locator("img").first.wait_for()
    await ui.page.wait_for_function(
        "() => [...document.querySelectorAll('.thumbs img')].every((i) => i.complete && i.naturalWidth > 0)"
    )
    await ui.shot("1-trash")
    await row.get_by_role("button", name="Restore").click()
    await ui.page.get_by_test_id("trash-empty").wait_for()
    await ui.shot("2-restored")
    job = await studio.job(gone["id"])
    assert job["id"] == gone["id"]
    status, body = await studio.api.get("/jobs")
    assert gone["id"] in [j["id"] for j in body["data"]["items"]]
