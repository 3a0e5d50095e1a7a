"""Civitai through the studio's routes, against the fake Civitai (tests/civitai_fake.py) and a real SQLite store."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from civitai_fake import PAGE_CAP, FakeCivitai, Fault
from harness import StudioRun
from studio_api import Api

from comfyui_studio.services.civitai import RetryPolicy

KEY = "valid-key-alice"
LORA_VERSION = 2094881  # the fake's 2 MiB LoRA file


@pytest.fixture
async def fake() -> AsyncIterator[FakeCivitai]:
    async with FakeCivitai() as server:
        yield server


@pytest.fixture
async def civ(run: StudioRun, api: Api, fake: FakeCivitai) -> Api:
    """The studio pointed at the fake, with quick retries and the owner allowed every content level."""
    status, body = await api.call(
        "PATCH", "/settings", json={"values": {"civitai_url": fake.url, "civitai_rate": 20, "civitai_nsfw": "x"}}
    )
    assert status == 200, body
    run.studio.civitai.retry = RetryPolicy(base_s=0.05, rate_limit_base_s=0.05, budget_s=3.0)
    run.studio.downloads.resume_delay_s = 0.05
    return api


def expire_cache(run: StudioRun) -> None:
    for entry in run.studio.civitai._memory.values():
        entry.expires_at = 0.0


# --- the key ---------------------------------------------------------------------------------------------


async def test_the_key_round_trip_never_leaks(
    run: StudioRun, civ: Api, fake: FakeCivitai, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    bodies: list[str] = []

    async def call(method: str, path: str, **kwargs: object) -> tuple[int, dict]:
        status, body = await civ.call(method, path, **kwargs)
        bodies.append(repr(body))
        return status, body

    status, body = await call("GET", "/civitai/status")
    assert status == 200 and body["data"] == {
        "key_set": False,
        "key_set_at": None,
        "key_valid": None,
        "base_url": fake.url,
        "rate": 20.0,
    }
    status, body = await call("PUT", "/civitai/key", json={"key": "invalid-key-bob"})
    assert status == 400 and body["error"]["code"] == "validation_error"
    assert body["error"]["message"] == "Civitai rejected this key"
    assert (await call("GET", "/civitai/status"))[1]["data"]["key_set"] is False  # nothing stored

    status, body = await call("PUT", "/civitai/key", json={"key": KEY})
    assert status == 200, body
    assert body["data"]["key_set"] is True and body["data"]["key_valid"] is True and body["data"]["key_set_at"]
    status, body = await call("GET", "/civitai/status")
    assert body["data"]["key_set"] is True and body["data"]["key_valid"] is True
    assert (await call("POST", "/civitai/key/test", json={}))[1]["data"] == {"key_valid": True}
    await call("GET", "/secrets")
    await call("GET", "/secrets/civitai")
    await call("GET", "/settings")
    await call("GET", "/civitai/images?limit=5")
    await call("GET", f"/civitai/model-versions/{LORA_VERSION}")
    await call("GET", "/calls")

    # Civitai saw the key only as a Bearer header, only on /me; never in a query string
    for request in fake.requests:
        assert all(KEY not in value for _name, value in request.query)
        if request.authorization is not None:
            assert request.path == "/api/v1/me"
            assert request.authorization in (f"Bearer {KEY}", "Bearer invalid-key-bob")
    # unreachable Civitai: 503 and nothing stored
    await run.studio.civitai.delete_key()
    status, _ = await civ.call("PATCH", "/settings", json={"values": {"civitai_url": "http://127.0.0.1:9"}})
    assert status == 200
    status, body = await call("PUT", "/civitai/key", json={"key": KEY})
    assert status == 503 and body["error"]["code"] == "civitai_unavailable"
    assert (await call("GET", "/civitai/status"))[1]["data"]["key_set"] is False
    await civ.call("PATCH", "/settings", json={"values": {"civitai_url": fake.url}})
    assert (await call("PUT", "/civitai/key", json={"key": KEY}))[0] == 200
    assert (await call("DELETE", "/civitai/key"))[1]["data"] == {"key_set": False}
    assert (await call("GET", "/civitai/status"))[1]["data"]["key_set"] is False

    for text in bodies:
        assert KEY not in text
    assert KEY not in caplog.text
    for path in run.data_dir.glob("studio.db*"):
        assert KEY.encode() not in path.read_bytes(), path.name


# --- throttle, coalescing, cache --------------------------------------------------------------------------


def most_in_any_window(times: list[float], window: float) -> int:
    times = sorted(times)
    best = 0
    for i, start in enumerate(times):
        best = max(best, sum(1 for t in times[i:] if t - start < window))
    return best


async def test_the_throttle_holds_under_50_concurrent_requests(run: StudioRun, civ: Api, fake: FakeCivitai) -> None:
    # 50 different queries (no coalescing, no cache): 20 per second at most, burst 1
    results = await asyncio.gather(*(civ.get(f"/civitai/images?limit=3&username=u{i}") for i in range(50)))
    assert all(status == 200 for status, _ in results)
    times = [r.at for r in fake.calls("/api/v1/images")]
    assert len(times) == 50
    # the bucket spaces the sends 50 ms apart; arrivals may bunch by a scheduling delay, never by more
    assert most_in_any_window(times, 1.0) <= 20 + 2
    assert most_in_any_window(times, 2.0) <= 40 + 2
    assert max(times) - min(times) >= 49 / 20 * 0.95


def test_the_token_bucket_gives_each_caller_its_own_slot() -> None:
    from comfyui_studio.services.civitai import TokenBucket

    now = [100.0]
    bucket = TokenBucket(4.0, clock=lambda: now[0])
    assert [bucket.reserve() for _ in range(5)] == [0.0, 0.25, 0.5, 0.75, 1.0]
    now[0] += 10.0  # idle: no burst saved up beyond one request
    assert [bucket.reserve() for _ in range(2)] == [0.0, 0.25]
    bucket.pause(3.0)  # a 429: every later slot waits
    assert bucket.reserve() == 3.0


async def test_twenty_identical_requests_make_one_upstream_call(run: StudioRun, civ: Api, fake: FakeCivitai) -> None:
    fake.delay_s = 0.3
    results = await asyncio.gather(*(civ.get("/civitai/images?limit=10&sort=Newest") for _ in range(20)))
    assert {status for status, _ in results} == {200}
    assert len({repr(body["data"]["items"]) for _, body in results}) == 1
    assert len(fake.calls("/api/v1/images")) == 1


async def test_cache_hit_then_stale_when_civitai_fails(run: StudioRun, civ: Api, fake: FakeCivitai) -> None:
    status, first = await civ.get("/civitai/models?limit=10")
    assert status == 200 and first["data"]["stale"] is False and len(first["data"]["items"]) == 10
    status, again = await civ.get("/civitai/models?limit=10")
    assert again["data"] == first["data"]
    assert len(fake.calls("/api/v1/models")) == 1  # a cache hit

    expire_cache(run)
    fake.faults.append(Fault("/api/v1/models", count=100, status=500))
    status, stale = await civ.get("/civitai/models?limit=10")
    assert status == 200 and stale["data"]["stale"] is True
    assert stale["data"]["items"] == first["data"]["items"]
    assert len(fake.calls("/api/v1/models")) == 1 + 4  # one try and three retries, bounded

    # rate-limited (429 with Retry-After) is stale too; with no copy at all it is a 503
    fake.faults = [
        Fault(
            "/api/v1/",
            count=100,
            status=429,
            headers={"Retry-After": "1", "Cache-Control": "no-store"},
            body='{"error":"Rate limit exceeded, please retry shortly."}',
        )
    ]
    expire_cache(run)
    status, limited = await civ.get("/civitai/models?limit=10")
    assert status == 200 and limited["data"]["stale"] is True
    status, body = await civ.get("/civitai/models?limit=11")
    assert status == 503 and body["error"]["code"] == "civitai_unavailable"


async def test_the_store_keeps_answers_across_a_restart(tmp_path: Path, fake: FakeCivitai) -> None:
    from harness import start_studio

    run = await start_studio(tmp_path)
    try:
        async with aiohttp.ClientSession() as session:
            api = Api(session, run.api)
            await api.call("PATCH", "/settings", json={"values": {"civitai_url": fake.url}})
            status, first = await api.get("/civitai/images?limit=5")
            assert status == 200
    finally:
        await run.stop()
    run = await start_studio(tmp_path)
    try:
        async with aiohttp.ClientSession() as session:
            api = Api(session, run.api)
            status, again = await api.get("/civitai/images?limit=5")
            assert again["data"]["items"] == first["data"]["items"]
            assert len(fake.calls("/api/v1/images")) == 1  # served from the store
    finally:
        await run.stop()


async def test_retry_after_is_honoured(run: StudioRun, civ: Api, fake: FakeCivitai) -> None:
    fake.faults.append(
        Fault(
            "/api/v1/images",
            count=1,
            status=503,
            headers={"Retry-After": "1", "Cache-Control": "no-store"},
            body='{"error":"Server busy, please retry shortly."}',
        )
    )
    started = time.monotonic()
    status, body = await civ.get("/civitai/images?limit=5")
    assert status == 200 and body["data"]["stale"] is False
    calls = fake.calls("/api/v1/images")
    assert len(calls) == 2 and calls[1].at - calls[0].at >= 0.95
    assert time.monotonic() - started >= 0.95


async def test_the_paging_cap_429_is_not_retried(run: StudioRun, civ: Api, fake: FakeCivitai) -> None:
    import json

    fake.faults.append(Fault("/api/v1/images", count=5, status=429, body=json.dumps(PAGE_CAP)))
    status, body = await civ.get("/civitai/images?limit=5")
    assert status == 400 and body["error"]["code"] == "validation_error"
    assert len(fake.calls("/api/v1/images")) == 1


# --- cursors and NSFW -------------------------------------------------------------------------------------


async def walk(api: Api, path: str, pages: int) -> tuple[list[int], list[dict], str | None]:
    ids: list[int] = []
    bodies = []
    cursor = None
    for _ in range(pages):
        status, body = await api.get(path + (f"&cursor={cursor}" if cursor else ""))
        assert status == 200, body
        bodies.append(body["data"])
        ids += [item["id"] for item in body["data"]["items"]]
        cursor = body["data"]["next_cursor"]
        if cursor is None:
            break
    return ids, bodies, cursor


async def test_five_pages_without_duplicates(run: StudioRun, civ: Api, fake: FakeCivitai) -> None:
    fake.duplicate_across_pages = True  # each upstream page repeats the previous page's last id
    ids, bodies, cursor = await walk(civ, "/civitai/images?limit=20&nsfw=x", 5)
    assert len(bodies) == 5 and cursor is not None
    assert len(ids) == len(set(ids)) and len(ids) >= 5 * 19
    for data in bodies:
        assert data["next_cursor"] is None or data["next_cursor"].startswith("c_")
        assert "|" not in (data["next_cursor"] or "")  # Civitai's own cursor never reaches the browser
    # the same cursor twice gives the same page
    first_cursor = bodies[0]["next_cursor"]
    _, one = await civ.get(f"/civitai/images?limit=20&nsfw=x&cursor={first_cursor}")
    _, two = await civ.get(f"/civitai/images?limit=20&nsfw=x&cursor={first_cursor}")
    assert one["data"]["items"] == two["data"]["items"] == bodies[1]["items"]
    # a cursor with other filters is refused
    status, body = await civ.get(f"/civitai/images?limit=20&nsfw=soft&cursor={first_cursor}")
    assert status == 400


async def test_a_cursor_loop_ends_the_list(run: StudioRun, civ: Api, fake: FakeCivitai) -> None:
    fake.cursor_loop_after = 3
    ids, bodies, cursor = await walk(civ, "/civitai/images?limit=20&nsfw=x", 10)
    assert cursor is None and len(bodies) < 10
    assert len(ids) == len(set(ids))


async def test_nsfw_is_clamped_to_the_users_level(run: StudioRun, civ: Api, fake: FakeCivitai) -> None:
    await civ.call("PATCH", "/settings", json={"values": {"civitai_nsfw": "soft"}})
    status, body = await civ.get("/civitai/images?limit=30&nsfw=x")
    assert status == 200
    assert {i["nsfw_level"] for i in body["data"]["items"]} <= {"none", "soft"}
    sent = dict(fake.calls("/api/v1/images")[-1].query)
    assert sent["browsingLevel"] == "3" and sent["withMeta"] == "true" and "nsfw" not in sent
    await civ.get("/civitai/models?limit=10&nsfw=soft")
    assert dict(fake.calls("/api/v1/models")[-1].query).get("nsfw") == "true"
    await civ.call("PATCH", "/settings", json={"values": {"civitai_nsfw": "none"}})
    await civ.get("/civitai/models?limit=12")
    assert "nsfw" not in dict(fake.calls("/api/v1/models")[-1].query)


async def test_images_are_shaped_per_the_contract(run: StudioRun, civ: Api, fake: FakeCivitai) -> None:
    status, body = await civ.get("/civitai/images?limit=12&nsfw=x")
    items = body["data"]["items"]
    assert status == 200 and len(items) == 12
    first = items[0]
    assert set(first) == {
        "id",
        "url",
        "thumb_url",
        "width",
        "height",
        "nsfw_level",
        "username",
        "created_at",
        "post_id",
        "page_url",
        "stats",
        "meta",
        "resources",
    }
    assert "/original=true/" in first["url"] and "/width=450,optimized=true/" in first["thumb_url"]
    legacy = [i for i in items if "/width=1024/" in i["url"]]
    assert legacy and all("/width=450,optimized=true/" in i["thumb_url"] for i in legacy)
    assert first["page_url"] == f"{fake.url}/images/{first['id']}"
    assert first["meta"]["clip_skip"] == 2 and first["meta"]["cfg_scale"] == 5.0
    a1111 = items[1]["meta"]
    assert a1111["clip_skip"] == 2 and a1111["model"] == "ponyDiffusionV6XL_v6StartWithThisOne"
    comfy = items[2]["meta"]
    assert comfy["prompt"] == "a comfy castle 2" and comfy["seed"] == 44 and comfy["width"] == 1216
    assert items[3]["meta"] is None
    assert items[4]["meta"]["model"] == "juggernautXL_v9" and items[4]["meta"]["seed"] == 2**32 + 17
    status, body = await civ.get("/civitai/tags?limit=10")
    assert status == 200 and len(body["data"]["items"]) == 10 and body["data"]["next_cursor"]
    _, page2 = await civ.get(f"/civitai/tags?limit=10&cursor={body['data']['next_cursor']}")
    assert not {t["name"] for t in page2["data"]["items"]} & {t["name"] for t in body["data"]["items"]}
    status, body = await civ.get("/civitai/creators?query=maker&limit=5")
    assert status == 200 and body["data"]["items"][0] == {
        "username": "maker000",
        "image_url": "/cdn/xG1nkqKTMzGDvpLrqFT7WA/u/width=96/maker000.jpeg",
    }
    status, version = await civ.get(f"/civitai/model-versions/{LORA_VERSION}")
    assert status == 200 and version["data"]["model"] == {"name": "Glowing Runes (Illustrious / Pony)", "type": "LORA"}
    sha = version["data"]["files"][0]["sha256"]
    status, by_hash = await civ.get(f"/civitai/model-versions/by-hash/{sha}")
    assert status == 200 and by_hash["data"]["id"] == LORA_VERSION
    assert (await civ.get("/civitai/model-versions/by-hash/" + "0" * 64))[0] == 404
    assert (await civ.get("/civitai/model-versions/999"))[0] == 404


# --- generate from this prompt ----------------------------------------------------------------------------


async def test_prompt_from_an_image_with_local_resources(run: StudioRun, civ: Api, fake: FakeCivitai) -> None:
    loras = run.host.server.registry.models.folder("loras")
    loras.mkdir(parents=True, exist_ok=True)
    (loras / "runes.safetensors").write_bytes(fake.files[LORA_VERSION])
    await run.studio.local_models.scan()
    _, body = await civ.get("/civitai/images?limit=5&nsfw=x")
    image = body["data"]["items"][0]  # the generator sample: a checkpoint and the LoRA by version id
    status, body = await civ.post("/civitai/prompt", json={"image": image})
    assert status == 200, body
    data = body["data"]
    assert data["text"] == (
        "masterpiece, best quality, 1girl, silver hair, glowing runes, night forest, volumetric light "
        "--no lowres, bad anatomy, worst quality, low quality, watermark --ar 2:3 --seed 1739201184 --steps 28 --cfg 5"
    )
    by_type = {r["type"]: r for r in data["resources"]}
    assert by_type["lora"]["present"] is True and by_type["lora"]["local_name"] == "runes.safetensors"
    assert by_type["lora"]["folder"] == "loras" and by_type["lora"]["model_version_id"] == LORA_VERSION
    assert by_type["checkpoint"]["present"] is False and by_type["checkpoint"]["page_url"]

    _, body = await civ.get("/civitai/images?limit=5&nsfw=x")
    a1111 = body["data"]["items"][1]
    status, body = await civ.post("/civitai/prompt", json={"image": a1111})
    data = body["data"]
    assert "<lora:" not in data["text"] and "--ar 2:3" in data["text"] and "--cfg 7" in data["text"]
    assert any("glowing_runes_v2" in w for w in data["warnings"])


# --- downloads --------------------------------------------------------------------------------------------


async def wait_for_download(api: Api, download_id: str, states: tuple[str, ...], timeout: float = 15.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _, body = await api.get("/civitai/downloads")
        item = next(i for i in body["data"]["items"] if i["id"] == download_id)
        if item["state"] in states:
            return item
        await asyncio.sleep(0.05)
    raise AssertionError(f"download stayed {item['state']}")


def record_events(run: StudioRun) -> list[dict]:
    events: list[dict] = []
    publish = run.studio.hub.publish

    def tap(kind: str, data: dict, **kwargs: object):  # type: ignore[no-untyped-def]
        if kind == "download":
            events.append(data["download"])
        return publish(kind, data, **kwargs)  # type: ignore[arg-type]

    run.studio.hub.publish = tap  # type: ignore[method-assign]
    return events


async def test_download_happy_path_without_the_key_at_the_storage_host(
    run: StudioRun, civ: Api, fake: FakeCivitai
) -> None:
    events = record_events(run)
    fake.login_required.add(LORA_VERSION)
    assert (await civ.call("PUT", "/civitai/key", json={"key": KEY}))[0] == 200
    status, body = await civ.post("/civitai/downloads", json={"model_version_id": LORA_VERSION})
    assert status == 202, body
    item = await wait_for_download(civ, body["data"]["id"], ("done", "error"))
    assert item["state"] == "done", item
    assert item["folder"] == "loras" and item["bytes"] == len(fake.files[LORA_VERSION]) == item["total"]
    target = run.host.server.registry.models.folder("loras") / "glowing_runes_v2_illustrious.safetensors"
    assert target.read_bytes() == fake.files[LORA_VERSION]
    assert not list(target.parent.glob("*.part"))
    # the key went to Civitai's host, never to the storage host
    downloads = fake.calls("/api/download/")
    assert downloads and all(r.authorization == f"Bearer {KEY}" for r in downloads)
    assert fake.storage_requests and all("Authorization" not in h for h in fake.storage_requests)
    # ComfyUI lists it, and its hash is known without reading it again
    assert "glowing_runes_v2_illustrious.safetensors" in run.studio.models.lists["loras"]
    assert hashlib.sha256(fake.files[LORA_VERSION]).hexdigest() in run.studio.local_models.by_sha
    states = [e["state"] for e in events]
    assert states[0] == "queued" and "downloading" in states and "verifying" in states and states[-1] == "done"
    # never twice, never over a file
    status, body = await civ.post("/civitai/downloads", json={"model_version_id": LORA_VERSION})
    assert status == 409


async def test_download_resumes_after_a_dropped_connection(run: StudioRun, civ: Api, fake: FakeCivitai) -> None:
    fake.drop_after = 700_000
    status, body = await civ.post("/civitai/downloads", json={"model_version_id": LORA_VERSION})
    item = await wait_for_download(civ, body["data"]["id"], ("done", "error"))
    assert item["state"] == "done", item
    assert len(fake.storage_requests) == 2
    assert "Range" not in fake.storage_requests[0]
    resumed_at = int(fake.storage_requests[1]["Range"].removeprefix("bytes=").rstrip("-"))
    assert 0 < resumed_at <= 700_000
    target = run.host.server.registry.models.folder("loras") / "glowing_runes_v2_illustrious.safetensors"
    assert hashlib.sha256(target.read_bytes()).digest() == hashlib.sha256(fake.files[LORA_VERSION]).digest()


async def test_a_hash_mismatch_installs_nothing(run: StudioRun, civ: Api, fake: FakeCivitai) -> None:
    fake.corrupt = True
    status, body = await civ.post("/civitai/downloads", json={"model_version_id": LORA_VERSION})
    item = await wait_for_download(civ, body["data"]["id"], ("done", "error"))
    assert item["state"] == "error" and "SHA-256" in item["error"]
    folder = run.host.server.registry.models.folder("loras")
    assert not folder.exists() or not list(folder.iterdir())


async def test_cancel_a_download(run: StudioRun, civ: Api, fake: FakeCivitai) -> None:
    fake.storage_delay_s = 0.2
    status, body = await civ.post("/civitai/downloads", json={"model_version_id": LORA_VERSION})
    download_id = body["data"]["id"]
    await wait_for_download(civ, download_id, ("downloading",))
    await asyncio.sleep(0.3)
    status, body = await civ.delete(f"/civitai/downloads/{download_id}")
    assert status == 200 and body["data"]["state"] == "cancelled"
    folder = run.host.server.registry.models.folder("loras")
    assert not list(folder.iterdir())
    status, body = await civ.delete(f"/civitai/downloads/{download_id}")  # a finished one leaves the list
    assert status == 200
    assert all(i["id"] != download_id for i in (await civ.get("/civitai/downloads"))[1]["data"]["items"])


async def test_a_remote_comfyui_cannot_receive_downloads(run: StudioRun, civ: Api) -> None:
    run.studio.local_models.model_dirs = None  # what a standalone studio has
    status, body = await civ.post("/civitai/downloads", json={"model_version_id": LORA_VERSION})
    assert status == 409 and "another machine" in body["error"]["message"]


async def test_local_hashes_are_computed_once(run: StudioRun, fake: FakeCivitai) -> None:
    checkpoints = run.host.server.registry.models.folder("checkpoints")
    checkpoints.mkdir(parents=True, exist_ok=True)
    (checkpoints / "a.safetensors").write_bytes(b"a" * 1000)
    (checkpoints / "b.ckpt").write_bytes(b"b" * 1000)
    (checkpoints / "notes.txt").write_text("not a model")
    local = run.studio.local_models
    await local.ready.wait()
    await local.scan()
    before = local.hashed
    assert await local.scan() == 0  # unchanged files are not read again
    (checkpoints / "b.ckpt").write_bytes(b"c" * 1001)
    assert await local.scan() == 1
    (checkpoints / "a.safetensors").unlink()
    await local.scan()
    assert set(local.by_sha) == {hashlib.sha256(b"c" * 1001).hexdigest()}
    assert local.hashed == before + 1


# --- rate limits, slow answers, redirects -----------------------------------------------------------------


@pytest.mark.parametrize("mode", ["seconds", "http-date", "none"])
async def test_a_rate_limit_is_waited_out_in_every_retry_after_mode(
    run: StudioRun, civ: Api, fake: FakeCivitai, mode: str
) -> None:
    fake.rate_limit = (1.0, 2, mode)  # two requests a second, then 429
    run.studio.civitai.retry = RetryPolicy(base_s=0.05, rate_limit_base_s=0.4, budget_s=5.0)  # no header: 0.4, 0.8 s…
    results = [await civ.get(f"/civitai/images?limit=3&username=u{i}") for i in range(4)]
    assert [status for status, _ in results] == [200] * 4
    assert all(body["data"]["stale"] is False for _, body in results)
    limited = len(fake.calls("/api/v1/images")) - 4
    assert limited >= 1  # some were refused, waited out and sent again


async def test_a_slow_civitai_times_out_into_the_stored_copy(run: StudioRun, civ: Api, fake: FakeCivitai) -> None:
    from comfyui_studio.services.civitai import Timeouts

    _, fresh = await civ.get("/civitai/images?limit=5")
    expire_cache(run)
    run.studio.civitai.timeouts = Timeouts(total_s=0.3, connect_s=0.3)
    await run.studio.civitai.close()  # a new session with the short timeouts
    fake.delay_s = 1.0
    started = time.monotonic()
    status, body = await civ.get("/civitai/images?limit=5")
    assert status == 200 and body["data"]["stale"] is True
    assert body["data"]["items"] == fresh["data"]["items"]
    assert time.monotonic() - started < 3.5  # four timed-out tries and the backoffs, bounded by the budget


async def test_the_key_never_follows_a_redirect(run: StudioRun, civ: Api, fake: FakeCivitai) -> None:
    fake.faults.append(
        Fault("/api/v1/me", count=1, status=302, headers={"Location": f"{fake.storage_url}/files/{LORA_VERSION}"})
    )
    status, body = await civ.call("PUT", "/civitai/key", json={"key": KEY})
    assert status == 503 and body["error"]["code"] == "civitai_unavailable"
    assert fake.storage_requests == []  # not followed at all, so never with the key
    assert (await civ.get("/civitai/status"))[1]["data"]["key_set"] is False


async def test_a_model_file_added_later_is_hashed_by_the_worker(run: StudioRun) -> None:
    local = run.studio.local_models
    await local.stop()
    local.watch_s = 0.1
    local.start()
    await local.ready.wait()
    loras = run.host.server.registry.models.folder("loras")
    loras.mkdir(parents=True, exist_ok=True)
    await asyncio.sleep(0.3)
    (loras / "late.safetensors").write_bytes(b"late" * 100)
    digest = hashlib.sha256(b"late" * 100).hexdigest()
    deadline = time.monotonic() + 5
    while digest not in local.by_sha and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert local.by_sha[digest].name == "late.safetensors"


async def test_the_civitai_settings_are_listed_and_checked(run: StudioRun, api: Api) -> None:
    _, body = await api.get("/settings")
    by_name = {s["name"]: s for s in body["data"]["items"]}
    assert by_name["civitai_url"]["value"] == "https://civitai.com" and by_name["civitai_url"]["section"] == "civitai"
    assert by_name["civitai_rate"]["value"] == 2.0 and by_name["civitai_nsfw"]["scope"] == "user"
    assert by_name["civitai_nsfw"]["choices"] == ["none", "soft", "mature", "x"]
    for bad in (
        {"civitai_url": "ftp://civitai.com"},
        {"civitai_url": "civitai.com"},
        {"civitai_rate": 50},
        {"civitai_nsfw": "all"},
    ):
        status, body = await api.call("PATCH", "/settings", json={"values": bad})
        assert status == 400, bad
    status, _ = await api.call("PATCH", "/settings", json={"values": {"civitai_url": "https://civitai.red/api/v1/"}})
    assert status == 200
    assert (await run.studio.civitai.config()).site == "https://civitai.red"
