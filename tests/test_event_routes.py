"""The SSE and WebSocket streams end to end, in a bare app that mounts only the event routes."""

from __future__ import annotations

import asyncio
import json
import socket
import struct

import aiohttp
import pytest
from aiohttp import web

from comfyui_studio.server_routes import events
from comfyui_studio.server_routes.keys import EVENT_HUB, SNAPSHOT_PROVIDER
from comfyui_studio.services.eventhub import EventHub

TIMEOUT = 5


def make_app(hub: EventHub, heartbeat_s: float = 15.0, calls: list | None = None) -> web.Application:
    async def snapshot(user_id: int | None) -> dict[str, object]:
        if calls is not None:
            calls.append(user_id)
        return {"jobs": [{"prompt_id": "p", "state": "running"}], "queue_remaining": 1}

    studio = web.Application()
    studio[EVENT_HUB] = hub
    studio[SNAPSHOT_PROVIDER] = snapshot
    events.add_routes(studio, heartbeat_s=heartbeat_s)
    root = web.Application()
    root.add_subapp("/studio", studio)
    return root


@pytest.fixture
def hub() -> EventHub:
    return EventHub(epoch="ep", replay_size=50)


async def sse_frame(resp: aiohttp.ClientResponse) -> dict[str, str]:
    """The next SSE frame (comments come back as {"comment": ...}); skips the `retry:` preamble."""
    frame: dict[str, str] = {}
    while True:
        raw = await asyncio.wait_for(resp.content.readline(), TIMEOUT)
        assert raw, "stream ended"
        line = raw.decode().rstrip("\n")
        if line == "":
            if frame and "retry" not in frame:
                return frame
            frame = {}
            continue
        if line.startswith(":"):
            frame["comment"] = line[1:].strip()
            continue
        field, _, value = line.partition(": ")
        frame[field] = value


async def ws_json(ws: aiohttp.ClientWebSocketResponse) -> dict:
    msg = await asyncio.wait_for(ws.receive(), TIMEOUT)
    assert msg.type == aiohttp.WSMsgType.TEXT, msg
    return json.loads(msg.data)


async def test_two_sse_clients_and_a_websocket_see_the_same_ordered_events(aiohttp_client, hub):
    client = await aiohttp_client(make_app(hub))
    sse1 = await client.get("/studio/api/v1/events")
    sse2 = await client.get("/studio/api/v1/events")
    ws = await client.ws_connect("/studio/api/v1/ws")
    try:
        assert sse1.headers["Content-Type"].startswith("text/event-stream")
        # each stream opens with a resync snapshot (it was fresh); after it, nothing is missed
        first = [await sse_frame(sse1), await sse_frame(sse2)]
        assert [f["event"] for f in first] == ["resync", "resync"]
        assert json.loads(first[0]["data"])["queue_remaining"] == 1
        assert (await ws_json(ws))["kind"] == "resync"

        sent = [hub.publish("job", {"prompt_id": "p", "n": n}) for n in range(5)]
        expected = [(e.id, e.kind, {"prompt_id": "p", "n": n}) for n, e in enumerate(sent)]
        for resp in (sse1, sse2):
            got = [await sse_frame(resp) for _ in sent]
            assert [(f["id"], f["event"], json.loads(f["data"])) for f in got] == expected
        got_ws = [await ws_json(ws) for _ in sent]
        assert [(m["id"], m["kind"], m["data"]) for m in got_ws] == expected
    finally:
        await ws.close()
        sse1.close()
        sse2.close()


@pytest.mark.parametrize("how", ["header", "query"])
async def test_sse_reconnect_with_last_event_id_loses_and_duplicates_nothing(aiohttp_client, hub, how):
    client = await aiohttp_client(make_app(hub))
    resp = await client.get("/studio/api/v1/events")
    await sse_frame(resp)  # resync
    for n in range(3):
        hub.publish("job", {"n": n})
    seen = [await sse_frame(resp) for _ in range(3)]
    resp.close()

    for n in range(3, 6):  # published while disconnected
        hub.publish("job", {"n": n})
    last = seen[-1]["id"]
    if how == "header":
        resp = await client.get("/studio/api/v1/events", headers={"Last-Event-ID": last})
    else:
        resp = await client.get("/studio/api/v1/events", params={"last_event_id": last})
    try:
        missed = [await sse_frame(resp) for _ in range(3)]
        hub.publish("job", {"n": 6})
        live = await sse_frame(resp)
        all_ids = [f["id"] for f in seen + missed + [live]]
        assert all_ids == [f"ep-{n}" for n in range(1, 8)]
        assert [json.loads(f["data"])["n"] for f in missed + [live]] == [3, 4, 5, 6]
    finally:
        resp.close()


async def test_id_from_an_earlier_process_gets_a_resync_with_the_snapshot(aiohttp_client, hub):
    calls: list = []
    client = await aiohttp_client(make_app(hub, calls=calls))
    hub.publish("job", {})
    resp = await client.get("/studio/api/v1/events", headers={"Last-Event-ID": "older-42"})
    try:
        frame = await sse_frame(resp)
        assert frame["event"] == "resync" and frame["id"] == "ep-1"
        data = json.loads(frame["data"])
        assert data["reason"] == "other_epoch"
        assert data["jobs"] == [{"prompt_id": "p", "state": "running"}]
        assert calls == [None]  # no auth yet: the provider is asked for everything
    finally:
        resp.close()


async def test_sse_heartbeat_arrives_when_configured_short(aiohttp_client, hub):
    client = await aiohttp_client(make_app(hub, heartbeat_s=0.05))
    resp = await client.get("/studio/api/v1/events")
    try:
        await sse_frame(resp)  # resync
        assert await sse_frame(resp) == {"comment": "heartbeat"}
    finally:
        resp.close()


async def test_sse_disconnect_releases_the_subscription(aiohttp_client, hub):
    client = await aiohttp_client(make_app(hub, heartbeat_s=0.02))
    resp = await client.get("/studio/api/v1/events")
    await sse_frame(resp)
    assert hub.subscriber_count == 1
    resp.close()
    for _ in range(200):
        if hub.subscriber_count == 0:
            break
        await asyncio.sleep(0.01)
    assert hub.subscriber_count == 0


async def test_ws_resume_message_replays_from_the_given_id(aiohttp_client, hub):
    client = await aiohttp_client(make_app(hub))
    for n in range(4):
        hub.publish("job", {"n": n})
    ws = await client.ws_connect("/studio/api/v1/ws", params={"last_event_id": "ep-2"})
    try:
        assert [(await ws_json(ws))["id"] for _ in range(2)] == ["ep-3", "ep-4"]
        await ws.send_json({"type": "resume", "last_event_id": "ep-1"})
        assert [(await ws_json(ws))["id"] for _ in range(3)] == ["ep-2", "ep-3", "ep-4"]
        hub.publish("job", {"n": 4})
        assert (await ws_json(ws))["id"] == "ep-5"
    finally:
        await ws.close()


async def test_ws_previews_are_binary_frames_with_a_json_header(aiohttp_client, hub):
    client = await aiohttp_client(make_app(hub))
    ws = await client.ws_connect("/studio/api/v1/ws", params={"last_event_id": "ep-0"})
    sse = await client.get("/studio/api/v1/events", headers={"Last-Event-ID": "ep-0"})
    try:
        hub.publish("job", {})  # once both have it, both are subscribed
        assert (await ws_json(ws))["id"] == "ep-1"
        assert (await sse_frame(sse))["id"] == "ep-1"
        hub.publish_preview("p", b"\xff\xd8\xff\xe0jpeg", "image/jpeg")
        msg = await asyncio.wait_for(ws.receive(), TIMEOUT)
        assert msg.type == aiohttp.WSMsgType.BINARY
        (hlen,) = struct.unpack(">I", msg.data[:4])
        assert json.loads(msg.data[4 : 4 + hlen]) == {"prompt_id": "p", "mime": "image/jpeg"}
        assert msg.data[4 + hlen :] == b"\xff\xd8\xff\xe0jpeg"
        hub.publish("job", {})
        assert (await sse_frame(sse))["id"] == "ep-2"  # SSE never carried the preview
    finally:
        await ws.close()
        sse.close()


async def test_ws_without_previews_gets_only_events(aiohttp_client, hub):
    client = await aiohttp_client(make_app(hub))
    ws = await client.ws_connect("/studio/api/v1/ws", params={"last_event_id": "ep-0", "previews": "0"})
    try:
        hub.publish("job", {})
        assert (await ws_json(ws))["id"] == "ep-1"
        hub.publish_preview("p", b"img", "image/png")
        hub.publish("job", {})
        assert (await ws_json(ws))["id"] == "ep-2"
    finally:
        await ws.close()


async def test_shutdown_ends_open_streams(aiohttp_client, hub):
    client = await aiohttp_client(make_app(hub))
    resp = await client.get("/studio/api/v1/events")
    ws = await client.ws_connect("/studio/api/v1/ws")
    try:
        await sse_frame(resp)
        await ws_json(ws)
        hub.close()
        assert await asyncio.wait_for(resp.content.read(), TIMEOUT) == b""
        msg = await asyncio.wait_for(ws.receive(), TIMEOUT)
        assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING)
    finally:
        await ws.close()
        resp.close()


# -- the direct path: events written by the hub straight to idle SSE transports ---------------------------


async def open_raw(client, path: str, *, version: str = "1.1", rcvbuf: int | None = None) -> asyncio.StreamReader:
    """A bare HTTP client (its socket buffer can be made tiny); returns the reader after the headers."""
    sock = socket.socket()
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, (client.host, client.port))
    reader, writer = await asyncio.open_connection(sock=sock, limit=1024)
    writer.write(f"GET {path} HTTP/{version}\r\nHost: test\r\n\r\n".encode())
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), TIMEOUT)
    reader.head = head.decode()  # type: ignore[attr-defined]
    reader.writer = writer  # type: ignore[attr-defined]
    return reader


async def raw_frames(reader: asyncio.StreamReader, chunked: bool, until: str) -> list[str]:
    """SSE frames from a bare connection (de-chunked when `chunked`), up to the one containing `until`."""
    frames: list[str] = []
    buffer = b""
    while not frames or until not in frames[-1]:
        if chunked:
            size = int((await asyncio.wait_for(reader.readline(), TIMEOUT)).strip(), 16)
            buffer += await asyncio.wait_for(reader.readexactly(size + 2), TIMEOUT)
            buffer = buffer[:-2]
        else:
            buffer += await asyncio.wait_for(reader.read(4096), TIMEOUT)
        *complete, buffer = buffer.split(b"\n\n")
        frames += [f.decode() for f in complete]
    return frames


def frame_ids(frames: list[str]) -> list[str]:
    return [line[4:] for f in frames for line in f.split("\n") if line.startswith("id: ")]


async def test_many_sse_clients_get_directly_written_events_in_order(aiohttp_client, hub):
    client = await aiohttp_client(make_app(hub))
    streams = [await client.get("/studio/api/v1/events") for _ in range(20)]
    try:
        for resp in streams:
            await sse_frame(resp)  # resync
        await asyncio.sleep(0.05)  # every handler parked in next()
        waiters = {sub: sub._waiter for sub in hub._subs}
        assert all(sub.direct is not None and w is not None for sub, w in waiters.items())
        sent = [hub.publish("job", {"n": n}).id for n in range(100)]
        assert all(sub._waiter is w and not w.done() for sub, w in waiters.items())  # no handler was woken
        for resp in streams:
            assert [(await sse_frame(resp))["id"] for _ in sent] == sent
    finally:
        for resp in streams:
            resp.close()


async def test_a_paused_sse_client_falls_back_and_resyncs_while_others_keep_up(aiohttp_client):
    hub = EventHub(epoch="ep", client_queue_size=4)
    app = make_app(hub)

    async def small_send_buffer(request: web.Request, response: web.StreamResponse) -> None:
        sock = request.transport.get_extra_info("socket") if request.transport else None
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)

    app.on_response_prepare.append(small_send_buffer)
    client = await aiohttp_client(app)
    fast = await client.get("/studio/api/v1/events")
    slow = await open_raw(client, "/studio/api/v1/events", rcvbuf=4096)  # and never read for now
    await sse_frame(fast)
    await asyncio.sleep(0.05)
    blob = "x" * 16_000
    sent = []
    for n in range(150):
        sent.append(hub.publish("job", {"n": n, "blob": blob}).id)
        assert [(await sse_frame(fast))["id"]] == sent[-1:]  # the fast one is never held back
    assert sorted(sub.dropped for sub in hub._subs) == [0, 1]

    last = hub.publish("job", {"n": "last"}).id
    frames = await raw_frames(slow, chunked=True, until=f"id: {last}\n")
    kinds = [line[7:] for f in frames for line in f.split("\n") if line.startswith("event: ")]
    assert kinds.count("resync") == 2 and kinds[0] == "resync"  # the initial one, then the overflow
    resync = frames[[i for i, f in enumerate(frames) if "event: resync" in f][1]]
    assert '"reason":"overflow"' in resync
    got = frame_ids(frames)
    seqs = [int(i.rsplit("-", 1)[1]) for i in got]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)  # in order, no duplicates
    assert got[-1] == last
    slow.writer.close()  # type: ignore[attr-defined]
    fast.close()


async def test_sse_heartbeats_still_arrive_while_events_flow_directly(aiohttp_client, hub):
    client = await aiohttp_client(make_app(hub, heartbeat_s=0.05))
    resp = await client.get("/studio/api/v1/events")
    try:
        await sse_frame(resp)  # resync
        sent, frames = [], []
        for n in range(30):
            sent.append(hub.publish("job", {"n": n}).id)
            await asyncio.sleep(0.01)
        while len([f for f in frames if "id" in f]) < len(sent):
            frames.append(await sse_frame(resp))
        assert [f["id"] for f in frames if "id" in f] == sent
        assert {"comment": "heartbeat"} in frames
    finally:
        resp.close()


async def test_sse_disconnect_is_noticed_on_the_next_event_without_a_heartbeat(aiohttp_client, hub):
    client = await aiohttp_client(make_app(hub, heartbeat_s=60))
    resp = await client.get("/studio/api/v1/events")
    await sse_frame(resp)
    await asyncio.sleep(0.05)
    resp.close()
    for _ in range(200):
        hub.publish("job", {})  # the direct writer declines a closing transport; the handler's write fails
        if hub.subscriber_count == 0:
            break
        await asyncio.sleep(0.01)
    assert hub.subscriber_count == 0


async def test_http_10_sse_client_gets_unchunked_frames(aiohttp_client, hub):
    client = await aiohttp_client(make_app(hub))
    reader = await open_raw(client, "/studio/api/v1/events", version="1.0")
    try:
        assert "chunked" not in reader.head.lower()  # type: ignore[attr-defined]
        await raw_frames(reader, chunked=False, until="event: resync")
        await asyncio.sleep(0.05)
        (sub,) = hub._subs
        waiter = sub._waiter
        first = hub.publish("job", {"n": 1}).id
        second = hub.publish("job", {"n": 2}).id
        assert sub._waiter is waiter and waiter is not None and not waiter.done()  # written directly
        frames = await raw_frames(reader, chunked=False, until=f"id: {second}")
        assert frame_ids(frames) == [first, second]
        assert frames[0] == f'id: {first}\nevent: job\ndata: {{"n":1}}'
    finally:
        reader.writer.close()  # type: ignore[attr-defined]
