"""Two backends, one a real ComfyUI (COMFYUI_DIR; skipped otherwise) and one the test host: jobs run on both."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from studio_api import Api
from test_api_jobs import wait_for_state
from test_backends import PoolRun, standin, start_pool, submit
from test_real_comfyui import COMFYUI_DIR, comfyui  # noqa: F401  # the real ComfyUI fixture
from testhost import ComfyTestHost, start_test_host

pytestmark = [
    pytest.mark.comfyui,
    pytest.mark.skipif(not COMFYUI_DIR, reason="set COMFYUI_DIR to a ComfyUI checkout to run against it"),
]


@pytest.fixture
async def fake(tmp_path: Path) -> AsyncIterator[ComfyTestHost]:
    host = await start_test_host(tmp_path / "fake", node_delay=0.05)
    yield host
    await host.stop()


async def test_a_job_runs_on_the_real_comfyui_beside_a_test_host(
    tmp_path: Path,
    comfyui: tuple[str, Path],  # noqa: F811
    fake: ComfyTestHost,
) -> None:
    real_url, base = comfyui
    run: PoolRun = await start_pool(tmp_path / "studio", [real_url, fake.url], health_interval=0.5)
    try:
        async with aiohttp.ClientSession() as session:
            api = Api(session, run.api)
            run.pool.set_draining(fake.url, True)
            job = await submit(api, standin(0x336699))
            assert job["backend"] == real_url
            done = await wait_for_state(api, job["id"], {"done"}, timeout=120)
            assert len(done["images"]) == 1
            async with session.get(run.url + done["images"][0]["url"]) as resp:
                assert resp.status == 200
                served = await resp.read()
            assert served in {p.read_bytes() for p in (base / "output").glob("studio_t2i_*.png")}
            run.pool.set_draining(fake.url, False)
            jobs = [await submit(api, standin(i)) for i in range(2)]
            assert {j["backend"] for j in jobs} == {real_url, fake.url}
            for each in jobs:
                assert (await wait_for_state(api, each["id"], {"done"}, timeout=120))["images"]
            status, body = await api.get("/backends")
            assert {b["name"]: b["health"] for b in body["data"]["items"]} == {real_url: "healthy", fake.url: "healthy"}
    finally:
        await run.stop()
