"""EventHub: ids, replay without gaps or duplicates, resync, drop-and-resync, per-user filtering."""

from __future__ import annotations

import asyncio

import pytest

from comfyui_studio.services.eventhub import Event, EventHub, Preview, Resync, Subscription, new_epoch


async def drain(sub: Subscription) -> list[Event | Resync | Preview]:
    """Everything ready now, without waiting."""
    items = []
    while (item := await sub.next(timeout=0)) is not None:
        items.append(item)
    return items


def ids(items) -> list[str]:
    return [i.id for i in items if isinstance(i, Event)]


def seq_of(event_id: str) -> int:
    return int(event_id.rsplit("-", 1)[1])


async def test_ids_carry_the_epoch_and_increase_by_one():
    hub = EventHub(epoch="abc")
    events = [hub.publish("job", {"n": n}) for n in range(5)]
    assert [e.id for e in events] == [f"abc-{n}" for n in range(1, 6)]
    assert hub.last_id == "abc-5"


def test_epochs_differ_across_processes_and_contain_no_separator():
    first = new_epoch()
    assert "-" not in first and first.isalnum()
    assert EventHub().epoch != EventHub(epoch="x").epoch


async def test_fresh_subscriber_starts_with_a_resync_then_live_events():
    hub = EventHub(epoch="e")
    hub.publish("job", {"old": True})
    sub = hub.subscribe(None)
    hub.publish("job", {"new": True})
    # The marker carries the newest id when it is taken: the snapshot built then covers e-2.
    assert await drain(sub) == [Resync("e-2", "initial")]
    hub.publish("job", {"newer": True})
    assert ids(await drain(sub)) == ["e-3"]


@pytest.mark.parametrize("seen", [0, 1, 5, 9, 10])
async def test_resume_replays_exactly_the_missed_events(seen):
    hub = EventHub(epoch="e", replay_size=10)
    for n in range(10):
        hub.publish("job", {"n": n})
    sub = hub.subscribe(f"e-{seen}")
    hub.publish("job", {"n": 10})  # published after subscribing: through the live queue, once
    got = ids(await drain(sub))
    assert got == [f"e-{n}" for n in range(seen + 1, 12)]
    assert len(got) == len(set(got))


@pytest.mark.parametrize(
    ("last_id", "reason"),
    [
        ("e-1", "too_old"),  # fell out of the 10-event buffer
        ("old-15", "other_epoch"),  # from an earlier process
        ("e-999", "unknown_id"),  # from the future
        ("garbage", "unknown_id"),
        ("e-x", "unknown_id"),
    ],
)
async def test_ids_that_cannot_be_replayed_get_a_single_resync(last_id, reason):
    hub = EventHub(epoch="e", replay_size=10)
    for n in range(20):
        hub.publish("job", {"n": n})
    sub = hub.subscribe(last_id)
    assert await drain(sub) == [Resync("e-20", reason)]
    hub.publish("job", {"n": 20})
    assert ids(await drain(sub)) == ["e-21"]


async def test_oldest_buffered_neighbour_is_still_replayable():
    hub = EventHub(epoch="e", replay_size=10)
    for n in range(20):
        hub.publish("job", {"n": n})
    # buffer holds e-11..e-20: a client that saw e-10 missed nothing that was dropped
    assert ids(await drain(hub.subscribe("e-10"))) == [f"e-{n}" for n in range(11, 21)]


async def test_overflow_drops_and_resyncs_the_slow_subscriber_only():
    hub = EventHub(epoch="e", client_queue_size=4)
    slow = hub.subscribe("e-0")
    fast = hub.subscribe("e-0")
    received: list[str] = []

    async def consume() -> None:
        async for item in fast:
            received.append(item.id)
            if item.id == "e-50":
                return

    task = asyncio.create_task(consume())
    for n in range(50):
        hub.publish("job", {"n": n})  # never awaits, whatever the subscribers do
        await asyncio.sleep(0)
    await task
    assert received == [f"e-{n}" for n in range(1, 51)]

    items = await drain(slow)
    assert items == [Resync("e-50", "overflow")]  # dropped, then one marker at the newest id
    assert slow.dropped == 1
    hub.publish("job", {})
    assert ids(await drain(slow)) == ["e-51"]  # back to normal after the resync


async def test_replay_larger_than_the_client_queue_does_not_overflow():
    hub = EventHub(epoch="e", replay_size=100, client_queue_size=4)
    for n in range(50):
        hub.publish("job", {"n": n})
    sub = hub.subscribe("e-0")
    hub.publish("job", {})
    got = await drain(sub)
    assert ids(got) == [f"e-{n}" for n in range(1, 52)]
    assert sub.dropped == 0


@pytest.mark.parametrize(
    ("sub_user", "expected"),
    [
        (None, ["e-1", "e-2", "e-3"]),  # admin / all
        (1, ["e-1", "e-3"]),
        (2, ["e-2", "e-3"]),
    ],
)
async def test_events_for_a_user_reach_only_that_user_and_admins(sub_user, expected):
    hub = EventHub(epoch="e")
    live = hub.subscribe("e-0", user_id=sub_user)
    hub.publish("job", {}, user_id=1)
    hub.publish("job", {}, user_id=2)
    hub.publish("queue", {})  # no user: everyone
    assert ids(await drain(live)) == expected
    assert ids(await drain(hub.subscribe("e-0", user_id=sub_user))) == expected  # replay filters too


async def test_previews_reach_only_subscribers_that_asked_and_are_never_replayed():
    hub = EventHub(epoch="e")
    ws = hub.subscribe("e-0", previews=True)
    sse = hub.subscribe("e-0")
    other_user = hub.subscribe("e-0", user_id=2, previews=True)
    hub.publish_preview("p", b"\xff\xd8jpeg", "image/jpeg", user_id=1)
    hub.publish("job", {})
    got = await drain(ws)
    assert Preview("p", b"\xff\xd8jpeg", "image/jpeg", 1) in got
    assert ids(got) == ["e-1"]
    assert ids(await drain(sse)) == ["e-1"] and not [i for i in await drain(sse) if isinstance(i, Preview)]
    assert [i for i in await drain(other_user) if isinstance(i, Preview)] == []
    late = await drain(hub.subscribe("e-0", previews=True))
    assert [i for i in late if isinstance(i, Preview)] == []
    assert ids(late) == ["e-1"]


async def test_previews_keep_only_the_latest_for_a_slow_client():
    hub = EventHub(epoch="e", client_queue_size=2)
    ws = hub.subscribe("e-0", previews=True)
    for n in range(10):
        hub.publish_preview("p", bytes([n]), "image/jpeg")
    assert await drain(ws) == [Preview("p", bytes([9]), "image/jpeg")]
    assert ws.dropped == 0  # previews never force a resync


async def test_events_are_frozen_at_publish_and_framed_once():
    hub = EventHub(epoch="e")
    data = {"state": "running"}
    event = hub.publish("job", data)
    data["state"] = "done"
    assert event.data == {"state": "running"}
    assert event.frame_json == '{"id":"e-1","kind":"job","data":{"state":"running"}}'
    assert event.frame_json is event.frame_json
    assert event.sse_bytes == b'id: e-1\nevent: job\ndata: {"state":"running"}\n\n'
    with pytest.raises(TypeError):
        hub.publish("job", {"x": object()})


async def test_waiting_subscriber_wakes_on_publish_and_times_out_to_none():
    hub = EventHub(epoch="e")
    sub = hub.subscribe("e-0")
    assert await sub.next(timeout=0.01) is None  # heartbeat time
    waiter = asyncio.create_task(sub.next())
    await asyncio.sleep(0)
    hub.publish("job", {})
    assert (await waiter).id == "e-1"


async def test_cancelled_wait_loses_nothing():
    hub = EventHub(epoch="e")
    sub = hub.subscribe("e-0")
    waiter = asyncio.create_task(sub.next())
    await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    hub.publish("job", {})
    assert ids(await drain(sub)) == ["e-1"]


async def test_close_ends_iteration_and_unsubscribes():
    hub = EventHub(epoch="e")
    sub = hub.subscribe("e-0")
    waiter = asyncio.create_task(sub.__anext__())
    await asyncio.sleep(0)
    hub.close()
    with pytest.raises(StopAsyncIteration):
        await waiter
    assert hub.subscriber_count == 0
    hub.publish("job", {})  # nobody left; still fine


def test_invalid_sizes_and_epochs_are_refused():
    with pytest.raises(ValueError):
        EventHub(replay_size=0)
    with pytest.raises(ValueError):
        EventHub(epoch="a-b")


def test_sequence_numbers_match_ids():
    hub = EventHub(epoch="e")
    assert all(seq_of(hub.publish("k", {}).id) == n for n in range(1, 4))


# -- the direct (fast) path: a stream that can take an event synchronously -----------------------------


class Wire:
    """A stream's wire: the hub's direct writes and the consumer task's writes land in one list."""

    def __init__(self, sub: Subscription) -> None:
        self.sub = sub
        self.items: list[Event | Resync | Preview] = []
        self.writable = True  # False: a paused transport, the direct writer declines
        self.direct_calls = 0
        sub.direct = self.direct

    def direct(self, event: Event) -> bool:
        self.direct_calls += 1
        if not self.writable:
            return False
        self.items.append(event)
        return True

    async def consume(self) -> None:
        async for item in self.sub:
            self.items.append(item)


async def parked(wire: Wire) -> asyncio.Task[None]:
    task = asyncio.create_task(wire.consume())
    await asyncio.sleep(0)  # runs until it waits in next() with nothing pending
    return task


async def test_a_parked_subscriber_gets_events_directly_without_waking():
    hub = EventHub(epoch="e")
    wire = Wire(hub.subscribe("e-0"))
    task = await parked(wire)
    waiter = wire.sub._waiter
    for n in range(5):
        hub.publish("job", {"n": n})
    assert ids(wire.items) == [f"e-{n}" for n in range(1, 6)]
    assert wire.sub._waiter is waiter and not waiter.done()  # the consumer task never ran
    assert not wire.sub._queue
    task.cancel()


async def test_order_holds_when_direct_and_queued_delivery_mix():
    hub = EventHub(epoch="e", client_queue_size=100)
    wire = Wire(hub.subscribe("e-0"))
    fast = Wire(hub.subscribe("e-0"))
    tasks = [await parked(wire), await parked(fast)]
    for n in range(60):
        wire.writable = n % 7 not in (3, 4)  # the transport is sometimes busy
        hub.publish("job", {"n": n})
        if n % 5 == 0:
            await asyncio.sleep(0)  # sometimes the consumer catches up before the next event
    await asyncio.sleep(0)
    expected = [f"e-{n}" for n in range(1, 61)]
    assert ids(wire.items) == expected
    assert ids(fast.items) == expected and fast.direct_calls == 60  # never held back by the other one
    # once a declined event is queued, later ones queue behind it (no direct write overtakes it)
    assert wire.direct_calls < 60
    for task in tasks:
        task.cancel()


async def test_a_paused_transport_falls_back_to_the_queue_and_resyncs_on_overflow():
    hub = EventHub(epoch="e", client_queue_size=4)
    wire = Wire(hub.subscribe("e-0"))
    task = await parked(wire)
    hub.publish("job", {})  # e-1: direct
    wire.writable = False
    for n in range(10):  # the consumer stays blocked (as on a write that waits for drain)
        hub.publish("job", {"n": n})
    assert wire.direct_calls == 2  # only the first declined one was offered; the rest queued behind it
    wire.writable = True
    await asyncio.sleep(0)
    assert wire.items == [wire.items[0], Resync("e-11", "overflow")] and wire.sub.dropped == 1
    hub.publish("job", {})  # back on the direct path once the consumer has parked again
    assert ids(wire.items) == ["e-1", "e-12"] and wire.direct_calls == 3
    task.cancel()


async def test_no_direct_write_while_a_resync_or_replay_is_pending():
    hub = EventHub(epoch="e", replay_size=10)
    for n in range(3):
        hub.publish("job", {"n": n})
    fresh, resumed = Wire(hub.subscribe(None)), Wire(hub.subscribe("e-1"))
    hub.publish("job", {})  # nobody is parked yet: the fresh one drops it (covered by its snapshot), the other queues
    tasks = [await parked(fresh), await parked(resumed)]
    hub.publish("job", {})
    assert fresh.items == [Resync("e-4", "initial"), *fresh.items[1:]] and ids(fresh.items) == ["e-5"]
    assert ids(resumed.items) == ["e-2", "e-3", "e-4", "e-5"]
    for task in tasks:
        task.cancel()


async def test_direct_writes_respect_the_user_filter():
    hub = EventHub(epoch="e")
    wire = Wire(hub.subscribe("e-0", user_id=1))
    task = await parked(wire)
    hub.publish("job", {}, user_id=2)
    hub.publish("job", {}, user_id=1)
    assert ids(wire.items) == ["e-2"] and wire.direct_calls == 1
    task.cancel()


async def test_a_failing_direct_writer_is_dropped_and_the_event_queued():
    hub = EventHub(epoch="e")
    sub = hub.subscribe("e-0")

    def broken(event: Event) -> bool:
        raise OSError("boom")

    sub.direct = broken
    got = asyncio.create_task(sub.next())
    await asyncio.sleep(0)
    hub.publish("job", {})  # publish itself never raises
    assert (await got).id == "e-1"
    assert sub.direct is None


async def test_close_detaches_the_direct_writer():
    hub = EventHub(epoch="e")
    wire = Wire(hub.subscribe("e-0"))
    task = await parked(wire)
    wire.sub.close()
    await task
    assert wire.sub.direct is None
    hub.publish("job", {})
    assert wire.items == [] and wire.direct_calls == 0


async def test_sse_chunk_is_the_frame_in_http_chunked_framing():
    event = EventHub(epoch="e").publish("job", {"n": 1})
    body = b'id: e-1\nevent: job\ndata: {"n":1}\n\n'
    assert event.sse_chunk == b"%x\r\n" % len(body) + body + b"\r\n"
