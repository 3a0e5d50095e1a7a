"""The model files ComfyUI lists, kept live, and the node definitions (`/object_info`) that carry them.

ComfyUI caches each model folder's listing and reads the folder again only once its modification time
changed (``folder_paths.cached_filename_list_``); both ``/object_info`` and ``/models/{folder}`` answer
from that cache, so asking again is how a file dropped into ``models/checkpoints`` is seen. Contract:

- The lists (checkpoints, LoRAs, embeddings, upscale models) are read through the light per-folder route
  ``/models/{folder}``, at most once per ``poll_s``: by the watcher while anyone follows the studio's event
  stream, and by any reader of the node definitions otherwise, so API clients without a stream see a new
  file within ``poll_s`` too. A ComfyUI without that route has its ``/object_info`` read instead, at most every
  ``FALLBACK_S``.
- A change marks the node definitions stale (their combo lists name the files) and publishes one
  ``models`` event on the studio's own stream, to every user: the files are ComfyUI's, not a user's.
- The node definitions are fetched when stale, older than ``OBJECT_INFO_TTL``, or after a reconnect.
- The list reads are not written to the call log (a cheap read every few seconds would bury it); the
  ``/object_info`` fetch that a change causes is.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Awaitable, Callable

from ..engine.errors import StudioError
from ..engine.grammar import Resources
from ..engine.shortcodes import Offered
from .comfy_calls import LoggedComfy
from .comfy_host import JSON, ComfyHost, HostError, HostNotFound
from .eventhub import EventHub

log = logging.getLogger("comfyui_studio.models")

WATCHED_FOLDERS = ("checkpoints", "loras", "embeddings", "upscale_models")
POLL_S = 2.0  # a new file reaches the UI within this (plus one event) while someone watches
OBJECT_INFO_TTL = 300.0  # seconds: the model lists are watched apart; the rest changes when ComfyUI restarts
START_TIMEOUT_S = 10.0
FALLBACK_S = 5.0  # a ComfyUI without /models/{folder}: its ~0.5 MB /object_info is read at most this often

# Where /object_info names each folder's files, for a ComfyUI that has no /models/{folder} route.
FOLDER_INPUTS = {
    "checkpoints": ("CheckpointLoaderSimple", "ckpt_name"),
    "loras": ("LoraLoader", "lora_name"),
    "upscale_models": ("UpscaleModelLoader", "model_name"),
}

ModelLists = dict[str, list[str]]
StatusProvider = Callable[[], Awaitable[dict[str, JSON]]]


def combo_choices(object_info: dict[str, JSON], node: str, name: str) -> list[str]:
    """A combo input's choices, in either form ``/object_info`` gives: ``[[…], {…}]`` or ``["COMBO", {"options"…}]``."""
    info = object_info.get(node)
    inputs = info.get("input") if isinstance(info, dict) else None
    required = inputs.get("required") if isinstance(inputs, dict) else None
    spec = required.get(name) if isinstance(required, dict) else None
    if not isinstance(spec, list) or not spec:
        return []
    names = spec[0]
    if names == "COMBO" and len(spec) > 1 and isinstance(spec[1], dict):
        names = spec[1].get("options")
    return [n for n in names if isinstance(n, str)] if isinstance(names, list) else []


class Models:
    """ComfyUI's node definitions and model lists for one studio, refreshed as described above."""

    def __init__(
        self,
        host: ComfyHost,
        comfy: LoggedComfy,
        hub: EventHub,
        *,
        poll_s: float = POLL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.host = host  # the list reads go to the host directly: see the module's note on the call log
        self.comfy = comfy
        self.hub = hub
        self.poll_s = poll_s
        self.clock = clock
        self.status: StatusProvider | None = None  # what the `models` event says about the default actions
        self._info: dict[str, JSON] | None = None
        self._info_at = -math.inf
        self._info_lock = asyncio.Lock()
        self._lists: ModelLists | None = None
        self._checked_at = -math.inf
        self._fallback_at = -math.inf
        self._check_lock = asyncio.Lock()
        self._watcher: asyncio.Task[None] | None = None

    # -- node definitions ----------------------------------------------------------------------------

    async def object_info(self, *, fresh: bool = False) -> dict[str, JSON]:
        """ComfyUI's node definitions; the cached copy unless stale (the model lists are checked first)."""
        with contextlib.suppress(HostError):
            await self.check()  # unreadable lists: the definitions below say whether ComfyUI is there
        if fresh or self._info is None or self.clock() - self._info_at > OBJECT_INFO_TTL:
            async with self._info_lock:
                if fresh or self._info is None or self.clock() - self._info_at > OBJECT_INFO_TTL:
                    try:
                        self._info = await self.comfy.object_info()
                    except HostError as exc:
                        if self._info is None:
                            raise StudioError(
                                "comfy_unavailable", f"ComfyUI's node definitions are unavailable: {exc}"
                            ) from exc
                        log.warning("Keeping the cached node definitions: %s", exc)
                    self._info_at = self.clock()
        return self._info or {}

    async def resources(self) -> Resources:
        """The names a prompt may use: the model files and the sampler's own sampler and scheduler choices."""
        info = await self.object_info()
        lists = self.lists
        return Resources(
            checkpoints=tuple(lists["checkpoints"] or combo_choices(info, "CheckpointLoaderSimple", "ckpt_name")),
            loras=tuple(lists["loras"] or combo_choices(info, "LoraLoader", "lora_name")),
            embeddings=tuple(lists["embeddings"]),
            samplers=tuple(combo_choices(info, "KSampler", "sampler_name")),
            schedulers=tuple(combo_choices(info, "KSampler", "scheduler")),
        )

    def forget(self) -> None:
        """Drop the cached definitions and lists (ComfyUI reconnected: it may have restarted with others)."""
        self._info_at = -math.inf
        self._checked_at = -math.inf

    # -- model lists -----------------------------------------------------------------------------------

    @property
    def lists(self) -> ModelLists:
        """The lists as last read ({} of empty lists before the first read)."""
        return {k: list(v) for k, v in (self._lists or {f: [] for f in WATCHED_FOLDERS}).items()}

    async def current(self) -> ModelLists:
        """The lists, read again if the last read is older than ``poll_s``."""
        with contextlib.suppress(HostError):
            await self.check()
        return self.lists

    async def check(self, *, max_age: float | None = None) -> bool:
        """Read the lists unless read within ``max_age`` (default ``poll_s``); True when they changed."""
        age = self.poll_s if max_age is None else max_age
        if self.clock() - self._checked_at < age:
            return False
        async with self._check_lock:
            if self.clock() - self._checked_at < age:
                return False
            self._checked_at = self.clock()  # before the read: an unreachable ComfyUI is asked once per poll
            lists = await self._read()
            previous, self._lists = self._lists, lists
            if previous == lists:
                return False
            if previous is not None:
                self._info_at = -math.inf  # the definitions' combo lists name the old files
                log.info("ComfyUI's model files changed: %s", _diff(previous, lists))
        await self._announce(lists)
        return True

    async def _read(self) -> ModelLists:
        got = await asyncio.gather(*(self.host.model_files(f) for f in WATCHED_FOLDERS), return_exceptions=True)
        if any(isinstance(r, HostNotFound) for r in got) and self.clock() - self._fallback_at >= FALLBACK_S:
            # An older ComfyUI: its definitions carry the lists, read again (unlogged, like the lists).
            self._info, self._info_at = await self.host.object_info(), self.clock()
            self._fallback_at = self._info_at
        lists: ModelLists = {}
        for folder, result in zip(WATCHED_FOLDERS, got, strict=True):
            if isinstance(result, HostNotFound):
                lists[folder] = self._from_object_info(folder)
            elif isinstance(result, BaseException):
                raise result
            else:
                lists[folder] = sorted(result)
        return lists

    def _from_object_info(self, folder: str) -> list[str]:
        where = FOLDER_INPUTS.get(folder)
        return sorted(combo_choices(self._info or {}, *where)) if where else []

    async def _announce(self, lists: ModelLists) -> None:
        data: dict[str, object] = {"models": lists}
        if self.status is not None:
            try:
                data["status"] = await self.status()
            except StudioError as exc:
                log.warning("No action status for the models event: %s", exc.message)
        self.hub.publish("models", data)

    # -- the watcher -----------------------------------------------------------------------------------

    async def start(self) -> None:
        """Read the lists and the definitions once (bounded), then watch while anyone follows the stream."""
        try:
            await asyncio.wait_for(self.object_info(), START_TIMEOUT_S)
        except (StudioError, TimeoutError) as exc:
            log.warning("ComfyUI's node definitions are not available yet: %s", exc)
        if self._watcher is None:
            self._watcher = asyncio.get_running_loop().create_task(self._watch(), name="studio-model-watcher")

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.poll_s)
            if not self.hub.subscriber_count:
                continue  # nobody to tell: requests still check for themselves
            try:
                await self.check(max_age=self.poll_s / 2)
            except HostError as exc:
                log.debug("Model lists unreadable: %s", exc)
            except Exception:
                log.exception("The model watcher failed a round")

    async def stop(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
            self._watcher = None


def _diff(old: ModelLists, new: ModelLists) -> str:
    parts = []
    for folder in new:
        added = sorted(set(new[folder]) - set(old.get(folder, [])))
        removed = sorted(set(old.get(folder, [])) - set(new[folder]))
        if added or removed:
            parts.append(f"{folder} +{len(added)} -{len(removed)}")
    return ", ".join(parts)


def offered_values(resources: Resources) -> dict[str, list[Offered]]:
    """What the prompt bar suggests after ``--model``, ``--lora``, ``embedding:``, ``--sampler``, ``--scheduler``."""

    def files(names: tuple[str, ...], folder: str) -> list[Offered]:
        out = []
        for name in names:
            where, _, base = name.replace("\\", "/").rpartition("/")
            out.append(Offered(name, base, f"{folder}/{where}" if where else folder))
        return out

    return {
        "model": files(resources.checkpoints, "checkpoints"),
        "lora": files(resources.loras, "loras"),
        "embedding": files(resources.embeddings, "embeddings"),
        "sampler": [Offered(n, n, "sampler") for n in resources.samplers],
        "scheduler": [Offered(n, n, "scheduler") for n in resources.schedulers],
    }
