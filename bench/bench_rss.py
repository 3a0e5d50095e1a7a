"""Memory the studio adds to ComfyUI: resident set size at idle and under load, ComfyUI alone against ComfyUI
with the studio, in the same run (a real ComfyUI on the CPU; needs a checkout with its .venv).

Idle: a minute after start-up settles (first-run work done), the process's RSS. Under load: 200 model-free jobs
submitted (through the studio's POST /jobs with a three-code prompt when it is there, ComfyUI's /prompt
otherwise) while 20 clients follow the event stream; the peak RSS sampled every 50 ms.

Run: .venv/bin/python bench/bench_rss.py --comfyui COMFYUI_DIR [--jobs 200] [--clients 20]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import uuid
from pathlib import Path

import aiohttp
from figures import Figure, emit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from bench_events import start_comfyui  # noqa: E402
from conftest import Api  # noqa: E402

PROMPT = "a small red square --ar 1:1 --seed 7 --style vivid"


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def graph(i: int) -> dict[str, object]:
    return {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": i % 65536}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "studio_rss"}},
    }


async def follow(url: str, stop: asyncio.Event) -> None:
    async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
        while not stop.is_set():
            try:
                await asyncio.wait_for(ws.receive(), 0.5)
            except asyncio.TimeoutError:
                continue


async def measure(comfy_dir: Path, with_studio: bool, jobs: int, clients: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        proc, url = await start_comfyui(comfy_dir, Path(tmp) / "base", with_studio=with_studio)
        try:
            await asyncio.sleep(20)  # first-run work (the studio's store, workflows, model lists) settles
            idle = rss_mb(proc.pid)
            peak = idle
            stop = asyncio.Event()

            async def sample() -> None:
                nonlocal peak
                while not stop.is_set():
                    peak = max(peak, rss_mb(proc.pid))
                    await asyncio.sleep(0.05)

            async with aiohttp.ClientSession() as session:
                api = Api(session, url + "/studio/api/v1")
                if with_studio:
                    await api.open_session()
                    stream = url.replace("http", "ws") + "/studio/api/v1/ws"
                else:
                    stream = url.replace("http", "ws") + f"/ws?clientId={uuid.uuid4()}"
                followers = [asyncio.create_task(follow(stream, stop)) for _ in range(clients)]
                sampler = asyncio.create_task(sample())
                for i in range(jobs):
                    if with_studio:
                        status, body = await api.post("/jobs", json={"graph": graph(i), "prompt": PROMPT})
                        assert status == 201, body
                    else:
                        async with session.post(url + "/prompt", json={"prompt": graph(i)}) as resp:
                            assert resp.status == 200, await resp.text()
                while True:  # until ComfyUI's queue is empty
                    async with session.get(url + "/queue") as resp:
                        queue = await resp.json()
                    if not queue["queue_running"] and not queue["queue_pending"]:
                        break
                    await asyncio.sleep(0.2)
                stop.set()
                await sampler
                for task in followers:
                    task.cancel()
                await asyncio.gather(*followers, return_exceptions=True)
            return idle, peak
        finally:
            proc.terminate()
            await proc.wait()


async def main(comfy_dir: Path, jobs: int, clients: int) -> None:
    alone = await measure(comfy_dir, False, jobs, clients)
    studio = await measure(comfy_dir, True, jobs, clients)
    print(f"\n## Resident memory, real ComfyUI at {comfy_dir.name} ({jobs} jobs, {clients} clients on the stream)")
    print("| | ComfyUI alone MB | with the studio MB | added MB |")
    print("|---|---|---|---|")
    for label, a, s in (("idle", alone[0], studio[0]), ("peak under load", alone[1], studio[1])):
        print(f"| {label} | {a:.0f} | {s:.0f} | {s - a:+.0f} |")
    emit(
        [
            Figure("RSS added to ComfyUI at idle", studio[0] - alone[0], "MB", baseline="ComfyUI alone"),
            Figure("RSS added to ComfyUI under load (peak)", studio[1] - alone[1], "MB", baseline="ComfyUI alone"),
        ]
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--comfyui", type=Path, required=True)
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--clients", type=int, default=20)
    args = parser.parse_args()
    asyncio.run(main(args.comfyui, args.jobs, args.clients))
