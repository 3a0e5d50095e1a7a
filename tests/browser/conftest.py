"""The browser suite's shared fixtures: one Chromium per test module, and a watched page per test.

Each module keeps its own `studio` fixture (its test host's options differ).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from studio_browser import StudioPage, chromium, short_name, studio_page


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[object]:
    async with chromium() as b:
        yield b


@pytest_asyncio.fixture(loop_scope="module")
async def ui(browser: object, request: pytest.FixtureRequest) -> AsyncIterator[StudioPage]:
    """A page per test; `@pytest.mark.context(**options)` passes browser-context options (a phone's viewport…)."""
    marker = request.node.get_closest_marker("context")
    async with studio_page(browser, short_name(request), **(marker.kwargs if marker else {})) as p:
        yield p
