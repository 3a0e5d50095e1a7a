"""Backends benchmark: 1,000 queued jobs through one studio in front of three ComfyUI test hosts.

The studio runs standalone in this process with a `BackendPool` of three test hosts on loopback ports (what
`serve --comfy A --comfy B --comfy C` runs). `--clients` submitters post model-free graphs (EmptyImage 8x8 →
SaveImage) to /studio/api/v1/jobs as fast as the studio answers; the hosts run them meanwhile. Reported: submits
per second (the studio's dispatch), jobs finished per second (first submit to last job stored `done`), and how
evenly the jobs spread (the busiest backend's share over the idlest's; 1.0 is even).

Run: .venv/bin/python bench/bench_backends.py [--jobs 1000] [--backends 3] [--clients 8]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
from figures import Figure, emit, tiny_graph

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))


async def run(jobs: int, backends: int, clients: int) -> dict[str, Any]:
    from aiohttp import web
    from conftest import Api
    from sqlalchemy import func, select
    from testhost import start_test_host

    from comfyui_studio.config import StudioConfig
    from comfyui_studio.db.models import Job
    from comfyui_studio.plugin import mount_standalone
    from comfyui_studio.services.comfy_pool import HEALTHY, BackendPool
    from comfyui_studio.services.studio import Studio

    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        hosts = [await start_test_host(base / f"comfy{i}") for i in range(backends)]
        pool = BackendPool([h.url for h in hosts], health_interval=1.0)
        studio = Studio.build(StudioConfig(data_dir=base / "studio"), pool)
        runner = web.AppRunner(mount_standalone(studio), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        api_url = f"http://127.0.0.1:{runner.addresses[0][1]}/studio/api/v1"
        try:
            async with asyncio.timeout(30):
                while not all(m.health == HEALTHY for m in pool.members.values()):
                    await asyncio.sleep(0.05)
            placed: list[str] = []
            numbers = iter(range(jobs))
            connector = aiohttp.TCPConnector(limit=clients)
            async with aiohttp.ClientSession(connector=connector) as session:
                api = Api(session, api_url)
                await api.open_session()

                async def submitter() -> None:
                    for i in numbers:
                        status, body = await api.post("/jobs", json={"graph": tiny_graph(i)})
                        if status != 201:
                            raise RuntimeError(f"submit {i} answered {status}: {body}")
                        placed.append(body["data"]["backend"])

                t0 = time.perf_counter()
                await asyncio.gather(*(submitter() for _ in range(clients)))
                submitted = time.perf_counter() - t0
                async with asyncio.timeout(600):
                    while True:
                        async with studio.store.session() as s:
                            finished = await s.scalar(
                                select(func.count()).select_from(Job).where(Job.state.not_in(("queued", "running")))
                            )
                            done = await s.scalar(select(func.count()).select_from(Job).where(Job.state == "done"))
                        if finished is not None and finished >= jobs:
                            break
                        await asyncio.sleep(0.05)
                finished_s = time.perf_counter() - t0
            spread = Counter(placed)
        finally:
            await runner.cleanup()
            for host in hosts:
                await host.stop()
    shares = [spread.get(h, 0) for h in (h.url for h in hosts)]
    return {
        "submit_rate": jobs / submitted,
        "done_rate": jobs / finished_s,
        "done": done,
        "spread": spread,
        "evenness": max(shares) / max(1, min(shares)),
        "submitted_s": submitted,
        "finished_s": finished_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--backends", type=int, default=3)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()
    result = asyncio.run(run(args.jobs, args.backends, args.clients))
    print(f"{args.jobs} jobs, {args.backends} test-host backends, {args.clients} submitters")
    print(f"  submitted in {result['submitted_s']:.2f} s: {result['submit_rate']:.1f} jobs/s")
    print(f"  all finished in {result['finished_s']:.2f} s: {result['done_rate']:.1f} jobs/s ({result['done']} done)")
    for backend, count in sorted(result["spread"].items()):
        print(f"  {backend}: {count} jobs")
    print(f"  busiest/idlest backend: {result['evenness']:.3f}")
    emit(
        [
            Figure(
                f"backends: submits per second ({args.jobs} jobs, {args.backends} backends)",
                result["submit_rate"],
                "jobs/s",
                better="higher",
            ),
            Figure(
                f"backends: jobs finished per second ({args.jobs} jobs, {args.backends} backends)",
                result["done_rate"],
                "jobs/s",
                better="higher",
            ),
            Figure("backends: busiest/idlest backend's share of the jobs", result["evenness"], "ratio", 1.1),
        ]
    )
    if result["done"] != args.jobs:
        raise SystemExit(f"only {result['done']} of {args.jobs} jobs ended done")


if __name__ == "__main__":
    main()
