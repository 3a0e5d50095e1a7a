"""The live streams end to end: SSE and WebSocket clients following real jobs on the ComfyUI test host."""

from __future__ import annotations

import asyncio
import contextlib
import json
import struct
from collections.abc import Callable
from dataclasses import dataclass, field

import aiohttp
from harness import StudioRun
from studio_api import Api, load_workflow
from test_api_jobs import wait_for_state


@dataclass
class StreamEvent:
    id: str
    kind: str
    data: dict


async def stream_headers(api: Api) -> dict[str, str]:
    """The cookies of the session `api` went through (when accounts are on), for raw stream clients."""
    opener = getattr(api, "open_session", None)
    if opener is not None and not getattr(api, "cookies", None):
        await opener()
    cookies: dict[str, str] = getattr(api, "cookies", None) or {}
    return {"Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())} if cookies else {}


@dataclass
class SseClient:
    """Reads /events in the background; `events` in arrival order (heartbeat comments skipped)."""

    session: aiohttp.ClientSession
    url: str
    last_event_id: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    events: list[StreamEvent] = field(default_factory=list)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)
    _task: asyncio.Task[None] | None = None
    _resp: aiohttp.ClientResponse | None = None

    async def __aenter__(self) -> SseClient:
        headers = dict(self.headers)
        if self.last_event_id:
            headers["Last-Event-ID"] = self.last_event_id
        self._resp = await self.session.get(self.url, headers=headers)
        assert self._resp.status == 200
        assert self._resp.content_type == "text/event-stream"
        self._task = asyncio.create_task(self._read())
        return self

    async def _read(self) -> None:
        assert self._resp is not None
        fields: dict[str, str] = {}
        async for raw in self._resp.content:
            line = raw.decode().rstrip("\n")
            if line == "":
                if "data" in fields:
                    self.events.append(
                        StreamEvent(fields.get("id", ""), fields.get("event", ""), json.loads(fields["data"]))
                    )
                    self._changed.set()
                fields = {}
            elif not line.startswith(":"):
                name, _, value = line.partition(": ")
                fields[name] = value

    async def wait_for(self, pred: Callable[[list[StreamEvent]], bool], timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout):
            while not pred(self.events):
                self._changed.clear()
                await self._changed.wait()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._resp is not None:
            self._resp.close()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


@dataclass
class WsClient:
    """Reads /ws in the background: text frames as events, binary frames as (header, image) previews."""

    session: aiohttp.ClientSession
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    events: list[StreamEvent] = field(default_factory=list)
    previews: list[tuple[dict, bytes]] = field(default_factory=list)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)
    _task: asyncio.Task[None] | None = None
    _ws: aiohttp.ClientWebSocketResponse | None = None

    async def __aenter__(self) -> WsClient:
        self._ws = await self.session.ws_connect(self.url, headers=self.headers)
        self._task = asyncio.create_task(self._read())
        return self

    async def _read(self) -> None:
        assert self._ws is not None
        async for msg in self._ws:
            if msg.type is aiohttp.WSMsgType.TEXT:
                body = json.loads(msg.data)
                self.events.append(StreamEvent(body["id"], body["kind"], body["data"]))
            elif msg.type is aiohttp.WSMsgType.BINARY:
                size = struct.unpack(">I", msg.data[:4])[0]
                self.previews.append((json.loads(msg.data[4 : 4 + size]), msg.data[4 + size :]))
            self._changed.set()

    async def wait_for(self, pred: Callable[[WsClient], bool], timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout):
            while not pred(self):
                self._changed.clear()
                await self._changed.wait()

    async def __aexit__(self, *exc: object) -> None:
        if self._ws is not None:
            await self._ws.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


def job_done(job_id: str) -> Callable[[list[StreamEvent]], bool]:
    def pred(events: list[StreamEvent]) -> bool:
        # The writer publishes the stored job (images included) last, once the state is durable.
        return any(
            e.kind == "job"
            and e.data["job"]["id"] == job_id
            and e.data["job"]["state"] == "done"
            and e.data["job"]["images"]
            for e in events
        )

    return pred


def about(job_id: str, events: list[StreamEvent]) -> list[StreamEvent]:
    out = []
    for e in events:
        if (e.kind == "job" and e.data["job"]["id"] == job_id) or (
            e.kind in ("progress", "output") and e.data["job_id"] == job_id
        ):
            out.append(e)
        elif e.kind == "queue" and job_id in e.data.get("positions", {}):
            out.append(e)
    return out


def states(job_id: str, events: list[StreamEvent]) -> list[str]:
    seen: list[str] = []
    for e in about(job_id, events):
        if e.kind == "job" and (not seen or seen[-1] != e.data["job"]["state"]):
            seen.append(e.data["job"]["state"])
    return seen


def resynced(events: list[StreamEvent]) -> bool:
    return any(e.kind == "resync" for e in events)


async def submit(api: Api, workflow: str = "progress_probe", **inputs: object) -> dict:
    graph = load_workflow(workflow)
    for node_id, values in inputs.items():
        graph[node_id]["inputs"].update(values)  # type: ignore[union-attr]
    status, body = await api.post("/jobs", json={"graph": graph})
    assert status == 201, body
    return body["data"]


async def test_two_sse_clients_and_a_websocket_see_the_same_ordered_transitions(run: StudioRun, api: Api) -> None:
    async with (
        SseClient(api.session, run.api + "/events", headers=await stream_headers(api)) as sse1,
        SseClient(api.session, run.api + "/events", headers=await stream_headers(api)) as sse2,
        WsClient(api.session, run.api + "/ws", headers=await stream_headers(api)) as ws,
    ):
        await sse1.wait_for(resynced)
        await sse2.wait_for(resynced)
        await ws.wait_for(lambda c: resynced(c.events))
        job = await submit(api)
        for client in (sse1, sse2):
            await client.wait_for(job_done(job["id"]))
        await ws.wait_for(lambda c: job_done(job["id"])(c.events))

        seen = [[(e.id, e.kind) for e in about(job["id"], c.events)] for c in (sse1, sse2, ws)]
        assert seen[0] == seen[1] == seen[2]
        assert states(job["id"], sse1.events) == ["queued", "running", "done"]
        kinds = [kind for _, kind in seen[0]]
        assert "progress" in kinds and "output" in kinds and "queue" in kinds
        assert kinds.index("output") < len(kinds) - 1 - kinds[::-1].index("job")  # outputs before the final job
        # Ids increase by one within an epoch, in the same order for everyone.
        seqs = [int(e.id.rsplit("-", 1)[1]) for e in sse1.events if e.kind != "resync"]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
        progress = [e.data["progress"] for e in about(job["id"], sse1.events) if e.kind == "progress"]
        assert any(p["node"] == "2" and p["max"] == 3 for p in progress)
        final = [e for e in about(job["id"], sse1.events) if e.kind == "job"][-1].data["job"]
        assert final["images"][0]["job_id"] == job["id"]


async def test_resuming_with_last_event_id_loses_nothing_and_duplicates_nothing(run: StudioRun, api: Api) -> None:
    async with SseClient(api.session, run.api + "/events", headers=await stream_headers(api)) as reference:
        await reference.wait_for(resynced)
        first = SseClient(api.session, run.api + "/events", headers=await stream_headers(api))
        await first.__aenter__()
        await first.wait_for(resynced)
        job = await submit(api, **{"2": {"steps": 6, "delay": 0.03}})
        await first.wait_for(lambda events: any(e.kind == "progress" for e in about(job["id"], events)))
        await first.close()
        last_id = first.events[-1].id
        await asyncio.sleep(0.1)  # events go on while this client is away
        async with SseClient(
            api.session, run.api + "/events", last_event_id=last_id, headers=await stream_headers(api)
        ) as resumed:
            await resumed.wait_for(job_done(job["id"]))
            await reference.wait_for(job_done(job["id"]))
            assert not resynced(resumed.events)
            combined = [e.id for e in first.events if e.kind != "resync"] + [e.id for e in resumed.events]
            expected = [e.id for e in reference.events if e.kind != "resync"]
            assert combined[: len(expected)] == expected
            assert len(set(combined)) == len(combined)


async def test_resuming_with_an_id_from_another_epoch_gets_a_resync_snapshot(run: StudioRun, api: Api) -> None:
    async with SseClient(
        api.session, run.api + "/events", last_event_id="zzz-5", headers=await stream_headers(api)
    ) as client:
        await client.wait_for(resynced)
        resync = client.events[0]
        assert resync.data["reason"] == "other_epoch"
        assert set(resync.data["queue"]) >= {"running", "pending", "positions"}


async def test_latent_previews_arrive_on_the_websocket(run: StudioRun, api: Api) -> None:
    graph_inputs = {"2": {"steps": 3, "delay": 0.02}}
    async with WsClient(api.session, run.api + "/ws", headers=await stream_headers(api)) as ws:
        await ws.wait_for(lambda c: resynced(c.events))
        graph = load_workflow("progress_probe")
        graph["2"]["class_type"] = "StudioTestProgress"
        graph["2"]["inputs"].update(graph_inputs["2"])
        status, body = await api.post("/jobs", json={"graph": graph})
        assert status == 201, body
        job = body["data"]
        await ws.wait_for(lambda c: job_done(job["id"])(c.events))
        mine = [(header, image) for header, image in ws.previews if header["prompt_id"] == job["prompt_id"]]
        assert mine, "no preview frames"
        header, image = mine[0]
        assert header["mime"] == "image/jpeg" and image[:2] == b"\xff\xd8"


async def test_websocket_with_previews_off_gets_no_binary_frames(run: StudioRun, api: Api) -> None:
    async with WsClient(api.session, run.api + "/ws?previews=0", headers=await stream_headers(api)) as ws:
        await ws.wait_for(lambda c: resynced(c.events))
        job = await submit(api)
        await ws.wait_for(lambda c: job_done(job["id"])(c.events))
        assert ws.previews == []


async def test_queue_events_carry_counts_and_this_users_positions(run: StudioRun, api: Api) -> None:
    async with SseClient(api.session, run.api + "/events", headers=await stream_headers(api)) as sse:
        await sse.wait_for(resynced)
        job = await submit(api)
        await sse.wait_for(job_done(job["id"]))
        queue_events = [e.data for e in sse.events if e.kind == "queue"]
        assert queue_events and all(set(q) == {"running", "pending", "positions", "connected"} for q in queue_events)
        assert any(q["positions"].get(job["id"]) in (0, 1) for q in queue_events)
        await sse.wait_for(lambda events: [e for e in events if e.kind == "queue"][-1].data["positions"] == {})
        assert [e for e in sse.events if e.kind == "queue"][-1].data["running"] == 0


async def _post_to_comfyui(run: StudioRun, session: aiohttp.ClientSession, graph: dict, client_id: str | None) -> str:
    payload: dict = {"prompt": graph}
    if client_id is not None:
        payload["client_id"] = client_id
    async with session.post(run.host.url + "/prompt", json=payload) as resp:
        assert resp.status == 200
        return (await resp.json())["prompt_id"]


async def _foreign_job(api: Api, prompt_id: str) -> dict:
    for _ in range(200):
        status, body = await api.get("/jobs")
        for job in body["data"]["items"]:
            if job["prompt_id"] == prompt_id and job["state"] in ("done", "error", "lost"):
                return job
        await asyncio.sleep(0.05)
    raise AssertionError("the foreign job never settled")


async def test_job_queued_from_comfyuis_editor_appears_as_a_foreign_job(run: StudioRun, api: Api) -> None:
    graph = load_workflow("t2i_standin")
    graph["1"]["inputs"]["color"] = 1234
    async with SseClient(api.session, run.api + "/events", headers=await stream_headers(api)) as sse:
        await sse.wait_for(resynced)
        prompt_id = await _post_to_comfyui(run, api.session, graph, client_id="some-editor-tab")
        job = await _foreign_job(api, prompt_id)
        assert job["foreign"] is True and job["state"] == "done"
        assert len(job["images"]) == 1
        await sse.wait_for(job_done(job["id"]))
        assert states(job["id"], sse.events)[-1] == "done"


async def test_job_queued_without_client_id_is_settled_from_comfyuis_history(run: StudioRun, api: Api) -> None:
    # Without a client id ComfyUI sends only progress/status: the outcome comes from /history.
    graph = load_workflow("t2i_standin")
    graph["1"]["inputs"]["color"] = 4321
    prompt_id = await _post_to_comfyui(run, api.session, graph, client_id=None)
    job = await _foreign_job(api, prompt_id)
    assert job["foreign"] is True and job["state"] == "done"
    assert len(job["images"]) == 1
    done = await wait_for_state(api, job["id"], {"done"})
    assert done["finished_at"]
