"""Proxy benchmark: ComfyUI's POST /prompt through the standalone studio against the same POST /prompt direct.

The standalone studio (`serve --comfy URL`: a RemoteHost over HTTP and /ws) fronts the ComfyUI test host, as a
ComfyUI client sees it: the client posts ComfyUI's body with `Authorization: Bearer <token>` to the studio's
/prompt, which checks the token, stores the job, hands it to ComfyUI and answers ComfyUI's
`{"prompt_id", "number", "node_errors"}`. Interleaved, one at a time, model-free graphs (EmptyImage 8x8 →
SaveImage); the executor runs them meanwhile, so the studio's writer and relay work as they would.
The figure is the overhead per submit at p50: studio p50 − direct p50 (target ≤ 2 ms).

Run: .venv/bin/python bench/bench_proxy.py [--count 300]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp
from figures import Figure, emit, pct, tiny_graph

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))


async def run_pair(comfy_url: str, studio_url: str, token: str, count: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {"direct": [], "studio": []}
    headers = {"Authorization": f"Bearer {token}"}
    client_id = uuid.uuid4().hex
    async with aiohttp.ClientSession() as session:

        async def submit(base: str, i: int, extra: dict[str, str]) -> float:
            t0 = time.perf_counter()
            async with session.post(
                base + "/prompt", json={"prompt": tiny_graph(i), "client_id": client_id}, headers=extra
            ) as resp:
                body = await resp.json()
                assert resp.status == 200 and "prompt_id" in body, (resp.status, body)
            return (time.perf_counter() - t0) * 1000

        for warm in range(10):
            await submit(comfy_url, warm, {})
            await submit(studio_url, warm, headers)
        for i in range(count):
            order = ("direct", "studio") if i % 2 else ("studio", "direct")
            for kind in order:
                base, extra = (comfy_url, {}) if kind == "direct" else (studio_url, headers)
                times[kind].append(await submit(base, i, extra))
    return times


async def bench(count: int) -> dict[str, list[float]]:
    from aiohttp import web
    from testhost import start_test_host

    from comfyui_studio.config import StudioConfig
    from comfyui_studio.plugin import mount_standalone
    from comfyui_studio.services.comfy_remote import RemoteHost
    from comfyui_studio.services.studio import Studio

    with tempfile.TemporaryDirectory() as tmp:
        comfy = await start_test_host(Path(tmp) / "comfy")
        studio = Studio.build(StudioConfig(data_dir=Path(tmp) / "studio"), RemoteHost(comfy.url))
        runner = web.AppRunner(mount_standalone(studio), access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        try:
            assert isinstance(studio.host, RemoteHost)
            await asyncio.wait_for(studio.host.connected.wait(), 10)
            assert studio.security.tokens is not None
            token = str((await studio.security.tokens.create(studio.owner_id, "bench"))["token"])
            url = f"http://127.0.0.1:{runner.addresses[0][1]}"
            times = await run_pair(comfy.url, url, token, count)
            assert studio.live is not None
            await studio.live.drain()
        finally:
            await runner.cleanup()
            await comfy.stop()
    return times


def report(times: dict[str, list[float]]) -> None:
    direct, studio = times["direct"], times["studio"]
    print(f"\n## ComfyUI's POST /prompt, direct and through the standalone studio ({len(direct)} interleaved each)")
    print("| path | p50 ms | p95 ms | mean ms |")
    print("|---|---|---|---|")
    for name, values in (("direct POST /prompt", direct), ("studio POST /prompt (Bearer token)", studio)):
        print(f"| {name} | {pct(values, 50):.2f} | {pct(values, 95):.2f} | {statistics.fmean(values):.2f} |")
    overhead = pct(studio, 50) - pct(direct, 50)
    print(f"\noverhead per submit at p50: {overhead:.2f} ms (target <= 2 ms)")
    emit(
        [
            Figure("proxy: studio POST /prompt p50", pct(studio, 50), "ms"),
            Figure("proxy: direct POST /prompt p50", pct(direct, 50), "ms"),
            Figure("proxy: overhead per submit at p50", overhead, "ms", 2.0, baseline="direct POST /prompt"),
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=300)
    args = parser.parse_args()
    report(asyncio.run(bench(args.count)))


if __name__ == "__main__":
    main()
