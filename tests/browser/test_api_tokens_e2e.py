"""Settings › API tokens in a real Chromium: make a token (shown once), see it listed, revoke it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from studio_browser import Studio, StudioPage, eventually, needs_chromium, studio_on_test_host

pytestmark = [pytest.mark.browser, needs_chromium, pytest.mark.asyncio(loop_scope="module")]


@pytest_asyncio.fixture(loop_scope="module")
async def studio(tmp_path: Path) -> AsyncIterator[Studio]:
    async with studio_on_test_host(tmp_path, node_delay=0.02) as s:
        yield s


async def test_a_token_is_made_shown_once_listed_and_revoked(studio: Studio, ui: StudioPage) -> None:
    tokens = studio.run.studio.security.tokens
    assert tokens is not None
    await ui.page.goto(studio.url + "/settings", wait_until="domcontentloaded")
    card = ui.page.get_by_test_id("api-tokens")
    await card.get_by_role("heading", name="API tokens").wait_for()
    await card.get_by_text("No tokens yet.").wait_for()

    await card.get_by_label("New token's name").fill("render script")
    await card.get_by_role("button", name="Create token").click()
    shown = card.get_by_test_id("new-token")
    await shown.wait_for()
    token = await shown.input_value()
    assert token.startswith("cs_")
    holder = await tokens.holder(token)  # the token the card showed is the one the studio accepts
    assert holder is not None and holder.user_id == studio.run.studio.owner_id
    row = card.locator("li[data-token='render script']")
    await row.wait_for()
    assert token[:10] in await row.inner_text() and token not in await row.inner_text()
    await card.scroll_into_view_if_needed()
    await ui.shot("1-made")

    # Done hides it for good: the list never holds the token again, even after a reload
    await card.get_by_role("button", name="Done").click()
    await ui.page.reload(wait_until="domcontentloaded")
    await row.wait_for()
    assert token not in await ui.page.content()

    await row.get_by_role("button", name="Revoke").click()
    await row.get_by_role("button", name="Revoke render script").click()
    await row.get_by_text("revoked").wait_for()

    async def refused() -> bool:
        return await tokens.holder(token) is None

    await eventually(refused, what="the revoked token to be refused")
    await ui.shot("2-revoked")
