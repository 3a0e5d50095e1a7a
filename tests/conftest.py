"""Shared fixtures: the studio on the ComfyUI test host, and an HTTP client for its API."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from harness import StudioRun, start_studio

FIXTURES = Path(__file__).parent / "fixtures"


def load_workflow(name: str) -> dict:
    return json.loads((FIXTURES / "comfyui" / "workflows" / f"{name}.api.json").read_text())


@pytest.fixture
async def run(tmp_path: Path) -> AsyncIterator[StudioRun]:
    studio_run = await start_studio(tmp_path)
    yield studio_run
    await studio_run.stop()


class Api:
    """A client for /studio/api/v1 that returns (status, envelope)."""

    def __init__(self, session: aiohttp.ClientSession, base: str) -> None:
        self.session = session
        self.base = base

    async def call(self, method: str, path: str, **kwargs: object) -> tuple[int, dict]:
        async with self.session.request(method, self.base + path, **kwargs) as resp:  # type: ignore[arg-type]
            body = await resp.json(content_type=None)
            return resp.status, body

    async def get(self, path: str, **kwargs: object) -> tuple[int, dict]:
        return await self.call("GET", path, **kwargs)

    async def post(self, path: str, **kwargs: object) -> tuple[int, dict]:
        return await self.call("POST", path, **kwargs)

    async def delete(self, path: str, **kwargs: object) -> tuple[int, dict]:
        return await self.call("DELETE", path, **kwargs)


@pytest.fixture
async def api(run: StudioRun) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession() as session:
        yield Api(session, run.api)
