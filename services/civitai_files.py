"""Local model files for Civitai: their SHA-256 (hashed once, kept in the store) and downloads into ComfyUI's folders.

Hashes: a background worker walks ComfyUI's model folders (folder_paths in plugin mode) and hashes each file
whose path, size or modification time is not in the store yet; unchanged files are never read again.

Downloads (owner only): streamed to `<name>.part` in the right folder (ComfyUI lists no `.part` file), with
`download` events (at most ~4 a second, and on every state change), cancel, resume with HTTP Range after a
dropped connection, the SHA-256 checked before the file is linked into place (never over an existing file),
and ComfyUI's model lists read again afterwards. The key goes only to the configured Civitai host: the
download URL redirects to a storage host, and the request there carries no Authorization.
A standalone studio (ComfyUI on another machine) has no model folders and refuses with 409.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hashlib
import logging
import os
import re
import secrets as pysecrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import aiohttp

from ..db import civitai as repo
from ..db.store import Store
from ..engine.civitai_prompt import LocalFile
from ..engine.errors import StudioError, not_found, validation_error
from .background import cancel_and_wait
from .civitai import Civitai, CivitaiError, origin
from .comfy_host import HostError
from .eventhub import EventHub
from .models import Models

log = logging.getLogger("comfyui_studio.civitai")

ModelDirs = Callable[[str], list[str]]
HASHED_FOLDERS = ("checkpoints", "loras", "embeddings", "vae", "upscale_models")
EXTENSIONS = {".ckpt", ".pt", ".pt2", ".bin", ".pth", ".safetensors", ".pkl", ".sft"}
CHUNK = 1024 * 1024
RESCAN_S = 300.0  # a full walk at least this often
WATCH_S = 10.0  # the folders' modification times are compared this often (a new file changes its folder's)
EVENT_INTERVAL_S = 0.25  # at most ~4 progress events a second per download
MAX_RESUMES = 5
MAX_REDIRECTS = 5
PART_SUFFIX = ".part"
KEEP_FINISHED = 50

# Civitai's model type → ComfyUI's folder
TYPE_FOLDERS = {
    "Checkpoint": "checkpoints",
    "LORA": "loras",
    "LoCon": "loras",
    "DoRA": "loras",
    "TextualInversion": "embeddings",
    "VAE": "vae",
    "Upscaler": "upscale_models",
}


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(8 * CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class LocalModels:
    """SHA-256 → local file, for `present` and to refuse downloading a file that is already here."""

    def __init__(
        self, store: Store, model_dirs: ModelDirs | None, *, rescan_s: float = RESCAN_S, watch_s: float = WATCH_S
    ) -> None:
        self.store = store
        self.model_dirs = model_dirs
        self.rescan_s = rescan_s
        self.watch_s = watch_s
        self._signature: tuple[tuple[str, float], ...] = ()
        self.by_sha: dict[str, LocalFile] = {}
        self.hashed = 0  # files hashed by this process (unchanged files are not)
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.ready = asyncio.Event()  # set after the first full scan

    @property
    def available(self) -> bool:
        return self.model_dirs is not None

    def dirs(self, folder: str) -> list[Path]:
        if self.model_dirs is None:
            return []
        try:
            return [Path(d) for d in self.model_dirs(folder)]
        except Exception:  # folder_paths raises KeyError for a folder it does not know
            return []

    def _walk(self) -> list[tuple[str, str, str, int, float]]:
        found = []
        for folder in HASHED_FOLDERS:
            for root in self.dirs(folder):
                if not root.is_dir():
                    continue
                for dirpath, subdirs, files in os.walk(root, followlinks=True):
                    subdirs[:] = [d for d in subdirs if not d.startswith(".")]
                    for name in files:
                        if os.path.splitext(name)[1].lower() not in EXTENSIONS:
                            continue
                        path = Path(dirpath) / name
                        try:
                            st = path.stat()
                        except OSError:
                            continue
                        rel = path.relative_to(root).as_posix()
                        found.append((str(path), folder, rel, st.st_size, st.st_mtime))
        return found

    def signature(self) -> tuple[tuple[str, float], ...]:
        """Every model directory's modification time: a file added, removed or renamed changes its folder's."""
        out = []
        for folder in HASHED_FOLDERS:
            for root in self.dirs(folder):
                for dirpath, subdirs, _files in os.walk(root, followlinks=True):
                    subdirs[:] = [d for d in subdirs if not d.startswith(".")]
                    with contextlib.suppress(OSError):
                        out.append((dirpath, os.stat(dirpath).st_mtime))
        return tuple(out)

    async def scan(self) -> int:
        """Hash new and changed files, forget removed ones; the number of files hashed."""
        if self.model_dirs is None:
            self.ready.set()
            return 0
        async with self._lock:
            self._signature = await asyncio.to_thread(self.signature)
            files = await asyncio.to_thread(self._walk)
            async with self.store.transaction() as session:
                rows = {r.path: r for r in await repo.model_hashes(session)}
            count = 0
            by_sha: dict[str, LocalFile] = {}
            for path, folder, name, size, mtime in files:
                row = rows.get(path)
                if row is not None and row.size == size and row.mtime == mtime:
                    by_sha[row.sha256] = LocalFile(folder, name)
                    continue
                try:
                    digest = await asyncio.to_thread(sha256_file, Path(path))
                except OSError as exc:
                    log.warning("Could not hash %s: %s", name, exc.strerror)
                    continue
                count += 1
                async with self.store.transaction() as session:
                    await repo.put_model_hash(session, path, folder, name, size, mtime, digest)
                by_sha[digest] = LocalFile(folder, name)
            gone = sorted(set(rows) - {f[0] for f in files})
            if gone:
                async with self.store.transaction() as session:
                    await repo.remove_model_hashes(session, gone)
            self.by_sha = by_sha
            self.hashed += count
        if count:
            log.info("Hashed %d model files", count)
        self.ready.set()
        return count

    async def note(self, path: Path, folder: str, name: str, digest: str) -> None:
        """A file the studio wrote and verified: recorded without reading it again."""
        st = await asyncio.to_thread(path.stat)
        async with self.store.transaction() as session:
            await repo.put_model_hash(session, str(path), folder, name, st.st_size, st.st_mtime, digest)
        self.by_sha[digest] = LocalFile(folder, name)

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        if self._task is None and self.model_dirs is not None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="studio-model-hashes")

    async def _run(self) -> None:
        while True:
            try:
                await self.scan()
            except Exception:
                log.exception("The model hash worker failed a round")
            self._wake.clear()
            waited = 0.0
            while waited < self.rescan_s and not self._wake.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.watch_s)
                waited += self.watch_s
                if await asyncio.to_thread(self.signature) != self._signature:
                    break

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None


@dataclass
class Download:
    id: str
    model_version_id: int
    file_id: int | None
    file_name: str
    folder: str
    sha256: str | None
    url: str
    target: Path
    state: str = "queued"
    bytes: int = 0
    total: int | None = None
    speed_bps: float | None = None
    eta_s: float | None = None
    error: str | None = None
    task: asyncio.Task[None] | None = field(default=None, repr=False)
    emitted_at: float = 0.0

    @property
    def part(self) -> Path:
        return self.target.with_name(self.target.name + PART_SUFFIX)

    @property
    def active(self) -> bool:
        return self.state in ("queued", "downloading", "verifying")

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "state": self.state,
            "model_version_id": self.model_version_id,
            "file_name": self.file_name,
            "folder": self.folder,
            "bytes": self.bytes,
            "total": self.total,
            "speed_bps": round(self.speed_bps, 1) if self.speed_bps is not None else None,
            "eta_s": round(self.eta_s, 1) if self.eta_s is not None else None,
            "error": self.error,
        }


class DownloadFailed(Exception):
    """A download that cannot go on; the message is shown to the user (no URL, no header, no key)."""


class Downloads:
    def __init__(
        self,
        civitai: Civitai,
        local: LocalModels,
        hub: EventHub,
        models: Models,
        owner_id: Callable[[], int],
        *,
        resume_delay_s: float = 1.0,
    ) -> None:
        self.civitai = civitai
        self.local = local
        self.hub = hub
        self.models = models
        self.owner_id = owner_id
        self.resume_delay_s = resume_delay_s
        self.items: collections.OrderedDict[str, Download] = collections.OrderedDict()

    def listing(self) -> list[dict[str, Any]]:
        return [d.to_json() for d in reversed(self.items.values())]

    def _publish(self, item: Download, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - item.emitted_at < EVENT_INTERVAL_S:
            return
        item.emitted_at = now
        self.hub.publish("download", {"download": item.to_json()}, user_id=self.owner_id())

    def _set_state(self, item: Download, state: str, error: str | None = None) -> None:
        item.state, item.error = state, error
        if state != "downloading":
            item.speed_bps = item.eta_s = None
        self._publish(item, force=True)

    async def start(self, version_id: int, file_id: int | None) -> dict[str, Any]:
        if not self.local.available:
            raise StudioError(
                "conflict",
                "ComfyUI runs on another machine (standalone mode): the studio cannot put files into its models "
                "folders. Download the model on the machine that runs ComfyUI.",
                status=409,
            )
        for item in self.items.values():
            if item.active and item.model_version_id == version_id and file_id in (None, item.file_id):
                return item.to_json()
        version = await self.civitai.model_version(version_id, with_download=True)
        files = version.get("files") or []
        if file_id is not None:
            chosen = next((f for f in files if f.get("id") == file_id), None)
        else:
            chosen = next((f for f in files if f.get("primary")), None) or next(iter(files), None)
        if chosen is None:
            raise not_found("Civitai file")
        folder = self._folder(version, chosen)
        name = self._safe_name(chosen.get("name") or "")
        dirs = self.local.dirs(folder)
        if not dirs:
            raise StudioError("conflict", f"ComfyUI has no {folder} folder", status=409)
        target = dirs[0] / name
        digest = chosen.get("sha256")
        if digest and digest in self.local.by_sha:
            have = self.local.by_sha[digest]
            raise StudioError("conflict", f"This file is already installed: {have.folder}/{have.name}", status=409)
        if target.exists():
            raise StudioError(
                "conflict", f"{folder}/{name} already exists: the studio never overwrites a file", status=409
            )
        cfg = await self.civitai.config()
        # Always Civitai's configured site: the path of Civitai's download URL, never its host.
        given = urlsplit(chosen.get("download_url") or "")
        path = given.path if given.path.startswith("/api/download/") else f"/api/download/models/{version_id}"
        url = cfg.site + path + (f"?{given.query}" if given.query and given.path == path else "")
        item = Download(
            id="dl_" + pysecrets.token_hex(8),
            model_version_id=version_id,
            file_id=chosen.get("id"),
            file_name=name,
            folder=folder,
            sha256=digest,
            url=url,
            target=target,
            total=int(chosen["size_kb"] * 1024) if isinstance(chosen.get("size_kb"), int | float) else None,
        )
        self.items[item.id] = item
        self._trim()
        self._publish(item, force=True)
        item.task = asyncio.get_running_loop().create_task(self._run(item), name=f"studio-download-{item.id}")
        return item.to_json()

    def _trim(self) -> None:
        finished = [k for k, v in self.items.items() if not v.active]
        for key in finished[: max(0, len(finished) - KEEP_FINISHED)]:
            del self.items[key]

    @staticmethod
    def _folder(version: dict[str, Any], file: dict[str, Any]) -> str:
        if file.get("type") == "VAE":
            return "vae"
        if file.get("type") not in ("Model", "Pruned Model", None):
            raise validation_error(f"The studio does not install {file.get('type')} files", ["body", "file_id"])
        kind = (version.get("model") or {}).get("type")
        folder = TYPE_FOLDERS.get(kind or "")
        if folder is None:
            raise validation_error(f"The studio does not install {kind} models", ["body", "model_version_id"])
        return folder

    @staticmethod
    def _safe_name(name: str) -> str:
        base = name.replace("\\", "/").rsplit("/", 1)[-1].strip()
        if not base or base.startswith(".") or not re.fullmatch(r"[^\x00-\x1f<>:\"|?*]{1,200}", base):
            raise validation_error("Civitai gave this file a name the studio does not use", ["body", "file_id"])
        if os.path.splitext(base)[1].lower() not in EXTENSIONS:
            raise validation_error("The studio installs model files only (.safetensors, .ckpt, …)", ["body", "file_id"])
        return base

    async def cancel(self, download_id: str) -> dict[str, Any]:
        item = self.items.get(download_id)
        if item is None:
            raise not_found("Download")
        if not item.active:
            del self.items[download_id]  # a finished one: taken off the list
            return item.to_json()
        if item.task is not None:
            item.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await item.task
        return item.to_json()

    async def stop(self) -> None:
        for item in list(self.items.values()):
            if item.task is not None and not item.task.done():
                item.task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await item.task

    # -- the transfer -----------------------------------------------------------------------------------

    async def _run(self, item: Download) -> None:
        try:
            await self._transfer(item)
        except asyncio.CancelledError:
            item.part.unlink(missing_ok=True)
            self._set_state(item, "cancelled")
            raise
        except DownloadFailed as exc:
            item.part.unlink(missing_ok=True)
            self._set_state(item, "error", str(exc))
        except Exception as exc:
            log.exception("Download %s failed", item.id)
            item.part.unlink(missing_ok=True)
            self._set_state(item, "error", f"The download failed: {type(exc).__name__}")

    async def _transfer(self, item: Download) -> None:
        hasher = [hashlib.sha256()]  # replaced when a host ignores Range and the file starts again
        item.target.parent.mkdir(parents=True, exist_ok=True)
        item.part.unlink(missing_ok=True)
        item.bytes = 0
        self._set_state(item, "downloading")
        drops = 0
        while True:
            try:
                done = await self._stream(item, hasher)
            except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError, asyncio.TimeoutError) as exc:
                drops += 1
                if drops > MAX_RESUMES:
                    raise DownloadFailed("The connection kept dropping; try again later") from None
                log.info("Download %s dropped at %d bytes (%s); resuming", item.id, item.bytes, type(exc).__name__)
                await asyncio.sleep(self.resume_delay_s * drops)
                continue
            if done:
                break
        self._set_state(item, "verifying")
        digest = hasher[0].hexdigest()
        if item.sha256 is None:
            raise DownloadFailed("Civitai gave no SHA-256 for this file, so it cannot be verified")
        if digest != item.sha256:
            raise DownloadFailed(f"The file's SHA-256 does not match Civitai's ({digest[:12]}… ≠ {item.sha256[:12]}…)")
        try:
            os.link(item.part, item.target)  # fails if the name was taken meanwhile: never overwrites
        except FileExistsError:
            raise DownloadFailed(
                f"{item.folder}/{item.file_name} appeared meanwhile; nothing was overwritten"
            ) from None
        except OSError:
            if item.target.exists():
                raise DownloadFailed(f"{item.folder}/{item.file_name} appeared meanwhile") from None
            os.replace(item.part, item.target)  # a filesystem without hard links
        item.part.unlink(missing_ok=True)
        rel = item.target.name
        await self.local.note(item.target, item.folder, rel, digest)
        self.models.forget()
        with contextlib.suppress(HostError, StudioError):
            await self.models.check(max_age=0)  # ComfyUI lists it without a restart; a `models` event follows
        self._set_state(item, "done")
        log.info("Downloaded %s/%s", item.folder, item.file_name)

    async def _open(self, item: Download) -> aiohttp.ClientResponse:
        """The response for the file, following redirects by hand: the key only on Civitai's own host."""
        cfg = await self.civitai.config()
        try:
            key = await self.civitai.key()
        except StudioError:
            key = None
        url = item.url
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=60)
        for _hop in range(MAX_REDIRECTS + 1):
            on_site = origin(url) == origin(cfg.site)
            headers = {"Accept": "*/*"}
            if on_site:
                await self.civitai.bucket(url, cfg.rate).take()
                if key:
                    headers["Authorization"] = f"Bearer {key}"
            if item.bytes:
                headers["Range"] = f"bytes={item.bytes}-"
            resp = await self.civitai.session().get(url, headers=headers, allow_redirects=False, timeout=timeout)
            if resp.status in (301, 302, 303, 307, 308):
                location = resp.headers.get("Location", "")
                resp.release()
                if not location:
                    raise DownloadFailed("Civitai redirected the download nowhere")
                url = urljoin(url, location)
                if urlsplit(url).scheme not in ("http", "https"):
                    raise DownloadFailed("Civitai redirected the download to an unsupported address")
                continue
            return resp
        raise DownloadFailed("Too many redirects")

    async def _stream(self, item: Download, hasher: list[Any]) -> bool:
        """One request: True when the whole file is in `part`."""
        resp = await self._open(item)
        async with resp:
            if resp.status == 416 and item.bytes:
                return True  # the range starts at the end: everything arrived before the drop
            if resp.status == 200 and item.bytes:
                # The host ignored Range: start again from the first byte.
                item.part.unlink(missing_ok=True)
                item.bytes = 0
                hasher[0] = hashlib.sha256()
            elif resp.status not in (200, 206):
                raise DownloadFailed(_refusal(resp.status, await _error_text(resp)))
            if resp.status == 206:
                match = re.search(r"/(\d+)$", resp.headers.get("Content-Range", ""))
                if match:
                    item.total = int(match.group(1))
            elif resp.content_length is not None:
                item.total = resp.content_length
            started, started_bytes = time.monotonic(), item.bytes
            with item.part.open("ab") as out:
                async for chunk in resp.content.iter_chunked(CHUNK):
                    await asyncio.to_thread(out.write, chunk)
                    hasher[0].update(chunk)
                    item.bytes += len(chunk)
                    elapsed = time.monotonic() - started
                    if elapsed > 0.2:
                        item.speed_bps = (item.bytes - started_bytes) / elapsed
                        if item.total and item.speed_bps > 0:
                            item.eta_s = max(0.0, (item.total - item.bytes) / item.speed_bps)
                    self._publish(item)
        if item.total is not None and item.bytes < item.total:
            raise aiohttp.ClientPayloadError("the connection closed before the end")
        return True


async def _error_text(resp: aiohttp.ClientResponse) -> str:
    try:
        data = await resp.json(content_type=None)
    except (ValueError, aiohttp.ClientError):
        return ""
    for key in ("message", "error"):
        value = data.get(key) if isinstance(data, dict) else None
        if isinstance(value, str) and len(value) < 300:
            return value
    return ""


def _refusal(status: int, text: str) -> str:
    if status == 401:
        return text or "Civitai requires a key to download this model: set one in Settings → Civitai"
    if status == 403:
        return text or "Civitai does not let this account download this model (early access?)"
    if status == 404:
        return "Civitai has no such file"
    if status == 410:
        return "This model was archived on Civitai"
    if status == 429:
        return text or "Civitai is limiting downloads from this account: try again later"
    return f"Civitai's storage answered HTTP {status}"


__all__ = ["CivitaiError", "Download", "Downloads", "LocalModels", "sha256_file"]
