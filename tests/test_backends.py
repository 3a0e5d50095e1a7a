"""Several ComfyUI backends behind one studio: test hosts on loopback ports as the pool's members."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import aiohttp
import pytest
from aiohttp import web
from sqlalchemy import select
from studio_api import Api, load_workflow
from test_api_jobs import wait_for_state
from testhost import ComfyTestHost, start_test_host

from comfyui_studio.__main__ import build_parser, build_standalone
from comfyui_studio.config import StudioConfig
from comfyui_studio.db.models import ComfyCall
from comfyui_studio.plugin import mount_standalone
from comfyui_studio.services.comfy_pool import HEALTHY, BackendPool, check_backend_urls
from comfyui_studio.services.studio import Studio


@dataclass
class PoolRun:
    studio: Studio
    runner: web.AppRunner
    url: str

    @property
    def api(self) -> str:
        return self.url + "/studio/api/v1"

    @property
    def pool(self) -> BackendPool:
        assert isinstance(self.studio.host, BackendPool)
        return self.studio.host

    async def healthy(self, *names: str, timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout):
            while not all(n in self.pool.members and self.pool.members[n].health == HEALTHY for n in names):
                await asyncio.sleep(0.02)

    async def stop(self) -> None:
        await self.runner.cleanup()


async def serve(studio: Studio) -> PoolRun:
    runner = web.AppRunner(mount_standalone(studio), access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return PoolRun(studio, runner, f"http://127.0.0.1:{runner.addresses[0][1]}")


async def start_pool(data_dir: Path, urls: list[str], *, health_interval: float = 0.1) -> PoolRun:
    """What `serve --comfy A --comfy B …` runs, with a quick health check."""
    pool = BackendPool(urls, health_interval=health_interval)
    run = await serve(Studio.build(StudioConfig(data_dir=data_dir), pool))
    await run.healthy(*urls)
    return run


async def kill(host: ComfyTestHost) -> None:
    """A hard stop: nothing more is said on the socket (no `execution_interrupted`), then everything closes."""
    if host._publisher is not None:
        host._publisher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await host._publisher
    await host.stop()


def standin(color: int) -> dict:
    graph = load_workflow("t2i_standin")
    graph["1"]["inputs"]["color"] = color
    return graph


async def submit(api: Api, graph: dict) -> dict:
    status, body = await api.post("/jobs", json={"graph": graph})
    assert status == 201, body
    return body["data"]


async def set_settings(api: Api, values: dict) -> tuple[int, dict]:
    return await api.call("PATCH", "/settings", json={"values": values})


@pytest.fixture
async def hosts(tmp_path: Path) -> AsyncIterator[list[ComfyTestHost]]:
    started = [await start_test_host(tmp_path / f"comfy{i}", node_delay=0.15) for i in range(3)]
    yield started
    for host in started:
        await host.stop()


@pytest.fixture
async def pool_run(tmp_path: Path, hosts: list[ComfyTestHost]) -> AsyncIterator[PoolRun]:
    run = await start_pool(tmp_path / "studio", [h.url for h in hosts])
    yield run
    await run.stop()


async def test_jobs_spread_over_the_least_loaded_backends_and_the_queue_is_merged(
    pool_run: PoolRun, hosts: list[ComfyTestHost]
) -> None:
    async with aiohttp.ClientSession() as session:
        api = Api(session, pool_run.api)
        jobs = [await submit(api, standin(i)) for i in range(9)]
        assert Counter(j["backend"] for j in jobs) == {h.url: 3 for h in hosts}
        status, queue = await api.get("/queue")
        assert status == 200
        data = queue["data"]
        # every backend's queue in one: three run at once, six wait, all of them this user's
        assert data["running"] + data["pending"] >= 6 and data["running"] <= 3
        assert all(item["mine"] for item in data["items"])
        done = [await wait_for_state(api, j["id"], {"done"}, timeout=20) for j in jobs]
        assert all(j["images"] for j in done)
        assert {j["id"]: j["backend"] for j in done} == {j["id"]: j["backend"] for j in jobs}
        status, listing = await api.get("/backends")
        assert status == 200
        items = {b["name"]: b for b in listing["data"]["items"]}
        assert set(items) == {h.url for h in hosts}
        assert all(b["health"] == "healthy" and not b["draining"] and b["url"] == b["name"] for b in items.values())


async def test_each_image_is_read_from_the_backend_that_made_it(pool_run: PoolRun, hosts: list[ComfyTestHost]) -> None:
    async with aiohttp.ClientSession() as session:
        api = Api(session, pool_run.api)
        jobs = [await submit(api, standin(color)) for color in (0xFF0000, 0x00FF00, 0x0000FF)]
        for job in jobs:
            done = await wait_for_state(api, job["id"], {"done"}, timeout=20)
            host = next(h for h in hosts if h.url == done["backend"])
            made = sorted(Path(host.server.paths.output_dir).glob("studio_t2i_*.png"))
            # every backend names its first file alike: only the one that made it has these bytes
            assert [p.name for p in made] == ["studio_t2i_00001_.png"]
            async with session.get(pool_run.url + done["images"][0]["url"]) as resp:
                assert resp.status == 200
                assert await resp.read() == made[0].read_bytes()


async def test_a_backend_lacking_a_node_or_a_model_never_gets_that_job(
    pool_run: PoolRun, hosts: list[ComfyTestHost]
) -> None:
    first, second, third = hosts
    first.server.registry._info.pop("StudioTestProgress")
    third.server.registry._info.pop("StudioTestProgress")
    checkpoint = second.server.registry.models.folder("checkpoints") / "only_here.safetensors"
    checkpoint.parent.mkdir(parents=True, exist_ok=True)
    checkpoint.write_bytes(b"weights")
    pool_run.pool.members[first.url].caps = None  # it changed since the pool last looked
    pool_run.pool.members[third.url].caps = None
    async with aiohttp.ClientSession() as session:
        api = Api(session, pool_run.api)
        probe = load_workflow("progress_probe")
        probe["2"]["class_type"] = "StudioTestProgress"
        probe["2"]["inputs"].update({"steps": 2, "delay": 0.01})
        jobs = [await submit(api, probe) for _ in range(4)]
        assert {j["backend"] for j in jobs} == {second.url}
        # the loader feeds no output (ComfyUI neither checks nor runs it); the pool still places it by its model
        loader = standin(7)
        loader["9"] = {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "only_here.safetensors"}}
        jobs.append(await submit(api, loader))
        assert jobs[-1]["backend"] == second.url
        missing = {"1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "nowhere.safetensors"}}}
        status, body = await api.post("/jobs", json={"graph": missing})
        assert (status, body["error"]["code"]) == (400, "validation_error")
        assert "nowhere.safetensors" in body["error"]["message"]
        assert "No backend" in body["error"]["message"]
        for job in jobs:
            await wait_for_state(api, job["id"], {"done"}, timeout=20)


async def test_a_drained_backend_takes_no_new_jobs_but_finishes_its_own(
    pool_run: PoolRun, hosts: list[ComfyTestHost]
) -> None:
    first = hosts[0]
    async with aiohttp.ClientSession() as session:
        api = Api(session, pool_run.api)
        jobs = [await submit(api, standin(i)) for i in range(3)]
        on_first = next(j for j in jobs if j["backend"] == first.url)
        status, body = await api.post(f"/backends/{quote(first.url, safe='')}/drain")
        assert status == 200, body
        assert body["data"]["name"] == first.url and body["data"]["draining"] is True
        later = [await submit(api, standin(10 + i)) for i in range(6)]
        assert first.url not in {j["backend"] for j in later}
        assert (await wait_for_state(api, on_first["id"], {"done"}, timeout=20))["images"]
        status, body = await api.post(f"/backends/{quote(first.url, safe='')}/undrain")
        assert status == 200 and body["data"]["draining"] is False
        status, body = await api.post("/backends/http%3A%2F%2Fnowhere%3A1/drain")
        assert (status, body["error"]["code"]) == (404, "not_found")
        for job in later:
            await wait_for_state(api, job["id"], {"done"}, timeout=20)


async def _job_on(api: Api, run: PoolRun, target: ComfyTestHost, others: list[ComfyTestHost], color: int) -> dict:
    """A job that runs on `target`: the others drain while it is sent."""
    for other in others:
        run.pool.set_draining(other.url, True)
    job = await submit(api, standin(color))
    for other in others:
        run.pool.set_draining(other.url, False)
    assert job["backend"] == target.url
    return job


async def test_a_backend_killed_mid_job_loses_its_jobs_with_the_reason_and_is_taken_back_once_restarted(
    tmp_path: Path,
) -> None:
    slow = await start_test_host(tmp_path / "slow", node_delay=0.5)
    fast = await start_test_host(tmp_path / "fast")
    port = slow.server.port
    run = await start_pool(tmp_path / "studio", [slow.url, fast.url])
    try:
        async with aiohttp.ClientSession() as session:
            api = Api(session, run.api)
            running = await _job_on(api, run, slow, [fast], 1)
            waiting = await _job_on(api, run, slow, [fast], 2)
            await wait_for_state(api, running["id"], {"running"})
            await kill(slow)
            lost = await wait_for_state(api, running["id"], {"lost"})
            assert lost["error"]["message"] == f"Backend {slow.url} stopped responding while this job was running"
            lost_waiting = await wait_for_state(api, waiting["id"], {"lost"})
            assert slow.url in lost_waiting["error"]["message"]
            status, body = await api.get("/backends")
            assert {b["name"]: b["health"] for b in body["data"]["items"]}[slow.url] == "unreachable"
            # while it is away every job goes to the other one
            assert (await submit(api, standin(3)))["backend"] == fast.url

            slow = await start_test_host(tmp_path / "slow", port=port, node_delay=0.05)  # back, queue empty
            await run.healthy(slow.url)
            back = await _job_on(api, run, slow, [fast], 4)
            assert (await wait_for_state(api, back["id"], {"done"}))["images"]
            # the lost jobs stay lost: re-queuing is off by default
            assert (await wait_for_state(api, running["id"], {"lost"}))["state"] == "lost"
    finally:
        await run.stop()
        await slow.stop()
        await fast.stop()


async def test_a_backend_down_since_before_a_restart_loses_its_stored_jobs_once_its_grace_runs_out(
    tmp_path: Path,
) -> None:
    slow = await start_test_host(tmp_path / "slow", node_delay=2.0)
    fast = await start_test_host(tmp_path / "fast")
    run = await start_pool(tmp_path / "studio", [slow.url, fast.url])
    try:
        async with aiohttp.ClientSession() as session:
            api = Api(session, run.api)
            job = await _job_on(api, run, slow, [fast], 1)
            await wait_for_state(api, job["id"], {"running"})
    finally:
        await run.stop()  # the studio stops with the job running on `slow`…
    await kill(slow)  # …and `slow` dies while the studio is away

    pool = BackendPool([slow.url, fast.url], health_interval=0.1)
    pool.start_grace = 1.0
    run = await serve(Studio.build(StudioConfig(data_dir=tmp_path / "studio"), pool))
    try:
        await run.healthy(fast.url)
        async with aiohttp.ClientSession() as session:
            api = Api(session, run.api)
            # within the grace the job keeps its state (the backend may just be slow to come up)…
            status, body = await api.get(f"/jobs/{job['id']}")
            assert status == 200 and body["data"]["state"] == "running", body
            # …then it ends lost, naming the backend, and new jobs go to the one that answers
            lost = await wait_for_state(api, job["id"], {"lost"})
            assert lost["error"]["message"] == f"Backend {slow.url} stopped responding while this job was running"
            assert (await submit(api, standin(2)))["backend"] == fast.url
    finally:
        await run.stop()
        await fast.stop()


async def test_with_jobs_running_on_two_backends_a_named_one_is_interrupted_and_the_other_runs_on(
    tmp_path: Path,
) -> None:
    one = await start_test_host(tmp_path / "one", node_delay=0.6)
    two = await start_test_host(tmp_path / "two", node_delay=0.6)
    run = await start_pool(tmp_path / "studio", [one.url, two.url])
    try:
        async with aiohttp.ClientSession() as session:
            api = Api(session, run.api)
            first = await _job_on(api, run, one, [two], 1)
            second = await _job_on(api, run, two, [one], 2)
            await wait_for_state(api, first["id"], {"running"})
            await wait_for_state(api, second["id"], {"running"})
            status, body = await api.post("/queue/interrupt", json={"job_id": second["id"]})
            assert status == 200 and body["data"]["interrupted"] == second["id"], body
            assert (await wait_for_state(api, second["id"], {"interrupted", "done"}))["state"] == "interrupted"
            assert (await wait_for_state(api, first["id"], {"done"}))["state"] == "done"
    finally:
        await run.stop()
        await one.stop()
        await two.stop()


async def test_with_requeue_on_a_lost_job_runs_on_another_backend_dispatched_once(tmp_path: Path) -> None:
    slow = await start_test_host(tmp_path / "slow", node_delay=0.5)
    fast = await start_test_host(tmp_path / "fast")
    run = await start_pool(tmp_path / "studio", [slow.url, fast.url])
    try:
        async with aiohttp.ClientSession() as session:
            api = Api(session, run.api)
            status, body = await set_settings(api, {"requeue_lost_jobs": True})
            assert status == 200, body
            job = await _job_on(api, run, slow, [fast], 5)
            await wait_for_state(api, job["id"], {"running"})
            await kill(slow)
            done = await wait_for_state(api, job["id"], {"done"})
            assert done["id"] == job["id"] and done["backend"] == fast.url and done["error"] is None
            assert done["prompt_id"] != job["prompt_id"] and len(done["images"]) == 1
            # a second report of the same loss finds nothing to re-queue: the store's lost → queued decided
            assert run.studio.reconciler is not None
            again = await run.studio.reconciler.backend_down(slow.url, [job["prompt_id"]])
            assert again.lost == [] and again.requeued == []
            assert not await run.studio.jobs.requeue_lost(done_owner(run), job["id"])
        async with run.studio.store.session() as s:
            submits = (
                await s.scalars(select(ComfyCall).where(ComfyCall.job_id == job["id"], ComfyCall.operation == "submit"))
            ).all()
        assert sorted(c.request["prompt_id"] for c in submits) == sorted([job["prompt_id"], done["prompt_id"]])
    finally:
        await run.stop()
        await slow.stop()
        await fast.stop()


def done_owner(run: PoolRun) -> int:
    return run.studio.owner_id


async def test_the_backends_setting_is_checked_and_adds_and_removes_backends_live(
    tmp_path: Path, hosts: list[ComfyTestHost]
) -> None:
    first, second, _third = hosts
    run = await start_pool(tmp_path / "studio", [first.url])
    try:
        async with aiohttp.ClientSession() as session:
            api = Api(session, run.api)
            for bad, says in (
                (["ftp://127.0.0.1:1"], "http(s)"),
                (["http://user:secret@127.0.0.1:1"], "credentials"),
                ([second.url, second.url + "/"], "twice"),
                (["not a url"], "http(s)"),
                ("http://127.0.0.1:1", "list"),
            ):
                status, body = await set_settings(api, {"comfy_backends": bad})
                assert (status, body["error"]["code"]) == (400, "validation_error"), bad
                assert says in body["error"]["message"], body
                assert body["error"]["details"][0]["loc"] == ["values", "comfy_backends"]
                assert "secret" not in body["error"]["message"]
            status, body = await set_settings(api, {"comfy_backends": [second.url + "/"]})
            assert status == 200, body
            assert {s["name"]: s["value"] for s in body["data"]["items"]}["comfy_backends"] == [second.url]
            await run.healthy(first.url, second.url)
            jobs = [await submit(api, standin(i)) for i in range(4)]
            assert Counter(j["backend"] for j in jobs) == {first.url: 2, second.url: 2}
            for job in jobs:
                await wait_for_state(api, job["id"], {"done"}, timeout=20)
            status, body = await set_settings(api, {"comfy_backends": []})
            assert status == 200
            async with asyncio.timeout(5):
                while second.url in run.pool.members:
                    await asyncio.sleep(0.02)
            assert (await submit(api, standin(9)))["backend"] == first.url
    finally:
        await run.stop()


def test_backend_urls_are_normalized_and_checked() -> None:
    assert check_backend_urls(["http://a:8188/", " https://b "]) == ["http://a:8188", "https://b"]
    for bad in (["http://a", "HTTP://A"], ["http://a:99999"], ["http://a?x=1"], [""], [1], "http://a"):
        with pytest.raises(ValueError):
            check_backend_urls(bad)


async def test_serve_with_two_comfy_urls_runs_the_studio_in_front_of_both(
    tmp_path: Path, hosts: list[ComfyTestHost]
) -> None:
    first, second, _third = hosts
    args = build_parser().parse_args(
        ["--data-dir", str(tmp_path / "studio"), "serve", "--comfy", first.url, "--comfy", second.url]
    )
    run = await serve(build_standalone(args))
    try:
        await run.healthy(first.url, second.url)
        async with aiohttp.ClientSession() as session:
            api = Api(session, run.api)
            status, body = await api.get("/status")
            assert status == 200 and first.url in body["data"]["comfy"]["mode"]
            jobs = [await submit(api, standin(i)) for i in range(2)]
            assert {j["backend"] for j in jobs} == {first.url, second.url}
            for job in jobs:
                assert (await wait_for_state(api, job["id"], {"done"}, timeout=20))["images"]
            status, body = await api.get("/models")
            assert status == 200
    finally:
        await run.stop()
    single = build_parser().parse_args(["--data-dir", str(tmp_path / "one"), "serve", "--comfy", first.url])
    studio = build_standalone(single)
    assert isinstance(studio.host, BackendPool) and studio.host.single is not None
    assert studio.host.description == first.url  # one --comfy: the same studio as before
    with pytest.raises(SystemExit):
        build_standalone(build_parser().parse_args(["serve", "--comfy", "http://u:p@h:1"]))


async def test_inside_comfyui_the_setting_adds_a_remote_backend_beside_the_local_one(
    tmp_path: Path, hosts: list[ComfyTestHost]
) -> None:
    from harness import start_studio

    remote = hosts[0]
    run = await start_studio(tmp_path / "plugin", node_delay=0.15)
    try:
        pool = run.studio.host
        assert isinstance(pool, BackendPool) and pool.local is not None
        pool.health_interval = 0.1
        async with aiohttp.ClientSession() as session:
            api = Api(session, run.api)
            status, body = await api.get("/backends")
            assert [(b["name"], b["url"], b["health"]) for b in body["data"]["items"]] == [("local", None, "healthy")]
            status, body = await set_settings(api, {"comfy_backends": [remote.url]})
            assert status == 200, body
            async with asyncio.timeout(10):
                while remote.url not in pool.members or pool.members[remote.url].health != HEALTHY:
                    await asyncio.sleep(0.02)
            jobs = [await submit(api, standin(i)) for i in range(4)]
            assert Counter(j["backend"] for j in jobs) == {"local": 2, remote.url: 2}
            for job in jobs:
                done = await wait_for_state(api, job["id"], {"done"}, timeout=20)
                host = run.host if done["backend"] == "local" else remote
                made = {p.read_bytes() for p in Path(host.server.paths.output_dir).glob("studio_t2i_*.png")}
                async with session.get(run.url.removesuffix("/studio") + done["images"][0]["url"]) as resp:
                    assert resp.status == 200
                    assert await resp.read() in made  # from the backend that ran it
            status, body = await api.post("/backends/local/drain")
            assert status == 200 and body["data"]["draining"] is True
            assert (await submit(api, standin(8)))["backend"] == remote.url
    finally:
        await run.stop()


async def test_an_upload_reaches_every_backend_and_runs_on_whichever_takes_the_job(
    pool_run: PoolRun, hosts: list[ComfyTestHost]
) -> None:
    from test_api_uploads import form, image_bytes

    async with aiohttp.ClientSession() as session:
        api = Api(session, pool_run.api)
        data = image_bytes("PNG")
        status, body = await api.post("/uploads", data=form(data))
        assert status == 201, body
        inputs = [
            {
                p.relative_to(h.server.paths.input_dir).as_posix(): p.read_bytes()
                for p in Path(h.server.paths.input_dir).rglob("*.png")
            }
            for h in hosts
        ]
        assert all(len(found) == 1 for found in inputs) and len({next(iter(f)) for f in inputs}) == 1
        name = next(iter(inputs[0]))
        graph = {
            "1": {"class_type": "LoadImage", "inputs": {"image": name}},
            "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "from_upload"}},
        }
        jobs = [await submit(api, graph) for _ in range(3)]
        assert {j["backend"] for j in jobs} == {h.url for h in hosts}
        for job in jobs:
            done = await wait_for_state(api, job["id"], {"done"}, timeout=20)
            assert len(done["images"]) == 1
            # history comes from the backend that ran the job
            status, body = await api.get(f"/jobs/{job['id']}/history")
            assert status == 200 and body["data"]["prompt"][1] == job["prompt_id"], body
            assert body["data"]["outputs"]["2"]["images"]


async def test_a_drained_backend_stays_drained_across_a_restart(tmp_path: Path) -> None:
    one = await start_test_host(tmp_path / "one")
    two = await start_test_host(tmp_path / "two")
    run = await start_pool(tmp_path / "studio", [one.url, two.url])
    try:
        async with aiohttp.ClientSession() as session:
            api = Api(session, run.api)
            status, body = await api.post(f"/backends/{quote(one.url, safe='')}/drain", json={})
            assert status == 200 and body["data"]["draining"] is True, body
    finally:
        await run.stop()
    run = await start_pool(tmp_path / "studio", [one.url, two.url])
    try:
        assert run.pool.members[one.url].draining, "still off after the restart"
        async with aiohttp.ClientSession() as session:
            api = Api(session, run.api)
            for color in range(3):
                assert (await submit(api, standin(color)))["backend"] == two.url
            status, body = await api.post(f"/backends/{quote(one.url, safe='')}/undrain", json={})
            assert status == 200 and body["data"]["draining"] is False, body
            status, body = await api.get("/settings")
            stored = {s["name"]: s["value"] for s in body["data"]["items"]}
            assert stored["draining_backends"] == []
            status, body = await set_settings(api, {"draining_backends": ["x" * 501]})
            assert (status, body["error"]["code"]) == (400, "validation_error"), body
    finally:
        await run.stop()
        await one.stop()
        await two.stop()


async def test_only_the_owner_drains_a_backend(tmp_path: Path) -> None:
    from harness import start_studio
    from test_shortcode_routes import second_user

    run = await start_studio(tmp_path / "plugin")
    try:
        async with aiohttp.ClientSession() as session, aiohttp.ClientSession() as other_session:
            owner = Api(session, run.api)
            other = await second_user(run, owner, other_session)
            status, body = await other.get("/backends")
            assert status == 200 and [b["name"] for b in body["data"]["items"]] == ["local"]
            status, body = await other.post("/backends/local/drain")
            assert (status, body["error"]["code"]) == (403, "forbidden")
            status, body = await other.call("PATCH", "/settings", json={"values": {"comfy_backends": []}})
            assert (status, body["error"]["code"]) == (403, "forbidden")
            status, body = await owner.post("/backends/local/drain")
            assert status == 200 and body["data"]["draining"] is True
    finally:
        await run.stop()


def test_serve_refuses_a_loose_key_file_in_one_line(tmp_path: Path) -> None:
    data_dir = tmp_path / "studio"
    data_dir.mkdir(mode=0o700)
    (data_dir / "secrets.key").write_bytes(b"x" * 44)
    (data_dir / "secrets.key").chmod(0o644)
    done = subprocess.run(
        [sys.executable, "-m", "comfyui_studio", "--data-dir", str(data_dir), "serve", "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    assert "ComfyUI Studio cannot start:" in done.stderr and "chmod 600" in done.stderr
    assert "Traceback" not in done.stderr
