"""Settings › Import ComfyUI's past outputs in a real Chromium: offered, started, paused, resumed, finished."""

from __future__ import annotations

import sys
import time
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

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from import_fixtures import build_output_folder  # noqa: E402

from comfyui_studio.services import imports  # noqa: E402

pytestmark = [pytest.mark.browser, needs_chromium, pytest.mark.asyncio(loop_scope="module")]


@pytest_asyncio.fixture(loop_scope="module")
async def studio(tmp_path: Path) -> AsyncIterator[Studio]:
    async with studio_on_test_host(tmp_path, node_delay=0.02) as s:
        yield s


async def test_import_card_starts_pauses_resumes_and_reports(
    studio: Studio, ui: StudioPage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await studio.generate("a lighthouse at dusk")  # the studio's own output: already known
    folder = build_output_folder(studio.run.host.output_dir, tmp_path / "outside", scale=2)
    real_prepare = imports.prepare_batch

    def slow_prepare(*args: object) -> imports.Outcome:
        time.sleep(0.15)  # in the worker thread: slow enough to watch the bar move
        return real_prepare(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(imports, "prepare_batch", slow_prepare)
    studio.run.studio.imports.batch_size = 4

    await ui.page.goto(studio.url + "/settings", wait_until="domcontentloaded")
    card = ui.page.get_by_test_id("imports")
    await card.get_by_role("heading", name="Import ComfyUI's past outputs").wait_for(timeout=30_000)
    start = card.get_by_test_id("import-start")
    await start.wait_for()
    assert await start.inner_text() == "Import past outputs"
    await card.scroll_into_view_if_needed()
    await ui.shot("1-offered")

    await start.click()
    bar = card.get_by_test_id("import-progress")
    await bar.wait_for()

    async def moved() -> bool:
        return int(await bar.get_attribute("aria-valuenow") or 0) >= 20

    await eventually(moved, timeout=20, what="the progress bar to move")
    await ui.shot("2-progress")
    await card.get_by_test_id("import-pause").click()
    await card.get_by_text("Paused ·").wait_for()
    paused_at = int(await bar.get_attribute("aria-valuenow") or 0)
    assert 0 < paused_at < 100
    assert await card.get_by_test_id("import-start").inner_text() == "Resume import"
    await ui.shot("3-paused")

    await card.get_by_test_id("import-start").click()
    await card.get_by_test_id("import-summary").wait_for(timeout=60_000)
    counts = await card.get_by_test_id("import-counts").inner_text()
    assert f"{folder.importable} imported" in counts
    assert f"{len(folder.comfy) + len(folder.a1111)} with prompt and settings" in counts
    assert "1 already in the gallery" in counts
    skipped = await card.get_by_test_id("import-skipped").inner_text()
    assert "links leading outside the folder" in skipped and "damaged" in skipped
    assert await card.get_by_test_id("import-start").inner_text() == "Import new files"
    await ui.shot("4-done")

    # the imported work is in the gallery, found by its prompt
    await ui.open(studio.url + "/")
    await ui.page.get_by_role("combobox").fill("")
    status, body = await studio.api.get("/jobs/search", params={"q": "lighthouse13"})
    assert status == 200 and len(body["data"]["items"]) == 1
    await ui.page.locator("[role=feed] img").first.wait_for()
    await ui.shot("5-gallery")
