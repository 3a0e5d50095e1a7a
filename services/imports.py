"""The import of ComfyUI's past outputs: every PNG and WebP of its output folder becomes a gallery job.

The files are only read: never moved, renamed or rewritten. A file already known (by subfolder and name in the
output folder, the studio's own outputs included) is skipped, so running it again adds only new files. The walk
order is fixed (sorted paths) and each batch commits its rows with the run's cursor in one transaction, so a
stopped or killed import resumes after the last committed file. File reads, metadata parsing and thumbnails run
in a worker thread; the event loop only sends each batch's rows to the store.

It is offered, not automatic: a user who installs the studio decides whether months of outputs (and the thumbnail
work they cost) enter the gallery; an import left running when the process stopped carries on at the next start.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from ..config import StudioConfig
from ..db import audit
from ..db import imports as repo
from ..db.models import ImportRun, utcnow
from ..db.store import Store
from ..engine import imagemeta
from ..engine.errors import StudioError
from ..engine.ids import IMAGE, JOB, id_at
from .background import cancel_and_wait
from .eventhub import EventHub
from .images import _make_thumb

log = logging.getLogger("comfyui_studio.imports")

# Files per transaction: the loop inserts a batch's rows itself, so a batch bounds how long it holds the loop
# (32 files: stalls up to 56 ms; 8: under 7 ms, for 3 % fewer files a second).
BATCH = 8
MAX_FILE_BYTES = 256 * 1024 * 1024
EVENT_INTERVAL_S = 0.25
EXTENSIONS = {".png": "image/png", ".webp": "image/webp"}


@dataclass
class Outcome:
    """What one batch produced: rows to insert and counts to add to the run."""

    prompts: list[dict[str, object]] = field(default_factory=list)
    jobs: list[dict[str, object]] = field(default_factory=list)  # "prompt_index": its prompt in `prompts`
    images: list[dict[str, object]] = field(default_factory=list)
    with_metadata: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    metadata: dict[str, int] = field(default_factory=dict)

    def skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1


def _name_ok(rel: str) -> bool:
    """A name the store and ComfyUI's /view can carry: valid UTF-8, no control characters, within 255 bytes."""
    try:
        rel.encode("utf-8")
    except UnicodeEncodeError:  # undecodable bytes come back as surrogates
        return False
    if any(ord(c) < 32 or ord(c) == 127 for c in rel):
        return False
    sub, _, name = rel.rpartition("/")
    return 0 < len(name.encode()) <= 255 and len(sub.encode()) <= 255


def scan(root: Path) -> tuple[list[str], dict[str, int]]:
    """Every PNG/WebP under ``root`` as a sorted relative POSIX path, and the files left out, by reason.

    Symlinked folders are not entered (no loops, nothing outside); a symlinked file counts only when it
    resolves inside the folder. Hidden folders (``.cache`` and the like) are not ComfyUI's outputs.
    """
    root = root.resolve()
    found: list[str] = []
    skipped: dict[str, int] = {}

    def skip(reason: str) -> None:
        skipped[reason] = skipped.get(reason, 0) + 1

    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in filenames:
            if os.path.splitext(name)[1].lower() not in EXTENSIONS:
                continue
            full = Path(dirpath) / name
            rel = full.relative_to(root).as_posix()
            if not _name_ok(rel):
                skip("bad_name")
                continue
            if full.is_symlink():
                try:
                    target = full.resolve(strict=True)
                except (OSError, RuntimeError):
                    skip("broken_link")
                    continue
                if not target.is_relative_to(root):
                    skip("outside_folder")
                    continue
            found.append(rel)
    found.sort()
    return found, skipped


def _read(root: Path, rel: str) -> tuple[bytes, float] | str:
    """The file's bytes and modification time, or the reason it cannot be imported."""
    path = root / rel
    try:
        target = path.resolve(strict=True)
        if not target.is_relative_to(root):  # a link swapped after the walk
            return "outside_folder"
        info = target.stat()
        if not stat.S_ISREG(info.st_mode):
            return "not_a_file"
        if info.st_size > MAX_FILE_BYTES:
            return "too_large"
        if info.st_size == 0:
            return "empty"
        with open(target, "rb") as fh:
            data = fh.read(MAX_FILE_BYTES + 1)
    except (OSError, RuntimeError):
        return "unreadable"
    return data, info.st_mtime


def read_metadata(data: bytes, mime: str, notes: dict[str, int]) -> tuple[dict[str, str], tuple[int, int] | None]:
    """The header size and text metadata of a PNG or WebP.

    A broken structure (bad CRC, truncated, no header) raises MetadataError: the file is skipped. Unreadable
    metadata alone (oversized or malformed text, bad EXIF) is counted in ``notes`` and the image kept plain.
    """
    chunks: dict[str, bytes] = {}
    if mime == "image/png":
        size: tuple[int, int] | None = imagemeta.png_size(data)  # the structure first: a broken one skips
    else:
        chunks = imagemeta.webp_chunks(data)
        size = imagemeta.webp_size(chunks)
    try:
        texts = imagemeta.png_text(data) if mime == "image/png" else imagemeta.webp_text(chunks)
    except imagemeta.MetadataError as exc:
        notes[exc.reason] = notes.get(exc.reason, 0) + 1
        texts = {}
    return texts, size


def describe(
    texts: dict[str, str], notes: dict[str, int]
) -> tuple[dict[str, dict[str, object]] | None, imagemeta.Generation]:
    """The API graph (when there is a readable one) and what the metadata says about the generation."""
    graph = None
    gen = imagemeta.Generation()
    if "prompt" in texts:
        try:
            graph = imagemeta.api_graph(imagemeta.load_json(texts["prompt"]))
            gen = imagemeta.from_graph(graph)
        except imagemeta.MetadataError as exc:
            notes[exc.reason] = notes.get(exc.reason, 0) + 1
            graph = None
    if not gen.prompt and "parameters" in texts:
        a1111 = imagemeta.from_a1111(texts["parameters"])
        gen = imagemeta.Generation(
            a1111.prompt or gen.prompt, a1111.negative or gen.negative, {**a1111.parameters, **gen.parameters}
        )
    return graph, gen


def prepare_batch(
    root: Path, rels: list[str], thumbs_dir: Path, owner_id: int, run_id: int, max_pixels: int
) -> Outcome:
    """Read, check and thumbnail a batch of files; the rows to store (runs in a worker thread)."""
    out = Outcome()
    for rel in rels:
        read = _read(root, rel)
        if isinstance(read, str):
            out.skip(read)
            continue
        data, mtime = read
        mime = EXTENSIONS[os.path.splitext(rel)[1].lower()]
        sniffed = "image/png" if data.startswith(imagemeta.PNG_SIGNATURE) else None
        if sniffed is None and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            sniffed = "image/webp"
        if sniffed is None:
            out.skip("not_an_image")
            continue
        mime = sniffed  # the content decides, not the extension
        try:
            texts, size = read_metadata(data, mime, out.metadata)
        except imagemeta.MetadataError as exc:
            out.skip(f"corrupt_{exc.reason}")
            continue
        if size is None:
            out.skip("corrupt_header")
            continue
        if size[0] * size[1] > max_pixels:
            out.skip("too_many_pixels")
            continue
        graph, gen = describe(texts, out.metadata)
        created = datetime.fromtimestamp(mtime, timezone.utc)
        image_id = id_at(IMAGE, created)
        try:
            pixels = imagemeta.without_text(data) if mime == "image/png" else data
            _make_thumb(pixels, thumbs_dir / f"{image_id}.webp")
        except Exception:  # noqa: BLE001 - any decoder failure means the pixels are damaged
            out.skip("corrupt_pixels")
            continue
        sub, _, name = rel.rpartition("/")
        job_id = id_at(JOB, created)
        params: dict[str, object] = dict(gen.parameters)
        params.setdefault("width", size[0])
        params.setdefault("height", size[1])
        if gen.negative:
            params["negative_prompt"] = gen.negative[: imagemeta.MAX_PROMPT_CHARS]
        source = "comfyui" if graph is not None else "a1111" if "parameters" in texts and gen.prompt else "none"
        if source != "none" or gen.prompt:
            out.with_metadata += 1
        prompt_index = None
        if gen.prompt:
            prompt_index = len(out.prompts)
            out.prompts.append(
                {"owner_id": owner_id, "text": gen.prompt, "clean_text": gen.prompt, "created_at": created}
            )
        out.jobs.append(
            {
                "id": job_id,
                "owner_id": owner_id,
                "prompt_index": prompt_index,
                "state": "done",
                "graph": graph or {},
                "patches": [],
                "extra": {
                    "imported": {"run_id": run_id, "path": rel, "source": source, "workflow": "workflow" in texts}
                },
                "progress": {},
                "node_errors": {},
                "foreign": True,
                "parameters": params,
                "created_at": created,
                "started_at": created,
                "finished_at": created,
            }
        )
        out.images.append(
            {
                "id": image_id,
                "owner_id": owner_id,
                "job_id": job_id,
                "kind": "output",
                "filename": name,
                "subfolder": sub,
                "folder_type": "output",
                "mime": mime,
                "width": size[0],
                "height": size[1],
                "size_bytes": len(data),
                "sha256": hashlib.sha256(data).hexdigest(),
                "has_thumb": True,
                "created_at": created,
                "expirable": False,
            }
        )
    return out


def _merge(counts: dict[str, int], more: dict[str, int]) -> dict[str, int]:
    merged = dict(counts)
    for key, value in more.items():
        merged[key] = merged.get(key, 0) + value
    return merged


class Imports:
    """Start, pause and follow the import; one at a time, its progress in the store and on the event stream."""

    def __init__(
        self,
        config: StudioConfig,
        store: Store,
        hub: EventHub,
        folder: Callable[[], Path | None],
        owner_id: Callable[[], int],
    ) -> None:
        self.config = config
        self.store = store
        self.hub = hub
        self.folder = folder
        self.owner_id = owner_id
        self.run: dict[str, object] | None = None
        self._task: asyncio.Task[None] | None = None
        self._pause = False
        self._emitted = 0.0
        self.batch_size = BATCH
        self.after_batch: Callable[[], object] | None = None  # tests stop a run midway here

    # -- what the UI shows -----------------------------------------------------------------------------

    def status(self) -> dict[str, object]:
        running = self._task is not None and not self._task.done()
        return {"available": self._root() is not None, "running": running, "run": self.run}

    def _root(self) -> Path | None:
        try:
            folder = self.folder()
        except Exception:  # noqa: BLE001 - a host without a local folder
            return None
        if folder is None:
            return None
        path = Path(folder).resolve()
        return path if path.is_dir() else None

    def _publish(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._emitted < EVENT_INTERVAL_S:
            return
        self._emitted = now
        self.hub.publish("import", self.status(), user_id=self.owner_id())

    @staticmethod
    def _as_dict(row: ImportRun) -> dict[str, object]:
        skipped = row.skipped or {}
        return {
            "id": row.id,
            "status": row.status,
            "total": row.total,
            "done": row.done,
            "imported": row.imported,
            "with_metadata": row.with_metadata,
            "known": row.known,
            "skipped": dict(skipped.get("files", {})),
            "metadata_ignored": dict(skipped.get("metadata", {})),
            "error": row.error,
            "started_at": row.started_at.isoformat().replace("+00:00", "Z"),
            "finished_at": row.finished_at.isoformat().replace("+00:00", "Z") if row.finished_at else None,
        }

    # -- life ------------------------------------------------------------------------------------------

    async def load(self) -> None:
        """Read the last run; one the previous process left running carries on."""
        async with self.store.transaction() as session:
            row = await repo.last_run(session)
        self.run = self._as_dict(row) if row is not None else None
        if row is not None and row.status == "running" and self._root() is not None:
            log.info("Resuming the import of ComfyUI's outputs at %d of %d files", row.done, row.total)
            self._spawn(row.id)

    async def start(self, actor_id: int) -> dict[str, object]:
        """Start an import, or resume a paused or failed one; a finished one is run again for new files."""
        if self._task is not None and not self._task.done():
            raise StudioError("conflict", "An import is already running")
        if self._root() is None:
            raise StudioError("conflict", "ComfyUI's output folder is not on this machine: there is nothing to import")
        async with self.store.transaction(actor_id) as session:
            row = await repo.last_run(session)
            if row is None or row.status == "done":
                row = ImportRun(owner_id=self.owner_id(), status="running", cursor="", skipped={})
                session.add(row)
            else:
                row.status, row.error, row.updated_at = "running", None, utcnow()
            await session.flush()
            audit.record(session, actor_id, "import", "import_run", str(row.id), {"status": "running"})
            self.run = self._as_dict(row)
            run_id = row.id
        self._spawn(run_id)
        self._publish(force=True)
        return self.status()

    async def pause(self) -> dict[str, object]:
        """Stop after the batch in hand; `start` resumes from there."""
        task = self._task
        if task is None or task.done():
            raise StudioError("conflict", "No import is running")
        self._pause = True
        await asyncio.shield(task)
        return self.status()

    async def stop(self) -> None:
        """Shutting down: the run stays `running` in the store, so the next start continues it."""
        await cancel_and_wait(self._task)

    def _spawn(self, run_id: int) -> None:
        self._pause = False
        self._task = asyncio.get_running_loop().create_task(self._run(run_id), name="studio-import")

    async def _set_status(self, run_id: int, status: str, error: str | None = None) -> None:
        values: dict[str, object] = {"status": status, "error": error, "updated_at": utcnow()}
        if status == "done":
            values["finished_at"] = utcnow()
        async with self.store.transaction() as session:
            self.run = self._as_dict(await repo.set_status(session, run_id, values))

    async def _run(self, run_id: int) -> None:
        try:
            await self._work(run_id)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the run is marked failed; the user may resume it
            log.exception("The import of ComfyUI's outputs failed")
            await self._set_status(run_id, "failed", type(exc).__name__)
        self._publish(force=True)

    async def _work(self, run_id: int) -> None:
        root = self._root()
        if root is None:
            await self._set_status(run_id, "failed", "ComfyUI's output folder is gone")
            return
        owner_id = self.owner_id()
        files, scan_skipped = await asyncio.to_thread(scan, root)
        async with self.store.transaction() as session:
            row = await session.get(ImportRun, run_id)
            assert row is not None
            cursor = row.cursor
            if not cursor:  # a fresh run counts what the walk left out once
                skipped = dict(row.skipped or {})
                skipped["files"] = _merge(skipped.get("files", {}), scan_skipped)
                row.skipped = skipped
            row.total = len(files) + sum(scan_skipped.values())
            if not cursor:
                row.done = sum(scan_skipped.values())
            self.run = self._as_dict(row)
        self._publish(force=True)
        todo = [rel for rel in files if rel > cursor] if cursor else files
        for start in range(0, len(todo), self.batch_size):
            if self._pause:
                await self._set_status(run_id, "paused")
                return
            await self._batch(run_id, root, owner_id, todo[start : start + self.batch_size])
            self._publish()
            if self.after_batch is not None:
                self.after_batch()
            await asyncio.sleep(0)
        await self._set_status(run_id, "done")

    async def _batch(self, run_id: int, root: Path, owner_id: int, rels: list[str]) -> None:
        pairs = [(rel.rpartition("/")[0], rel.rpartition("/")[2]) for rel in rels]
        async with self.store.transaction() as session:
            known = await repo.known_output_files(session, pairs)
        new = [rel for rel, pair in zip(rels, pairs, strict=True) if pair not in known]
        out = await asyncio.to_thread(
            prepare_batch, root, new, self.config.thumbs_dir, owner_id, run_id, self.config.max_image_pixels
        )
        async with self.store.transaction(owner_id) as session:
            await repo.insert_batch(session, out.prompts, out.jobs, out.images)
            row = await session.get(ImportRun, run_id)
            assert row is not None
            skipped = dict(row.skipped or {})
            skipped["files"] = _merge(skipped.get("files", {}), out.skipped)
            skipped["metadata"] = _merge(skipped.get("metadata", {}), out.metadata)
            row.skipped = skipped
            row.cursor = rels[-1]
            row.done += len(rels)
            row.known += len(known)
            row.imported += len(out.images)
            row.with_metadata += out.with_metadata
            row.updated_at = utcnow()
            if out.images:
                audit.record(
                    session, owner_id, "import", "import_run", str(run_id), {"files": len(out.images), "last": rels[-1]}
                )
            self.run = self._as_dict(row)


def output_folder(folders: Callable[[str], Path | None] | None) -> Callable[[], Path | None]:
    """ComfyUI's output folder as maintenance finds it (in process: folder_paths; standalone: --comfy-dir)."""

    def find() -> Path | None:
        if folders is None:
            return None
        return folders("output")

    return find
