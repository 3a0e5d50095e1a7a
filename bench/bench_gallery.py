"""Gallery benchmark: the feed, deep cursors, search and filters at 10k / 100k / 1M jobs, API against raw SQL.

For each size a fresh store is seeded (bench/seed_gallery.py: one prompt and one image per job, ~1 % liked, ~2 %
in boards, a common word in 20 % of prompts and a rare one in 20; the board case filters by the largest board;
as many logged ComfyUI calls as jobs, ~2 % of them another user's),
the studio is started on it on the ComfyUI test host, and each case is requested over HTTP one at a time (the
whole path a user waits on: route, guards, store, serialisation). In the same run, raw sqlite3 executes the
exact statements the studio ran for that request (captured from its engine), so the gap between the two is the
studio's own cost.

Run: .venv/bin/python bench/bench_gallery.py [--sizes 10000,100000,1000000] [--count 200] [--store-dir DIR]
(--store-dir keeps each size's seeded store in DIR/<jobs>/ and reuses it; --seed-only seeds them and stops)
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from figures import Figure, emit, pct
from PIL import Image as PILImage
from sqlalchemy import Engine, event

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

from conftest import Api  # noqa: E402
from harness import start_studio  # noqa: E402
from seed_gallery import COMMON_WORD, RARE_WORD, board_ids, seed, seed_calls  # noqa: E402

TARGETS_MS = {
    "feed": 5.0,
    "deep cursor": 5.0,
    "search common": 20.0,
    "search rare": 20.0,
    "liked": 10.0,
    "board": 10.0,
    "prompt history": 5.0,
    "call log": 5.0,
    "call log deep cursor": 5.0,
    "call log of a job": 5.0,
}


class LoopLag:
    """How late the event loop wakes a 1 ms timer while armed: its worst is the longest the loop was blocked
    (the client shares the loop, so this is an upper bound for the studio)."""

    def __init__(self) -> None:
        self.worst_ms = 0.0
        self._task: asyncio.Task[None] | None = None

    async def _watch(self) -> None:
        while True:
            t0 = time.perf_counter()
            await asyncio.sleep(0.001)
            self.worst_ms = max(self.worst_ms, (time.perf_counter() - t0) * 1000 - 1.0)

    def start(self) -> None:
        self.worst_ms = 0.0
        self._task = asyncio.get_running_loop().create_task(self._watch())

    async def stop(self) -> float:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        return self.worst_ms


class Capture:
    """The statements (with their parameters) the studio's engine runs while armed."""

    def __init__(self) -> None:
        self.armed = False
        self.statements: list[tuple[str, Any]] = []
        # every engine: the store's writer and its read pool
        event.listen(Engine, "before_cursor_execute", self._record)

    def _record(self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        if self.armed and not many and statement.lstrip().upper().startswith("SELECT"):
            self.statements.append((statement, parameters))


BULK = 200


def zlib_free_png(side: int) -> bytes:
    """A PNG of noise (what photos compress to): ~3 bytes a pixel."""
    image = PILImage.frombytes("RGB", (side, side), os.urandom(side * side * 3))
    out = io.BytesIO()
    image.save(out, "PNG", compress_level=1)
    return out.getvalue()


async def heavy_cases(
    api: Api, base: str, bulk_ids: list[str], zip_ids: str, lag: LoopLag, repeat: int
) -> dict[str, dict[str, float]]:
    """A bulk like/unlike of 200 jobs and a zip of 200 images: their time and how long they held the loop."""
    out: dict[str, dict[str, float]] = {}
    times: list[float] = []
    lag.start()
    for i in range(repeat):
        t0 = time.perf_counter()
        status, body = await api.post("/jobs/bulk", json={"ids": bulk_ids, "op": "like" if i % 2 == 0 else "unlike"})
        times.append((time.perf_counter() - t0) * 1000)
        assert status == 200 and not body["data"]["failed"], body
    out[f"bulk like of {len(bulk_ids)} jobs"] = {
        "api_p50": pct(times, 50),
        "api_p95": pct(times, 95),
        "loop_ms": await lag.stop(),
    }
    times, size = [], 0
    lag.start()
    for _ in range(repeat):
        t0 = time.perf_counter()
        async with api.session.get(base + "/images/archive", params={"ids": zip_ids}) as resp:
            assert resp.status == 200, await resp.text()
            size = 0
            async for chunk in resp.content.iter_chunked(1 << 16):
                size += len(chunk)
        times.append((time.perf_counter() - t0) * 1000)
    out[f"zip of {len(bulk_ids)} images"] = {
        "api_p50": pct(times, 50),
        "api_p95": pct(times, 95),
        "loop_ms": await lag.stop(),
        "mb": size / 1e6,
    }
    return out


async def prepare_store(base: Path, jobs: int) -> tuple[Path, int, float]:
    """A migrated store of ``jobs`` seeded jobs under ``base``: reused when an earlier run left one there."""
    db_path = base / "user" / "__studio" / "studio.db"
    marker = base / "seeded.json"
    if marker.exists() and db_path.exists():
        done = json.loads(marker.read_text())
        if done["jobs"] == jobs:
            if done.get("calls") != jobs:  # a store kept from before the call log was seeded
                seed_calls(db_path, jobs, owner_id=done["owner"])
                marker.write_text(json.dumps({**done, "calls": jobs}))
            return db_path, done["owner"], done["seed_s"]
    run = await start_studio(base)
    async with aiohttp.ClientSession() as http:
        await Api(http, run.api).open_session()  # makes the loopback owner
    await run.stop()
    with sqlite3.connect(db_path) as db:
        owner = db.execute("SELECT min(id) FROM users").fetchone()[0]
    started = time.perf_counter()
    seed(db_path, jobs, owner_id=owner)
    seed_calls(db_path, jobs, owner_id=owner)  # as many logged calls as jobs
    seeded_s = time.perf_counter() - started
    marker.write_text(json.dumps({"jobs": jobs, "owner": owner, "seed_s": seeded_s, "calls": jobs}))
    return db_path, owner, seeded_s


async def measure_size(jobs: int, count: int, store_dir: Path | None) -> dict[str, dict[str, float]]:
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) if store_dir is None else store_dir / str(jobs)
        base.mkdir(parents=True, exist_ok=True)
        db_path, owner, seeded_s = await prepare_store(base, jobs)
        with sqlite3.connect(db_path) as db:
            db.execute("ANALYZE")
            deep = db.execute(
                "SELECT id FROM jobs WHERE owner_id = ? AND deleted_at IS NULL ORDER BY id DESC LIMIT 1 OFFSET ?",
                (owner, jobs // 2),
            ).fetchone()[0]
            # an action run's image whose parent was itself made by an action: a lineage two levels deep
            (lineage_image,) = db.execute(
                "SELECT i.id FROM images i JOIN jobs j ON j.id = i.job_id JOIN images p ON p.id = j.parent_image_id"
                " JOIN jobs pj ON pj.id = p.job_id WHERE pj.parent_image_id IS NOT NULL ORDER BY i.id DESC LIMIT 1"
            ).fetchone() or (None,)
            (deep_call,) = db.execute(
                "SELECT id FROM comfy_calls WHERE owner_id = ? ORDER BY id DESC LIMIT 1 OFFSET ?", (owner, jobs // 2)
            ).fetchone()
            (called_job,) = db.execute(
                "SELECT job_id FROM comfy_calls WHERE owner_id = ? AND job_id IS NOT NULL ORDER BY id LIMIT 1 OFFSET ?",
                (owner, jobs // 3),
            ).fetchone()
            newest = db.execute(
                "SELECT j.id, i.id, i.subfolder, i.filename FROM jobs j JOIN images i ON i.job_id = j.id"
                " WHERE j.owner_id = ? AND j.deleted_at IS NULL ORDER BY j.id DESC LIMIT ?",
                (owner, BULK),
            ).fetchall()
        bulk_ids = [job for job, _i, _s, _f in newest]
        zip_ids = ",".join(image for _j, image, _s, _f in newest)
        cases = {
            "feed": "/jobs?limit=50",
            "deep cursor": f"/jobs?limit=50&cursor={deep}",
            "search common": f"/jobs/search?limit=50&q={COMMON_WORD}",
            "search rare": f"/jobs/search?limit=50&q={RARE_WORD}",
            "liked": "/jobs/search?limit=50&liked=true",
            "board": f"/jobs/search?limit=50&board_id={board_ids(owner)[0]}",
            "prompt history": "/prompts/history?limit=50",
            "call log": "/calls?limit=50",
            "call log deep cursor": f"/calls?limit=50&cursor={deep_call}",
            "call log of a job": f"/calls?limit=50&job_id={called_job}",
            **({"lineage": f"/lineage/{lineage_image}"} if lineage_image else {}),
        }
        run = await start_studio(base)
        # the newest images' files, for the zip (realistic size: ~1.8 MB PNGs are mostly incompressible)
        output = run.host.server.paths.output_dir
        payload = zlib_free_png(1024)
        for _job, _image, subfolder, filename in newest:
            (output / subfolder).mkdir(parents=True, exist_ok=True)
            (output / subfolder / filename).write_bytes(payload)
        capture = Capture()
        lag = LoopLag()
        raw = sqlite3.connect(db_path)
        results: dict[str, dict[str, float]] = {}
        try:
            async with aiohttp.ClientSession() as http:
                api = Api(http, run.api)
                await api.open_session()
                for name, path in cases.items():
                    capture.statements.clear()
                    capture.armed = True
                    status, body = await api.get(path)
                    capture.armed = False
                    assert status == 200, body
                    statements = list(capture.statements)
                    for _ in range(20):
                        await api.get(path)  # warm-up
                    api_ms, raw_ms = [], []
                    lag.start()
                    for _ in range(count):
                        t0 = time.perf_counter()
                        await api.get(path)
                        api_ms.append((time.perf_counter() - t0) * 1000)
                        t0 = time.perf_counter()
                        for sql, params in statements:
                            raw.execute(sql, params).fetchall()
                        raw_ms.append((time.perf_counter() - t0) * 1000)
                    results[name] = {
                        "rows": len(body["data"].get("items") or [body["data"]]),
                        "raw_p50": pct(raw_ms, 50),
                        "api_p50": pct(api_ms, 50),
                        "api_p95": pct(api_ms, 95),
                        "statements": len(statements),
                        "loop_ms": await lag.stop(),
                    }
                results.update(await heavy_cases(api, run.api, bulk_ids, zip_ids, lag, max(3, count // 20)))
        finally:
            raw.close()
            await run.stop()
        results["_store"] = {"seed_s": seeded_s, "mb": db_path.stat().st_size / 1e6} if db_path.exists() else {}
    return results


LOOP_TARGET_MS = 10.0


def cell(r: dict[str, float], key: str, fmt: str = ".2f") -> str:
    return format(r[key], fmt) if key in r else "—"


async def main(sizes: list[int], count: int, store_dir: Path | None = None) -> int:
    all_results: dict[int, dict[str, dict[str, float]]] = {}
    for size in sizes:
        all_results[size] = await measure_size(size, count, store_dir)
    short = 0
    figures: list[Figure] = []
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    print(f"\n## Gallery at {', '.join(f'{s:,}' for s in sizes)} jobs ({count} requests per case, one at a time)")
    print(
        "| jobs | case | rows | statements | raw sqlite3 p50 ms | API p50 ms | API p95 ms | target p95 "
        "| loop blocked max ms (≤ 10) |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for size, results in all_results.items():
        for name, r in results.items():
            if name.startswith("_"):
                continue
            target = TARGETS_MS.get(name)
            ok = target is None or r["api_p95"] <= target
            loop_ok = r["loop_ms"] <= LOOP_TARGET_MS
            short += (not ok) + (not loop_ok)
            verdict = "—" if target is None else f"≤ {target:.0f} ms {'pass' if ok else 'short'}"
            print(
                f"| {size:,} | {name} | {cell(r, 'rows', '.0f')} | {cell(r, 'statements', '.0f')} | "
                f"{cell(r, 'raw_p50')} | {r['api_p50']:.2f} | {r['api_p95']:.2f} | {verdict} | "
                f"{r['loop_ms']:.1f} {'pass' if loop_ok else 'short'} |"
            )
            figures.append(Figure(f"{name} at {size:,} jobs: API p95", r["api_p95"], "ms", target))
            figures.append(Figure(f"{name} at {size:,} jobs: loop blocked max", r["loop_ms"], "ms", LOOP_TARGET_MS))
    if len(sizes) > 1:
        small, large = all_results[sizes[0]], all_results[sizes[-1]]
        print(f"\np95 at {sizes[-1]:,} / p95 at {sizes[0]:,} (target ≤ 1.5×):")
        for name in (n for n in large if not n.startswith("_") and n in small):
            ratio = large[name]["api_p95"] / small[name]["api_p95"]
            print(f"- {name}: {ratio:.2f}×")
            figures.append(
                Figure(f"{name}: p95 at {sizes[-1]:,} / at {sizes[0]:,}", ratio, "×", 1.5, baseline=f"{sizes[0]:,}")
            )
    emit(figures)
    for size, results in all_results.items():
        store = results.get("_store", {})
        if store:
            print(f"store of {size:,} jobs: seeded in {store['seed_s']:.1f} s, {store['mb']:.0f} MB")
    print(json.dumps({str(k): v for k, v in all_results.items()}, default=lambda o: round(o, 3)), file=sys.stderr)
    return 1 if short else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument(
        "--store-dir", type=Path, help="keep each size's seeded store in DIR/<jobs>/ and reuse it on the next run"
    )
    parser.add_argument("--seed-only", action="store_true", help="seed the stores (with --store-dir) and stop")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    if args.seed_only:
        if args.store_dir is None:
            parser.error("--seed-only needs --store-dir")
        for size in sizes:
            (args.store_dir / str(size)).mkdir(parents=True, exist_ok=True)
            print(asyncio.run(prepare_store(args.store_dir / str(size), size)))
        sys.exit(0)
    sys.exit(asyncio.run(main(sizes, args.count, args.store_dir)))
