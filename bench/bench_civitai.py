"""Civitai benchmark: cache-hit latency through the route, and how many upstream calls the cache and coalescing save.

The studio on the ComfyUI test host, pointed at the fake Civitai (tests/civitai_fake.py). Three figures:
- cache hit: `GET /studio/api/v1/civitai/images` for a page already fetched, one request at a time over HTTP
  (target ≤ 5 ms p95);
- a cold page (one upstream call through the token bucket, the shaping and the store write), for scale;
- a burst of browsing: N simulated tabs each scroll the same P pages at once; upstream calls made against the
  requests served.

Run: .venv/bin/python bench/bench_civitai.py [--count 500] [--tabs 8] [--pages 5]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from figures import Figure, emit, pct

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from civitai_fake import FakeCivitai  # noqa: E402
from conftest import Api  # noqa: E402
from harness import start_studio  # noqa: E402


async def timed(api: Api, path: str) -> tuple[float, dict]:
    started = time.perf_counter()
    status, body = await api.get(path)
    elapsed = (time.perf_counter() - started) * 1000
    assert status == 200, body
    return elapsed, body


async def main(count: int, tabs: int, pages: int) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        async with FakeCivitai(images=2000) as fake:
            run = await start_studio(Path(tmp))
            try:
                async with aiohttp.ClientSession() as session:
                    api = Api(session, run.api)
                    await api.call("PATCH", "/settings", json={"values": {"civitai_url": fake.url, "civitai_rate": 20}})
                    path = "/civitai/images?limit=50&sort=Newest"
                    cold = [(await timed(api, f"{path}&username=pixel_wren&period={p}"))[0] for p in ("Day", "Week")]
                    await timed(api, path)
                    for _ in range(50):
                        await timed(api, path)  # warm-up
                    before = len(fake.calls())
                    hits = [(await timed(api, path))[0] for _ in range(count)]
                    assert len(fake.calls()) == before, "a cache hit went upstream"

                    # tabs scrolling the same list at once (a fresh list: nothing cached yet)
                    fake.delay_s = 0.05
                    before = len(fake.calls())

                    async def tab() -> int:
                        cursor = None
                        served = 0
                        for _ in range(pages):
                            query = "/civitai/images?limit=50&sort=Most+Comments" + (
                                f"&cursor={cursor}" if cursor else ""
                            )
                            _, body = await timed(api, query)
                            served += 1
                            cursor = body["data"]["next_cursor"]
                        return served

                    started = time.perf_counter()
                    served = sum(await asyncio.gather(*(tab() for _ in range(tabs))))
                    burst_s = time.perf_counter() - started
                    upstream = len(fake.calls()) - before
            finally:
                await run.stop()
    print(
        f"cache hit, {count} requests through the route: median {statistics.median(hits):.2f} ms, "
        f"p95 {pct(hits, 95):.2f} ms, p99 {pct(hits, 99):.2f} ms (target p95 ≤ 5 ms)"
    )
    print(f"cold page (upstream call, shaping, store write): {', '.join(f'{c:.1f}' for c in cold)} ms")
    print(
        f"{tabs} tabs × {pages} pages at once: {served} requests served with {upstream} upstream calls "
        f"({served - upstream} saved, {100 * (served - upstream) / served:.0f} %) in {burst_s:.2f} s"
    )
    emit(
        [
            Figure("cache hit through the route: p95", pct(hits, 95), "ms", 5.0),
            Figure("tabs scrolling at once: upstream calls saved", 100 * (served - upstream) / served, "%", None),
        ]
    )
    return 0 if pct(hits, 95) <= 5.0 else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--tabs", type=int, default=8)
    parser.add_argument("--pages", type=int, default=5)
    args = parser.parse_args()
    sys.exit(asyncio.run(main(args.count, args.tabs, args.pages)))
