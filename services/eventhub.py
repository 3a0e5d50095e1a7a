"""Fan-out of studio events to live streams, with a bounded replay buffer.


Contract: `publish` never awaits and never blocks, so it can sit on the event loop's hot path
(the executor tap). Each subscription has its own bounded queue; one that overflows is emptied
and told to resync, so a slow client never slows the publisher or the other clients. A stream
may also give its subscription a synchronous `direct` writer: while its consumer is waiting with
nothing pending, `publish` hands it the event itself (no task wake-up per client per event).

Event ids are ``"<epoch>-<seq>"``: the epoch is per process (time-based base36), the sequence
increases by one per published event. An id from another epoch, or older than the replay
buffer, cannot be replayed exactly and gets a `resync` marker instead (the stream layer then
sends a snapshot of current jobs and queue).

Call everything from the event loop's thread.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from itertools import islice
from typing import Literal

from ..engine.jsoncodec import dumps

log = logging.getLogger("comfyui_studio.events")

ResyncReason = Literal["initial", "unknown_id", "other_epoch", "too_old", "overflow"]

_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"


def _base36(n: int) -> str:
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = _DIGITS[r] + out
        if n == 0:
            return out


def new_epoch() -> str:
    """A per-process epoch: milliseconds since 1970 in base36, so it differs across restarts."""
    return _base36(time.time_ns() // 1_000_000)


@dataclass(frozen=True)
class Event:
    id: str
    seq: int
    kind: str
    data_json: str  # serialised once at publish: the payload is frozen and shared by all clients
    user_id: int | None = None

    @property
    def data(self) -> object:
        return json.loads(self.data_json)

    # Built at most once per event, however many clients receive it.
    @cached_property
    def frame_json(self) -> str:
        """The WebSocket text frame: ``{"id", "kind", "data"}``."""
        return f'{{"id":{json.dumps(self.id)},"kind":{json.dumps(self.kind)},"data":{self.data_json}}}'

    @cached_property
    def sse_bytes(self) -> bytes:
        """The Server-Sent Events frame (`data_json` is one line: json.dumps escapes newlines)."""
        return f"id: {self.id}\nevent: {self.kind}\ndata: {self.data_json}\n\n".encode()

    @cached_property
    def sse_chunk(self) -> bytes:
        """`sse_bytes` as one HTTP/1.1 chunk (RFC 9112 §7.1), for streams that write to their transport."""
        body = self.sse_bytes
        return b"%x\r\n%b\r\n" % (len(body), body)


@dataclass(frozen=True)
class Resync:
    """Marker: the subscriber missed events it cannot replay; send it a fresh snapshot.

    `id` is the newest event id at the time the marker was taken: the snapshot reflects at
    least that event, and a client resuming from it loses nothing.
    """

    id: str
    reason: ResyncReason


@dataclass(frozen=True)
class Preview:
    """A latent preview image: live only, never replayed."""

    prompt_id: str
    image: bytes
    mime: str
    user_id: int | None = None


Item = Event | Resync | Preview


@dataclass(eq=False)
class Subscription:
    """One client's view of the stream; an async iterator of `Event | Resync | Preview`."""

    hub: EventHub
    user_id: int | None
    previews: bool
    maxsize: int
    _replay: Iterator[Event] | None = None
    _queue: deque[Event] = field(default_factory=deque)
    _resync: ResyncReason | None = None
    _preview: Preview | None = None  # latest only: previews are lossy by nature
    _waiter: asyncio.Future[None] | None = None
    closed: bool = False
    dropped: int = 0  # how many times this subscription overflowed
    # Set by a stream that can deliver an event synchronously (see `_push`); returns False when it
    # cannot take it right now (transport busy or closing), and the event is queued instead.
    direct: Callable[[Event], bool] | None = None

    def wants(self, user_id: int | None) -> bool:
        return user_id is None or self.user_id is None or self.user_id == user_id

    # Called by the hub; must stay O(1) and never await.
    def _push(self, event: Event) -> None:
        if self._resync is not None:
            return  # a resync is pending: the snapshot taken with it will cover this event
        # Fast path: the consumer is parked in `next()` with nothing pending (a push or timeout would
        # have completed its waiter), so everything before this event is already delivered and writing
        # it now keeps the order, without waking the consumer's task. Otherwise: queue and wake.
        waiter = self._waiter
        if self.direct is not None and waiter is not None and not waiter.done():
            try:
                if self.direct(event):
                    return
            except Exception:
                log.exception("direct event delivery failed; queueing instead")
                self.direct = None
        if len(self._queue) >= self.maxsize:
            self._queue.clear()
            self._resync = "overflow"
            self.dropped += 1
            log.info("slow event subscriber dropped %d time(s); resyncing it", self.dropped)
        else:
            self._queue.append(event)
        self._wake()

    def _push_preview(self, preview: Preview) -> None:
        self._preview = preview
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _take(self) -> Item | None:
        if self._resync is not None:
            reason = self._resync
            self._resync = None
            self._replay = None
            self._queue.clear()
            return Resync(self.hub.last_id, reason)
        if self._replay is not None:
            event = next(self._replay, None)
            if event is not None:
                return event
            self._replay = None
        if self._preview is not None:
            preview, self._preview = self._preview, None
            return preview
        if self._queue:
            return self._queue.popleft()
        return None

    async def next(self, timeout: float | None = None) -> Item | None:
        """The next item; None on timeout (time for a heartbeat).

        Raises StopAsyncIteration once closed. Cancel-safe: nothing is taken until it is returned.
        """
        item = self._take()
        if item is not None:
            return item
        if self.closed:
            raise StopAsyncIteration
        loop = asyncio.get_running_loop()
        waiter = loop.create_future()
        self._waiter = waiter
        handle = loop.call_later(timeout, self._wake) if timeout is not None else None
        try:
            await waiter
        finally:
            self._waiter = None
            if handle is not None:
                handle.cancel()
        item = self._take()
        if item is None and self.closed:
            raise StopAsyncIteration
        return item

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Item:
        while True:
            item = await self.next()
            if item is not None:
                return item

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.hub._subs.discard(self)
        self._queue.clear()
        self._replay = None
        self._resync = None
        self._preview = None
        self.direct = None
        self._wake()


class EventHub:
    """Publishes events to subscriptions; keeps the last `replay_size` for resuming clients."""

    def __init__(self, replay_size: int = 1000, client_queue_size: int = 256, epoch: str | None = None) -> None:
        if replay_size < 1 or client_queue_size < 1:
            raise ValueError("replay_size and client_queue_size must be positive")
        if epoch is not None and ("-" in epoch or not epoch):
            raise ValueError("epoch must be non-empty and contain no '-'")
        self.epoch = epoch or new_epoch()
        self.client_queue_size = client_queue_size
        self._seq = 0
        self._buffer: deque[Event] = deque(maxlen=replay_size)
        self._subs: set[Subscription] = set()
        # Hands each published event to other studio processes (services.notify); must not await or block.
        self.relay: Callable[[Event], None] | None = None

    @property
    def last_id(self) -> str:
        return f"{self.epoch}-{self._seq}"

    @property
    def subscriber_count(self) -> int:
        return len(self._subs)

    def publish(self, kind: str, data: dict[str, object], *, user_id: int | None = None) -> Event:
        """Number, store and fan out one event. Never awaits; raises TypeError if not JSON-able."""
        event = self.deliver(kind, dumps(data), user_id=user_id)
        if self.relay is not None:
            self.relay(event)
        return event

    def deliver(self, kind: str, data_json: str, *, user_id: int | None = None) -> Event:
        """Number, store and fan out an event already serialised (one relayed from another process)."""
        self._seq += 1
        event = Event(f"{self.epoch}-{self._seq}", self._seq, kind, data_json, user_id)
        self._buffer.append(event)
        for sub in self._subs:
            if sub.wants(user_id):
                sub._push(event)
        return event

    def publish_preview(self, prompt_id: str, image_bytes: bytes, mime: str, user_id: int | None = None) -> None:
        """Hand a latent preview to the subscriptions that asked for previews; never buffered."""
        preview = Preview(prompt_id, image_bytes, mime, user_id)
        for sub in self._subs:
            if sub.previews and sub.wants(user_id):
                sub._push_preview(preview)

    def subscribe(
        self, last_event_id: str | None, *, user_id: int | None = None, previews: bool = False
    ) -> Subscription:
        """A new subscription that first yields what `last_event_id` missed, or a resync marker.

        A fresh client (no id) gets a resync marker too, so it starts from a snapshot that the
        live events continue without a gap.
        """
        sub = Subscription(self, user_id, previews, self.client_queue_size)
        reason, missed = self._missed(last_event_id)
        if reason is not None:
            sub._resync = reason
        elif missed:
            sub._replay = (e for e in missed if sub.wants(e.user_id))
        self._subs.add(sub)
        return sub

    def resync_all(self) -> None:
        """Every subscription missed events (another process's, while the relay was cut): send each a snapshot.

        Said as an ``overflow``: to a client it is the same, events were dropped and a snapshot follows.
        """
        for sub in self._subs:
            if sub._resync is None:
                sub._queue.clear()
                sub._resync = "overflow"
                sub._wake()

    def close(self) -> None:
        """End every subscription (app shutdown): their streams finish cleanly."""
        for sub in list(self._subs):
            sub.close()

    def _missed(self, last_event_id: str | None) -> tuple[ResyncReason | None, list[Event]]:
        if not last_event_id:
            return "initial", []
        epoch, sep, seq_text = last_event_id.strip().rpartition("-")
        if not sep or not seq_text.isdigit():
            return "unknown_id", []
        if epoch != self.epoch:
            return "other_epoch", []
        seq = int(seq_text)
        if seq > self._seq:
            return "unknown_id", []
        if seq == self._seq:
            return None, []
        oldest = self._buffer[0].seq if self._buffer else self._seq + 1
        if seq < oldest - 1:
            return "too_old", []
        # Sequences in the buffer are contiguous, so the first missed one is at a known index;
        # copy the slice now so events published later arrive only through the queue.
        return None, list(islice(self._buffer, seq - oldest + 1, None))
