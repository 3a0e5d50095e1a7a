"""Storage maintenance: what the studio's files and rows use, and a pass that tidies them without losing work.

The contract it keeps:
- **Never a Create-page original.** A job and its images, rows and files, stay while the job is in the gallery.
  Maintenance removes only what is expirable (ComfyUI's temp/preview files, which ComfyUI itself empties at
  every start, so a job's preview expires with its row and thumbnail kept; uploads no job
  uses, partial files, thumbnails it can rebuild, outputs their owner marked expirable) and, after the owner's
  Trash retention, the files of jobs the owner deleted. Quota pressure never touches the Trash.
- **A dry run lists exactly what a run removes** with the same clock: both come from one `plan`.
- **Crash safety by a journal.** Each batch of removals is committed to `maintenance_journal` before any file
  of it is unlinked; after unlinking, one transaction applies the rows' side (thumbnail gone, image purged,
  upload dropped, job purged) and deletes the entries. A process killed anywhere leaves either entries whose
  files may or may not be gone (the next run unlinks what remains and applies the rows' side: idempotent) or
  nothing: rows and files agree after the next run. A restore refuses a job with entries pending.
- **Off the event loop.** Directory walks, unlinks and thumbnail encodes run in threads.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from ..config import StudioConfig
from ..db import audit
from ..db import maintenance as repo
from ..db.maintenance import ImageFact
from ..db.models import MaintenanceRun, utcnow
from ..db.store import Store
from ..engine.errors import StudioError, not_found
from ..settings_table import JSONValue
from .background import cancel_and_wait
from .comfy_calls import LoggedComfy
from .comfy_host import HostError
from .images import THUMB_SIZE, header_size, make_thumbnail
from .jobs import image_to_dict, iso
from .process_lock import ProcessLock

log = logging.getLogger("comfyui_studio.maintenance")

_OTHER_PROCESS = ("conflict", "A maintenance run is already going in another process (the studio or its command)")

GB = 1024**3
MB = 1024**2
# Files younger than this are never taken for leftovers: they may be mid-write (an upload's thumbnail is
# written just before its row is committed).
SETTLE_SECONDS = 3600
BATCH = 256
STARTUP_DELAY = 600  # seconds after start-up before the first scheduled look
UPLOAD_SUBFOLDER = "studio"  # services/files.py stores uploads under input/studio
CATEGORIES = ("originals", "trash", "thumbnails", "previews", "temp", "partial", "database")

Folders = Callable[[str], "Path | None"]
SettingsReader = Callable[[int], Awaitable[dict[str, JSONValue]]]
Report = dict[str, Any]  # JSON the routes and the command line hand on as they get it


@dataclass
class Removal:
    """One file (or, with an empty path, one row mark) a run removes, and why."""

    category: str  # previews | temp | partial | thumbnails | trash | quota
    path: str
    size: int
    age_key: float  # seconds since the epoch the oldest-first ordering uses
    reason: str
    effect: str = "none"  # unthumb | purge_image | expire | drop_image | purge_job | none
    target_id: str | None = None
    owner_id: int | None = None

    def as_dict(self, roots: dict[str, Path]) -> Report:
        return {
            "category": self.category,
            "path": _shown_path(self.path, roots),
            "bytes": self.size,
            "reason": self.reason,
            "target_id": self.target_id,
            "owner_id": self.owner_id,
        }


@dataclass
class FileStat:
    path: str
    size: int
    mtime: float


@dataclass
class Plan:
    at: datetime
    removals: list[Removal] = field(default_factory=list)
    rebuild: list[ImageFact] = field(default_factory=list)
    usage: dict[str, int] = field(default_factory=dict)
    user_usage: dict[int, dict[str, int]] = field(default_factory=dict)
    quota: Report = field(default_factory=dict)
    call_bodies: tuple[int, int] = (0, 0)
    call_cutoff: datetime | None = None
    civitai_keys: list[str] = field(default_factory=list)
    civitai_bytes: int = 0
    vacuum_due: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def bytes(self) -> int:
        return sum(r.size for r in self.removals)


def _shown_path(path: str, roots: dict[str, Path]) -> str:
    """A path as the report shows it: relative to the folder it is in (`temp/…`, `thumbs/…`)."""
    for name, root in roots.items():
        try:
            return f"{name}/{Path(path).relative_to(root).as_posix()}"
        except ValueError:
            continue
    return path


def _walk(root: Path | None) -> list[FileStat]:
    """Every regular file under root (symlinks not followed: a link is never a studio file to remove)."""
    out: list[FileStat] = []
    if root is None or not root.is_dir():
        return out
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(Path(entry.path))
                elif entry.is_file(follow_symlinks=False):
                    st = entry.stat(follow_symlinks=False)
                    out.append(FileStat(entry.path, st.st_size, st.st_mtime))
            except OSError:
                continue
    return out


def _inside(root: Path, subfolder: str, filename: str) -> str | None:
    """The path of a row's file under root, or None when the row names something outside it."""
    candidate = root.joinpath(*[p for p in (subfolder, filename) if p]).resolve()
    if candidate != root and root not in candidate.parents:
        return None
    return str(candidate)


def _thumb_state(path: Path, fact: ImageFact) -> str:
    """ok | missing | corrupt | small (smaller than the size the UI now asks for)."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(32)
    except FileNotFoundError:
        return "missing"
    except OSError:
        return "corrupt"
    if len(head) < 16 or head[:4] != b"RIFF" or head[8:12] != b"WEBP":
        return "corrupt"
    size = header_size("WEBP", head)
    if size is None:
        return "corrupt"
    source_side = max(fact.width or 0, fact.height or 0)
    if max(size) < min(THUMB_SIZE, source_side):
        return "small"
    return "ok"


def _unlink(path: str) -> int:
    """Remove one file; the bytes it held (0 when it was already gone)."""
    try:
        size = os.stat(path, follow_symlinks=False).st_size
        os.unlink(path)
    except FileNotFoundError:
        return 0
    return size


def _remove_files(paths: list[str]) -> list[int]:
    return [_unlink(p) if p else 0 for p in paths]


def _number(values: dict[str, JSONValue], name: str, default: float) -> float:
    value = values.get(name)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else default


def _file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


class Maintenance:
    """Usage, reports, runs (scheduled or asked for), the Trash, expirable outputs and database backups."""

    def __init__(
        self,
        config: StudioConfig,
        store: Store,
        comfy: LoggedComfy,
        settings: SettingsReader,
        folders: Folders | None,
        owner_id: Callable[[], int],
    ) -> None:
        self.config = config
        self.store = store
        self.comfy = comfy
        self.settings = settings
        self.folders = folders
        self.owner_id = owner_id
        self.progress: Report = {"running": False}
        self._lock = asyncio.Lock()
        # The plugin's scheduled runs and the maintenance command share the store: one run at a time across them.
        self._process_lock = ProcessLock(config.data_dir / "maintenance.lock")
        self._task: asyncio.Task[None] | None = None
        self._schedule: asyncio.Task[None] | None = None
        self._clock: Callable[[], datetime] = utcnow

    # -- where things are ---------------------------------------------------------------------------------

    def folder(self, folder_type: str) -> Path | None:
        if self.folders is None:
            return None
        try:
            folder = self.folders(folder_type)
        except Exception:
            return None
        return Path(folder).resolve() if folder else None

    def roots(self) -> dict[str, Path]:
        roots = {"thumbs": self.config.thumbs_dir.resolve()}
        for name in ("temp", "input", "output"):
            folder = self.folder(name)
            if folder is not None:
                roots[name] = folder
        return roots

    # -- the plan: everything a run would do, decided in one place ----------------------------------------

    async def plan(self, at: datetime | None = None, *, deep: bool = True) -> Plan:
        """Everything a run would do at ``at``: the rows are read here, the disk is walked and judged in a thread.

        ``deep=False`` (the report, usage figures) skips reading each thumbnail's header: missing thumbnails are
        counted, corrupt or undersized ones only by a deep plan (a dry run, a run).
        """
        at = at or self._clock()
        values = await self.settings(self.owner_id())
        now = at.timestamp()
        temp_age = _number(values, "retention_temp_days", 7) * 86400
        async with self.store.transaction() as session:
            facts = await repo.image_facts(session)
            trash = await repo.trash_jobs(session)
            old_uploads = [
                f
                for f in facts
                if f.kind == "upload"
                and f.deleted_at is None
                and f.purged_at is None
                and now - f.created_at.timestamp() > temp_age
            ]
            used = await repo.uploads_used_by_jobs(
                session, [f.id for f in old_uploads], [f.filename for f in old_uploads]
            )
        retention: dict[int, float] = {}
        for job in trash:
            if job.owner_id not in retention:
                retention[job.owner_id] = _number(await self.settings(job.owner_id), "trash_retention_days", 30)
        unused_uploads = [f for f in old_uploads if f.id not in used]
        trash_due = [
            (job.id, job.owner_id, job.deleted_at)
            for job in trash
            if job.deleted_at is not None and (at - job.deleted_at).total_seconds() > retention[job.owner_id] * 86400
        ]
        trash_ids = {job.id for job in trash}
        plan = await asyncio.to_thread(self._decide, at, values, facts, trash_ids, trash_due, unused_uploads, deep)

        calls_days = _number(values, "retention_call_bodies_days", 30)
        plan.call_cutoff = at - timedelta(days=calls_days)
        civitai_before = now - _number(values, "retention_civitai_days", 0) * 86400
        async with self.store.transaction() as session:
            plan.call_bodies = await repo.prunable_call_bodies(session, plan.call_cutoff)
            plan.civitai_keys, plan.civitai_bytes = await repo.civitai_prunable(
                session, civitai_before, int(_number(values, "civitai_cache_max_mb", 64) * MB)
            )
            last_vacuum = await repo.last_finished(session, vacuumed=True)
        vacuum_days = _number(values, "vacuum_interval_days", 0)
        plan.vacuum_due = vacuum_days > 0 and (last_vacuum is None or (at - last_vacuum).days >= vacuum_days)
        return plan

    def _decide(
        self,
        at: datetime,
        values: dict[str, JSONValue],
        facts: list[ImageFact],
        trash_ids: set[str],
        trash_due: list[tuple[str, int, datetime]],
        unused_uploads: list[ImageFact],
        deep: bool = True,
    ) -> Plan:
        """The file side of the plan (walks, stats, thumbnail checks): blocking work, run in a thread."""
        roots = self.roots()
        temp_dir, input_dir = roots.get("temp"), roots.get("input")
        upload_dir = (input_dir / UPLOAD_SUBFOLDER) if input_dir is not None else None
        thumbs, temp_files, upload_files, db_bytes = self._scan(roots["thumbs"], temp_dir, upload_dir)
        plan = Plan(at=at)
        now = at.timestamp()
        by_id = {f.id: f for f in facts}
        taken: set[str] = set()  # paths already planned, so nothing is counted twice

        def take(removal: Removal) -> None:
            if removal.path and removal.path in taken:
                return
            if removal.path:
                taken.add(removal.path)
            plan.removals.append(removal)

        # Files the studio's rows point at (for every row not yet purged): never leftovers.
        referenced: set[str] = set()
        original_of: dict[str, str] = {}
        # ComfyUI's temp folder is no keeper (ComfyUI empties it at every start): a preview an image row shows
        # expires like any other; the row and its thumbnail stay, so the job keeps its tile.
        preview_of: dict[str, ImageFact] = {}
        for fact in facts:
            root = roots.get(fact.folder_type)
            if root is None or fact.purged_at is not None:
                continue
            # lexical join: enough to recognise walked files; a removal checks the real path (`removable`)
            path = os.path.normpath(os.path.join(root, fact.subfolder, fact.filename))
            referenced.add(path)
            original_of[fact.id] = path
            if fact.folder_type == "temp":
                preview_of[path] = fact

        def take_thumbnail(fact: ImageFact, category: str, at: float | None, reason: str, effect: str = "none") -> None:
            """The thumbnail of an image whose file goes too (``at`` None: the thumbnail's own mtime)."""
            thumb = thumb_of.pop(fact.id, None)
            if thumb is None:
                return
            at = thumb.mtime if at is None else at
            target = fact.id if effect != "none" else None
            take(Removal(category, thumb.path, thumb.size, at, reason, effect, target, fact.owner_id))

        def removable(fact: ImageFact) -> str:
            """The row's file as a removal may touch it: resolved, symlinks included, inside its folder ("" if not)."""
            root = roots.get(fact.folder_type)
            return (_inside(root, fact.subfolder, fact.filename) or "") if root is not None else ""

        # 1. Partial files (an upload or a thumbnail cut off mid-write).
        for stat in [*thumbs, *upload_files]:
            if stat.path.endswith(".part") and now - stat.mtime > SETTLE_SECONDS:
                take(Removal("partial", stat.path, stat.size, stat.mtime, "partial file left by an interrupted write"))

        # 2. Thumbnails of no image (or of an image whose files were purged).
        thumb_of: dict[str, FileStat] = {}
        for stat in thumbs:
            name = os.path.basename(stat.path)
            if not name.endswith(".webp"):
                continue
            image_id = name[: -len(".webp")]
            found = by_id.get(image_id)
            if found is None:
                if now - stat.mtime > SETTLE_SECONDS:
                    take(Removal("thumbnails", stat.path, stat.size, stat.mtime, "thumbnail of no image"))
            elif found.purged_at is not None and found.folder_type != "temp":
                take(
                    Removal(
                        "thumbnails",
                        stat.path,
                        stat.size,
                        stat.mtime,
                        "thumbnail of a purged image",
                        effect="unthumb",
                        target_id=found.id,
                        owner_id=found.owner_id,
                    )
                )
            else:
                thumb_of[image_id] = stat

        # 3. ComfyUI's temp and preview files, after their retention.
        previews_age = _number(values, "retention_previews_days", 1) * 86400
        for stat in temp_files:
            if stat.path.endswith(".part") or now - stat.mtime <= previews_age:
                continue
            shown = preview_of.get(stat.path)
            if shown is None:
                take(Removal("previews", stat.path, stat.size, stat.mtime, "temp/preview file past its retention"))
            elif removable(shown) == stat.path:
                take(
                    Removal(
                        "previews",
                        stat.path,
                        stat.size,
                        stat.mtime,
                        "job preview past its retention (the image row and thumbnail stay)",
                        effect="expire",
                        target_id=shown.id,
                        owner_id=shown.owner_id,
                    )
                )

        # 4. The studio's uploads no job uses (row and file), and upload-folder files of no row.
        temp_age = _number(values, "retention_temp_days", 7) * 86400
        if unused_uploads:
            for fact in unused_uploads:
                if fact.folder_type not in roots:
                    continue  # its file is out of reach: the row stays with it
                path = removable(fact)
                size = _file_size(Path(path)) if path else 0
                take(
                    Removal(
                        "temp",
                        path,
                        size,
                        fact.created_at.timestamp(),
                        "upload no job uses, past its retention",
                        effect="drop_image",
                        target_id=fact.id,
                        owner_id=fact.owner_id,
                    )
                )
                take_thumbnail(fact, "temp", None, "thumbnail of a dropped upload")
        for stat in upload_files:
            if stat.path not in referenced and not stat.path.endswith(".part") and now - stat.mtime > temp_age:
                take(Removal("temp", stat.path, stat.size, stat.mtime, "upload file of no image, past its retention"))

        # 5. The Trash: files of jobs deleted longer ago than their owner's retention.
        images_of: dict[str, list[ImageFact]] = {}
        for fact in facts:
            if fact.job_id is not None:
                images_of.setdefault(fact.job_id, []).append(fact)
        for job_id, job_owner, deleted_at in trash_due:
            if any(f.folder_type not in roots for f in images_of.get(job_id, ())):
                continue  # files on a ComfyUI this process cannot reach: purged by a run that can
            for fact in (f for f in images_of.get(job_id, ()) if f.purged_at is None):
                path = removable(fact)
                take(
                    Removal(
                        "trash",
                        path,
                        _file_size(Path(path)) if path else 0,
                        deleted_at.timestamp(),
                        "deleted job past its Trash retention",
                        effect="purge_image",
                        target_id=fact.id,
                        owner_id=fact.owner_id,
                    )
                )
                take_thumbnail(fact, "trash", deleted_at.timestamp(), "thumbnail of a purged image", "unthumb")
            take(
                Removal(
                    "trash",
                    "",
                    0,
                    deleted_at.timestamp(),
                    "deleted job past its Trash retention",
                    effect="purge_job",
                    target_id=job_id,
                    owner_id=job_owner,
                )
            )

        # Usage as it stands before this plan, by category and by user.
        usage = dict.fromkeys(CATEGORIES, 0)
        per_user: dict[int, dict[str, int]] = {}

        def add(owner_id: int | None, category: str, size: int) -> None:
            usage[category] += size
            if owner_id is not None:
                mine = per_user.setdefault(owner_id, dict.fromkeys(("originals", "trash", "thumbnails", "temp"), 0))
                mine[category] += size

        for fact in facts:
            if fact.purged_at is not None or fact.id not in original_of or fact.folder_type == "temp":
                continue  # a temp-folder file is counted once, by the walk, as a preview
            in_trash = fact.deleted_at is not None or fact.job_id in trash_ids
            add(fact.owner_id, "trash" if in_trash else "originals", fact.size_bytes)
        for stat in thumbs:
            name = os.path.basename(stat.path)
            if stat.path.endswith(".part"):
                add(None, "partial", stat.size)
                continue
            holder = by_id.get(name[: -len(".webp")]) if name.endswith(".webp") else None
            add(holder.owner_id if holder else None, "thumbnails", stat.size)
        for stat in temp_files:
            add(None, "partial" if stat.path.endswith(".part") else "previews", stat.size)
        for stat in upload_files:
            if stat.path.endswith(".part"):
                add(None, "partial", stat.size)
            elif stat.path not in referenced:
                add(None, "temp", stat.size)
        usage["database"] = db_bytes
        plan.usage = usage
        plan.user_usage = per_user

        # 6. Quotas: expirable files, oldest first, until under; per user first, then overall.
        self._plan_quotas(
            plan, values, facts, thumb_of, original_of, removable, temp_files, upload_files, referenced, take, taken
        )

        # 7. Thumbnails to rebuild (missing, corrupt, smaller than the UI's size), unless that breaks the quota.
        evicted = {r.target_id for r in plan.removals if r.effect in ("unthumb", "purge_image", "expire", "drop_image")}
        for fact in facts:
            if fact.deleted_at is not None or fact.purged_at is not None or fact.id in evicted:
                continue
            if fact.id not in original_of or (not fact.has_thumb and fact.id not in thumb_of):
                continue  # never had one (an unreadable output), or the quota took it
            if fact.id not in thumb_of:
                state = "missing"
            elif deep:
                state = _thumb_state(self.config.thumbs_dir / f"{fact.id}.webp", fact)
            else:
                state = "ok"
            if state != "ok":
                plan.rebuild.append(fact)
        over = plan.quota.get("over_after")
        if plan.rebuild and over:
            plan.notes.append(f"{len(plan.rebuild)} thumbnails not rebuilt: the studio is over its quota")
            plan.rebuild = []

        return plan

    def _plan_quotas(
        self,
        plan: Plan,
        values: Report,
        facts: list[ImageFact],
        thumb_of: dict[str, FileStat],
        original_of: dict[str, str],
        removable: Callable[[ImageFact], str],
        temp_files: list[FileStat],
        upload_files: list[FileStat],
        referenced: set[str],
        take: Callable[[Removal], None],
        taken: set[str],
    ) -> None:
        total_quota = int(_number(values, "storage_quota_gb", 0) * GB)
        user_quota = int(_number(values, "storage_user_quota_gb", 0) * GB)
        files_usage = sum(v for k, v in plan.usage.items() if k != "database")
        planned = {r.path for r in plan.removals if r.path}
        freed_total = sum(r.size for r in plan.removals)
        freed_user: dict[int, int] = {}
        for r in plan.removals:
            if r.owner_id is not None:
                freed_user[r.owner_id] = freed_user.get(r.owner_id, 0) + r.size
        plan.quota = {"total": total_quota, "per_user": user_quota, "over_after": False}
        if not total_quota and not user_quota:
            return

        # Expirable candidates, with owners where they have one.
        candidates: list[Removal] = []
        for stat in temp_files:
            if stat.path not in referenced and stat.path not in planned and not stat.path.endswith(".part"):
                candidates.append(
                    Removal("quota", stat.path, stat.size, stat.mtime, "preview removed to get under quota")
                )
        for stat in upload_files:
            if stat.path not in referenced and stat.path not in planned and not stat.path.endswith(".part"):
                if plan.at.timestamp() - stat.mtime > SETTLE_SECONDS:
                    candidates.append(
                        Removal("quota", stat.path, stat.size, stat.mtime, "unused upload removed to get under quota")
                    )
        for fact in facts:
            if fact.deleted_at is not None or fact.purged_at is not None:
                continue  # the Trash is never taken to make room
            thumb = thumb_of.get(fact.id)
            original = original_of.get(fact.id)
            if thumb is not None and original is not None and thumb.path not in planned and os.path.exists(original):
                candidates.append(
                    Removal(
                        "quota",
                        thumb.path,
                        thumb.size,
                        thumb.mtime,
                        "thumbnail (rebuildable) removed to get under quota",
                        effect="unthumb",
                        target_id=fact.id,
                        owner_id=fact.owner_id,
                    )
                )
            if fact.expirable and original is not None and fact.kind == "output" and (path := removable(fact)):
                candidates.append(
                    Removal(
                        "quota",
                        path,
                        _file_size(Path(path)),
                        fact.created_at.timestamp(),
                        "output marked expirable removed to get under quota",
                        effect="purge_image",
                        target_id=fact.id,
                        owner_id=fact.owner_id,
                    )
                )
        candidates.sort(key=lambda r: (r.age_key, r.path))
        chosen: list[Removal] = []
        chosen_paths: set[str] = set()

        def choose(removal: Removal) -> None:
            nonlocal freed_total
            chosen.append(removal)
            chosen_paths.add(removal.path)
            freed_total += removal.size
            if removal.owner_id is not None:
                freed_user[removal.owner_id] = freed_user.get(removal.owner_id, 0) + removal.size

        if user_quota:
            for owner_id, mine in sorted(plan.user_usage.items()):
                used = sum(mine.values())
                if used - freed_user.get(owner_id, 0) <= user_quota:
                    continue
                for removal in candidates:
                    if used - freed_user.get(owner_id, 0) <= user_quota:
                        break
                    if removal.owner_id == owner_id and removal.path not in chosen_paths:
                        choose(removal)
                if used - freed_user.get(owner_id, 0) > user_quota:
                    plan.notes.append(f"user {owner_id} stays over the per-user quota: the rest is kept work")
                    plan.quota["over_after"] = True
        if total_quota and files_usage - freed_total > total_quota:
            for removal in candidates:
                if files_usage - freed_total <= total_quota:
                    break
                if removal.path not in chosen_paths:
                    choose(removal)
            if files_usage - freed_total > total_quota:
                plan.notes.append("still over the quota after removing every expirable file: the rest is kept work")
                plan.quota["over_after"] = True
        for removal in chosen:
            if removal.path not in taken:
                take(removal)
        if chosen:
            plan.notes.append(
                f"over quota: {len(chosen)} expirable files ({sum(r.size for r in chosen)} bytes) removed, oldest first"
            )

    def _scan(
        self, thumbs_dir: Path, temp_dir: Path | None, upload_dir: Path | None
    ) -> tuple[list[FileStat], list[FileStat], list[FileStat], int]:
        db = self.store.sqlite_path
        db_bytes = 0
        if db is not None:
            db_bytes = sum(_file_size(Path(str(db) + suffix)) for suffix in ("", "-wal", "-shm"))
        return _walk(thumbs_dir), _walk(temp_dir), _walk(upload_dir), db_bytes

    # -- reports -------------------------------------------------------------------------------------------

    def plan_to_dict(self, plan: Plan, *, items: bool = True) -> Report:
        roots = self.roots()
        by_category: dict[str, dict[str, int]] = {}
        for r in plan.removals:
            entry = by_category.setdefault(r.category, {"count": 0, "bytes": 0})
            entry["count"] += 1 if r.path else 0
            entry["bytes"] += r.size
        out: Report = {
            "at": iso(plan.at),
            "usage": dict(plan.usage),
            "total_bytes": sum(plan.usage.values()),
            "files_bytes": sum(v for k, v in plan.usage.items() if k != "database"),
            "quota": dict(plan.quota),
            "users": [{"user_id": uid, "usage": usage} for uid, usage in sorted(plan.user_usage.items())],
            "remove": by_category,
            "remove_bytes": plan.bytes,
            "thumbnails_to_rebuild": len(plan.rebuild),
            "call_bodies": {"count": plan.call_bodies[0], "bytes": plan.call_bodies[1]},
            "civitai_cache": {"count": len(plan.civitai_keys), "bytes": plan.civitai_bytes},
            "vacuum_due": plan.vacuum_due,
            "notes": list(plan.notes),
            "folders": {name: str(path) for name, path in roots.items()},
        }
        if items:
            out["items"] = [r.as_dict(roots) for r in plan.removals if r.path]
        return out

    async def report(self) -> Report:
        """Usage and what a run would do now, with the last runs (the Storage section's whole picture)."""
        plan = await self.plan(deep=False)
        out = self.plan_to_dict(plan, items=False)
        out["runs"] = await self.runs(10)
        out["progress"] = dict(self.progress)
        return out

    async def user_usage(self, user_id: int) -> Report:
        """One user's usage by category, the per-user quota, and what the last run removed of theirs."""
        plan = await self.plan(deep=False)
        mine = plan.user_usage.get(user_id, dict.fromkeys(("originals", "trash", "thumbnails", "temp"), 0))
        last_removed: Report | None = None
        for run in await self.runs(20):
            by_owner = (run.get("summary") or {}).get("by_owner") or {}
            if str(user_id) in by_owner:
                last_removed = {"run_id": run["id"], "finished_at": run["finished_at"], **by_owner[str(user_id)]}
                break
        return {
            "usage": mine,
            "total_bytes": sum(mine.values()),
            "quota_bytes": plan.quota.get("per_user", 0),
            "last_removed": last_removed,
        }

    async def runs(self, limit: int = 20) -> list[Report]:
        async with self.store.transaction() as session:
            rows = await repo.recent_runs(session, limit)
        return [_run_to_dict(r) for r in rows]

    async def run_detail(self, run_id: int) -> Report:
        async with self.store.transaction() as session:
            row = await repo.get_run(session, run_id)
        if row is None:
            raise not_found("Maintenance run")
        return {**_run_to_dict(row), "removed": row.removed}

    # -- runs ----------------------------------------------------------------------------------------------

    async def dry_run(self, actor_id: int | None, trigger: str = "api") -> Report:
        """What a run would remove now, item by item; recorded as a dry run (nothing is touched)."""
        plan = await self.plan()
        result = self.plan_to_dict(plan)
        async with self.store.transaction(actor_id) as session:
            run = await repo.start_run(session, actor_id, trigger, True)
            run.finished_at = self._clock()
            run.status = "done"
            run.summary = {
                k: result[k]
                for k in ("remove", "remove_bytes", "thumbnails_to_rebuild", "call_bodies", "civitai_cache", "notes")
            }
            run.removed = result["items"]
            result["run_id"] = run.id
        return result

    def start_run(self, actor_id: int | None, trigger: str = "api") -> None:
        """Start a run in the background (the Storage section follows `progress`); conflict if one is going."""
        if self._lock.locked() or (self._task is not None and not self._task.done()):
            raise StudioError("conflict", "A maintenance run is already going")
        if not self._process_lock.acquire():  # answered now, not lost in the background task
            raise StudioError(*_OTHER_PROCESS)
        self._process_lock.release()
        self.progress = {"running": True, "phase": "starting", "done": 0, "total": 0}
        self._task = asyncio.get_running_loop().create_task(self._run_logged(actor_id, trigger))

    async def _run_logged(self, actor_id: int | None, trigger: str) -> None:
        try:
            await self.run(actor_id, trigger)
        except StudioError:
            pass
        except Exception:
            log.exception("Storage maintenance failed")

    async def run(self, actor_id: int | None, trigger: str = "api", *, at: datetime | None = None) -> Report:
        """Repair what a killed run left, then plan and do everything; one audit row with what went."""
        if self._lock.locked():
            raise StudioError("conflict", "A maintenance run is already going")
        async with self._lock:
            if not self._process_lock.acquire():
                raise StudioError(*_OTHER_PROCESS)
            self.progress = {"running": True, "phase": "repairing", "done": 0, "total": 0}
            try:
                return await self._run(actor_id, trigger, at)
            finally:
                self._process_lock.release()
                self.progress = {**self.progress, "running": False, "phase": "finished"}

    async def _run(self, actor_id: int | None, trigger: str, at: datetime | None) -> Report:
        repaired = await self.repair()
        plan = await self.plan(at)
        roots = self.roots()
        async with self.store.transaction(actor_id) as session:
            run = await repo.start_run(session, actor_id, trigger, False)
            run_id = run.id
        self.progress.update(run_id=run_id, phase="removing", done=0, total=len(plan.removals))
        removed: list[Report] = []
        freed = 0
        by_owner: dict[str, dict[str, int]] = {}
        try:
            for start in range(0, len(plan.removals), BATCH):
                batch = plan.removals[start : start + BATCH]
                done, nbytes = await self._remove_batch(run_id, batch)
                freed += nbytes
                for r in done:
                    if r.path:
                        removed.append(r.as_dict(roots))
                    if r.owner_id is not None and r.path and r.category in ("quota", "trash"):
                        mine = by_owner.setdefault(str(r.owner_id), {"count": 0, "bytes": 0})
                        mine["count"] += 1
                        mine["bytes"] += r.size
                self.progress["done"] = start + len(batch)
            self.progress.update(phase="thumbnails", done=0, total=len(plan.rebuild))
            rebuilt = await self._rebuild(plan.rebuild)
            self.progress.update(phase="database", done=0, total=1)
            at_now = self._clock()
            async with self.store.transaction(actor_id) as session:
                assert plan.call_cutoff is not None
                days = (plan.at - plan.call_cutoff).days
                reason = (
                    f"Its request and response were pruned on {at_now:%Y-%m-%d} (call-log bodies are kept {days} days)"
                )
                pruned_calls = await repo.prune_call_bodies(session, plan.call_cutoff, at_now, reason)
                await repo.drop_civitai(session, plan.civitai_keys)
            async with self.store.transaction(actor_id) as session:
                await repo.optimize(session)
                check = await repo.integrity(session)
            vacuumed = await self.store.vacuum() if plan.vacuum_due else False
            by_category: dict[str, dict[str, int]] = {}
            for item in removed:
                entry = by_category.setdefault(str(item["category"]), {"count": 0, "bytes": 0})
                entry["count"] += 1
                entry["bytes"] += int(item["bytes"] or 0)
            summary: Report = {
                "remove": by_category,
                "repaired": repaired,
                "thumbnails_rebuilt": rebuilt,
                "call_bodies_pruned": pruned_calls,
                "civitai_cache_dropped": len(plan.civitai_keys),
                "integrity": check,
                "notes": list(plan.notes),
                "by_owner": by_owner,
            }
            async with self.store.transaction(actor_id) as session:
                row = await repo.get_run(session, run_id)
                assert row is not None
                row.status, row.finished_at, row.bytes_freed = "done", self._clock(), freed
                row.summary, row.removed, row.vacuumed = summary, removed, vacuumed
                audit.record(
                    session,
                    actor_id,
                    "maintain",
                    "maintenance_run",
                    str(run_id),
                    {
                        "bytes_freed": freed,
                        "removed": {k: v["count"] for k, v in by_category.items()},
                        "call_bodies_pruned": pruned_calls,
                        "thumbnails_rebuilt": rebuilt,
                        "trigger": trigger,
                    },
                )
            log.info("Storage maintenance run %s freed %d bytes (%d files)", run_id, freed, len(removed))
            return {**_run_to_dict(row), "removed": removed}
        except BaseException:
            async with self.store.transaction(actor_id) as session:
                await repo.fail_unfinished_runs(session, self._clock())
            raise

    async def _remove_batch(self, run_id: int, batch: list[Removal]) -> tuple[list[Removal], int]:
        """Journal the batch, unlink its files, then make the rows agree and drop the journal entries."""
        async with self.store.transaction() as session:
            allowed: set[str] = set()
            for effect, category in {(r.effect, r.category) for r in batch if r.target_id}:
                ids = [r.target_id for r in batch if r.effect == effect and r.category == category and r.target_id]
                allowed |= await repo.still_eligible(session, effect, category, ids)
            kept = [r for r in batch if r.target_id is None or r.target_id in allowed]
            repo.journal(
                session,
                run_id,
                [
                    {
                        "category": r.category,
                        "path": r.path,
                        "size": r.size,
                        "effect": r.effect,
                        "target_id": r.target_id,
                    }
                    for r in kept
                ],
            )
        sizes = await asyncio.to_thread(_remove_files, [r.path for r in kept])
        async with self.store.transaction() as session:
            entries = [e for e in await repo.pending_journal(session) if e.run_id == run_id]
            await repo.finish_journal(session, entries, self._clock())
        return kept, sum(sizes)

    async def repair(self) -> int:
        """Finish the removals a killed run committed to: unlink what remains, apply the rows' side."""
        async with self.store.transaction() as session:
            entries = await repo.pending_journal(session)
            await repo.fail_unfinished_runs(session, self._clock())
        if not entries:
            return 0
        await asyncio.to_thread(_remove_files, [e.path for e in entries])
        async with self.store.transaction() as session:
            await repo.finish_journal(session, entries, self._clock())
        log.info("Storage maintenance finished %d removals an interrupted run had begun", len(entries))
        return len(entries)

    async def _rebuild(self, facts: list[ImageFact]) -> int:
        """Make the listed thumbnails again from their originals (encodes run in threads, two at a time)."""
        rebuilt: list[str] = []
        roots = self.roots()
        limit = asyncio.Semaphore(max(1, min(4, os.cpu_count() or 1)))

        async def one(fact: ImageFact) -> None:
            async with limit:
                data = await self._original_bytes(fact, roots)
                if data is None:
                    return
                if await make_thumbnail(data, self.config.thumbs_dir / f"{fact.id}.webp"):
                    rebuilt.append(fact.id)
                self.progress["done"] = int(self.progress.get("done") or 0) + 1

        await asyncio.gather(*(one(f) for f in facts))
        if rebuilt:
            async with self.store.transaction() as session:
                await repo.mark_thumbs(session, rebuilt)
        return len(rebuilt)

    async def _original_bytes(self, fact: ImageFact, roots: dict[str, Path]) -> bytes | None:
        root = roots.get(fact.folder_type)
        if root is not None:
            path = _inside(root, fact.subfolder, fact.filename)
            if path is None:
                return None
            try:
                return await asyncio.to_thread(Path(path).read_bytes)
            except OSError:
                return None
        try:  # a remote ComfyUI: read it the way the gallery does
            file = await self.comfy.view(fact.filename, fact.subfolder, fact.folder_type, job_id=fact.job_id)
        except HostError:
            return None
        return file.data

    # -- the schedule ---------------------------------------------------------------------------------------

    def start(self) -> None:
        """The scheduled runs, every `maintenance_interval_hours` after the last real run (0: never)."""
        if self._schedule is None:
            self._schedule = asyncio.get_running_loop().create_task(self._scheduled())

    async def stop(self) -> None:
        await cancel_and_wait(self._schedule, self._task)
        self._schedule = None

    async def next_due(self) -> float | None:
        """Seconds until the next scheduled run (None: scheduling is off)."""
        hours = _number(await self.settings(self.owner_id()), "maintenance_interval_hours", 0)
        if hours <= 0:
            return None
        async with self.store.transaction() as session:
            last = await repo.last_finished(session)
        if last is None:
            return 0.0
        return max(0.0, (last + timedelta(hours=hours) - self._clock()).total_seconds())

    async def _scheduled(self) -> None:
        # Settings can change while it waits: it wakes at least hourly to look again.
        await asyncio.sleep(STARTUP_DELAY)  # start-up's own work first
        while True:
            try:
                wait = await self.next_due()
                if wait is not None and wait <= 0 and not self._lock.locked():
                    await self.run(None, "schedule")
                    continue
                await asyncio.sleep(min(wait if wait is not None else 3600, 3600))
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("Scheduled storage maintenance failed; next try in an hour")
                await asyncio.sleep(3600)

    # -- the Trash and expirable outputs ------------------------------------------------------------------

    async def trash(self, owner_id: int) -> Report:
        """This user's deleted jobs, newest deletion first, with when their files will be purged."""
        days = _number((await self.settings(owner_id)), "trash_retention_days", 30)
        async with self.store.transaction(owner_id) as session:
            jobs = await repo.trash_jobs(session, owner_id)
            images = await repo.images_of_jobs(session, [j.id for j in jobs])
            prompts = await repo.prompt_texts(session, jobs)
        by_job: dict[str, list[Report]] = {}
        for image in images:
            if image.job_id is not None and image.purged_at is None:
                by_job.setdefault(image.job_id, []).append(image_to_dict(image))
        items = []
        for job in reversed(jobs):
            assert job.deleted_at is not None
            items.append(
                {
                    "id": job.id,
                    "state": job.state,
                    "prompt_text": prompts.get(job.id),
                    "created_at": iso(job.created_at),
                    "deleted_at": iso(job.deleted_at),
                    "purge_after": iso(job.deleted_at + timedelta(days=days)),
                    "images": by_job.get(job.id, []),
                }
            )
        return {"items": items, "retention_days": days}

    async def restore(self, owner_id: int, job_id: str) -> Report:
        async with self.store.transaction(owner_id) as session:
            jobs = {j.id: j for j in await repo.trash_jobs(session, owner_id)}
            job = jobs.get(job_id)
            if job is None:
                raise not_found("Deleted job")
            images = await repo.images_of_jobs(session, [job_id])
            if await repo.journal_targets(session, [job_id, *(i.id for i in images)]):
                raise StudioError("conflict", "This job's files are being purged right now")
            await repo.restore_job(session, job)
        return {"id": job_id, "restored": True}

    async def set_expirable(self, owner_id: int, image_id: str, expirable: bool) -> Report:
        async with self.store.transaction(owner_id) as session:
            image = await repo.image(session, image_id)
            if image is None or image.owner_id != owner_id or image.purged_at is not None:
                raise not_found("Image")
            if image.kind != "output":
                raise StudioError("conflict", "Only a job's outputs can be marked expirable")
            await repo.set_expirable(session, image, expirable)
        return {"id": image_id, "expirable": expirable}

    # -- backups ----------------------------------------------------------------------------------------------

    async def backup(self, target: Path | None = None) -> Report:
        """A consistent copy of the live database (SQLite's backup API) in `<data dir>/backups/` or at target."""
        if target is None:
            stamp = self._clock().strftime("%Y%m%d-%H%M%S")
            target = self.config.data_dir / "backups" / f"studio-{stamp}.db"
        if self.store.sqlite_path is None:
            raise StudioError(
                "conflict", "Only a SQLite database is backed up by the studio: back PostgreSQL up with pg_dump"
            )
        size = await self.store.backup_to(target)
        shown = target.relative_to(self.config.data_dir) if target.is_relative_to(self.config.data_dir) else target
        return {"path": str(shown), "bytes": size}


def _run_to_dict(run: MaintenanceRun) -> Report:
    return {
        "id": run.id,
        "trigger": run.trigger,
        "dry_run": run.dry_run,
        "status": run.status,
        "started_at": iso(run.started_at),
        "finished_at": iso(run.finished_at),
        "bytes_freed": run.bytes_freed,
        "summary": run.summary,
        "vacuumed": run.vacuumed,
    }
