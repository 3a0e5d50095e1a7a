"""Job lifecycle under load: how far the store falls behind the event stream, and whether a read ever does.

The studio on the test host; N SSE clients (default 100) follow `/studio/api/v1/events` from a separate
process; submitters post model-free jobs (EmptyImage 8x8 → SaveImage) through `POST /studio/api/v1/jobs` at a
target rate (default 100/s) for a duration (default 30 s). Measured in this process:
- persist lag: from the moment a `job` event with a state is published to the moment the writer's transaction
  holding that state has committed (p50/p99/max);
- read lag: a checker follows the stream too and, on every `job` event, reads `GET /jobs/{id}` at once; a read
  whose state is earlier than the event's is counted as stale;
- the achieved submit rate, and how long after the last submit every job reads as finished.

Run: .venv/bin/python bench/bench_lifecycle.py [--rate 100] [--seconds 30] [--clients 100]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from figures import Figure, emit, pct

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

RANK = {"queued": 0, "running": 1}  # every other state is an ending: 2


def rank(state: str) -> int:
    return RANK.get(state, 2)


def graph(i: int) -> dict[str, Any]:
    return {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": i % 65536}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "studio_lifecycle"}},
    }


# ---- the SSE clients' process ---------------------------------------------------------------------------


async def clients_main(url: str, cookie: str, n: int, seconds: float) -> None:
    counts = [0] * n

    async def one(i: int, session: aiohttp.ClientSession) -> None:
        async with session.get(url, headers={"Cookie": cookie}) as resp:
            async for line in resp.content:
                if line.startswith(b"data:"):
                    counts[i] += 1

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None)) as session:
        tasks = [asyncio.create_task(one(i, session)) for i in range(n)]
        await asyncio.sleep(seconds)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    print(json.dumps({"events_per_client_median": statistics.median(counts)}))


# ---- the bench --------------------------------------------------------------------------------------------


async def bench(rate: float, seconds: float, clients: int) -> None:
    from conftest import Api
    from harness import start_studio

    from comfyui_studio.services.live import LiveJobs

    published: dict[tuple[str, str], float] = {}
    lags: list[float] = []
    original_persist = LiveJobs._persist

    async def timed_persist(self: LiveJobs, batch: list[tuple[str, str, Any]]) -> None:
        # The batch's states are committed when the writer's one transaction for it returns.
        refs = {prompt_id: self.refs.get(prompt_id) for _kind, prompt_id, _payload in batch}
        await original_persist(self, batch)
        now = time.perf_counter()
        for kind, prompt_id, payload in batch:
            ref = refs.get(prompt_id)
            if kind == "state" and ref is not None:
                sent = published.pop((ref.job_id, payload[0].state.value), None)
                if sent is not None:
                    lags.append((now - sent) * 1000)

    LiveJobs._persist = timed_persist  # type: ignore[method-assign]

    with tempfile.TemporaryDirectory() as tmp:
        run = await start_studio(Path(tmp))
        hub = run.studio.hub
        original_publish = hub.publish

        def publish(kind: str, data: dict[str, Any], **kwargs: Any) -> Any:
            if kind == "job":
                job = data["job"]
                published.setdefault((job["id"], job["state"]), time.perf_counter())
            return original_publish(kind, data, **kwargs)

        hub.publish = publish  # type: ignore[method-assign]
        stale: list[tuple[str, str, str]] = []
        reads = 0
        try:
            async with aiohttp.ClientSession() as session:
                api = Api(session, run.api)
                await api.open_session()
                cookie = api._cookie_header()
                proc = await asyncio.create_subprocess_exec(
                    sys.executable, __file__, "--client-process", "--url", run.api + "/events",
                    "--cookie", cookie, "--clients", str(clients), "--seconds", str(seconds + 20),
                    stdout=asyncio.subprocess.PIPE,
                )  # fmt: skip
                await asyncio.sleep(2.0)  # the clients connect

                async def checker() -> None:
                    nonlocal reads
                    async with session.get(run.api + "/events", headers={"Cookie": cookie}) as resp:
                        async for line in resp.content:
                            if not line.startswith(b"data:"):
                                continue
                            body = json.loads(line[5:])
                            job = body.get("job") if isinstance(body, dict) else None
                            if not isinstance(job, dict):
                                continue
                            status, read = await api.get(f"/jobs/{job['id']}")
                            reads += 1
                            if status == 200 and rank(read["data"]["state"]) < rank(job["state"]):
                                stale.append((job["id"], job["state"], read["data"]["state"]))

                check = asyncio.create_task(checker())
                submitted: list[str] = []
                t0 = time.perf_counter()
                interval = 1.0 / rate

                async def submit(i: int) -> None:
                    status, body = await api.post("/jobs", json={"graph": graph(i)})
                    if status == 201:
                        submitted.append(body["data"]["id"])

                pending: set[asyncio.Task[None]] = set()
                i = 0
                while time.perf_counter() - t0 < seconds:
                    due = t0 + i * interval
                    delay = due - time.perf_counter()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    task = asyncio.create_task(submit(i))
                    pending.add(task)
                    task.add_done_callback(pending.discard)
                    i += 1
                await asyncio.gather(*pending)
                submit_end = time.perf_counter()
                achieved = len(submitted) / (submit_end - t0)
                # Until every job reads as ended.
                while True:
                    status, page = await api.get("/jobs", params={"limit": "200"})
                    unfinished = [j for j in page["data"]["items"] if j["state"] in ("queued", "running")]
                    if not unfinished:
                        break
                    await asyncio.sleep(0.05)
                settled_after = time.perf_counter() - submit_end
                await run.studio.live.drain()
                if check.done() and check.exception() is not None:
                    raise RuntimeError("the read checker failed") from check.exception()
                check.cancel()
                out, _ = await proc.communicate()
                client_stats = json.loads(out.decode().strip().splitlines()[-1])
        finally:
            await run.stop()
            LiveJobs._persist = original_persist  # type: ignore[method-assign]

    print(f"\n## Job lifecycle on the test host: target {rate:.0f} jobs/s for {seconds:.0f} s, {clients} SSE clients")
    print(f"submitted {len(submitted)} jobs, achieved {achieved:.1f} jobs/s")
    print(f"every job read as ended {settled_after * 1000:.0f} ms after the last submit returned")
    print(
        f"persist lag (event published → its state committed), {len(lags)} states: "
        f"p50 {pct(lags, 50):.1f} ms, p99 {pct(lags, 99):.1f} ms, max {max(lags, default=float('nan')):.1f} ms "
        "(target p99 <= 250 ms)"
    )
    print(f"reads checked against the event just received: {reads}, stale: {len(stale)} (target 0)")
    print(f"events per SSE client (median): {client_stats['events_per_client_median']}")
    emit(
        [
            Figure(f"{rate:.0f} jobs/s, {clients} clients: achieved", achieved, "jobs/s", rate * 0.95, "higher"),
            Figure(f"{rate:.0f} jobs/s, {clients} clients: persist lag p99", pct(lags, 99), "ms", 250.0),
            Figure(f"{rate:.0f} jobs/s, {clients} clients: stale reads", len(stale), "", 0.0),
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--client-process", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--cookie", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client_process:
        asyncio.run(clients_main(args.url, args.cookie, args.clients, args.seconds))
    else:
        asyncio.run(bench(args.rate, args.seconds, args.clients))


if __name__ == "__main__":
    main()
