"""Gallery benchmark: the feed, deep cursors, search and filters at 10k / 100k / 1M jobs, API against raw SQL.

For each size a fresh store is seeded (bench/seed_gallery.py: one prompt and one image per job, ~1 % liked, ~2 %
in boards, a common word in 20 % of prompts and a rare one in 20; the board case filters by the largest board),
the studio is started on it on the ComfyUI test host, and each case is requested over HTTP one at a time (the
whole path a user waits on: route, guards, store, serialisation). In the same run, raw sqlite3 executes the
exact statements the studio ran for that request (captured from its engine), so the gap between the two is the
studio's own cost.

Run: .venv/bin/python bench/bench_gallery.py [--sizes 10000,100000,1000000] [--count 200]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from figures import Figure, emit
from sqlalchemy import Engine, event

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

from conftest import Api  # noqa: E402
from harness import start_studio  # noqa: E402
from seed_gallery import COMMON_WORD, RARE_WORD, board_ids, seed  # noqa: E402

TARGETS_MS = {
    "feed": 5.0,
    "deep cursor": 5.0,
    "search common": 20.0,
    "search rare": 20.0,
    "liked": 10.0,
    "board": 10.0,
    "prompt history": 5.0,
}


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(p / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


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


async def measure_size(jobs: int, count: int) -> dict[str, dict[str, float]]:
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        run = await start_studio(base)
        async with aiohttp.ClientSession() as http:
            await Api(http, run.api).open_session()  # makes the loopback owner
        await run.stop()
        db_path = run.data_dir / "studio.db"
        with sqlite3.connect(db_path) as db:
            owner = db.execute("SELECT min(id) FROM users").fetchone()[0]
        started = time.perf_counter()
        seed(db_path, jobs, owner_id=owner)
        seeded_s = time.perf_counter() - started
        with sqlite3.connect(db_path) as db:
            db.execute("ANALYZE")
            deep = db.execute(
                "SELECT id FROM jobs WHERE owner_id = ? AND deleted_at IS NULL ORDER BY id DESC LIMIT 1 OFFSET ?",
                (owner, jobs // 2),
            ).fetchone()[0]
        cases = {
            "feed": "/jobs?limit=50",
            "deep cursor": f"/jobs?limit=50&cursor={deep}",
            "search common": f"/jobs/search?limit=50&q={COMMON_WORD}",
            "search rare": f"/jobs/search?limit=50&q={RARE_WORD}",
            "liked": "/jobs/search?limit=50&liked=true",
            "board": f"/jobs/search?limit=50&board_id={board_ids(owner)[0]}",
            "prompt history": "/prompts/history?limit=50",
        }
        run = await start_studio(base)
        capture = Capture()
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
                    for _ in range(count):
                        t0 = time.perf_counter()
                        await api.get(path)
                        api_ms.append((time.perf_counter() - t0) * 1000)
                        t0 = time.perf_counter()
                        for sql, params in statements:
                            raw.execute(sql, params).fetchall()
                        raw_ms.append((time.perf_counter() - t0) * 1000)
                    results[name] = {
                        "rows": len(body["data"]["items"]),
                        "raw_p50": pct(raw_ms, 50),
                        "api_p50": pct(api_ms, 50),
                        "api_p95": pct(api_ms, 95),
                        "statements": len(statements),
                    }
        finally:
            raw.close()
            await run.stop()
        results["_store"] = {"seed_s": seeded_s, "mb": db_path.stat().st_size / 1e6} if db_path.exists() else {}
    return results


async def main(sizes: list[int], count: int) -> int:
    all_results: dict[int, dict[str, dict[str, float]]] = {}
    for size in sizes:
        all_results[size] = await measure_size(size, count)
    short = 0
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    print(f"\n## Gallery at {', '.join(f'{s:,}' for s in sizes)} jobs ({count} requests per case, one at a time)")
    print("| jobs | case | rows | statements | raw sqlite3 p50 ms | API p50 ms | API p95 ms | target p95 |")
    print("|---|---|---|---|---|---|---|---|")
    for size, results in all_results.items():
        for name, r in results.items():
            if name.startswith("_"):
                continue
            ok = r["api_p95"] <= TARGETS_MS[name]
            short += not ok
            print(
                f"| {size:,} | {name} | {r['rows']:.0f} | {r['statements']:.0f} | {r['raw_p50']:.2f} | "
                f"{r['api_p50']:.2f} | {r['api_p95']:.2f} | ≤ {TARGETS_MS[name]:.0f} ms {'pass' if ok else 'short'} |"
            )
    figures = [
        Figure(f"{name} at {size:,} jobs: API p95", r["api_p95"], "ms", TARGETS_MS[name])
        for size, results in all_results.items()
        for name, r in results.items()
        if not name.startswith("_")
    ]
    if len(sizes) > 1:
        small, large = all_results[sizes[0]], all_results[sizes[-1]]
        print(f"\np95 at {sizes[-1]:,} / p95 at {sizes[0]:,} (target ≤ 1.5×):")
        for name in TARGETS_MS:
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
    args = parser.parse_args()
    sys.exit(asyncio.run(main([int(s) for s in args.sizes.split(",")], args.count)))
