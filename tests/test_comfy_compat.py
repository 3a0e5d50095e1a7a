"""ComfyUI's own routes on the standalone studio, driven by ComfyUI clients with API tokens.

The studio runs as `serve --comfy URL` does (test_remote_events.start_standalone) in front of the test host.
"""

from __future__ import annotations

import asyncio
import io
import json
import struct
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from comfy_api_simplified import ComfyApiWrapper
from PIL import Image as PILImage
from studio_api import Api, load_workflow
from test_remote_events import Standalone, start_standalone
from testhost import ComfyTestHost, start_test_host

from comfyui_studio.db.models import AuditLog, ComfyCall
from comfyui_studio.services.api_tokens import digest_of


@pytest.fixture
async def comfy(tmp_path: Path) -> AsyncIterator[ComfyTestHost]:
    host = await start_test_host(tmp_path / "comfy", node_delay=0.02)
    yield host
    await host.stop()


@pytest.fixture
async def standalone(tmp_path: Path, comfy: ComfyTestHost) -> AsyncIterator[Standalone]:
    app = await start_standalone(tmp_path / "studio", comfy.url)
    async with asyncio.timeout(5):
        await app.remote.connected.wait()
    yield app
    await app.runner.cleanup()


async def user_with_token(app: Standalone, username: str) -> tuple[int, str]:
    """A plain user (not the owner) and a fresh API token of theirs."""
    security = app.studio.security
    user = await security.accounts.create(security.owner_id, username, "a long password 123")
    assert security.tokens is not None
    made = await security.tokens.create(int(user["id"]), "script")
    return int(user["id"]), str(made["token"])


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def wait_done(session: aiohttp.ClientSession, app: Standalone, token: str, prompt_id: str) -> dict:
    async with asyncio.timeout(15):
        while True:
            async with session.get(f"{app.url}/history/{prompt_id}", headers=bearer(token)) as resp:
                assert resp.status == 200
                body = await resp.json()
            if prompt_id in body:
                return body[prompt_id]
            await asyncio.sleep(0.05)


async def test_an_existing_comfyui_client_library_drives_the_studio_unchanged(standalone: Standalone) -> None:
    """comfy-api-simplified (PyPI) queues a graph, waits on /ws, fetches the image via /history and /view."""
    alice_id, token = await user_with_token(standalone, "alice")
    # The library speaks HTTP Basic: the token goes as the password (any user name).
    client = ComfyApiWrapper(standalone.url, user="alice", password=token)
    graph = load_workflow("t2i_standin")
    for node_id, node in graph.items():  # titles as ComfyUI's "Save (API)" writes them; the library reads them
        node["_meta"] = {"title": "Save Image" if node_id == "4" else node["class_type"]}
    images = await asyncio.to_thread(client.queue_and_wait_images, graph, "Save Image")
    assert len(images) == 1
    ((name, data),) = images.items()
    assert name.startswith("studio_t2i") and data[:8] == b"\x89PNG\r\n\x1a\n"
    assert PILImage.open(io.BytesIO(data)).size == (512, 512)
    # The job is alice's: in her gallery, with its image, and in her call log as a submit.
    studio = standalone.studio
    page = await studio.jobs.list(alice_id, cursor=None, limit=10)
    assert len(page["items"]) == 1
    job = page["items"][0]
    assert job["state"] == "done" and len(job["images"]) == 1
    assert (await studio.jobs.list(studio.owner_id, cursor=None, limit=10))["items"] == []
    async with studio.store.transaction() as session:
        calls = (await session.execute(ComfyCall.__table__.select().where(ComfyCall.job_id == job["id"]))).all()
    assert "submit" in {c.operation for c in calls}
    assert all(c.owner_id == alice_id for c in calls if c.operation == "submit")
    async with studio.store.transaction() as session:
        audited = (await session.execute(AuditLog.__table__.select().where(AuditLog.entity_id == job["id"]))).all()
    assert audited and audited[0].actor_id == alice_id


async def test_prompt_history_view_and_ws_in_comfyuis_shapes(standalone: Standalone) -> None:
    _alice, token = await user_with_token(standalone, "alice")
    client_id = uuid.uuid4().hex
    graph = load_workflow("progress_probe")
    graph["2"]["class_type"] = "StudioTestProgress"
    graph["2"]["inputs"].update({"steps": 3, "delay": 0.05})
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(f"{standalone.url}/ws?clientId={client_id}", headers=bearer(token)) as ws:
            first = await ws.receive_json()
            status = {"status": {"exec_info": {"queue_remaining": 0}}, "sid": client_id}
            assert first == {"type": "status", "data": status}
            async with session.post(
                f"{standalone.url}/prompt",
                data=json.dumps({"prompt": graph, "client_id": client_id}),
                headers=bearer(token),
            ) as resp:
                assert resp.status == 200
                answer = await resp.json()
            assert set(answer) == {"prompt_id", "number", "node_errors"} and answer["node_errors"] == {}
            prompt_id = answer["prompt_id"]
            events: list[tuple[str, dict]] = []
            previews = 0
            async with asyncio.timeout(15):
                while True:
                    message = await ws.receive()
                    if message.type is aiohttp.WSMsgType.BINARY:
                        kind, image_type = struct.unpack(">II", message.data[:8])
                        assert kind == 1 and image_type in (1, 2)  # legacy previews: no feature flags were sent
                        previews += 1
                        continue
                    body = json.loads(message.data)
                    events.append((body["type"], body["data"]))
                    if body["type"] == "executing" and body["data"]["node"] is None:
                        break
        kinds = [k for k, _ in events]
        assert "execution_start" in kinds and "execution_success" in kinds and "progress" in kinds
        assert all(d.get("prompt_id") == prompt_id for k, d in events if k != "status")
        assert previews >= 1
        executed = [d for k, d in events if k == "executed"]
        assert executed and executed[0]["output"]["images"][0]["type"] == "temp"

        entry = await wait_done(session, standalone, token, prompt_id)
        assert entry["status"]["status_str"] == "success" and entry["status"]["completed"] is True
        assert entry["prompt"][1] == prompt_id and entry["prompt"][3] == {"client_id": client_id}
        assert entry["prompt"][4] == ["3"]
        ref = entry["outputs"]["3"]["images"][0]
        assert [m[0] for m in entry["status"]["messages"]] == ["execution_start", "execution_success"]
        async with session.get(f"{standalone.url}/view", params=ref, headers=bearer(token)) as resp:
            assert resp.status == 200 and resp.content_type == "image/png"
            assert (await resp.read())[:4] == b"\x89PNG"
        # /api/… is the same route, as on ComfyUI
        async with session.get(f"{standalone.url}/api/history", headers=bearer(token)) as resp:
            assert list(await resp.json()) == [prompt_id]


async def test_a_client_with_feature_flags_gets_previews_with_metadata(standalone: Standalone) -> None:
    _alice, token = await user_with_token(standalone, "alice")
    _bob, bob = await user_with_token(standalone, "bob")
    client_id = uuid.uuid4().hex
    graph = load_workflow("progress_probe")
    graph["2"]["class_type"] = "StudioTestProgress"
    graph["2"]["inputs"].update({"steps": 3, "delay": 0.05})
    async with aiohttp.ClientSession() as session:
        # Bob listens on Alice's client id: he gets the queue's status, never her prompt's messages
        async with (
            session.ws_connect(f"{standalone.url}/ws?clientId={client_id}", headers=bearer(token)) as ws,
            session.ws_connect(f"{standalone.url}/ws?clientId={client_id}", headers=bearer(bob)) as spy,
        ):
            await ws.receive_json()
            await ws.send_json({"type": "feature_flags", "data": {"supports_preview_metadata": True}})
            flags = await ws.receive_json()
            assert flags["type"] == "feature_flags" and flags["data"]["supports_preview_metadata"] is True
            async with session.post(
                f"{standalone.url}/prompt", json={"prompt": graph, "client_id": client_id}, headers=bearer(token)
            ) as resp:
                prompt_id = (await resp.json())["prompt_id"]
            previews = []
            async with asyncio.timeout(15):
                while True:
                    message = await ws.receive()
                    if message.type is aiohttp.WSMsgType.BINARY:
                        kind, size = struct.unpack(">II", message.data[:8])
                        previews.append((kind, json.loads(message.data[8 : 8 + size])))
                        continue
                    body = json.loads(message.data)
                    if body["type"] == "executing" and body["data"]["node"] is None:
                        break
            assert previews and all(k == 4 and m["prompt_id"] == prompt_id for k, m in previews)
            seen = []
            while True:
                try:
                    message = await spy.receive(timeout=0.3)
                except asyncio.TimeoutError:
                    break
                seen.append(json.loads(message.data)["type"] if message.type is aiohttp.WSMsgType.TEXT else "binary")
            assert set(seen) <= {"status"}


async def test_prompt_errors_come_in_comfyuis_shape(standalone: Standalone) -> None:
    _alice, token = await user_with_token(standalone, "alice")
    async with aiohttp.ClientSession() as session:

        async def post(body: str) -> tuple[int, dict]:
            async with session.post(f"{standalone.url}/prompt", data=body, headers=bearer(token)) as resp:
                return resp.status, await resp.json()

        status, body = await post("{not json")
        assert status == 400 and body["error"]["type"] == "invalid_prompt" and body["node_errors"] == {}
        status, body = await post(json.dumps({"client_id": "x"}))
        assert (status, body["error"]["type"]) == (400, "no_prompt")
        status, body = await post(json.dumps({"prompt": [1, 2]}))
        assert (status, body["error"]["type"]) == (400, "invalid_prompt")
        status, body = await post(json.dumps({"prompt": {"1": {"class_type": "Nope", "inputs": {}}}}))
        # ComfyUI's own refusal, verbatim; the refused job is kept (state rejected) like any studio submit
        assert status == 400 and body["error"]["type"] == "invalid_prompt" and "Nope" in body["error"]["message"]
        bad = load_workflow("t2i_standin")
        bad["1"]["inputs"]["width"] = 0
        status, body = await post(json.dumps({"prompt": bad}))
        assert status == 400 and body["error"]["type"] == "prompt_outputs_failed_validation"
        assert body["node_errors"]["1"]["class_type"] == "EmptyImage"
        status, body = await post(json.dumps({"prompt": load_workflow("t2i_standin"), "prompt_id": "not-a-uuid"}))
        assert (status, body["error"]["type"]) == (400, "invalid_prompt")
        # A prompt id the client chose is the job's (ComfyUI's frontend sends its own)
        chosen = str(uuid.uuid4())
        status, body = await post(json.dumps({"prompt": load_workflow("t2i_standin"), "prompt_id": chosen}))
        assert status == 200 and body["prompt_id"] == chosen
        status, body = await post(json.dumps({"prompt": load_workflow("t2i_standin"), "prompt_id": chosen}))
        assert status == 400 and body["error"]["type"] == "invalid_prompt"
        for path in ("/queue", "/history"):
            async with session.post(standalone.url + path, data="{nope", headers=bearer(token)) as resp:
                assert resp.status == 400 and (await resp.json())["error"]["code"] == "bad_json"
        # Unknown prompt ids: an empty history entry, as ComfyUI answers
        async with session.get(f"{standalone.url}/history/{uuid.uuid4()}", headers=bearer(token)) as resp:
            assert resp.status == 200 and await resp.json() == {}
        async with session.get(f"{standalone.url}/view?filename=nope.png&type=output", headers=bearer(token)) as resp:
            assert resp.status == 404 and (await resp.json())["error"]["code"] == "not_found"


async def test_users_see_only_their_own_prompts(standalone: Standalone) -> None:
    _alice, alice = await user_with_token(standalone, "alice")
    _bob, bob = await user_with_token(standalone, "bob")
    async with aiohttp.ClientSession() as session:
        async with session.post(
            f"{standalone.url}/prompt", json={"prompt": load_workflow("t2i_standin")}, headers=bearer(alice)
        ) as resp:
            prompt_id = (await resp.json())["prompt_id"]
        entry = await wait_done(session, standalone, alice, prompt_id)
        ref = entry["outputs"]["4"]["images"][0]
        for path in (f"/history/{prompt_id}", "/history"):
            async with session.get(standalone.url + path, headers=bearer(bob)) as resp:
                assert resp.status == 200 and await resp.json() == {}
        async with session.get(f"{standalone.url}/view", params=ref, headers=bearer(bob)) as resp:
            assert resp.status == 404
        async with session.get(f"{standalone.url}/queue", headers=bearer(bob)) as resp:
            assert await resp.json() == {"queue_running": [], "queue_pending": []}
        # Bob cannot delete Alice's history entry; Alice can (her gallery keeps the job)
        async with session.post(f"{standalone.url}/history", json={"delete": [prompt_id]}, headers=bearer(bob)):
            pass
        async with session.get(f"{standalone.url}/history", headers=bearer(alice)) as resp:
            assert list(await resp.json()) == [prompt_id]
        async with session.post(f"{standalone.url}/history", json={"clear": True}, headers=bearer(alice)) as resp:
            assert resp.status == 200
        async with session.get(f"{standalone.url}/history", headers=bearer(alice)) as resp:
            assert await resp.json() == {}
        assert len((await standalone.studio.jobs.list(_alice, cursor=None, limit=5))["items"]) == 1


async def test_queue_shows_and_cancels_only_the_callers_pending_prompts(standalone: Standalone) -> None:
    _alice, alice = await user_with_token(standalone, "alice")
    _bob, bob = await user_with_token(standalone, "bob")
    slow = load_workflow("progress_probe")
    slow["2"]["class_type"] = "StudioTestProgress"
    slow["2"]["inputs"].update({"steps": 30, "delay": 0.1})
    async with aiohttp.ClientSession() as session:
        ids = []
        for token in (alice, alice, bob):
            async with session.post(f"{standalone.url}/prompt", json={"prompt": slow}, headers=bearer(token)) as resp:
                assert resp.status == 200
                ids.append((await resp.json())["prompt_id"])
        async with asyncio.timeout(15):  # Alice's first prompt runs, her second and Bob's wait
            while True:
                async with session.get(f"{standalone.url}/queue", headers=bearer(alice)) as resp:
                    queue = await resp.json()
                if [item[1] for item in queue["queue_running"]] == ids[:1]:
                    break
                await asyncio.sleep(0.02)
        assert [item[1] for item in queue["queue_pending"]] == ids[1:2]
        assert all(len(item) == 5 and item[2] == slow for item in queue["queue_pending"])
        # Alice clears "the queue": her pending prompt only, Bob's stays
        async with session.post(f"{standalone.url}/queue", json={"clear": True}, headers=bearer(alice)) as resp:
            assert resp.status == 200
        async with session.get(f"{standalone.url}/queue", headers=bearer(bob)) as resp:
            queue = await resp.json()
        assert [item[1] for item in queue["queue_pending"] + queue["queue_running"]] == [ids[2]]
        async with session.get(f"{standalone.url}/prompt", headers=bearer(bob)) as resp:
            assert (await resp.json())["exec_info"]["queue_remaining"] >= 1
        # Bob's interrupt of Alice's running prompt is ignored; Alice's own takes effect
        async with session.post(f"{standalone.url}/interrupt", json={"prompt_id": ids[0]}, headers=bearer(bob)):
            pass
        async with session.post(f"{standalone.url}/interrupt", json={"prompt_id": ids[0]}, headers=bearer(alice)):
            pass
        entry = await wait_done(session, standalone, alice, ids[0])
        assert entry["status"]["status_str"] == "error"
        assert entry["status"]["messages"][-1][0] == "execution_interrupted"


async def test_bad_and_revoked_tokens_are_refused_in_the_envelope(standalone: Standalone) -> None:
    alice_id, token = await user_with_token(standalone, "alice")
    tokens = standalone.studio.security.tokens
    assert tokens is not None
    async with aiohttp.ClientSession() as session:
        for header in ("Bearer cs_wrong", "Bearer ", "Token abc", "Basic !!!", f"Bearer {token}x"):
            async with session.get(f"{standalone.url}/history", headers={"Authorization": header}) as resp:
                assert resp.status == 401
                body = await resp.json()
                assert body["ok"] is False and body["error"]["code"] == "unauthorized"
        item = (await tokens.list(alice_id))[0]
        await tokens.revoke(alice_id, int(item["id"]))
        for path in ("/history", "/ws?clientId=x", "/object_info"):
            async with session.get(standalone.url + path, headers=bearer(token)) as resp:
                assert resp.status == 401
        async with session.post(f"{standalone.url}/prompt", json={"prompt": {}}, headers=bearer(token)) as resp:
            assert resp.status == 401
    # Neither the token nor its digest is in the audit log
    async with standalone.studio.store.transaction() as session:
        rows = (await session.execute(AuditLog.__table__.select())).all()
    text = json.dumps([dict(r._mapping) for r in rows], default=str)
    assert token not in text and digest_of(token) not in text and "api_tokens" in text


async def test_loopback_owner_needs_no_token_but_a_cross_site_page_is_refused(standalone: Standalone) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{standalone.url}/object_info") as resp:
            assert resp.status == 200 and "SaveImage" in await resp.json()
        async with session.get(f"{standalone.url}/object_info/SaveImage") as resp:
            assert list(await resp.json()) == ["SaveImage"]
        async with session.post(f"{standalone.url}/prompt", json={"prompt": load_workflow("t2i_standin")}) as resp:
            assert resp.status == 200
        evil = {"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"}
        async with session.post(f"{standalone.url}/prompt", data=json.dumps({"prompt": {}}), headers=evil) as resp:
            assert resp.status == 401
        async with session.get(f"{standalone.url}/history", headers={"Host": "rebound.example"}) as resp:
            assert resp.status == 421 and (await resp.json())["error"]["code"] == "host_not_allowed"
        async with session.get(f"{standalone.url}/features") as resp:
            assert (await resp.json())["supports_preview_metadata"] is True
        async with session.get(f"{standalone.url}/system_stats") as resp:
            assert "system" in await resp.json()
        async with session.get(f"{standalone.url}/embeddings") as resp:
            assert isinstance(await resp.json(), list)
        async with session.get(f"{standalone.url}/models/checkpoints") as resp:
            assert resp.status == 200 and isinstance(await resp.json(), list)


async def test_upload_image_is_the_callers_input(standalone: Standalone) -> None:
    _alice, token = await user_with_token(standalone, "alice")
    buffer = io.BytesIO()
    PILImage.new("RGB", (32, 32), (200, 10, 10)).save(buffer, "PNG")
    form = aiohttp.FormData()
    form.add_field("image", buffer.getvalue(), filename="mine.png", content_type="image/png")
    form.add_field("overwrite", "true")
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{standalone.url}/upload/image", data=form, headers=bearer(token)) as resp:
            assert resp.status == 200
            stored = await resp.json()
        assert set(stored) == {"name", "subfolder", "type"} and stored["type"] == "input"
        params = {"filename": stored["name"], "subfolder": stored["subfolder"], "type": "input"}
        async with session.get(f"{standalone.url}/view", params=params, headers=bearer(token)) as resp:
            assert resp.status == 200 and (await resp.read()) == buffer.getvalue()
        graph = load_workflow("upscale_standin")
        graph["1"]["inputs"]["image"] = f"{stored['subfolder']}/{stored['name']}"
        async with session.post(f"{standalone.url}/prompt", json={"prompt": graph}, headers=bearer(token)) as resp:
            prompt_id = (await resp.json())["prompt_id"]
        entry = await wait_done(session, standalone, token, prompt_id)
        assert entry["status"]["status_str"] == "success"


async def test_token_lifecycle_through_the_settings_api(standalone: Standalone) -> None:
    async with aiohttp.ClientSession() as session:
        api = Api(session, standalone.api)
        status, body = await api.post("/tokens", json={"name": "  my script "})
        assert status == 201, body
        made = body["data"]
        token = made["token"]
        assert token.startswith("cs_") and len(token) >= 40 and made["prefix"] == token[:10]
        assert made["name"] == "my script" and made["last_used_at"] is None
        status, body = await api.get("/tokens")
        listed = body["data"]["items"]
        assert [t["id"] for t in listed] == [made["id"]] and "token" not in listed[0]
        assert not any(token in json.dumps(t) or digest_of(token) in json.dumps(t) for t in listed)
        async with session.get(f"{standalone.url}/history", headers=bearer(token)) as resp:
            assert resp.status == 200
        status, body = await api.get("/tokens")
        assert body["data"]["items"][0]["last_used_at"] is not None
        status, body = await api.post("/tokens", json={"name": ""})
        assert status == 400
        status, body = await api.delete(f"/tokens/{made['id']}")
        assert status == 200 and body["data"]["revoked"] is True
        async with session.get(f"{standalone.url}/history", headers=bearer(token)) as resp:
            assert resp.status == 401
        status, body = await api.delete("/tokens/999999")
        assert status == 404
