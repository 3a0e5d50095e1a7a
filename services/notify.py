"""Live events between studio processes that share one PostgreSQL database, through LISTEN/NOTIFY.

A job submitted through one process is followed by that process alone (db.dispatch); its `job`, `progress`
and `output` events also go out as a NOTIFY on one channel, and every other process hands them to its own
EventHub, so a stream opened on any process sees every job of its user live. Events of a process's own
backends and tasks (queue views, models, downloads, imports) stay local.

Cancelling a job or moving it to the front must happen where it was dispatched (that process's ComfyUI holds
it): asked of another process, the request goes to the dispatcher on a second channel and its answer comes back
the same way.

A NOTIFY payload is at most 8000 bytes: an event too large for it goes out as a reference (the job's id),
and the receiver reads the job from the store. On SQLite there is one process per database: nothing starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from ..db.dispatch import asyncpg_dsn
from ..db.store import Store
from ..engine.errors import StudioError
from ..engine.jsoncodec import dumps
from .background import cancel_and_wait
from .eventhub import Event, EventHub

if TYPE_CHECKING:
    import asyncpg

log = logging.getLogger("comfyui_studio.notify")

CHANNEL = "studio_events"
COMMANDS = "studio_commands"
# How long a request waits for the process that dispatched its job to answer.
COMMAND_TIMEOUT_S = 15.0
RELAYED_KINDS = frozenset({"job", "progress", "output"})
# PostgreSQL refuses payloads of 8000 bytes or more; leave room for the envelope.
MAX_PAYLOAD_BYTES = 7900

LoadJob = Callable[[int, str], Awaitable[dict[str, Any]]]
# Runs a job operation ("cancel", "front") here, for another process: (operation, owner id, job id).
RunCommand = Callable[[str, int, str], Awaitable[object]]


def envelope(origin: str, event: Event) -> str | None:
    """The NOTIFY payload of an event: whole, or (too large) a reference to its job, or None (not relayed)."""
    head = f'{{"o":{json.dumps(origin)},"k":{json.dumps(event.kind)},"u":{json.dumps(event.user_id)}'
    whole = f'{head},"d":{event.data_json}}}'
    if len(whole.encode()) <= MAX_PAYLOAD_BYTES:
        return whole
    if event.kind == "job":
        job = json.loads(event.data_json).get("job") or {}
        if isinstance(job, dict) and isinstance(job.get("id"), str) and event.user_id is not None:
            return f'{head},"j":{json.dumps(job["id"])}}}'
    log.warning("A %s event of %d bytes is too large to relay to other studio processes", event.kind, len(whole))
    return None


class EventRelay:
    """This process's end of the channel: sends its events, delivers the others'."""

    def __init__(self, store: Store, hub: EventHub, load_job: LoadJob) -> None:
        self.store = store
        self.hub = hub
        self.load_job = load_job
        self.origin = store.dispatch.name
        self._listener: asyncpg.Connection | None = None
        self._sender: asyncpg.Connection | None = None
        # (channel, payload), sent in order by one task: an asyncpg connection runs one statement at a time
        self._outgoing: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
        self._send_task: asyncio.Task[None] | None = None
        self._watch_task: asyncio.Task[None] | None = None
        self._listener_lost = asyncio.Event()
        self._loads: set[asyncio.Task[None]] = set()
        self.run_command: RunCommand | None = None
        self._replies: dict[str, asyncio.Future[dict[str, Any]]] = {}

    @property
    def active(self) -> bool:
        return self._listener is not None

    async def start(self) -> None:
        if self.store.dialect != "postgresql" or self._listener is not None:
            return
        self._sender = await self._connect()
        await self._listen()
        loop = asyncio.get_running_loop()
        self._send_task = loop.create_task(self._send_loop(), name="studio-event-relay")
        self._watch_task = loop.create_task(self._watch_loop(), name="studio-event-listener")
        self.hub.relay = self._relay

    async def stop(self) -> None:
        if self.hub.relay == self._relay:
            self.hub.relay = None
        await cancel_and_wait(self._watch_task)
        self._watch_task = None
        if self._send_task is not None:
            with contextlib.suppress(asyncio.TimeoutError):  # what is queued goes out, briefly waited for
                await asyncio.wait_for(self._outgoing.join(), 2.0)
            await cancel_and_wait(self._send_task)
            self._send_task = None
        for task in list(self._loads):
            task.cancel()
        for future in self._replies.values():
            future.cancel()
        for conn in (self._listener, self._sender):
            if conn is not None:
                with contextlib.suppress(Exception):
                    await conn.close()
        self._listener = self._sender = None

    async def _connect(self) -> asyncpg.Connection:
        import asyncpg  # only with a PostgreSQL store: a SQLite install needs no driver for it

        # Connections of their own: a LISTEN lives on its session, outside the engine's pool.
        return await asyncpg.connect(asyncpg_dsn(self.store.url))

    async def _listen(self) -> None:
        conn = await self._connect()
        lost = asyncio.Event()
        conn.add_termination_listener(lambda _conn: lost.set())
        await conn.add_listener(CHANNEL, self._received)
        await conn.add_listener(COMMANDS, self._command_received)
        self._listener, self._listener_lost = conn, lost

    async def _watch_loop(self) -> None:
        """Listen again after the connection is lost (a server restart, a network cut)."""
        while True:
            await self._listener_lost.wait()
            log.warning("Lost the connection that hears other studio processes; reconnecting")
            delay = 0.5
            while True:
                try:
                    await self._listen()
                    break
                except Exception as exc:  # the server may still be starting
                    log.info("Listening again failed (%s); next try in %.1f s", exc, delay)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 10.0)
            # What the others said meanwhile is gone: every stream here starts again from a snapshot.
            self.hub.resync_all()

    # -- out ------------------------------------------------------------------------------------------

    def _relay(self, event: Event) -> None:
        # Called from EventHub.publish on the hot path: never awaits.
        if event.kind not in RELAYED_KINDS:
            return
        payload = envelope(self.origin, event)
        if payload is not None:
            self._outgoing.put_nowait((CHANNEL, payload))

    async def _send_loop(self) -> None:
        while True:
            batch = [await self._outgoing.get()]
            while not self._outgoing.empty():
                batch.append(self._outgoing.get_nowait())
            try:
                await self._notify(batch)
            except Exception:
                log.exception("Could not relay %d events to other studio processes", len(batch))
            finally:
                for _ in batch:
                    self._outgoing.task_done()

    async def _notify(self, batch: list[tuple[str, str]]) -> None:
        if self._sender is None or self._sender.is_closed():
            self._sender = await self._connect()  # lost with a server restart: once more on a new one
        # One transaction: the others receive them together, in this order.
        await self._sender.executemany("SELECT pg_notify($1, $2)", batch)

    # -- in -------------------------------------------------------------------------------------------

    def _received(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        try:
            message = json.loads(payload)
            if message.get("o") == self.origin:
                return  # our own, already delivered here
            kind, user_id = str(message["k"]), message.get("u")
        except (ValueError, KeyError, TypeError, AttributeError):
            log.warning("Ignored a malformed event on %s", CHANNEL)
            return
        if "d" in message:
            self.hub.deliver(kind, dumps(message["d"]), user_id=user_id)
        elif kind == "job" and isinstance(message.get("j"), str) and isinstance(user_id, int):
            task = asyncio.get_running_loop().create_task(self._deliver_stored_job(user_id, message["j"]))
            self._loads.add(task)
            task.add_done_callback(self._loads.discard)

    async def _deliver_stored_job(self, user_id: int, job_id: str) -> None:
        try:
            job = await self.load_job(user_id, job_id)
        except Exception:
            log.warning("A relayed job %s could not be read from the store", job_id, exc_info=True)
            return
        self.hub.deliver("job", dumps({"job": job}), user_id=user_id)

    # -- job operations where the job was dispatched ----------------------------------------------------

    async def elsewhere(self, dispatcher: str | None, operation: str, owner_id: int, job_id: str) -> bool:
        """Run ``operation`` on a job in the live process that dispatched it; False when that is this one (or
        none alive: the job is then this process's to settle, at its next reconciliation).

        Raises the other process's StudioError, or ``comfy_unavailable`` when it does not answer in time.
        """
        if not self.active or dispatcher is None or dispatcher == self.origin:
            return False
        if not await self.store.dispatch.alive(dispatcher):
            return False
        token = secrets.token_hex(8)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._replies[token] = future
        request = {"to": dispatcher, "from": self.origin, "token": token, "op": operation, "owner": owner_id}
        try:
            self._send_command({**request, "job": job_id})
            answer = await asyncio.wait_for(future, COMMAND_TIMEOUT_S)
        except asyncio.TimeoutError:  # not the builtin before Python 3.11
            raise StudioError(
                "comfy_unavailable", f"The studio process that runs job {job_id} did not answer; try again"
            ) from None
        finally:
            self._replies.pop(token, None)
        error = answer.get("error")
        if isinstance(error, dict):
            raise StudioError(str(error.get("code") or "internal_error"), str(error.get("message") or ""))
        return True

    def _send_command(self, message: dict[str, Any]) -> None:
        self._outgoing.put_nowait((COMMANDS, dumps(message)))

    def _command_received(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        try:
            message = json.loads(payload)
            if message.get("to") != self.origin:
                return
        except (ValueError, AttributeError):
            log.warning("Ignored a malformed request on %s", COMMANDS)
            return
        if "op" not in message:
            future = self._replies.get(str(message.get("token")))
            if future is not None and not future.done():
                future.set_result(message)
            return
        task = asyncio.get_running_loop().create_task(self._run_for_other(message))
        self._loads.add(task)
        task.add_done_callback(self._loads.discard)

    async def _run_for_other(self, message: dict[str, Any]) -> None:
        reply: dict[str, Any] = {"to": message.get("from"), "token": message.get("token")}
        try:
            if self.run_command is None:
                raise StudioError("comfy_unavailable", "This studio process takes no requests from others")
            await self.run_command(str(message["op"]), int(message["owner"]), str(message["job"]))
            reply["ok"] = True
        except StudioError as exc:
            reply["error"] = {"code": exc.code, "message": exc.message}
        except Exception:
            log.exception("A request from another studio process failed: %s", message.get("op"))
            reply["error"] = {"code": "internal_error", "message": "The studio process that runs the job failed"}
        self._send_command(reply)
