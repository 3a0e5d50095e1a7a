"""Import benchmark: ComfyUI's output folder of `--files` PNGs (with ComfyUI's prompt/workflow chunks) into a store.

The files are 512×512 (or `--side`) PNGs with real pixel content (a gradient and noise, so decoding costs what a
render's does), each carrying its own ComfyUI prompt graph and workflow, in 20 dated subfolders. The import runs
as the studio runs it (services/imports.py: walk, read and thumbnail in a worker thread, one transaction per
batch) into a fresh SQLite store; printed: files per second, and the event loop's longest stall meanwhile
(a 1 ms ticker), with the load average beside it.

Run: .venv/bin/python bench/bench_imports.py [--files 2000] [--side 512]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from figures import Figure, emit
from PIL import Image as PILImage

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from import_fixtures import UI_WORKFLOW, comfy_graph  # noqa: E402

from comfyui_studio.config import StudioConfig  # noqa: E402
from comfyui_studio.db import accounts as accounts_db  # noqa: E402
from comfyui_studio.db.store import Store  # noqa: E402
from comfyui_studio.engine import imagemeta  # noqa: E402
from comfyui_studio.services.eventhub import EventHub  # noqa: E402
from comfyui_studio.services.imports import Imports  # noqa: E402


def base_pngs(side: int, count: int = 8) -> list[bytes]:
    out = []
    for i in range(count):
        gradient = PILImage.linear_gradient("L").resize((side, side)).rotate(i * 45)
        noise = PILImage.effect_noise((side, side), 24 + i)
        img = PILImage.merge("RGB", (gradient, noise, gradient.transpose(PILImage.Transpose.ROTATE_90)))
        buf = io.BytesIO()
        img.save(buf, "PNG")
        out.append(buf.getvalue())
    return out


def build_folder(root: Path, files: int, side: int) -> int:
    bases = base_pngs(side)
    total = 0
    for n in range(files):
        data = imagemeta.with_png_text(bases[n % len(bases)], "workflow", json.dumps(UI_WORKFLOW))
        data = imagemeta.with_png_text(data, "prompt", json.dumps(comfy_graph(n)))
        path = root / f"2025-{n % 12 + 1:02d}-{n % 20 + 1:02d}" / f"ComfyUI_{n:05d}_.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        total += len(data)
    return total


async def run(files: int, side: int) -> list[Figure]:
    tmp = Path(tempfile.mkdtemp(prefix="bench-imports-"))
    output = tmp / "output"
    size = build_folder(output, files, side)
    print(f"import: {files} PNGs {side}x{side} with ComfyUI metadata ({size / 1e6:.0f} MB), {os.cpu_count()} CPUs")
    config = StudioConfig(data_dir=tmp / "data")  # type: ignore[call-arg]
    store = Store(f"sqlite+aiosqlite:///{tmp / 'studio.db'}")
    await store.open()
    async with store.transaction() as session:
        owner = await accounts_db.ensure_owner(session)
    imports = Imports(config, store, EventHub(), lambda: output, lambda: owner)
    loop = asyncio.get_running_loop()
    lags: list[float] = []
    stop = False

    async def ticker() -> None:
        while not stop:
            t = loop.time()
            await asyncio.sleep(0.001)
            lags.append(loop.time() - t - 0.001)

    tick = asyncio.create_task(ticker())
    t0 = time.perf_counter()
    await imports.start(owner)
    assert imports._task is not None
    await imports._task
    elapsed = time.perf_counter() - t0
    stop = True
    await tick
    lags.sort()
    worst = lags[-1]
    p99 = lags[int(len(lags) * 0.99)]
    over = sum(1 for lag in lags if lag > 0.010)
    run_row = imports.status()["run"]
    assert isinstance(run_row, dict) and run_row["imported"] == files, run_row
    rate = files / elapsed
    load = os.getloadavg()[0]
    print(f"  {rate:7.1f} files/s  ({elapsed:.1f} s), load {load:.1f}")
    print(
        f"  event loop: longest stall {worst * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms, "
        f"{over} of {len(lags)} ticks > 10 ms"
    )
    await store.close()
    return [
        Figure(f"import {side}px PNG files/s", round(rate, 1), "files/s", better="higher"),
        Figure("import event-loop stall p99", round(p99 * 1000, 1), "ms", target=10),
        Figure("import event-loop stall max", round(worst * 1000, 1), "ms"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--side", type=int, default=512)
    args = parser.parse_args()
    emit(asyncio.run(run(args.files, args.side)))


if __name__ == "__main__":
    main()
