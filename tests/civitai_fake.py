"""A fake Civitai on 127.0.0.1, built from the samples in tests/fixtures/civitai (../shared/civitai/API.md §10).

It answers `/api/v1/images`, `/models`, `/model-versions/{id}`, `/model-versions/by-hash/{hash}`, `/tags`,
`/creators`, `/me` and `/api/download/models/{id}` the way the real API does for what the studio uses:
opaque cursors, `nextPage` URLs that echo every query parameter (a `token` too), the NSFW table of §4,
`withMeta` and the nested `{id, meta}` shape for `imageId` lookups, the paging-cap 429, Bearer auth with
`/me` answering 200 or 401. Faults are queued per path prefix (status, headers, body, delay); a fixed-window
rate limiter answers 429 with Retry-After in seconds, as an HTTP date or not at all.

Downloads redirect (302) to a second server on 127.0.0.2 — another host — that serves the file with HTTP
Range, records the headers it receives (a test asserts no Authorization arrives there), can drop the
connection after N bytes once, and can serve corrupted bytes.

Reused by the tests, the benchmark and the browser suite: `async with FakeCivitai() as fake: fake.url`.
"""

from __future__ import annotations

import asyncio
import copy
import email.utils
import hashlib
import io
import json
import random
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from PIL import Image

SAMPLES = Path(__file__).parent / "fixtures" / "civitai"
VALID_KEYS = {"valid-key-alice": {"id": 1, "username": "alice"}, "valid-key-mod": {"id": 2, "username": "mod"}}
NSFW_MASKS = {"none": 1, "soft": 3, "mature": 7, "x": 31, "true": 60, "false": 1, "blocked": 32}
IMAGE_LEVELS = ((1, "None"), (2, "Soft"), (4, "Mature"), (8, "X"), (16, "X"))
PAGE_CAP = {"error": "You've requested too many pages, please use cursors instead"}
ACCOUNT = "xG1nkqKTMzGDvpLrqFT7WA"
EPOCH_MS = 1754589483019


@dataclass
class Fault:
    path: str  # a path prefix, e.g. "/api/v1/images"
    count: int
    status: int = 500
    headers: dict[str, str] = field(default_factory=dict)
    body: str = '{"message":"An unexpected error occurred","error":"boom"}'
    delay_s: float = 0.0


@dataclass
class Recorded:
    method: str
    path: str
    query: list[tuple[str, str]]
    authorization: str | None
    at: float


def _load(name: str) -> Any:
    return json.loads((SAMPLES / name).read_text())


def file_bytes(version_id: int, size: int) -> bytes:
    """A version's file: deterministic pseudo-random bytes."""
    rng = random.Random(version_id)
    return rng.randbytes(size)


class FakeCivitai:
    def __init__(self, *, images: int = 600, models: int = 160, big_version: int = 2094881) -> None:
        self.requests: list[Recorded] = []
        self.storage_requests: list[dict[str, str]] = []
        self.faults: list[Fault] = []
        self.delay_s = 0.0
        self.rate_limit: tuple[float, int, str] | None = None  # (window s, max, "seconds"|"http-date"|"none")
        self._window: list[float] = []
        self.cursor_loop_after: int | None = None  # after K pages, hand back the first page's cursor
        self.duplicate_across_pages = False  # each next page repeats the previous page's last item
        self.drop_after: int | None = None  # the storage host drops the connection after N bytes, once
        self.corrupt = False  # the storage host serves other bytes than the SHA-256 says
        self.storage_delay_s = 0.0  # a pause between the storage host's 256 KiB chunks
        self.login_required: set[int] = set()  # versions whose download needs a valid key
        self.big_version = big_version
        self._runners: list[web.AppRunner] = []
        self.url = ""
        self.storage_url = ""
        self.images = self._make_images(images)
        self.models, self.versions = self._make_models(models)
        self.files: dict[int, bytes] = {}
        self._hash_files()

    # -- data -------------------------------------------------------------------------------------------

    def _make_images(self, count: int) -> list[dict[str, Any]]:
        samples = _load("images.json")["items"]
        out = []
        for i in range(count):
            item = copy.deepcopy(samples[i % 2])  # the generator and the A1111 sample
            mask, word = IMAGE_LEVELS[i % len(IMAGE_LEVELS)]
            item["id"] = 118_300_000 - i
            item["nsfwLevel"], item["browsingLevel"], item["nsfw"] = word, mask, mask > 1
            item["username"] = ("pixel_wren", "rune_smith", "night_owl")[i % 3]
            uuid = f"{i:08x}-0000-4000-8000-000000000000"
            legacy = i % 7 == 3
            item["url"] = f"/cdn/{ACCOUNT}/{uuid}/{'width=1024' if legacy else 'original=true'}/{uuid}.jpeg"
            item["createdAt"] = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(EPOCH_MS / 1000 - i * 60))
            meta = item.get("meta")
            variant = i % 6
            if variant == 2 and meta is not None:
                comfy = {
                    "prompt": {
                        "3": {
                            "class_type": "KSampler",
                            "inputs": {
                                "seed": 42 + i,
                                "steps": 20,
                                "cfg": 6.5,
                                "positive": ["6", 0],
                                "negative": ["7", 0],
                            },
                        },
                        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": f"a comfy castle {i}"}},
                        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry"}},
                    }
                }
                item["meta"] = {"comfy": json.dumps(comfy), "Size": "1216x832"}
            elif variant == 3:
                item["meta"] = None
            elif variant == 4 and meta is not None:
                meta["Model"] = {"name": "juggernautXL_v9", "hash": "0123456789"}
                meta["seed"] = 2**32 + 17
            out.append(item)
        return out

    def _make_models(self, count: int) -> tuple[list[dict[str, Any]], dict[int, dict[str, Any]]]:
        sample = _load("models.json")["items"][0]
        version_sample = _load("model-version.json")
        types = ("LORA", "Checkpoint", "TextualInversion", "VAE")
        models = []
        versions: dict[int, dict[str, Any]] = {}
        for i in range(count):
            model = copy.deepcopy(sample)
            if i:
                model["id"] = 1_851_234 + i
                model["name"] = f"Fake model {i}"
                model["type"] = types[i % len(types)]
                model["nsfwLevel"] = 1 if i % 3 else 3
                model["nsfw"] = False
                for j, v in enumerate(model["modelVersions"]):
                    v["id"] = 3_000_000 + i * 10 + j
                    v["files"][0]["name"] = f"fake_{i}_{j}.safetensors"
                    v["files"][0]["id"] = 4_000_000 + i * 10 + j
            for v in model["modelVersions"]:
                full = copy.deepcopy(version_sample)
                full.update({k: v[k] for k in ("id", "name", "baseModel", "files")})
                full["modelId"] = model["id"]
                full["model"] = {"name": model["name"], "type": model["type"], "nsfw": model["nsfw"], "poi": False}
                versions[v["id"]] = full
            models.append(model)
        return models, versions

    def _hash_files(self) -> None:
        for vid, version in self.versions.items():
            size = 2 * 1024 * 1024 + 12345 if vid == self.big_version else 64 * 1024 + vid % 997
            data = file_bytes(vid, size)
            self.files[vid] = data
            digest = hashlib.sha256(data).hexdigest().upper()
            for f in version["files"]:
                f["sizeKB"] = size / 1024
                f["hashes"] = {**f["hashes"], "SHA256": digest, "AutoV2": digest[:10]}
                f["downloadUrl"] = f"https://civitai.com/api/download/models/{vid}"
        for model in self.models:
            for v in model["modelVersions"]:
                v["files"] = copy.deepcopy(self.versions[v["id"]]["files"])

    # -- plumbing ---------------------------------------------------------------------------------------

    async def __aenter__(self) -> FakeCivitai:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self, host: str = "127.0.0.1", storage_host: str = "127.0.0.2", port: int = 0) -> None:
        api = web.Application(middlewares=[self._middleware])
        api.router.add_get("/api/v1/images", self.get_images)
        api.router.add_get("/api/v1/models", self.get_models)
        api.router.add_get("/api/v1/model-versions/by-hash/{hash}", self.get_by_hash)
        api.router.add_get("/api/v1/model-versions/{id}", self.get_version)
        api.router.add_get("/api/v1/tags", self.get_tags)
        api.router.add_get("/api/v1/creators", self.get_creators)
        api.router.add_get("/api/v1/me", self.get_me)
        api.router.add_get("/api/download/models/{id}", self.get_download)
        api.router.add_get("/__fake/requests", self.get_recorded)
        api.router.add_post("/__fake/faults", self.post_faults)
        api.router.add_post("/__fake/ratelimit", self.post_ratelimit)
        api.router.add_post("/__fake/reset", self.post_reset)
        api.router.add_get("/cdn/{tail:.*}", self.get_cdn)
        storage = web.Application()
        storage.router.add_get("/files/{id}", self.get_storage)
        self.url = await self._serve(api, host, port)
        self.storage_url = await self._serve(storage, storage_host)

    async def _serve(self, app: web.Application, host: str, port: int = 0) -> str:
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        self._runners.append(runner)
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return f"http://{host}:{port}"

    async def stop(self) -> None:
        for runner in self._runners:
            await runner.cleanup()
        self._runners.clear()

    def calls(self, prefix: str = "/api/v1/") -> list[Recorded]:
        return [r for r in self.requests if r.path.startswith(prefix)]

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        now = time.monotonic()
        self.requests.append(
            Recorded(
                request.method, request.path, list(request.query.items()), request.headers.get("Authorization"), now
            )
        )
        if request.path.startswith("/__fake"):
            return await handler(request)
        for fault in self.faults:
            if fault.count > 0 and request.path.startswith(fault.path):
                fault.count -= 1
                if fault.delay_s:
                    await asyncio.sleep(fault.delay_s)
                return web.Response(
                    status=fault.status,
                    body=fault.body.encode(),
                    headers={"Content-Type": "application/json; charset=utf-8", **fault.headers},
                )
        if self.rate_limit is not None:
            window, most, mode = self.rate_limit
            self._window = [t for t in self._window if now - t < window]
            if len(self._window) >= most:
                wait = max(1, int(window - (now - self._window[0])) + 1)
                headers = {"Cache-Control": "no-store"}
                if mode == "seconds":
                    headers["Retry-After"] = str(wait)
                elif mode == "http-date":
                    headers["Retry-After"] = email.utils.formatdate(time.time() + wait, usegmt=True)
                if mode == "none":
                    return web.Response(
                        status=429,
                        text="<html><title>Too Many Requests</title></html>",
                        content_type="text/html",
                        headers=headers,
                    )
                return web.json_response(
                    {"error": "Rate limit exceeded, please retry shortly."}, status=429, headers=headers
                )
            self._window.append(now)
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        return await handler(request)

    def _user(self, request: web.Request) -> dict[str, Any] | None:
        header = request.headers.get("Authorization", "")
        parts = header.split(" ")
        token = parts[1] if len(parts) > 1 else request.query.get("token", "")
        return VALID_KEYS.get(token)

    def _next_page(self, request: web.Request, cursor: str) -> str:
        query = [(k, v) for k, v in request.query.items() if k != "cursor"] + [("cursor", cursor)]
        return f"{request.scheme}://{request.host}{request.path}?{urlencode(query)}"

    @staticmethod
    def _limit(request: web.Request, default: int, top: int) -> int | web.Response:
        raw = request.query.get("limit", str(default))
        if not raw.isdigit() or not 0 <= int(raw) <= top:
            return web.json_response({"error": {"name": "ZodError", "issues": [{"path": ["limit"]}]}}, status=400)
        return int(raw)

    # -- API --------------------------------------------------------------------------------------------

    async def get_images(self, request: web.Request) -> web.Response:
        q = request.query
        limit = self._limit(request, 100, 200)
        if isinstance(limit, web.Response):
            return limit
        if "page" in q and "cursor" not in q and int(q["page"]) * limit > 1000:
            return web.json_response(PAGE_CAP, status=429, headers={"Cache-Control": "public, s-maxage=300"})
        if "browsingLevel" in q:
            mask = int(q["browsingLevel"])
        else:
            mask = NSFW_MASKS.get(q.get("nsfw", "false").lower(), 1)
        items = [i for i in self.images if i["browsingLevel"] & mask]
        if "username" in q:
            items = [i for i in items if i["username"] == q["username"]]
        if "imageId" in q:
            items = [i for i in self.images if i["id"] == int(q["imageId"])]
        offset = int(q["cursor"].split("|")[0]) if "cursor" in q else 0
        page_no = offset // max(limit, 1)
        chunk = copy.deepcopy(items[offset : offset + limit])
        if self.duplicate_across_pages and offset and offset - 1 < len(items):
            chunk = [copy.deepcopy(items[offset - 1]), *chunk[:-1]]
        with_meta = q.get("withMeta") == "true"
        here = f"{request.scheme}://{request.host}"
        for item in chunk:
            item["url"] = here + item["url"] if item["url"].startswith("/") else item["url"]
            if not with_meta:
                item["meta"] = None
            elif "imageId" in q and q.get("flatMeta") != "true":
                item["meta"] = {"id": item["id"], "meta": item["meta"]}
        metadata: dict[str, Any] = {}
        if offset + limit < len(items) and limit:
            nxt = offset + limit
            if self.cursor_loop_after is not None and page_no + 1 >= self.cursor_loop_after:
                nxt = limit  # Civitai's loop: back to an earlier cursor
            cursor = f"{nxt}|{EPOCH_MS - nxt}"
            metadata = {"nextCursor": cursor, "nextPage": self._next_page(request, cursor)}
        return web.json_response(
            {"items": chunk, "metadata": metadata}, headers={"Cache-Control": "public, s-maxage=300"}
        )

    async def get_models(self, request: web.Request) -> web.Response:
        q = request.query
        limit = self._limit(request, 100, 100)
        if isinstance(limit, web.Response):
            return limit
        if "page" in q and "query" in q:
            return web.json_response(
                {"error": "Cannot use page param with query search. Use cursor-based pagination."}, status=400
            )
        if "browsingLevel" in q:
            return web.json_response({"error": {"name": "ZodError"}}, status=400)
        if ("favorites" in q or "hidden" in q) and self._user(request) is None:
            return web.json_response({"error": "Unauthorized"}, status=401)
        types = q.getall("types", [])
        if any("," in t for t in types):
            return web.json_response({"error": {"name": "ZodError"}}, status=400)
        items = self.models
        if q.get("nsfw") != "true":
            items = [m for m in items if m["nsfwLevel"] <= 1]
        if types:
            items = [m for m in items if m["type"] in types]
        if "query" in q:
            items = [m for m in items if q["query"].lower() in m["name"].lower()]
        if "tag" in q:
            items = [m for m in items if q["tag"] in m["tags"]]
        offset = int(q["cursor"].split("|")[0]) if "cursor" in q else 0
        chunk = items[offset : offset + limit]
        metadata: dict[str, Any] = {}
        if offset + limit < len(items) and limit:
            cursor = f"{offset + limit}|{chunk[-1]['id']}|0"
            metadata = {"nextCursor": cursor, "nextPage": self._next_page(request, cursor)}
        return web.json_response({"items": chunk, "metadata": metadata})

    async def get_version(self, request: web.Request) -> web.Response:
        raw = request.match_info["id"]
        if not raw.isdigit():
            return web.json_response({"error": "Invalid id"}, status=400)
        version = self.versions.get(int(raw))
        if version is None:
            return web.json_response({"error": "Model not found"}, status=404)
        return web.json_response(version)

    async def get_by_hash(self, request: web.Request) -> web.Response:
        wanted = request.match_info["hash"].upper()
        for version in self.versions.values():
            for f in version["files"]:
                if wanted in {str(h).upper() for h in f["hashes"].values()}:
                    return web.json_response(version, headers={"Cache-Control": "public, s-maxage=3600"})
        return web.json_response({"error": "Model not found"}, status=404)

    def _paged(self, request: web.Request, items: list[dict[str, Any]]) -> web.Response:
        limit = self._limit(request, 20, 200)
        if isinstance(limit, web.Response):
            return limit
        page = int(request.query.get("page", "1"))
        chunk = items[(page - 1) * limit : page * limit]
        total_pages = max(1, -(-len(items) // max(limit, 1)))
        metadata: dict[str, Any] = {
            "totalItems": len(items),
            "currentPage": page,
            "pageSize": limit,
            "totalPages": total_pages,
        }
        if page < total_pages:
            query = [(k, v) for k, v in request.query.items() if k != "page"] + [("page", str(page + 1))]
            metadata["nextPage"] = f"{request.scheme}://{request.host}{request.path}?{urlencode(query)}"
        return web.json_response({"items": chunk, "metadata": metadata})

    async def get_tags(self, request: web.Request) -> web.Response:
        names = sorted({t for m in self.models for t in m["tags"]} | {f"tag{i:03d}" for i in range(45)})
        needle = request.query.get("query", "").lower()
        items = [{"name": n, "modelCount": len(n), "link": f"/api/v1/models?tag={n}"} for n in names if needle in n]
        return self._paged(request, items)

    async def get_creators(self, request: web.Request) -> web.Response:
        users = ["pixel_wren", "rune_smith", "night_owl"] + [f"maker{i:03d}" for i in range(30)]
        needle = request.query.get("query", "").lower()
        items = [
            {
                "username": u,
                "modelCount": 3,
                "link": f"/api/v1/models?username={u}",
                "image": f"/cdn/{ACCOUNT}/u/width=96/{u}.jpeg",
            }
            for u in users
            if needle in u
        ]
        return self._paged(request, items)

    async def get_me(self, request: web.Request) -> web.Response:
        user = self._user(request)
        if user is None:
            return web.json_response({"error": "Unauthorized"}, status=401)
        return web.json_response({**user, "tier": "free", "status": "active", "isMember": False})

    async def get_download(self, request: web.Request) -> web.Response:
        vid = int(request.match_info["id"])
        if vid not in self.versions:
            return web.json_response({"error": "Model not found"}, status=404)
        if vid in self.login_required and self._user(request) is None:
            return web.json_response(
                {
                    "error": "Unauthorized",
                    "message": "The creator of this asset requires you to be logged in to download it",
                },
                status=401,
            )
        raise web.HTTPFound(f"{self.storage_url}/files/{vid}?sig=fake-signature")

    async def get_cdn(self, request: web.Request) -> web.Response:
        """A small real JPEG per image, its colour from the path, so pages show (and tests see) thumbnails."""
        tail = request.match_info["tail"]
        shade = hashlib.sha256(tail.encode()).digest()
        out = io.BytesIO()
        Image.new("RGB", (48, 64), (shade[0], shade[1], shade[2])).save(out, "JPEG", quality=70)
        return web.Response(body=out.getvalue(), content_type="image/jpeg", headers={"Cache-Control": "max-age=3600"})

    async def get_recorded(self, request: web.Request) -> web.Response:
        return web.json_response([r.__dict__ for r in self.requests])

    async def post_faults(self, request: web.Request) -> web.Response:
        """`{"path": "/api/v1/images", "count": 3, "status": 503, "headers": {...}, "body": "...", "delay_ms": 0}`"""
        raw = await request.json()
        self.faults.append(
            Fault(
                raw["path"],
                int(raw.get("count", 1)),
                int(raw.get("status", 500)),
                dict(raw.get("headers") or {}),
                raw.get("body", Fault.body),
                float(raw.get("delay_ms", 0)) / 1000,
            )
        )
        return web.json_response({"ok": True})

    async def post_ratelimit(self, request: web.Request) -> web.Response:
        """`{"windowSec": 10, "max": 20, "retryAfter": "seconds"|"http-date"|"none"}`; `{}` turns it off."""
        raw = await request.json()
        self.rate_limit = (float(raw["windowSec"]), int(raw["max"]), raw.get("retryAfter", "seconds")) if raw else None
        return web.json_response({"ok": True})

    async def post_reset(self, request: web.Request) -> web.Response:
        self.faults.clear()
        self.requests.clear()
        self.storage_requests.clear()
        self.rate_limit = None
        self.delay_s = 0.0
        return web.json_response({"ok": True})

    # -- the storage host ---------------------------------------------------------------------------------

    async def get_storage(self, request: web.Request) -> web.StreamResponse:
        self.storage_requests.append(dict(request.headers))
        vid = int(request.match_info["id"])
        data = self.files[vid]
        if self.corrupt:
            data = bytes(b ^ 0x5A for b in data)
        start = 0
        match = re.fullmatch(r"bytes=(\d+)-", request.headers.get("Range", ""))
        if match:
            start = int(match.group(1))
            if start >= len(data):
                return web.Response(status=416, headers={"Content-Range": f"bytes */{len(data)}"})
        body = data[start:]
        resp = web.StreamResponse(status=206 if match else 200)
        resp.content_length = len(body)
        resp.content_type = "application/octet-stream"
        if match:
            resp.headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        await resp.prepare(request)
        drop = self.drop_after
        if drop is not None and drop < len(body):
            self.drop_after = None
            await resp.write(body[:drop])
            await asyncio.sleep(0.05)
            if request.transport is not None:
                request.transport.close()  # the connection drops mid-file
            return resp
        step = 256 * 1024
        for i in range(0, len(body), step):
            await resp.write(body[i : i + step])
            if self.storage_delay_s:
                await asyncio.sleep(self.storage_delay_s)
        await resp.write_eof()
        return resp


async def _serve_forever(port: int) -> None:
    fake = FakeCivitai()
    await fake.start(port=port)
    sys.stdout.write(f"fake Civitai at {fake.url} (storage {fake.storage_url}); keys: {', '.join(VALID_KEYS)}\n")
    sys.stdout.flush()
    try:
        await asyncio.Event().wait()
    finally:
        await fake.stop()


if __name__ == "__main__":
    # `python tests/civitai_fake.py [PORT]`: a fake to point the studio's civitai_url at while working on the UI
    asyncio.run(_serve_forever(int(sys.argv[1]) if len(sys.argv) > 1 else 0))
