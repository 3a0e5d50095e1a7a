"""A studio store with thousands of images, thumbnails, temp files, orphans and expired previews, on a real disk.

Shared by the maintenance tests and bench/bench_maintenance.py. Rows go in with SQLAlchemy Core in bulk (what the
studio writes one by one over months); files are real files in a ComfyUI-shaped folder (output/, input/, temp/).
`Expected` says what a maintenance run at `at` must remove and what it must keep.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from PIL import Image as PILImage
from sqlalchemy import insert

from comfyui_studio.config import StudioConfig
from comfyui_studio.db import accounts as accounts_db
from comfyui_studio.db.models import ComfyCall, Image, Job
from comfyui_studio.engine.ids import IMAGE, JOB, new_id
from comfyui_studio.services.comfy_remote import RemoteHost
from comfyui_studio.services.studio import Studio

AT = datetime(2026, 6, 1, 12, 0, tzinfo=timezone.utc)
DAY = 86400


def png_bytes(side: int = 16, color: tuple[int, int, int] = (200, 40, 40)) -> bytes:
    out = io.BytesIO()
    PILImage.new("RGB", (side, side), color).save(out, "PNG")
    return out.getvalue()


def webp_bytes(side: int = 16) -> bytes:
    out = io.BytesIO()
    PILImage.new("RGB", (side, side), (40, 200, 40)).save(out, "WEBP", quality=80)
    return out.getvalue()


@dataclass
class Expected:
    removed: set[str] = field(default_factory=set)  # files a run removes
    kept_files: set[str] = field(default_factory=set)  # files that must survive (Create-page originals and more)
    live_jobs: set[str] = field(default_factory=set)
    live_images: set[str] = field(default_factory=set)
    purged_jobs: set[str] = field(default_factory=set)
    recent_trash_jobs: set[str] = field(default_factory=set)
    dropped_uploads: set[str] = field(default_factory=set)
    rebuilt_thumbs: set[str] = field(default_factory=set)
    expired_previews: set[str] = field(default_factory=set)
    pruned_calls: set[int] = field(default_factory=set)
    kept_calls: set[int] = field(default_factory=set)


def build_studio(base: Path, **config_overrides: object) -> Studio:
    """A studio over a data directory and a ComfyUI folder on this disk (as `maintenance --comfy-dir` makes it)."""
    comfy = base / "comfy"
    for name in ("output", "input", "temp"):
        (comfy / name).mkdir(parents=True, exist_ok=True)
    config = StudioConfig(data_dir=base / "data", comfy_dir=comfy, **config_overrides)  # type: ignore[arg-type]
    # Never reached: maintenance reads the files from the folder; the address is a closed port.
    return Studio.build(config, RemoteHost("http://127.0.0.1:9"))


def _touch(path: Path, data: bytes, mtime: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.utime(path, (mtime, mtime))


async def populate(
    studio: Studio,
    *,
    at: datetime = AT,
    live: int = 1500,
    trash_old: int = 100,
    trash_recent: int = 100,
    orphans: int = 200,
    corrupt: int = 60,
    missing: int = 60,
    temp_old: int = 400,
    temp_fresh: int = 100,
    temp_shown: int = 50,
    uploads_unused: int = 30,
    uploads_used: int = 20,
    partial: int = 20,
    calls_old: int = 100,
    submits_kept: int = 20,
    files: bool = True,
) -> Expected:
    """Fill the store and the disk; `files=False` writes the rows only (the 100,000-row benchmark)."""
    folders = studio.maintenance
    output, input_dir, temp = folders.folder("output"), folders.folder("input"), folders.folder("temp")
    assert output is not None and input_dir is not None and temp is not None
    thumbs = studio.config.thumbs_dir.resolve()
    thumbs.mkdir(parents=True, exist_ok=True)
    png, thumb = png_bytes(), webp_bytes()
    now = at.timestamp()
    old, fresh = now - 3 * DAY, now - 600
    owner = studio.owner_id
    exp = Expected()
    jobs: list[dict[str, object]] = []
    images: list[dict[str, object]] = []
    calls: list[dict[str, object]] = []

    def job(created: datetime, **fields: object) -> str:
        job_id = new_id(JOB)
        jobs.append(
            {
                "id": job_id,
                "owner_id": owner,
                "state": "done",
                "graph": {"1": {"class_type": "SaveImage"}},
                "patches": [],
                "extra": {},
                "progress": {},
                "node_errors": {},
                "parameters": {},
                "foreign": False,
                "created_at": created,
                "finished_at": created,
                **fields,
            }
        )
        return job_id

    def image(job_id: str | None, kind: str, folder: str, filename: str, created: datetime, **fields: object) -> str:
        image_id = new_id(IMAGE)
        images.append(
            {
                "id": image_id,
                "owner_id": owner,
                "job_id": job_id,
                "kind": kind,
                "filename": filename,
                "subfolder": fields.pop("subfolder", ""),
                "folder_type": folder,
                "mime": "image/png",
                "width": 16,
                "height": 16,
                "size_bytes": len(png),
                "has_thumb": True,
                "created_at": created,
                "expirable": False,
                **fields,
            }
        )
        return image_id

    created = at - timedelta(days=60)
    # Create-page jobs: each with an output file and a thumbnail; some thumbnails corrupt or missing.
    for i in range(live):
        job_id = job(created + timedelta(seconds=i))
        name = f"studio_{i:06d}_.png"
        image_id = image(job_id, "output", "output", name, created + timedelta(seconds=i))
        exp.live_jobs.add(job_id)
        exp.live_images.add(image_id)
        if files:
            _touch(output / name, png, old)
            exp.kept_files.add(str(output / name))
            if i < corrupt:
                _touch(thumbs / f"{image_id}.webp", b"not a webp at all", old)
                exp.rebuilt_thumbs.add(image_id)
            elif i < corrupt + missing:
                exp.rebuilt_thumbs.add(image_id)
            else:
                _touch(thumbs / f"{image_id}.webp", thumb, old)
                exp.kept_files.add(str(thumbs / f"{image_id}.webp"))
    # Jobs shown with a preview (a temp file an image row points at): the file expires like any preview,
    # the job, its row and its thumbnail stay.
    for i in range(temp_shown):
        job_id = job(created)
        name = f"ComfyUI_temp_shown_{i:05d}_.png"
        image_id = image(job_id, "temp", "temp", name, created)
        exp.live_jobs.add(job_id)
        exp.expired_previews.add(image_id)
        if files:
            _touch(temp / name, png, now - 30 * DAY)
            _touch(thumbs / f"{image_id}.webp", thumb, now - 30 * DAY)
            exp.removed.add(str(temp / name))
            exp.kept_files.add(str(thumbs / f"{image_id}.webp"))
    # The Trash: deleted 40 days ago (past the 30-day retention: purged) and 5 days ago (kept).
    for count, age, purged in ((trash_old, 40, True), (trash_recent, 5, False)):
        for i in range(count):
            deleted = at - timedelta(days=age)
            job_id = job(created, deleted_at=deleted)
            name = f"studio_trash{age}_{i:05d}_.png"
            image_id = image(job_id, "output", "output", name, created, deleted_at=deleted)
            (exp.purged_jobs if purged else exp.recent_trash_jobs).add(job_id)
            if files:
                _touch(output / name, png, old)
                _touch(thumbs / f"{image_id}.webp", thumb, old)
                target = exp.removed if purged else exp.kept_files
                target.update({str(output / name), str(thumbs / f"{image_id}.webp")})
    # Uploads: old ones no job uses (dropped with their file), old ones a job uses (by source image or graph).
    for i in range(uploads_unused + uploads_used):
        name = f"studio_{i:020x}.png"
        image_id = image(None, "upload", "input", name, at - timedelta(days=10), subfolder="studio")
        if files:
            _touch(input_dir / "studio" / name, png, now - 10 * DAY)
            _touch(thumbs / f"{image_id}.webp", thumb, now - 10 * DAY)
        if i < uploads_unused:
            exp.dropped_uploads.add(image_id)
            exp.removed.update({str(input_dir / "studio" / name), str(thumbs / f"{image_id}.webp")})
        elif i % 2:
            job_id = job(created, parent_image_id=image_id)
            exp.live_jobs.add(job_id)
            exp.kept_files.add(str(input_dir / "studio" / name))
        else:
            job_id = job(created, graph={"1": {"class_type": "LoadImage", "inputs": {"image": f"studio/{name}"}}})
            exp.live_jobs.add(job_id)
            exp.kept_files.add(str(input_dir / "studio" / name))
    if files:
        # Thumbnails of no image, temp/preview files old and fresh, partial files.
        for _ in range(orphans):
            path = thumbs / f"{new_id(IMAGE)}.webp"
            _touch(path, thumb, old)
            exp.removed.add(str(path))
        for i in range(temp_old + temp_fresh):
            path = temp / f"ComfyUI_temp_{i:05d}_.png"
            _touch(path, png, old if i < temp_old else fresh)
            (exp.removed if i < temp_old else exp.kept_files).add(str(path))
        for i in range(partial):
            path = (input_dir / "studio" if i % 2 else thumbs) / f"part_{i:04d}.png.part"
            _touch(path, b"cut short", old)
            exp.removed.add(str(path))
    # The call log: old calls whose bodies go, old submits whose job exists (kept for replay).
    started = at - timedelta(days=45)
    some_job = next(iter(exp.live_jobs)) if exp.live_jobs else None
    for i in range(calls_old + submits_kept):
        submit = i >= calls_old
        calls.append(
            {
                "id": 100_000 + i,
                "operation": "submit" if submit else "queue",
                "method": "POST" if submit else "GET",
                "path": "/prompt" if submit else "/queue",
                "request": {"prompt": {"1": {}}} if submit else None,
                "response": {"queue_running": [], "queue_pending": []},
                "status": 200,
                "ok": True,
                "started_at": started,
                "ended_at": started,
                "runtime_ms": 1.0,
                "job_id": some_job if submit else None,
                "owner_id": owner,
            }
        )
        (exp.kept_calls if submit else exp.pruned_calls).add(100_000 + i)
    async with studio.store.transaction() as session:
        second = await accounts_db.add(session, username="second", role="user")
        assert second.id
        # jobs that take an upload as their source image go in after the images (the keys point both ways)
        sourced = [j for j in jobs if "parent_image_id" in j]
        plain = [j for j in jobs if "parent_image_id" not in j]
        for batch, model in ((plain, Job), (images, Image), (sourced, Job)):
            for start in range(0, len(batch), 5000):
                await session.execute(insert(model), batch[start : start + 5000])
        if calls:
            await session.execute(insert(ComfyCall), calls)
    return exp


def disk_files(*roots: Path) -> set[str]:
    out: set[str] = set()
    for root in roots:
        for folder, _dirs, names in os.walk(root):
            out.update(str(Path(folder) / n) for n in names)
    return out
