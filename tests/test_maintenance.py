"""Storage maintenance on a real disk and SQLite file: what it removes, what it never touches, crashes, backups."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from maintenance_store import AT, DAY, Expected, build_studio, disk_files, png_bytes, populate
from sqlalchemy import select

from comfyui_studio.db.models import ComfyCall, Image, Job, MaintenanceJournal
from comfyui_studio.engine.errors import StudioError
from comfyui_studio.services.studio import Studio

REPO = Path(__file__).resolve().parent.parent


both_databases = pytest.mark.both_databases


@pytest.fixture
async def studio(tmp_path: Path, studio_database: dict[str, object]) -> AsyncIterator[Studio]:
    s = build_studio(tmp_path, **studio_database)
    await s.start(follow_comfy=False)
    s.maintenance._clock = lambda: AT
    yield s
    await s.stop()


def roots(studio: Studio) -> list[Path]:
    m = studio.maintenance
    return [p for p in (m.folder("output"), m.folder("input"), m.folder("temp"), studio.config.thumbs_dir) if p]


async def rows(studio: Studio, model: type, *where: object) -> list:
    async with studio.store.transaction() as session:
        return list((await session.scalars(select(model).where(*where))).all())


@both_databases
async def test_a_dry_run_lists_exactly_what_the_run_then_removes(studio: Studio) -> None:
    exp = await populate(studio)
    before = disk_files(*roots(studio))
    dry = await studio.maintenance.dry_run(studio.owner_id)
    assert disk_files(*roots(studio)) == before, "a dry run touches nothing"
    listed = {(i["category"], i["path"], i["bytes"]) for i in dry["items"]}
    done = await studio.maintenance.run(studio.owner_id, at=AT)
    removed = {(i["category"], i["path"], i["bytes"]) for i in done["removed"]}
    assert listed == removed
    assert len(removed) == len(exp.removed) > 800
    gone = before - disk_files(*roots(studio))
    assert gone == exp.removed
    assert done["bytes_freed"] == sum(b for _c, _p, b in removed)
    # the audit row says what went and what it freed
    async with studio.store.transaction() as session:
        from comfyui_studio.db.models import AuditLog

        audit = (await session.scalars(select(AuditLog).where(AuditLog.entity == "maintenance_run"))).all()
    assert [a.changes["bytes_freed"] for a in audit] == [done["bytes_freed"]]
    assert audit[0].changes["removed"]["previews"] == 400 + 50


@both_databases
async def test_create_page_jobs_images_and_their_files_all_survive(studio: Studio) -> None:
    exp = await populate(studio)
    await studio.maintenance.run(studio.owner_id, at=AT)
    files = disk_files(*roots(studio))
    assert exp.kept_files <= files, sorted(exp.kept_files - files)[:5]
    jobs = {j.id: j for j in await rows(studio, Job)}
    assert exp.live_jobs <= set(jobs)
    assert all(jobs[j].deleted_at is None and jobs[j].purged_at is None for j in exp.live_jobs)
    images = {i.id: i for i in await rows(studio, Image)}
    assert exp.live_images <= set(images) and exp.expired_previews <= set(images)
    assert all(images[i].purged_at is None for i in exp.live_images)
    # a job's preview in ComfyUI's temp folder expired: its file went, its row and thumbnail stay
    assert all(images[i].purged_at is not None and images[i].has_thumb for i in exp.expired_previews)
    # missing and corrupt thumbnails were made again from the originals, off the event loop
    for image_id in exp.rebuilt_thumbs:
        data = (studio.config.thumbs_dir / f"{image_id}.webp").read_bytes()
        assert data[:4] == b"RIFF" and data[8:12] == b"WEBP"
    # the Trash: old deletions purged (rows kept, marked), recent ones untouched
    assert all(jobs[j].purged_at is not None for j in exp.purged_jobs)
    assert all(jobs[j].purged_at is None for j in exp.recent_trash_jobs)
    assert exp.dropped_uploads.isdisjoint(images)
    # call-log bodies: pruned with their rows kept, except submits whose job still exists
    calls = {c.id: c for c in await rows(studio, ComfyCall)}
    assert all(calls[c].request is None and calls[c].body_pruned_at is not None for c in exp.pruned_calls)
    assert all(calls[c].request is not None and calls[c].body_pruned_at is None for c in exp.kept_calls)
    # a second run finds nothing more to do
    again = await studio.maintenance.dry_run(studio.owner_id)
    assert again["items"] == [] and again["thumbnails_to_rebuild"] == 0


@both_databases
async def test_rows_and_files_agree_after_a_run(studio: Studio) -> None:
    await populate(studio, live=300, temp_old=50, orphans=20)
    await studio.maintenance.run(studio.owner_id, at=AT)
    assert await disagreements(studio) == []


async def disagreements(studio: Studio) -> list[str]:
    """Image rows whose file is missing without a purge mark, or purged rows whose file is still there."""
    out = []
    m = studio.maintenance
    for image in await rows(studio, Image):
        folder = m.folder(image.folder_type)
        assert folder is not None
        exists = (folder / image.subfolder / image.filename).exists()
        if image.purged_at is None and not exists:
            out.append(f"{image.id}: file gone, row not purged")
        if image.purged_at is not None and exists:
            out.append(f"{image.id}: purged, file still there")
        thumb = studio.config.thumbs_dir / f"{image.id}.webp"
        if image.purged_at is not None and image.folder_type != "temp" and thumb.exists():
            out.append(f"{image.id}: purged, thumbnail still there")
    return out


@both_databases
async def test_the_quota_takes_expirable_files_oldest_first_and_never_the_trash_or_kept_work(studio: Studio) -> None:
    exp = await populate(
        studio, live=40, trash_old=0, trash_recent=10, orphans=0, corrupt=0, missing=0, temp_old=0, temp_fresh=0,
        temp_shown=0, uploads_unused=0, uploads_used=0, partial=0, calls_old=0, submits_kept=0,
    )  # fmt: skip
    temp = studio.maintenance.folder("temp")
    assert temp is not None
    png = png_bytes()
    now = AT.timestamp()
    # previews younger than their retention, each an hour older than the next
    previews = []
    for i in range(10):
        path = temp / f"preview_{i}.png"
        path.write_bytes(png)
        os.utime(path, (now - 3600 * (i + 2), now - 3600 * (i + 2)))
        previews.append(str(path))
    images = await rows(studio, Image, Image.job_id.in_(exp.live_jobs))
    marked = sorted(images, key=lambda i: i.created_at)[:5]
    for image in marked:
        await studio.maintenance.set_expirable(studio.owner_id, image.id, True)
    plan = await studio.maintenance.plan(AT)
    files_bytes = sum(v for k, v in plan.usage.items() if k != "database")
    # room for all but ~12 previews' worth: previews (older than thumbnails' mtime? no: thumbnails are 3 days old)
    quota_bytes = files_bytes - 12 * len(png)
    await studio.settings.update(studio.owner_id, True, {"storage_quota_gb": quota_bytes / 1024**3})
    plan = await studio.maintenance.plan(AT)
    taken = [r for r in plan.removals if r.category == "quota"]
    assert taken, plan.notes
    ages = [r.age_key for r in taken]
    assert ages == sorted(ages), "oldest first"
    assert sum(v for k, v in plan.usage.items() if k != "database") - plan.bytes <= quota_bytes
    # it stops as soon as it is under: without the last one it would still be over
    assert sum(v for k, v in plan.usage.items() if k != "database") - (plan.bytes - taken[-1].size) > quota_bytes
    trash_paths = {str(p) for p in disk_files(*roots(studio)) if "trash" in p}
    assert trash_paths and trash_paths.isdisjoint(r.path for r in plan.removals)
    kept_outputs = {i.filename for i in images if i not in marked}
    assert not any(Path(r.path).name in kept_outputs for r in plan.removals)
    assert any("over quota" in n for n in plan.notes)
    # the oldest expirable things are the marked outputs (60 days old), then the thumbnails, then previews
    assert {r.target_id for r in taken if r.effect == "purge_image"} == {i.id for i in marked}
    done = await studio.maintenance.run(studio.owner_id, at=AT)
    assert done["summary"]["notes"]
    assert await disagreements(studio) == []


@both_databases
async def test_the_per_user_quota_takes_only_that_users_expirable_files(studio: Studio) -> None:
    await populate(
        studio, live=30, trash_old=0, trash_recent=0, orphans=0, corrupt=0, missing=0, temp_old=0, temp_fresh=5,
        temp_shown=0, uploads_unused=0, uploads_used=0, partial=0, calls_old=0, submits_kept=0,
    )  # fmt: skip
    await studio.settings.update(studio.owner_id, True, {"storage_user_quota_gb": 1 / 1024**3})  # 1 byte
    plan = await studio.maintenance.plan(AT)
    taken = [r for r in plan.removals if r.category == "quota"]
    assert taken and all(r.owner_id == studio.owner_id and r.effect == "unthumb" for r in taken)
    assert any("per-user quota" in n for n in plan.notes)  # the originals themselves stay: kept work
    usage = await studio.maintenance.user_usage(studio.owner_id)
    assert usage["usage"]["originals"] == 30 * len(png_bytes())


@both_databases
async def test_trash_lists_restores_and_purges_only_after_the_users_retention(studio: Studio) -> None:
    exp = await populate(
        studio, live=5, trash_old=3, trash_recent=3, orphans=0, corrupt=0, missing=0, temp_old=0, temp_fresh=0,
        temp_shown=0, uploads_unused=0, uploads_used=0, partial=0, calls_old=0, submits_kept=0,
    )  # fmt: skip
    listed = await studio.maintenance.trash(studio.owner_id)
    assert {i["id"] for i in listed["items"]} == exp.purged_jobs | exp.recent_trash_jobs
    assert listed["retention_days"] == 30
    # a user who keeps deleted jobs 60 days: nothing is purged yet
    await studio.settings.update(studio.owner_id, False, {"trash_retention_days": 60})
    plan = await studio.maintenance.plan(AT)
    assert not [r for r in plan.removals if r.category == "trash"]
    await studio.settings.update(studio.owner_id, False, {"trash_retention_days": None})
    restored = next(iter(exp.purged_jobs))
    await studio.maintenance.restore(studio.owner_id, restored)
    await studio.maintenance.run(studio.owner_id, at=AT)
    jobs = {j.id: j for j in await rows(studio, Job)}
    assert jobs[restored].deleted_at is None and jobs[restored].purged_at is None
    assert all(jobs[j].purged_at is not None for j in exp.purged_jobs - {restored})
    with pytest.raises(StudioError) as err:
        await studio.maintenance.restore(studio.owner_id, next(iter(exp.purged_jobs - {restored})))
    assert err.value.code == "not_found"
    assert await disagreements(studio) == []


async def test_a_backup_restores_to_an_identical_database(studio: Studio, tmp_path: Path) -> None:
    await populate(studio, live=200, temp_old=10, orphans=10)
    await studio.maintenance.run(studio.owner_id, at=AT)
    result = await studio.maintenance.backup(tmp_path / "copy" / "studio.db")
    assert result["bytes"] > 0
    source = studio.store.sqlite_path
    assert source is not None

    def dump(path: Path) -> list[str]:
        conn = sqlite3.connect(path)
        try:
            return list(conn.iterdump())
        finally:
            conn.close()

    assert await asyncio.to_thread(dump, tmp_path / "copy" / "studio.db") == await asyncio.to_thread(dump, source)
    assert (os.stat(tmp_path / "copy" / "studio.db").st_mode & 0o777) == 0o600


def _journal_count(db: Path) -> int:
    conn = sqlite3.connect(db, timeout=5)
    try:
        return conn.execute("SELECT count(*) FROM maintenance_journal").fetchone()[0]
    except sqlite3.OperationalError:
        return 0
    finally:
        conn.close()


KILLED_RUN = """
import sys, time
from comfyui_studio.services import maintenance
from comfyui_studio.__main__ import main

unlink = maintenance._unlink

def slow_unlink(path):  # a slow disk: the kill lands while a batch is being removed
    time.sleep(0.004)
    return unlink(path)

maintenance._unlink = slow_unlink
sys.exit(main(sys.argv[1:]))
"""


async def test_a_run_killed_midway_leaves_nothing_half_deleted(tmp_path: Path) -> None:
    studio = build_studio(tmp_path)
    await studio.start(follow_comfy=False)
    # the subprocess runs with the real clock: make "old" old relative to now
    from datetime import datetime, timezone

    at = datetime.now(timezone.utc)
    exp: Expected = await populate(studio, at=at, live=600, temp_old=1500, orphans=400, trash_old=100)
    await studio.stop()
    db = tmp_path / "data" / "studio.db"
    before = disk_files(*roots(studio))
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED_RUN, "--data-dir", str(tmp_path / "data"), "maintenance",
         "--comfy-dir", str(tmp_path / "comfy"), "run"],
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    try:
        # wait for a batch in flight: journal entries committed, some of their files already gone
        while time.monotonic() < deadline:
            if _journal_count(db) and len(before - disk_files(*roots(studio))) > 300:
                break
            await asyncio.sleep(0.01)
        else:
            raise AssertionError("the run never got under way")
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(10)
    assert proc.returncode == -signal.SIGKILL
    pending = _journal_count(db)
    assert pending > 0, "killed mid-batch: committed removals wait in the journal"
    gone = before - disk_files(*roots(studio))
    assert 0 < len(gone) < len(exp.removed), "killed midway"
    assert gone <= exp.removed, "nothing outside the plan went"

    again = build_studio(tmp_path)
    await again.start(follow_comfy=False)
    try:
        # before the repair: every disagreement is a removal the journal holds
        journaled = {e.target_id for e in await rows(again, MaintenanceJournal)}
        assert {d.split(":")[0] for d in await disagreements(again)} <= journaled
        result = await again.maintenance.run(None, "cli")
        assert result["summary"]["repaired"] == pending
        assert await rows(again, MaintenanceJournal) == []
        assert await disagreements(again) == []
        assert before - disk_files(*roots(again)) == exp.removed
        assert exp.kept_files <= disk_files(*roots(again))
        runs = await again.maintenance.runs()
        assert [r["status"] for r in runs][-1] == "failed" and runs[0]["status"] == "done"
    finally:
        await again.stop()


async def test_the_command_line_reports_and_runs(tmp_path: Path) -> None:
    studio = build_studio(tmp_path)
    await studio.start(follow_comfy=False)
    temp = studio.maintenance.folder("temp")
    assert temp is not None
    old = temp / "ComfyUI_temp_old_00001_.png"
    old.write_bytes(png_bytes())
    os.utime(old, (time.time() - 2 * DAY, time.time() - 2 * DAY))
    await studio.stop()
    base = [sys.executable, "-m", "comfyui_studio", "--data-dir", str(tmp_path / "data"), "maintenance",
            "--comfy-dir", str(tmp_path / "comfy")]  # fmt: skip
    import json

    def cli(*args: str) -> dict:
        out = subprocess.run([*base, *args], capture_output=True, text=True, check=True, cwd=tmp_path)
        return json.loads(out.stdout)

    report = await asyncio.to_thread(cli, "report")
    assert report["remove"]["previews"] == {"count": 1, "bytes": old.stat().st_size}
    dry = await asyncio.to_thread(cli, "run", "--dry-run")
    assert [i["path"] for i in dry["items"]] == ["temp/ComfyUI_temp_old_00001_.png"] and old.exists()
    done = await asyncio.to_thread(cli, "run")
    assert [i["path"] for i in done["removed"]] == ["temp/ComfyUI_temp_old_00001_.png"] and not old.exists()
    assert done["summary"]["integrity"] == ["ok"]


@both_databases
async def test_the_scheduled_run_is_due_after_the_interval(studio: Studio) -> None:
    assert await studio.maintenance.next_due() == 0.0  # never ran: due
    await studio.maintenance.run(None, "schedule", at=AT)
    assert await studio.maintenance.next_due() == pytest.approx(24 * 3600)
    await studio.settings.update(studio.owner_id, True, {"maintenance_interval_hours": 0})
    assert await studio.maintenance.next_due() is None


@both_databases
async def test_old_civitai_answers_and_the_oldest_over_the_size_cap_are_dropped(studio: Studio) -> None:
    from comfyui_studio.db import civitai as civitai_db

    now = AT.timestamp()
    async with studio.store.transaction() as session:
        await civitai_db.store_cached(session, "expired", "images", "x" * 100, now - 90 * DAY, now - 60 * DAY)
        for i in range(5):
            await civitai_db.store_cached(session, f"k{i}", "images", "y" * 400_000, now - i * 60, now + DAY)
    await studio.settings.update(studio.owner_id, True, {"civitai_cache_max_mb": 1.0})
    plan = await studio.maintenance.plan(AT)
    assert set(plan.civitai_keys) == {"expired", "k2", "k3", "k4"}  # newest two fit in 1 MB
    await studio.maintenance.run(None, at=AT)
    async with studio.store.transaction() as session:
        assert await civitai_db.cached(session, "k0") is not None
        assert await civitai_db.cached(session, "k4") is None


async def test_a_thumbnail_smaller_than_the_ui_asks_for_is_made_again_at_the_new_size(studio: Studio) -> None:
    await populate(
        studio, live=2, trash_old=0, trash_recent=0, orphans=0, corrupt=0, missing=0, temp_old=0, temp_fresh=0,
        temp_shown=0, uploads_unused=0, uploads_used=0, partial=0, calls_old=0, submits_kept=0,
    )  # fmt: skip
    output = studio.maintenance.folder("output")
    assert output is not None
    from maintenance_store import webp_bytes

    from comfyui_studio.services.images import THUMB_SIZE

    [image, other] = sorted(await rows(studio, Image), key=lambda i: i.id)
    # a large original whose thumbnail was made when thumbnails were 16 px
    (output / image.filename).write_bytes(png_bytes(1024))
    async with studio.store.transaction() as session:
        row = await session.get(Image, image.id)
        row.width = row.height = 1024
    (studio.config.thumbs_dir / f"{image.id}.webp").write_bytes(webp_bytes(16))
    plan = await studio.maintenance.plan(AT)
    assert [f.id for f in plan.rebuild] == [image.id]  # the 16 px original's 16 px thumbnail is already right
    await studio.maintenance.run(None, at=AT)
    from PIL import Image as PILImage

    with PILImage.open(studio.config.thumbs_dir / f"{image.id}.webp") as thumb:
        assert max(thumb.size) == THUMB_SIZE
    assert other.id not in {f.id for f in (await studio.maintenance.plan(AT)).rebuild}


async def test_one_run_at_a_time_across_processes_and_a_killed_holder_lets_go(studio: Studio, tmp_path: Path) -> None:
    """The plugin's run and the maintenance command share the store: while another process runs, a run is refused;
    when that process is killed mid-run, the next run goes ahead (and finishes what it had begun)."""
    lock = studio.config.data_dir / "maintenance.lock"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, os, sys, time\n"
            f"fd = os.open({str(lock)!r}, os.O_RDWR | os.O_CREAT)\n"
            "fcntl.flock(fd, fcntl.LOCK_EX)\n"
            "print('held', flush=True)\n"
            "time.sleep(60)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(StudioError) as refused:
            await studio.maintenance.run(studio.owner_id, at=AT)
        assert refused.value.code == "conflict" and "another process" in refused.value.message
        with pytest.raises(StudioError, match="another process"):
            studio.maintenance.start_run(studio.owner_id)  # the route's background start says so at once
        assert studio.maintenance.progress["running"] is False
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()
    report = await studio.maintenance.run(studio.owner_id, at=AT)
    assert report["status"] == "done"
