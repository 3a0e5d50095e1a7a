"""Storage maintenance benchmark: thumbnail throughput, and a maintenance pass over 100,000 image rows.

1. Thumbnails: a 1024×1024 PNG (photo-like noise over a gradient, ~2–3 MB) decoded and written as the studio's
   384 px WebP (services/images.py `_make_thumb`, the code registration and rebuilds run), on 1 thread and on
   one thread per CPU; images per second and the CPU count.
2. A pass over a store of `--rows` image rows (each with its output file and thumbnail on disk, plus Trash,
   orphans, temp files): the time of `report` (usage + what a run would do) and of a dry run (the same plan,
   listed item by item and recorded), then the query plans of maintenance's queries (an index, not a full
   scan, wherever an index can answer).

Run: .venv/bin/python bench/bench_maintenance.py [--rows 100000] [--thumbs 40]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

from figures import Figure, emit
from PIL import Image as PILImage

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from maintenance_store import AT, build_studio, populate  # noqa: E402

from comfyui_studio.db import maintenance as repo  # noqa: E402
from comfyui_studio.services.images import _make_thumb  # noqa: E402


def source_png() -> bytes:
    side = 1024
    gradient = PILImage.linear_gradient("L").resize((side, side))
    noise = PILImage.effect_noise((side, side), 48)
    img = PILImage.merge("RGB", (gradient, noise, gradient.transpose(PILImage.Transpose.ROTATE_90)))
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


def thumbnails(count: int) -> list[Figure]:
    data = source_png()
    folder = Path(tempfile.mkdtemp(prefix="bench-thumbs-"))
    cpus = os.cpu_count() or 1
    print(f"thumbnails: 1024x1024 PNG ({len(data) / 1e6:.1f} MB) -> 384 px WebP, {cpus} CPUs")
    figures = []
    for workers in sorted({1, cpus}):
        _make_thumb(data, folder / "warm.webp")
        t0 = time.perf_counter()
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(lambda i: _make_thumb(data, folder / f"{i}.webp"), range(count)))
        elapsed = time.perf_counter() - t0
        print(f"  {workers} thread(s): {count / elapsed:7.1f} images/s  ({elapsed * 1000 / count:.1f} ms each)")
        figures.append(Figure(f"thumbnails, {workers} thread(s)", count / elapsed, "images/s", better="higher"))
    return figures


QUERIES = {
    "Trash (deleted jobs not purged)": "SELECT id FROM jobs WHERE deleted_at IS NOT NULL AND purged_at IS NULL "
    "ORDER BY deleted_at, id",
    "uploads used as a job's source": "SELECT DISTINCT parent_image_id FROM jobs WHERE parent_image_id IN ('i_x')",
    "call bodies to prune": "SELECT count(*) FROM comfy_calls WHERE started_at < '2026-01-01' AND body_pruned_at IS "
    "NULL AND NOT (operation = 'submit' AND EXISTS (SELECT 1 FROM jobs WHERE jobs.id = comfy_calls.job_id AND "
    "jobs.purged_at IS NULL))",
    "Civitai cache, newest first": "SELECT key, length(body) FROM civitai_cache ORDER BY fetched_at DESC",
    "images of Trash jobs": "SELECT * FROM images WHERE job_id IN ('j_x') ORDER BY id",
    "pending journal": "SELECT * FROM maintenance_journal ORDER BY id",
    "last vacuum": "SELECT max(finished_at) FROM maintenance_runs WHERE dry_run = 0 AND status = 'done' "
    "AND vacuumed = 1",
}


async def maintenance_pass(rows: int) -> list[Figure]:
    base = Path(tempfile.mkdtemp(prefix="bench-maintenance-"))
    studio = build_studio(base)
    await studio.start(follow_comfy=False)
    studio.maintenance._clock = lambda: AT
    figures = []
    try:
        t0 = time.perf_counter()
        await populate(
            studio, live=rows, trash_old=500, trash_recent=500, orphans=1000, corrupt=100, missing=100,
            temp_old=2000, temp_fresh=500, uploads_unused=50, uploads_used=50, partial=20, calls_old=5000,
            submits_kept=1000,
        )  # fmt: skip
        print(f"\nmaintenance pass: store of {rows:,} image rows + files built in {time.perf_counter() - t0:.1f} s")
        async with studio.store.transaction() as session:
            await repo.optimize(session)  # what every run leaves behind: fresh statistics
        for label, call in (
            ("report", studio.maintenance.report),
            ("dry run", lambda: studio.maintenance.dry_run(None)),
        ):
            times = []
            for _ in range(3):
                t0 = time.perf_counter()
                result = await call()
                times.append(time.perf_counter() - t0)
            items = len(result.get("items") or []) or sum(v["count"] for v in result["remove"].values())
            print(f"  {label:8}: {min(times) * 1000:7.0f} ms best of 3 ({items:,} removals planned)")
            figures.append(Figure(f"{label} over {rows:,} image rows", min(times), "s"))
        plan = await studio.maintenance.plan(AT + timedelta(seconds=1))
        print(f"  plan: {len(plan.removals):,} removals, {len(plan.rebuild)} thumbnails to rebuild, "
              f"{plan.call_bodies[0]:,} call bodies")  # fmt: skip
        print("\nquery plans:")
        async with studio.store.transaction() as session:
            for label, sql in QUERIES.items():
                steps = await repo.explain(session, sql)
                print(f"  {label}:")
                for step in steps:
                    print(f"    {step}")
    finally:
        await studio.stop()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--thumbs", type=int, default=40)
    args = parser.parse_args()
    figures = thumbnails(args.thumbs)
    figures += asyncio.run(maintenance_pass(args.rows))
    emit(figures)


if __name__ == "__main__":
    main()
