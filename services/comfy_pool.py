"""`BackendPool`: several ComfyUIs behind one `ComfyHost`.

Members are `RemoteHost`s (named by their URL) and, inside ComfyUI, the `InProcessHost` ("local"). A submit
goes to the least-loaded healthy, non-draining member that has every node class and combo value the graph
uses (ties round-robin); everything about a prompt afterwards (history, interrupt, its files) goes to the
member that took it. Reads the UI needs whole (queue, object_info, model lists) are merged.

With a single member the pool forwards every call unchanged: one `--comfy` behaves exactly as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from .background import cancel_and_wait
from .comfy_host import (
    JSON,
    ComfyHost,
    EventSink,
    FileData,
    FollowsEvents,
    HostError,
    HostNotFound,
    HostRejected,
    HostUnavailable,
    SubmitResult,
)
from .comfy_remote import RemoteHost

log = logging.getLogger("comfyui_studio.pool")

LOCAL = "local"
HEALTHY = "healthy"
UNREACHABLE = "unreachable"
HEALTH_INTERVAL_S = 5.0
# A member that never answers after the studio starts is given up on after this long: its stored jobs end lost.
START_GRACE_S = 60.0
MAX_BACKENDS = 32
ENDINGS = ("execution_success", "execution_error", "execution_interrupted")
MAX_REMEMBERED = 20_000  # prompt → member and file → member entries kept (the oldest go first)

ConnectListener = Callable[[bool], Awaitable[None]]
# Called with the member's name and the prompt ids it held when it stopped answering.
DownListener = Callable[[str, list[str]], Awaitable[object]]


def normalized_url(url: str) -> str:
    return url.strip().rstrip("/")


def check_backend_urls(value: object) -> list[str]:
    """The `comfy_backends` setting's URLs, normalized; ValueError naming the first bad one."""
    if not isinstance(value, list):
        raise ValueError("must be a list of URLs")
    if len(value) > MAX_BACKENDS:
        raise ValueError(f"at most {MAX_BACKENDS} backends")
    out: list[str] = []
    for item in value:
        if not isinstance(item, str) or not item.strip():
            raise ValueError("each backend must be a URL")
        url = normalized_url(item)
        if len(url) > 500:
            raise ValueError("a backend URL is at most 500 characters")
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018  # raises on a malformed port
        except ValueError as exc:
            raise ValueError(f"{item!r} is not a URL") from exc
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{item!r} is not an http(s) URL")
        if parts.username is not None or parts.password is not None:
            raise ValueError(f"{parts.hostname}: a backend URL carries no credentials")
        if parts.query or parts.fragment:
            raise ValueError(f"{item!r}: a backend URL has no query or fragment")
        if url.lower() in (u.lower() for u in out):
            raise ValueError(f"{url} is listed twice")
        out.append(url)
    return out


def _combo_choices(spec: Any) -> list[Any] | None:
    """The choices of a combo input spec (`[[…], {…}]`, or V3's `["COMBO", {"options": […]}]`); None otherwise."""
    if not isinstance(spec, list) or not spec:
        return None
    if isinstance(spec[0], list):
        return spec[0]
    if spec[0] == "COMBO" and len(spec) > 1 and isinstance(spec[1], dict):
        options = spec[1].get("options")
        return options if isinstance(options, list) else None
    return None


def _input_files(spec: list[Any]) -> bool:
    """A combo of input files (LoadImage's `image_upload`, …): uploads reach every backend, and ComfyUI checks
    these itself (a file in a subfolder is valid without being listed)."""
    options = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
    return any(key.endswith("_upload") and value for key, value in options.items())


@dataclass
class Capabilities:
    """What a member can run: its node classes, and each combo input's choices (model files among them)."""

    classes: set[str] = field(default_factory=set)
    combos: dict[tuple[str, str], set[str]] = field(default_factory=dict)

    @classmethod
    def of(cls, object_info: dict[str, JSON]) -> Capabilities:
        caps = cls(classes=set(object_info))
        for class_type, info in object_info.items():
            inputs = info.get("input") if isinstance(info, dict) else None
            for section in ("required", "optional"):
                for name, spec in ((inputs or {}).get(section) or {}).items():
                    choices = _combo_choices(spec)
                    if choices is not None and not _input_files(spec):
                        caps.combos[(class_type, name)] = {str(c) for c in choices if isinstance(c, str | int | float)}
        return caps

    def missing(self, graph: dict[str, JSON]) -> dict[str, list[str]]:
        """Node id → what this member lacks to run that node (empty: it runs the whole graph)."""
        out: dict[str, list[str]] = {}
        for node_id, node in graph.items():
            class_type = node.get("class_type") if isinstance(node, dict) else None
            if not isinstance(class_type, str):
                continue
            if class_type not in self.classes:
                out.setdefault(str(node_id), []).append(f"node class {class_type}")
                continue
            for name, value in (node.get("inputs") or {}).items():
                choices = self.combos.get((class_type, name))
                if choices is None or isinstance(value, list | dict | bool) or value is None:
                    continue  # a link, or not a combo
                if str(value) not in choices:
                    out.setdefault(str(node_id), []).append(f"{name} {value!r}")
        return out


@dataclass(eq=False)
class Member:
    name: str
    host: ComfyHost
    url: str | None
    fixed: bool  # from the command line or the local one: the setting never removes it
    health: str = UNREACHABLE
    draining: bool = False
    leaving: bool = False  # removed from the setting: takes nothing new, dropped once idle
    load: int = 0  # running + pending
    last_error: str | None = None
    caps: Capabilities | None = None
    probing: bool = False
    connected_once: bool = False
    given_up: bool = False  # never answered since the studio started, and its grace ran out
    active: set[str] = field(default_factory=set)  # prompt ids sent here or seen in its queue, not yet ended

    @property
    def reads(self) -> bool:
        """Worth asking for a merged read (an unreachable member would only slow it down)."""
        return self.health == HEALTHY or self.probing or (not self.connected_once and self.last_error is None)

    def summary(self, running_jobs: int) -> dict[str, JSON]:
        return {
            "name": self.name,
            "url": self.url,
            "health": self.health,
            "draining": self.draining or self.leaving,
            "load": self.load,
            "last_error": self.last_error,
            "jobs_running": running_jobs,
        }


class BackendPool:
    def __init__(
        self,
        urls: Iterable[str] = (),
        *,
        local: ComfyHost | None = None,
        health_interval: float = HEALTH_INTERVAL_S,
        remote_factory: Callable[[str], ComfyHost] = RemoteHost,
    ) -> None:
        self.local = local
        self.health_interval = health_interval
        self.start_grace = START_GRACE_S
        self._started_at = 0.0
        self._remote_factory = remote_factory
        self.members: dict[str, Member] = {}
        self._sinks: list[EventSink] = []
        self._connect_listeners: list[ConnectListener] = []
        self.down_listeners: list[DownListener] = []
        # job id → the member that ran it (the store's `backend`; set by the studio)
        self.job_backend: Callable[[str], Awaitable[str | None]] | None = None
        self._where: dict[str, Member] = {}  # prompt id → the member that holds it
        self._files: dict[tuple[str, str, str], str] = {}  # (filename, subfolder, type) → member name
        self.abandoned: dict[str, str] = {}  # prompt id → member, for prompts re-queued elsewhere after a loss
        self._turn = itertools.count()
        self._started = False
        self._connected_any = False
        self._health_task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        if local is not None:
            self._add(LOCAL, local, None, fixed=True).health = HEALTHY
        for url in urls:
            url = normalized_url(url)
            if url not in self.members:
                self._add(url, remote_factory(url), url, fixed=True)
        if not self.members:
            raise ValueError("a backend pool needs at least one member")
        first = next(iter(self.members.values())).host
        self.client_id = first.client_id
        self.description = ""
        self._describe()

    # -- members ---------------------------------------------------------------------------------

    def _describe(self) -> None:
        members = list(self.members.values())
        if len(members) == 1:
            self.description = members[0].host.description
        else:
            self.description = f"{len(members)} ComfyUI backends: " + ", ".join(m.name for m in members)

    @property
    def single(self) -> Member | None:
        """The only member, when there is just one: then every call is passed through unchanged."""
        return next(iter(self.members.values())) if len(self.members) == 1 else None

    def _add(self, name: str, host: ComfyHost, url: str | None, *, fixed: bool) -> Member:
        member = Member(name=name, host=host, url=url, fixed=fixed)
        self.members[name] = member
        if hasattr(self, "description"):
            self._describe()
        host.subscribe(lambda event, data: self._relay(member, event, data))
        if isinstance(host, FollowsEvents):
            host.on_connect(lambda first: self._member_connected(member, first))
            on_disconnect = getattr(host, "on_disconnect", None)
            if callable(on_disconnect):
                on_disconnect(lambda: self._spawn(self._check(member)))
        return member

    async def configure(self, urls: Iterable[str]) -> None:
        """Apply the `comfy_backends` setting: add the new URLs, let the ones no longer listed drain and leave."""
        wanted = [normalized_url(u) for u in urls]
        for url in wanted:
            member = self.members.get(url)
            if member is None:
                member = self._add(url, self._remote_factory(url), url, fixed=False)
                log.info("Backend %s added", url)
                if self._started:
                    self._start_member(member)
            member.leaving = False
        for member in list(self.members.values()):
            if not member.fixed and member.name not in wanted and not member.leaving:
                member.leaving = True
                log.info("Backend %s removed: it takes no new jobs and leaves once idle", member.name)
        await self._drop_idle_leavers()

    async def _drop_idle_leavers(self) -> None:
        for member in list(self.members.values()):
            if member.leaving and not member.active and member.load == 0 and len(self.members) > 1:
                del self.members[member.name]
                self._describe()
                await member.host.close()
                log.info("Backend %s left the pool", member.name)

    def _place(self, prompt_id: str, member: Member) -> None:
        if prompt_id not in self._where:
            if len(self._where) >= MAX_REMEMBERED:
                for old in list(self._where)[: MAX_REMEMBERED // 4]:
                    del self._where[old]
            self._where[prompt_id] = member

    def _held_by(self, member: Member) -> list[str]:
        return sorted(member.active)

    def set_draining(self, name: str, draining: bool) -> Member:
        member = self.members.get(name)
        if member is None:
            raise KeyError(name)
        member.draining = draining
        log.info("Backend %s %s", name, "draining" if draining else "takes jobs again")
        return member

    def remember(self, prompt_id: str, name: str | None) -> None:
        """A prompt a stored job says this member holds (the store's `backend`, after a restart)."""
        member = self.members.get(name or "")
        if member is not None and prompt_id not in self._where:
            self._where[prompt_id] = member

    def backend_of(self, prompt_id: str) -> str | None:
        member = self._where.get(prompt_id)
        return member.name if member is not None else None

    def forget_prompt(self, prompt_id: str) -> None:
        """A lost prompt that will run elsewhere: whatever its old member still says of it is ignored."""
        member = self._where.pop(prompt_id, None)
        if member is not None:
            member.active.discard(prompt_id)
            if len(self.abandoned) >= MAX_REMEMBERED:
                for old in list(self.abandoned)[: MAX_REMEMBERED // 4]:
                    del self.abandoned[old]
            self.abandoned[prompt_id] = member.name

    def listing(self, running: dict[str, int]) -> list[dict[str, JSON]]:
        return [m.summary(running.get(m.name, 0)) for m in self.members.values()]

    # -- following ----------------------------------------------------------------------------------

    def subscribe(self, sink: EventSink) -> None:
        self._sinks.append(sink)

    def on_connect(self, listener: ConnectListener) -> None:
        self._connect_listeners.append(listener)

    def start_events(self) -> None:
        self._started = True
        self._started_at = asyncio.get_running_loop().time()
        for member in self.members.values():
            self._start_member(member)
        if self._health_task is None or self._health_task.done():
            self._health_task = asyncio.get_running_loop().create_task(self._health_loop(), name="studio-pool-health")

    def _start_member(self, member: Member) -> None:
        if isinstance(member.host, FollowsEvents):
            member.host.start_events()

    async def stop_events(self) -> None:
        self._started = False
        task, self._health_task = self._health_task, None
        await cancel_and_wait(task, *self._tasks)
        for member in self.members.values():
            stop = getattr(member.host, "stop_events", None)
            if callable(stop):
                await stop()

    async def close(self) -> None:
        await self.stop_events()
        for member in self.members.values():
            await member.host.close()

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _relay(self, member: Member, event: str | int, data: Any) -> None:
        if isinstance(data, dict):
            prompt_id = data.get("prompt_id")
            if isinstance(prompt_id, str):
                if self.abandoned.get(prompt_id) == member.name:
                    return  # re-queued elsewhere after this member was lost: not this job any more
                self._place(prompt_id, member)
                if event == "executed":
                    self._learn_files(member, data.get("output"))
                elif event in ENDINGS:
                    member.active.discard(prompt_id)
                elif event == "execution_start":
                    member.active.add(prompt_id)
            if event == "status" and self.single is None:
                data = self._merged_status(member, data)
        for sink in self._sinks:
            try:
                sink(event, data)
            except Exception:
                log.exception("Studio event sink failed on %r", event)

    def _merged_status(self, member: Member, data: dict[str, Any]) -> dict[str, Any]:
        """A member's `status` with the queue count of every member, so the UI's counter is the pool's."""
        info = (data.get("status") or {}).get("exec_info") or {}
        remaining = info.get("queue_remaining")
        if isinstance(remaining, int):
            member.load = remaining
        total = sum(m.load for m in self.members.values() if m.reads or m is member)
        status = {**(data.get("status") or {}), "exec_info": {**info, "queue_remaining": total}}
        return {**data, "status": status}

    def _learn_files(self, member: Member, output: Any) -> None:
        if not isinstance(output, dict):
            return
        for items in output.values():
            for item in items if isinstance(items, list) else []:
                if isinstance(item, dict) and isinstance(item.get("filename"), str):
                    key = (item["filename"], str(item.get("subfolder") or ""), str(item.get("type") or "output"))
                    if len(self._files) >= MAX_REMEMBERED:
                        for old in list(self._files)[: MAX_REMEMBERED // 4]:
                            del self._files[old]
                    self._files[key] = member.name

    # -- health ---------------------------------------------------------------------------------------

    async def _member_connected(self, member: Member, first: bool) -> None:
        """A member's event socket (re)connected: learn what it runs, reconcile its jobs, then take jobs."""
        member.probing = True
        try:
            if self.single is None:
                await self._probe(member)
                await self._cancel_abandoned(member)
            # first: nothing was known before (beside a local ComfyUI a remote one always brings new models)
            pool_first = not self._connected_any and self.local is None
            self._connected_any = True
            for listener in self._connect_listeners:
                try:
                    await listener(pool_first and first)
                except Exception:
                    log.exception("A ComfyUI connect listener failed for backend %s", member.name)
            if member.health != HEALTHY:
                log.info("Backend %s is healthy", member.name)
            member.health, member.last_error = HEALTHY, None
            member.connected_once = True
        except HostError as exc:
            member.last_error = str(exc)
        finally:
            member.probing = False

    async def _probe(self, member: Member) -> None:
        member.caps = Capabilities.of(await member.host.object_info())
        self._observe(member, await member.host.queue())

    def _observe(self, member: Member, queue: dict[str, list[JSON]]) -> None:
        """A member's /queue answer: its load, and the prompts it holds now."""
        items = queue["queue_running"] + queue["queue_pending"]
        member.load = len(items)
        held = {str(item[1]) for item in items if len(item) > 1 and isinstance(item[1], str)}
        for prompt_id in held:
            self._place(prompt_id, member)
        member.active = held

    async def _cancel_abandoned(self, member: Member) -> None:
        """Prompts re-queued elsewhere while this member was away must not run here as well."""
        ids = [pid for pid, name in self.abandoned.items() if name == member.name]
        if not ids:
            return
        with contextlib.suppress(HostError):
            queue = await member.host.queue()
            pending = [i[1] for i in queue["queue_pending"] if len(i) > 1 and i[1] in ids]
            if pending:
                await member.host.delete_pending(pending)
            for item in queue["queue_running"]:
                if len(item) > 1 and item[1] in ids:
                    await member.host.interrupt(item[1])

    async def _health_loop(self) -> None:
        while True:
            await asyncio.sleep(self.health_interval)
            await asyncio.gather(*(self._check(m) for m in list(self.members.values())), return_exceptions=True)
            await self._drop_idle_leavers()

    async def _check(self, member: Member) -> None:
        """Ask the member for its queue; a member whose socket is down and whose HTTP fails is unreachable."""
        if member.name == LOCAL or member.probing or self.single is not None:
            return  # one backend: a reconnect's reconciliation decides, as it always has
        connected = getattr(member.host, "connected", None)
        socket_up = connected is None or connected.is_set()
        try:
            queue = await member.host.queue()
        except HostError as exc:
            member.last_error = str(exc)
            if not socket_up:
                await self._member_down(member)
            return
        self._observe(member, queue)
        if member.health != HEALTHY and socket_up and connected is not None:
            # its socket is up but the connect's probe failed: try again until it answers
            member.probing = True
            self._spawn(self._member_connected(member, not member.connected_once))

    async def _member_down(self, member: Member) -> None:
        was = member.health
        member.health = UNREACHABLE
        if was != HEALTHY and not self._give_up(member):
            return
        held = self._held_by(member)
        log.warning("Backend %s stopped responding; %d prompts on it", member.name, len(held))
        for listener in self.down_listeners:
            try:
                await listener(member.name, held)
            except Exception:
                log.exception("A backend-down listener failed")

    def _give_up(self, member: Member) -> bool:
        """A member down since before the studio started: once, after the grace, its stored jobs are lost too."""
        if member.connected_once or member.given_up:
            return False
        if asyncio.get_running_loop().time() - self._started_at < self.start_grace:
            return False
        member.given_up = True
        return True

    # -- choosing -------------------------------------------------------------------------------------

    def _candidates(self) -> list[Member]:
        return [m for m in self.members.values() if m.health == HEALTHY and not m.draining and not m.leaving]

    async def _ensure_probed(self, members: Iterable[Member]) -> None:
        unknown = [m for m in members if m.caps is None]
        for member, got in zip(
            unknown,
            await asyncio.gather(*(m.host.object_info() for m in unknown), return_exceptions=True),
            strict=True,
        ):
            if isinstance(got, dict):
                member.caps = Capabilities.of(got)

    async def choose(self, graph: dict[str, JSON]) -> Member:
        """The least-loaded able member (ties round-robin); HostRejected naming what no member has."""
        candidates = self._candidates()
        if not candidates:
            raise HostUnavailable("No ComfyUI backend is healthy and taking jobs: " + self._states())
        await self._ensure_probed(candidates)
        able = [m for m in candidates if m.caps is not None and not m.caps.missing(graph)]
        if not able:
            # New models or uploads since we last looked: ask again once before refusing.
            for member in candidates:
                member.caps = None
            await self._ensure_probed(candidates)
            able = [m for m in candidates if m.caps is not None and not m.caps.missing(graph)]
        if not able:
            raise HostRejected("No backend can run this graph", 400, self._refusal(graph, candidates))
        least = min(m.load for m in able)
        tied = [m for m in able if m.load == least]
        return tied[next(self._turn) % len(tied)]

    def _states(self) -> str:
        return ", ".join(
            f"{m.name} ({'draining' if m.draining or m.leaving else m.health})" for m in self.members.values()
        )

    def _refusal(self, graph: dict[str, JSON], candidates: list[Member]) -> dict[str, JSON]:
        """ComfyUI's refusal shape, naming for each node what no healthy backend has."""
        missing_everywhere: dict[str, set[str]] = {}
        for member in candidates:
            lacks = member.caps.missing(graph) if member.caps is not None else {}
            for node_id, lacked in lacks.items():
                missing_everywhere.setdefault(node_id, set()).update(lacked)
        node_errors: dict[str, JSON] = {}
        for node_id, things in sorted(missing_everywhere.items()):
            node = graph.get(node_id) or {}
            node_errors[node_id] = {
                "class_type": node.get("class_type", "?"),
                "errors": [
                    {"type": "no_backend", "message": "No backend has it", "details": ", ".join(sorted(things))}
                ],
            }
        names = ", ".join(m.name for m in candidates)
        return {
            "error": {
                "type": "no_backend",
                "message": "No backend has every node and model this graph needs",
                "details": f"asked: {names}",
            },
            "node_errors": node_errors,
        }

    def _owner_of(self, prompt_id: str | None) -> Member | None:
        return self._where.get(prompt_id or "")

    # -- the ComfyHost calls ----------------------------------------------------------------------------

    async def submit(
        self,
        graph: dict[str, JSON],
        *,
        prompt_id: str,
        front: bool = False,
        extra_data: dict[str, JSON] | None = None,
    ) -> SubmitResult:
        single = self.single
        member = single if single is not None else await self.choose(graph)
        self._where[prompt_id] = member
        member.load += 1
        member.active.add(prompt_id)
        try:
            result = await member.host.submit(graph, prompt_id=prompt_id, front=front, extra_data=extra_data)
        except BaseException:
            member.load = max(0, member.load - 1)
            member.active.discard(prompt_id)
            self._where.pop(prompt_id, None)
            raise
        result.backend = member.name
        return result

    async def _gather(self, call: Callable[[Member], Awaitable[Any]]) -> list[tuple[Member, Any]]:
        """``call`` on every member worth asking; the answers, and HostUnavailable if none answered."""
        members = [m for m in self.members.values() if m.reads]
        results = await asyncio.gather(*(call(m) for m in members), return_exceptions=True)
        answers = [(m, r) for m, r in zip(members, results, strict=True) if not isinstance(r, BaseException)]
        errors = [r for r in results if isinstance(r, BaseException)]
        for member, result in zip(members, results, strict=True):
            if isinstance(result, HostUnavailable):
                member.last_error = str(result)
        for error in errors:
            if not isinstance(error, HostError):
                raise error
        if not answers:
            if errors:
                raise errors[0]
            raise HostUnavailable("No ComfyUI backend is reachable: " + self._states())
        return answers

    async def queue(self) -> dict[str, list[JSON]]:
        if (single := self.single) is not None:
            return await single.host.queue()
        running: list[JSON] = []
        pending: list[JSON] = []
        for member, queue in await self._gather(lambda m: m.host.queue()):
            self._observe(member, queue)
            running.extend(queue["queue_running"])
            pending.extend(queue["queue_pending"])
        return {"queue_running": running, "queue_pending": pending}

    async def history(self, prompt_id: str | None = None, max_items: int | None = None) -> dict[str, JSON]:
        if (single := self.single) is not None:
            return await single.host.history(prompt_id, max_items)
        member = self._owner_of(prompt_id)
        if member is not None:
            found = await member.host.history(prompt_id, max_items)
            self._learn_history(member, found)
            return found
        merged: dict[str, JSON] = {}
        for member, found in await self._gather(lambda m: m.host.history(prompt_id, max_items)):
            self._learn_history(member, found)
            for key, entry in found.items():
                if prompt_id is not None:
                    self._place(key, member)
                merged.setdefault(key, entry)
        return merged

    def _learn_history(self, member: Member, found: dict[str, JSON]) -> None:
        for entry in found.values():
            if isinstance(entry, dict):
                self._learn_files(member, entry.get("outputs"))

    async def delete_pending(self, prompt_ids: list[str]) -> None:
        if (single := self.single) is not None:
            return await single.host.delete_pending(prompt_ids)
        by_member: dict[str, list[str]] = {}
        unknown: list[str] = []
        for prompt_id in prompt_ids:
            member = self._owner_of(prompt_id)
            if member is None:
                unknown.append(prompt_id)
            else:
                by_member.setdefault(member.name, []).append(prompt_id)
        for name, ids in by_member.items():
            await self.members[name].host.delete_pending(ids)
        if unknown:
            await self._gather(lambda m: m.host.delete_pending(unknown))

    async def clear_pending(self) -> None:
        if (single := self.single) is not None:
            return await single.host.clear_pending()
        await self._gather(lambda m: m.host.clear_pending())

    async def interrupt(self, prompt_id: str | None = None) -> None:
        if (single := self.single) is not None:
            return await single.host.interrupt(prompt_id)
        member = self._owner_of(prompt_id)
        if member is not None:
            return await member.host.interrupt(prompt_id)
        await self._gather(lambda m: m.host.interrupt(prompt_id))

    async def upload_image(self, data: bytes, filename: str, *, subfolder: str = "") -> dict[str, str]:
        """To every healthy member: whichever runs the job needs the input."""
        if (single := self.single) is not None:
            return await single.host.upload_image(data, filename, subfolder=subfolder)
        members = [m for m in self.members.values() if m.health == HEALTHY]
        if not members:
            raise HostUnavailable("No ComfyUI backend is reachable: " + self._states())
        results = await asyncio.gather(
            *(m.host.upload_image(data, filename, subfolder=subfolder) for m in members), return_exceptions=True
        )
        answers = [r for r in results if isinstance(r, dict)]
        for member, result in zip(members, results, strict=True):
            if isinstance(result, BaseException):
                log.warning("Upload of %s to backend %s failed: %s", filename, member.name, result)
        if not answers:
            error = results[0]
            raise error if isinstance(error, BaseException) else HostError("upload failed")
        if any(a["name"] != answers[0]["name"] for a in answers):
            log.warning("Backends stored upload %s under different names: %s", filename, [a["name"] for a in answers])
        return answers[0]

    async def view_for_job(self, job_id: str, filename: str, subfolder: str, folder_type: str) -> FileData:
        """A job's file, from the backend that ran the job: every backend names its first output alike."""
        if (single := self.single) is not None:
            return await single.host.view(filename, subfolder, folder_type)
        name = await self.job_backend(job_id) if self.job_backend is not None else None
        return await self._view(self.members.get(name or ""), filename, subfolder, folder_type)

    async def view(self, filename: str, subfolder: str, folder_type: str) -> FileData:
        """From the member that made the file; else each member in turn until one has it."""
        if (single := self.single) is not None:
            return await single.host.view(filename, subfolder, folder_type)
        return await self._view(None, filename, subfolder, folder_type)

    async def _view(self, preferred: Member | None, filename: str, subfolder: str, folder_type: str) -> FileData:
        learned = self.members.get(self._files.get((filename, subfolder, folder_type), ""))
        first = [m for m in (preferred, learned) if m is not None]
        order = list(dict.fromkeys(first)) + [m for m in self.members.values() if m not in first and m.reads]
        last: HostError = HostNotFound(f"No backend has the file {filename}", 404)
        for member in order:
            try:
                return await member.host.view(filename, subfolder, folder_type)
            except HostNotFound as exc:
                last = exc
            except HostError as exc:
                if member in first:
                    last = exc
        raise last

    async def object_info(self) -> dict[str, JSON]:
        """Every node class any member has; combo choices are the union (the UI shows what any backend runs)."""
        if (single := self.single) is not None:
            return await single.host.object_info()
        merged: dict[str, JSON] = {}
        for member, info in await self._gather(lambda m: m.host.object_info()):
            member.caps = Capabilities.of(info)
            for class_type, spec in info.items():
                if class_type not in merged:
                    merged[class_type] = spec
                else:
                    merged[class_type] = _union_spec(merged[class_type], spec)
        return merged

    async def model_files(self, folder: str) -> list[str]:
        if (single := self.single) is not None:
            return await single.host.model_files(folder)
        answers = await self._gather(lambda m: m.host.model_files(folder))
        files: dict[str, None] = {}
        for _member, names in answers:
            files.update(dict.fromkeys(names))
        return sorted(files)

    async def system_stats(self) -> dict[str, JSON]:
        if (single := self.single) is not None:
            return await single.host.system_stats()
        local = self.members.get(LOCAL)
        if local is not None:
            return await local.host.system_stats()
        answers = await self._gather(lambda m: m.host.system_stats())
        return answers[0][1]


def _union_spec(first: Any, second: Any) -> Any:
    """Two members' definitions of one node class: combo choices joined, the rest from the first."""
    if not isinstance(first, dict) or not isinstance(second, dict):
        return first
    inputs_a, inputs_b = first.get("input") or {}, second.get("input") or {}
    joined_inputs: dict[str, Any] = {}
    changed = False
    for section, specs in inputs_a.items():
        if not isinstance(specs, dict):
            joined_inputs[section] = specs
            continue
        out = dict(specs)
        for name, spec in specs.items():
            other = (inputs_b.get(section) or {}).get(name)
            mine, theirs = _combo_choices(spec), _combo_choices(other)
            if mine is None or theirs is None:
                continue
            extra = [c for c in theirs if c not in mine]
            if not extra:
                continue
            changed = True
            choices = [*mine, *extra]
            if isinstance(spec[0], list):
                out[name] = [choices, *spec[1:]]
            else:
                out[name] = [spec[0], {**spec[1], "options": choices}, *spec[2:]]
        joined_inputs[section] = out
    return {**first, "input": joined_inputs} if changed else first


def running_by_backend(jobs: Iterable[tuple[str | None, str]]) -> dict[str, int]:
    """(backend, state) pairs → how many running jobs each backend has."""
    out: dict[str, int] = {}
    for backend, state in jobs:
        if backend and state == "running":
            out[backend] = out.get(backend, 0) + 1
    return out
