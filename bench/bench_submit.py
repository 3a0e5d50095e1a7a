"""Submit benchmark: the studio's POST /jobs against a direct POST /prompt to the same ComfyUI, in one run.

Interleaved, one at a time, model-free graphs (EmptyImage 8x8 → SaveImage): `direct` posts the graph to
ComfyUI's own /prompt; `studio` posts it to /studio/api/v1/jobs with a three-code prompt (the whole path a
user waits on: route, guards, shortcode parse and patch, store, host). The executor runs the jobs meanwhile,
so the studio's writer and event stream work as they would. On the test host the studio runs in this process,
so SQL statements and commits made by each submit's request task are counted too.

Run: .venv/bin/python bench/bench_submit.py [--count 250] [--comfyui COMFYUI_DIR]
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
from typing import Any

import aiohttp
from figures import Figure, emit, pct, tiny_graph

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

BACKGROUND = ("studio-job-writer", "studio-queue")
PROMPT = "a small red square --ar 1:1 --seed 7 --style vivid"


class RequestCounter:
    """SQL statements and commits on the store, made by request tasks (not the background writer)."""

    def __init__(self, engine: Any) -> None:
        from sqlalchemy import event

        self.statements = 0
        self.commits = 0
        event.listen(engine.sync_engine, "before_cursor_execute", self._statement)
        event.listen(engine.sync_engine, "commit", self._commit)

    @staticmethod
    def _mine() -> bool:
        task = asyncio.current_task()
        return task is not None and task.get_name() not in BACKGROUND

    def _statement(self, *_args: object) -> None:
        if self._mine():
            self.statements += 1

    def _commit(self, *_args: object) -> None:
        if self._mine():
            self.commits += 1


async def run_pair(comfy_url: str, studio_api: str, count: int, counter: RequestCounter | None) -> dict[str, Any]:
    from conftest import Api

    times: dict[str, list[float]] = {"direct": [], "studio": []}
    statements: list[int] = []
    commits: list[int] = []
    async with aiohttp.ClientSession() as session:
        api = Api(session, studio_api)
        await api.open_session()
        client_id = uuid.uuid4().hex
        for warm in range(10):
            await session.post(comfy_url + "/prompt", json={"prompt": tiny_graph(warm), "client_id": client_id})
            await api.post("/jobs", json={"graph": tiny_graph(warm), "prompt": PROMPT})
        for i in range(count):
            order = ("direct", "studio") if i % 2 else ("studio", "direct")
            for kind in order:
                t0 = time.perf_counter()
                if kind == "direct":
                    async with session.post(
                        comfy_url + "/prompt", json={"prompt": tiny_graph(i), "client_id": client_id}
                    ) as resp:
                        await resp.read()
                        assert resp.status == 200, resp.status
                    times[kind].append((time.perf_counter() - t0) * 1000)
                else:
                    before = (counter.statements, counter.commits) if counter else (0, 0)
                    status, body = await api.post("/jobs", json={"graph": tiny_graph(i), "prompt": PROMPT})
                    times[kind].append((time.perf_counter() - t0) * 1000)
                    assert status == 201, body
                    if counter:
                        statements.append(counter.statements - before[0])
                        commits.append(counter.commits - before[1])
    return {"times": times, "statements": statements, "commits": commits}


def report(title: str, result: dict[str, Any]) -> None:
    direct, studio = result["times"]["direct"], result["times"]["studio"]
    print(f"\n## {title} ({len(direct)} interleaved submits each)")
    print("| path | p50 ms | p95 ms | mean ms |")
    print("|---|---|---|---|")
    for name, values in (("direct POST /prompt", direct), ("studio POST /jobs (3 codes)", studio)):
        print(f"| {name} | {pct(values, 50):.2f} | {pct(values, 95):.2f} | {statistics.fmean(values):.2f} |")
    print(f"\nratio studio/direct at p50: {pct(studio, 50) / pct(direct, 50):.2f}x (target <= 2x)")
    figures = [
        Figure(f"{title}: studio POST /jobs p50", pct(studio, 50), "ms"),
        Figure(f"{title}: direct POST /prompt p50", pct(direct, 50), "ms"),
        Figure(
            f"{title}: studio / direct at p50", pct(studio, 50) / pct(direct, 50), "×", 2.0, baseline="POST /prompt"
        ),
    ]
    if result["commits"]:
        figures.append(Figure(f"{title}: commits per submit in the request", max(result["commits"]), "", 1.0))
    emit(figures)
    if result["statements"]:
        print(
            f"per submit, in the request: SQL statements median {statistics.median(result['statements']):.0f}, "
            f"commits median {statistics.median(result['commits']):.0f} (max {max(result['commits'])})"
        )


async def bench_test_host(count: int) -> None:
    from harness import start_studio

    with tempfile.TemporaryDirectory() as tmp:
        run = await start_studio(Path(tmp))
        try:
            counter = RequestCounter(run.studio.store.engine)
            result = await run_pair(run.host.url, run.api, count, counter)
            await run.studio.live.drain()
        finally:
            await run.stop()
    report("ComfyUI test host", result)


async def bench_real(comfy_dir: Path, count: int) -> None:
    from bench_events import start_comfyui

    with tempfile.TemporaryDirectory() as tmp:
        proc, url = await start_comfyui(comfy_dir, Path(tmp) / "base", with_studio=True)
        try:
            result = await run_pair(url, url + "/studio/api/v1", count, None)
        finally:
            proc.terminate()
            await proc.wait()
    report(f"real ComfyUI at {comfy_dir.name}", result)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=250)
    parser.add_argument("--comfyui", type=Path, help="a ComfyUI checkout with .venv (also measured when given)")
    args = parser.parse_args()
    asyncio.run(bench_test_host(args.count))
    if args.comfyui:
        asyncio.run(bench_real(args.comfyui, args.count))


if __name__ == "__main__":
    main()
