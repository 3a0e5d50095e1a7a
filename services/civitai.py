"""The studio's one Civitai client: throttled, coalesced, cached in the store, with the studio's own cursors.

Contract (docs/api.md "Civitai", ../shared/civitai/API.md for Civitai's side):
- Every request to a host first takes a token from that host's bucket (`civitai_rate` per second, burst 1),
  so any number of browser tabs never make the studio exceed the rate; a 429 pauses the whole bucket.
- Identical requests in flight at once share one upstream call; answers are kept (shaped as the studio sends
  them) in memory and in the store for a per-endpoint TTL, and served with `stale: true` when Civitai is
  down, slow or rate-limiting.
- 429 and 5xx are retried after Retry-After (seconds or an HTTP date) or a bounded exponential backoff with
  jitter, within `RetryPolicy.budget_s`; the paging cap 429 ("too many pages") is never retried.
- The key goes only in `Authorization: Bearer`, only to the configured site's host (scheme, host and port
  equal), and only for the calls that need it (`/me`, downloads); redirects are never followed with it.
  It is never put in a URL, a log line, an exception message or the cache.
- The browser gets opaque studio cursors (`c_…`), never Civitai's cursors or `nextPage` URLs. A cursor chain
  remembers the ids it handed out, so ids repeated by Civitai's paging bugs are dropped and a repeated
  upstream cursor ends the chain.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import email.utils
import hashlib
import json
import logging
import random
import re
import secrets as pysecrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any, Literal
from urllib.parse import urlsplit

import aiohttp

from ..db import civitai as repo
from ..db import settings as settings_repo
from ..db.store import Store
from ..engine import civitai_prompt as cp
from ..engine.errors import StudioError, not_found, validation_error
from ..settings_table import BY_NAME as SETTING_DEFS
from ..settings_table import from_environment
from .secrets import REDACTION, Secrets

log = logging.getLogger("comfyui_studio.civitai")

KEY_NAME = "civitai"  # the secret's name in the owner's secrets
USER_AGENT = "ComfyUI-Studio"
MAX_BODY_BYTES = 32 * 1024 * 1024
CONFIG_TTL_S = 60.0  # a PATCH /settings takes effect at once (settings_changed); this bounds anything else
MEMORY_ENTRIES = 256  # shaped pages (~100 KB each at limit 100); the store keeps the rest
STALE_KEEP_S = 7 * 24 * 3600.0  # stored answers older than this past expiry are pruned
MAX_CURSORS = 20_000
MAX_CHAIN_IDS = 100_000
PAGE_HOPS = 3  # upstream pages read to fill one studio page that dedupe emptied

# How long each endpoint's answers are fresh (API.md §8: lists mirror s-maxage, by-hash an hour or more).
TTL_S: dict[str, float] = {
    "images": 300.0,
    "models": 300.0,
    "model_version": 3600.0,
    "by_hash": 3600.0,
    "tags": 6 * 3600.0,
    "creators": 3600.0,
}

NSFW_LEVELS = ("none", "soft", "mature", "x")
# Civitai's browsing-level bitmask for "up to this level" (PG=1, PG13=2, R=4, X=8, XXX=16)
BROWSING_MASK = {"none": 1, "soft": 3, "mature": 7, "x": 31}
IMAGE_NSFW_WORDS = {"none": "none", "soft": "soft", "mature": "mature", "x": "x"}
ImageSort = Literal["Most Reactions", "Most Comments", "Newest"]
ModelSort = Literal["Highest Rated", "Most Downloaded", "Newest"]
Period = Literal["AllTime", "Year", "Month", "Week", "Day"]
MODEL_TYPES = ("Checkpoint", "LORA", "TextualInversion", "VAE", "Upscaler")
THUMB_PARAMS = "width=450,optimized=true"
THUMB_PARAMS_VIDEO = "transcode=true,width=450,optimized=true"
DEFAULT_SITE = "https://civitai.com"


class CivitaiError(Exception):
    """Civitai answered with an error the caller may act on; never carries a header or the key."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class CivitaiUnavailable(CivitaiError):
    """Unreachable, timing out, rate-limiting or failing (5xx) after the retries."""


class CivitaiRejected(CivitaiError):
    """A 4xx that retrying does not change (a bad query, an unknown id, the paging cap, a rejected key)."""


def unavailable(message: str = "Civitai cannot be reached right now") -> StudioError:
    return StudioError("civitai_unavailable", message, status=503)


@dataclass(frozen=True)
class RetryPolicy:
    tries: int = 3  # retries after the first attempt
    base_s: float = 1.0  # 5xx and network errors: 1, 2, 4 s
    rate_limit_base_s: float = 1.5  # a 429 without Retry-After: 1.5 s × 2^n
    jitter: float = 0.2
    cap_s: float = 30.0
    retry_after_cap_s: float = 60.0
    budget_s: float = 12.0  # a browsing request waits at most this long in total before stale is served

    def backoff(self, attempt: int, base: float) -> float:
        delay = min(self.cap_s, base * (2**attempt))
        return delay * (1 + random.uniform(-self.jitter, self.jitter))  # noqa: S311 (jitter, not a secret)


@dataclass(frozen=True)
class Timeouts:
    total_s: float = 20.0
    connect_s: float = 5.0


def retry_after(value: str | None, now: float | None = None) -> float | None:
    """Retry-After as seconds: a number of seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


class TokenBucket:
    """Requests per second for one host, burst 1: each caller reserves the next slot, then sleeps until it.

    Reservations are made under no await, so concurrent callers get distinct slots in arrival order;
    `pause` pushes every later slot back (a 429 pauses the host, not one request).
    """

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.clock = clock
        self._next = 0.0

    def reserve(self) -> float:
        """Seconds to wait before sending; the slot is taken."""
        now = self.clock()
        slot = max(now, self._next)
        self._next = slot + 1.0 / self.rate
        return slot - now

    async def take(self) -> None:
        delay = self.reserve()
        if delay > 0:
            await asyncio.sleep(delay)

    def pause(self, seconds: float) -> None:
        self._next = max(self._next, self.clock() + seconds)


@dataclass
class _Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8", "replace"))

    def error_text(self) -> str:
        """Civitai's `error` string when it is a short one (a ZodError object or HTML is not shown)."""
        try:
            data = self.json()
        except ValueError:
            return ""
        error = data.get("error") if isinstance(data, dict) else None
        return error if isinstance(error, str) and len(error) < 300 else ""


@dataclass
class _Entry:
    data: Any
    fetched_at: float
    expires_at: float


@dataclass
class _Chain:
    """One browsing sequence (one query): the page each id and upstream cursor was first seen on."""

    endpoint: str
    query: tuple[tuple[str, str], ...]
    first_seen: dict[object, int] = field(default_factory=dict)
    cursor_page: dict[str, int] = field(default_factory=dict)
    tokens: dict[int, str] = field(default_factory=dict)
    head: tuple[object, ...] = ()  # the first page's ids: a list that starts the same continues the same chain


@dataclass
class _Cursor:
    chain: _Chain
    page: int
    upstream: str


# Civitai's image CDNs (civitai.com's and its mirror's): thumbnails load from these in the page.
IMAGE_HOSTS = ("https://image.civitai.com", "https://*.civitai.com", "https://*.civitai.red")


@dataclass
class Config:
    site: str
    rate: float
    at: float


def site_of(url: str) -> str:
    """The site's origin (and path prefix) from the setting: `https://civitai.com/api/v1/` → `https://civitai.com`."""
    url = url.strip().rstrip("/")
    if url.endswith("/api/v1"):
        url = url[: -len("/api/v1")]
    return url


def origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme.lower(), (parts.hostname or "").lower(), port


def thumb_url(url: str, video: bool = False) -> str:
    """The URL with its transform segment (`original=true`, `width=N`, …) replaced by a 450 px thumbnail's."""
    parts = urlsplit(url)
    segments = parts.path.split("/")
    if len(segments) >= 3 and "=" in segments[-2]:
        segments[-2] = THUMB_PARAMS_VIDEO if video else THUMB_PARAMS
        return parts._replace(path="/".join(segments)).geturl()
    return url


def _obj(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _num(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


# --- shaping Civitai's answers into the contract's objects ----------------------------------------------


def shape_image(item: dict[str, Any], site: str) -> dict[str, Any] | None:
    image_id = _int(item.get("id"))
    url = _str(item.get("url"))
    if image_id is None or url is None:
        return None
    level = item.get("nsfwLevel")
    if isinstance(level, str):
        nsfw_level = level.lower() if level.lower() in NSFW_LEVELS else "x"
    else:
        nsfw_level = _level_word(_int(level) or 1)
    stats = _obj(item.get("stats"))
    raw_meta = item.get("meta")
    return {
        "id": image_id,
        "url": url,
        "thumb_url": thumb_url(url, item.get("type") == "video"),
        "width": _int(item.get("width")),
        "height": _int(item.get("height")),
        "nsfw_level": nsfw_level,
        "username": _str(item.get("username")),
        "created_at": _str(item.get("createdAt")),
        "post_id": _int(item.get("postId")),
        "page_url": f"{site}/images/{image_id}",
        "stats": {
            "likes": _num(stats.get("likeCount")),
            "hearts": _num(stats.get("heartCount")),
            "comments": _num(stats.get("commentCount")),
            "laughs": _num(stats.get("laughCount")),
            "cries": _num(stats.get("cryCount")),
        },
        "meta": cp.normalize_meta(raw_meta),
        "resources": [r.to_json() for r in cp.image_resources(raw_meta)],
        "browsing_level": _int(item.get("browsingLevel")),
    }


def _level_word(mask: int) -> str:
    if mask >= 8:
        return "x"
    if mask >= 4:
        return "mature"
    if mask >= 2:
        return "soft"
    return "none"


def shape_file(f: dict[str, Any]) -> dict[str, Any]:
    hashes = _obj(f.get("hashes"))
    sha = hashes.get("SHA256")
    size = f.get("sizeKB")
    return {
        "id": _int(f.get("id")),
        "name": _str(f.get("name")) or "",
        "size_kb": float(size) if isinstance(size, int | float) and not isinstance(size, bool) else None,
        "sha256": sha.lower() if isinstance(sha, str) and len(sha) == 64 else None,
        "type": _str(f.get("type")) or "Model",
        "primary": bool(f.get("primary")),
        "download_url": _str(f.get("downloadUrl")),
    }


def _public_file(f: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in f.items() if k != "download_url"}


def shape_version(v: dict[str, Any], site: str, model_id: int | None) -> dict[str, Any]:
    vid = _int(v.get("id"))
    files = [shape_file(f) for f in v.get("files") or [] if isinstance(f, dict)]
    page = f"{site}/models/{model_id}?modelVersionId={vid}" if model_id is not None else f"{site}/model-versions/{vid}"
    return {
        "id": vid,
        "name": _str(v.get("name")) or "",
        "base_model": _str(v.get("baseModel")),
        "page_url": page,
        "files": files,
    }


def _model_image(img: dict[str, Any]) -> dict[str, Any] | None:
    url = _str(img.get("url"))
    if url is None:
        return None
    return {
        "url": url,
        "thumb_url": thumb_url(url, img.get("type") == "video"),
        "width": _int(img.get("width")),
        "height": _int(img.get("height")),
    }


def shape_model(m: dict[str, Any], site: str) -> dict[str, Any] | None:
    model_id = _int(m.get("id"))
    if model_id is None:
        return None
    stats = _obj(m.get("stats"))
    up, down = _num(stats.get("thumbsUpCount")), _num(stats.get("thumbsDownCount"))
    rating = stats.get("rating")
    versions = [v for v in m.get("modelVersions") or [] if isinstance(v, dict)]
    image = None
    for v in versions:
        for img in v.get("images") or []:
            if isinstance(img, dict):
                image = _model_image(img)
                if image is not None:
                    break
        if image is not None:
            break
    creator = _obj(m.get("creator"))
    return {
        "id": model_id,
        "name": _str(m.get("name")) or "",
        "type": _str(m.get("type")) or "Other",
        "nsfw": bool(m.get("nsfw")),
        "creator": _str(creator.get("username")),
        "tags": [t for t in m.get("tags") or [] if isinstance(t, str)],
        "page_url": f"{site}/models/{model_id}",
        "stats": {
            "downloads": _num(stats.get("downloadCount")),
            "likes": up,
            # Civitai dropped star ratings: the share of thumbs up, 0..5 like the old stars (null: no votes)
            "rating": float(rating)
            if isinstance(rating, int | float) and not isinstance(rating, bool)
            else (round(5 * up / (up + down), 2) if up + down else None),
        },
        "image": image,
        "versions": [
            {
                **shape_version(v, site, model_id),
                "files": [_public_file(f) for f in shape_version(v, site, model_id)["files"]],
            }
            for v in versions
        ],
        "nsfw_mask": _int(m.get("nsfwLevel")),
    }


def shape_model_version(v: dict[str, Any], site: str) -> dict[str, Any]:
    model_id = _int(v.get("modelId"))
    model = _obj(v.get("model"))
    images = []
    for img in v.get("images") or []:
        if not isinstance(img, dict):
            continue
        shaped = _model_image(img)
        if shaped is not None:
            shaped["nsfw_level"] = _level_word(_int(img.get("nsfwLevel")) or 1)
            shaped["meta"] = cp.normalize_meta(img.get("meta"))
            images.append(shaped)
    return {
        **shape_version(v, site, model_id),
        "model_id": model_id,
        "model": {"name": _str(model.get("name")) or "", "type": _str(model.get("type")) or "Other"},
        "images": images,
    }


def public_version(v: dict[str, Any]) -> dict[str, Any]:
    return {**v, "files": [_public_file(f) for f in v["files"]]}


# --- the client -----------------------------------------------------------------------------------------


class Civitai:
    def __init__(
        self,
        store: Store,
        secrets: Callable[[], Secrets | None],
        owner_id: Callable[[], int],
        *,
        retry: RetryPolicy | None = None,
        timeouts: Timeouts | None = None,
    ) -> None:
        self.store = store
        self._secrets = secrets
        self._owner_id = owner_id
        self.retry = retry or RetryPolicy()
        self.timeouts = timeouts or Timeouts()
        self._session: aiohttp.ClientSession | None = None
        self._buckets: dict[tuple[str, str, int | None], TokenBucket] = {}
        self._config: Config | None = None
        self._memory: collections.OrderedDict[str, _Entry] = collections.OrderedDict()
        self._inflight: dict[str, asyncio.Task[tuple[Any, bool]]] = {}
        self._cursors: collections.OrderedDict[str, _Cursor] = collections.OrderedDict()
        self._chains: collections.OrderedDict[tuple[str, tuple[tuple[str, str], ...]], _Chain] = (
            collections.OrderedDict()
        )
        self._levels: dict[int, str] = {}  # each user's civitai_nsfw, until it changes
        self.key_valid: bool | None = None  # the last validation's answer in this process
        self.upstream_calls = 0  # requests sent to Civitai (the benchmark counts what the cache saved)

    # -- plumbing ---------------------------------------------------------------------------------------

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeouts.total_s, connect=self.timeouts.connect_s),
                headers={"User-Agent": USER_AGENT},
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def config(self, *, fresh: bool = False) -> Config:
        now = time.monotonic()
        if not fresh and self._config is not None and now - self._config.at < CONFIG_TTL_S:
            return self._config
        async with self.store.transaction() as session:
            stored = await settings_repo.read(session, ["civitai_url", "civitai_rate"])
        url = stored.get("civitai_url") or from_environment("STUDIO_CIVITAI_URL") or DEFAULT_SITE
        rate = stored.get("civitai_rate", SETTING_DEFS["civitai_rate"].default)
        self._config = Config(site_of(str(url)), float(rate) if isinstance(rate, int | float) else 2.0, now)
        for bucket in self._buckets.values():
            bucket.rate = self._config.rate
        return self._config

    async def image_sources(self) -> list[str]:
        """Where Civitai's images come from, for the page's Content-Security-Policy: its image CDN, and the
        configured site itself (another mirror, or a local server) which may serve them too."""
        scheme, host, port = origin((await self.config()).site)
        default_port = {"http": 80, "https": 443}.get(scheme)
        site = f"{scheme}://{host}" + (f":{port}" if port and port != default_port else "")
        return [site, *IMAGE_HOSTS]

    def settings_changed(self, user_id: int, names: list[str]) -> None:
        """Settings.update's listener: forget what was read of the changed Civitai settings."""
        if "civitai_url" in names or "civitai_rate" in names:
            self._config = None
        if "civitai_nsfw" in names:
            self._levels.pop(user_id, None)

    async def user_level(self, user_id: int) -> str:
        """The user's `civitai_nsfw`, read once and kept until the user changes it."""
        level = self._levels.get(user_id)
        if level is None:
            key = settings_repo.user_key(user_id, "civitai_nsfw")
            async with self.store.transaction() as session:
                stored = await settings_repo.read(session, [key])
            value = stored.get(key, SETTING_DEFS["civitai_nsfw"].default)
            level = self._levels[user_id] = str(value) if value in NSFW_LEVELS else "none"
        return level

    def bucket(self, url: str, rate: float) -> TokenBucket:
        key = origin(url)
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = TokenBucket(rate)
        return bucket

    async def send(
        self,
        url: str,
        *,
        params: list[tuple[str, str]] | None = None,
        key: str | None = None,
        site: str,
        rate: float,
        extra_headers: dict[str, str] | None = None,
    ) -> _Answer:
        """One throttled GET, never following a redirect; the key only when ``url`` is on ``site``'s origin."""
        bucket = self.bucket(url, rate)
        await bucket.take()
        headers = {"Accept": "application/json", **(extra_headers or {})}
        if key is not None and origin(url) == origin(site):
            headers["Authorization"] = f"Bearer {key}"
        self.upstream_calls += 1
        async with self.session().get(url, params=params, headers=headers, allow_redirects=False) as resp:
            body = await resp.content.read(MAX_BODY_BYTES)
            return _Answer(resp.status, {k.lower(): v for k, v in resp.headers.items()}, body)

    async def get_json(self, path: str, params: list[tuple[str, str]] | None = None, *, key: str | None = None) -> Any:
        """GET ``/api/v1{path}`` with the retry policy; CivitaiUnavailable / CivitaiRejected on failure."""
        cfg = await self.config()
        url = f"{cfg.site}/api/v1{path}"
        spent = 0.0
        last = "no answer"
        for attempt in range(self.retry.tries + 1):
            wait: float
            try:
                answer = await self.send(url, params=params, key=key, site=cfg.site, rate=cfg.rate)
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
                last = "timed out" if isinstance(exc, asyncio.TimeoutError) else "unreachable"
                wait = self.retry.backoff(attempt, self.retry.base_s)
            else:
                if answer.status == 200:
                    try:
                        return answer.json()
                    except ValueError:
                        last = "an unreadable answer"
                        wait = self.retry.backoff(attempt, self.retry.base_s)
                elif answer.status == 429:
                    text = answer.error_text()
                    if "too many pages" in text.lower():
                        raise CivitaiRejected("Civitai pages this far only with cursors", 429)
                    after = retry_after(answer.headers.get("retry-after"))
                    last = "rate-limiting"
                    if after is not None and after > self.retry.retry_after_cap_s:
                        self.bucket(url, cfg.rate).pause(self.retry.retry_after_cap_s)
                        break
                    wait = after if after is not None else self.retry.backoff(attempt, self.retry.rate_limit_base_s)
                    self.bucket(url, cfg.rate).pause(wait)
                elif answer.status >= 500:
                    last = f"failing (HTTP {answer.status})"
                    after = retry_after(answer.headers.get("retry-after"))
                    if after is not None:
                        wait = min(after, self.retry.retry_after_cap_s)
                    else:
                        wait = self.retry.backoff(attempt, self.retry.base_s)
                elif answer.status == 404:
                    raise CivitaiRejected(answer.error_text() or "Not found on Civitai", 404)
                else:
                    raise CivitaiRejected(
                        answer.error_text() or f"Civitai refused the request (HTTP {answer.status})", answer.status
                    )
            if attempt == self.retry.tries or spent + wait > self.retry.budget_s:
                break
            log.info("Civitai %s is %s; trying again in %.1f s", path, last, wait)
            spent += wait
            await asyncio.sleep(wait)
        raise CivitaiUnavailable(f"Civitai is {last}")

    # -- cache ------------------------------------------------------------------------------------------

    @staticmethod
    def cache_key(site: str, path: str, params: list[tuple[str, str]]) -> str:
        text = json.dumps([site, path, sorted(params)], separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    def _remember(self, key: str, entry: _Entry) -> None:
        self._memory[key] = entry
        self._memory.move_to_end(key)
        while len(self._memory) > MEMORY_ENTRIES:
            self._memory.popitem(last=False)

    async def cached(
        self,
        endpoint: str,
        path: str,
        params: list[tuple[str, str]],
        shape: Callable[[Any, str], Any],
    ) -> tuple[Any, bool]:
        """(shaped answer, stale): fresh from memory or the store, else one upstream call for all callers."""
        cfg = await self.config()
        key = self.cache_key(cfg.site, path, params)
        entry = self._memory.get(key)
        if entry is not None and entry.expires_at > time.time():
            self._memory.move_to_end(key)
            return entry.data, False
        task = self._inflight.get(key)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._refresh(key, endpoint, path, params, shape, cfg.site))
            self._inflight[key] = task
            task.add_done_callback(lambda _t: self._inflight.pop(key, None))
        return await asyncio.shield(task)

    async def _refresh(
        self,
        key: str,
        endpoint: str,
        path: str,
        params: list[tuple[str, str]],
        shape: Callable[[Any, str], Any],
        site: str,
    ) -> tuple[Any, bool]:
        entry = self._memory.get(key)
        if entry is None:
            async with self.store.transaction() as session:
                row = await repo.cached(session, key)
            if row is not None:
                entry = _Entry(json.loads(row.body), row.fetched_at, row.expires_at)
                self._remember(key, entry)
                if entry.expires_at > time.time():
                    return entry.data, False
        try:
            data = shape(await self.get_json(path, params), site)
        except CivitaiUnavailable:
            if entry is not None:
                log.info("Serving a stale Civitai %s answer from %.0f s ago", endpoint, time.time() - entry.fetched_at)
                return entry.data, True
            raise
        now = time.time()
        entry = _Entry(data, now, now + TTL_S[endpoint])
        self._remember(key, entry)
        async with self.store.transaction() as session:
            await repo.store_cached(
                session, key, endpoint, json.dumps(data, separators=(",", ":")), entry.fetched_at, entry.expires_at
            )
        return data, False

    async def prune(self) -> int:
        async with self.store.transaction() as session:
            return await repo.prune_cached(session, time.time() - STALE_KEEP_S)

    # -- cursors ----------------------------------------------------------------------------------------

    def _cursor(self, token: str, endpoint: str, query: tuple[tuple[str, str], ...]) -> _Cursor:
        cursor = self._cursors.get(token)
        if cursor is None or cursor.chain.endpoint != endpoint or cursor.chain.query != query:
            raise StudioError(
                "validation_error",
                "This cursor is unknown or expired: load the list from its start",
                [{"loc": ["query", "cursor"], "message": "unknown cursor", "type": "cursor_expired"}],
            )
        self._cursors.move_to_end(token)
        return cursor

    def _token(self, chain: _Chain, page: int, upstream: str) -> str:
        token = chain.tokens.get(page)
        if token is None:
            token = chain.tokens[page] = "c_" + pysecrets.token_urlsafe(16)
            self._cursors[token] = _Cursor(chain, page, upstream)
            while len(self._cursors) > MAX_CURSORS:
                self._cursors.popitem(last=False)
        return token

    async def page(
        self,
        endpoint: str,
        path: str,
        query: list[tuple[str, str]],
        cursor: str | None,
        shape: Callable[[Any, str], Any],
        *,
        paged: bool = False,
        keep: Callable[[dict[str, Any]], bool] | None = None,
    ) -> dict[str, Any]:
        """One studio page of a cursor chain: `{items, next_cursor, stale}` without ids already handed out."""
        frozen = tuple(sorted(query))
        if cursor:
            at = self._cursor(cursor, endpoint, frozen)
            chain, page, upstream = at.chain, at.page, at.upstream
            first_page = False
        else:
            chain, page, upstream = _Chain(endpoint, frozen), 0, ("1" if paged else "")
            first_page = True
        items: list[dict[str, Any]] = []
        taken: set[object] = set()
        stale = False
        more = False
        for _hop in range(PAGE_HOPS):
            params = list(query)
            if upstream:
                params.append(("page" if paged else "cursor", upstream))
            data, was_stale = await self.cached(endpoint, path, params, shape)
            stale = stale or was_stale
            if first_page:
                # The same first page continues the same chain (same cursors); a changed one starts anew.
                first_page = False
                head = tuple(_ident(item) for item in data["items"])
                known = self._chains.get((endpoint, frozen))
                if known is not None and known.head == head:
                    chain = known
                else:
                    chain.head = head
                    self._chains[(endpoint, frozen)] = chain
                    while len(self._chains) > MAX_CURSORS // 10:
                        self._chains.popitem(last=False)
            for item in data["items"]:
                ident = _ident(item)
                first = chain.first_seen.get(ident)
                if first is None and len(chain.first_seen) < MAX_CHAIN_IDS:
                    chain.first_seen[ident] = first = page
                if (first is None or first == page) and ident not in taken and (keep is None or keep(item)):
                    taken.add(ident)
                    items.append(item)
            nxt = data.get("next")
            more = bool(nxt) and bool(data["items"])
            if not more:
                break
            seen_at = chain.cursor_page.setdefault(nxt, page + 1)
            if seen_at <= page or nxt == upstream:
                log.info("Civitai repeated a %s cursor: the list ends here", endpoint)
                more = False
                break
            page, upstream = page + 1, nxt
            if items:
                break  # else one more upstream page: every item of this one was handed out before
        next_token = self._token(chain, page, upstream) if more else None
        return {"items": items, "next_cursor": next_token, "stale": stale}

    # -- browsing ---------------------------------------------------------------------------------------

    @staticmethod
    def allowed_level(requested: str | None, user_max: str) -> str:
        top = NSFW_LEVELS.index(user_max) if user_max in NSFW_LEVELS else 0
        if requested is None or requested == "":
            return NSFW_LEVELS[top]
        if requested not in NSFW_LEVELS:
            raise validation_error("nsfw must be none, soft, mature or x", ["query", "nsfw"])
        return NSFW_LEVELS[min(NSFW_LEVELS.index(requested), top)]

    async def images(
        self,
        *,
        sort: str,
        period: str,
        level: str,
        query: str = "",
        username: str = "",
        tags: str = "",
        model_version_id: int | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> dict[str, Any]:
        mask = BROWSING_MASK[level]
        params = [
            ("limit", str(limit)),
            ("sort", sort),
            ("period", period),
            ("browsingLevel", str(mask)),
            ("withMeta", "true"),
        ]
        if username:
            params.append(("username", username))
        if tags:
            params.append(("tags", tags))
        if model_version_id is not None:
            params.append(("modelVersionId", str(model_version_id)))
        needle = query.casefold().strip()

        def keep(item: dict[str, Any]) -> bool:
            level_mask = item.get("browsing_level")
            if isinstance(level_mask, int) and level_mask & ~mask:
                return False
            if needle:
                meta = item.get("meta") or {}
                return needle in str(meta.get("prompt") or "").casefold()
            return True

        result = await self.page("images", "/images", params, cursor, _shape_images, keep=keep)
        for item in result["items"]:
            item.pop("browsing_level", None)
        return result

    async def models(
        self,
        *,
        level: str,
        query: str = "",
        types: list[str] | None = None,
        sort: str = "Highest Rated",
        period: str = "AllTime",
        tag: str = "",
        username: str = "",
        cursor: str | None = None,
        limit: int = 50,
    ) -> dict[str, Any]:
        mask = BROWSING_MASK[level]
        params = [("limit", str(limit)), ("sort", sort), ("period", period)]
        if level != "none":
            params.append(("nsfw", "true"))  # /models widens only with nsfw=true; the mask filters below
        if query:
            params.append(("query", query))
        for kind in types or []:
            params.append(("types", kind))  # repeated: Civitai refuses a comma-joined list
        if tag:
            params.append(("tag", tag))
        if username:
            params.append(("username", username))

        def keep(item: dict[str, Any]) -> bool:
            model_mask = item.get("nsfw_mask")
            return not (isinstance(model_mask, int) and model_mask & ~mask)

        result = await self.page("models", "/models", params, cursor, _shape_models, keep=keep)
        for item in result["items"]:
            item.pop("nsfw_mask", None)
        return result

    async def model_version(self, version_id: int, *, with_download: bool = False) -> dict[str, Any]:
        version = await self._one("model_version", f"/model-versions/{version_id}")
        return version if with_download else public_version(version)

    async def model_version_by_hash(self, digest: str) -> dict[str, Any]:
        return public_version(await self._one("by_hash", f"/model-versions/by-hash/{digest.upper()}"))

    async def _one(self, endpoint: str, path: str) -> dict[str, Any]:
        try:
            data, _stale = await self.cached(endpoint, path, [], shape_model_version)
        except CivitaiRejected as exc:
            raise self.studio_error(exc) from None
        except CivitaiUnavailable as exc:
            raise unavailable(str(exc)) from None
        return dict(data)

    async def tags(self, *, query: str = "", limit: int = 20, cursor: str | None = None) -> dict[str, Any]:
        params = [("limit", str(limit))] + ([("query", query)] if query else [])
        return await self.page("tags", "/tags", params, cursor, _shape_tags, paged=True)

    async def creators(self, *, query: str = "", limit: int = 20, cursor: str | None = None) -> dict[str, Any]:
        params = [("limit", str(limit))] + ([("query", query)] if query else [])
        return await self.page("creators", "/creators", params, cursor, _shape_creators, paged=True)

    @staticmethod
    def studio_error(exc: CivitaiError) -> StudioError:
        if isinstance(exc, CivitaiUnavailable):
            return unavailable(str(exc))
        if exc.status == 404:
            return not_found("Civitai item")
        return StudioError("validation_error", f"Civitai refused the request: {exc}")

    async def browse(self, call: Awaitable[dict[str, Any]]) -> dict[str, Any]:
        """A browsing call with Civitai's failures as the studio's errors (503 civitai_unavailable, …)."""
        try:
            return await call
        except CivitaiError as exc:
            raise self.studio_error(exc) from None

    # -- the key ----------------------------------------------------------------------------------------

    def secrets(self) -> Secrets:
        store = self._secrets()
        if store is None:
            raise StudioError("internal_error", "The secrets store is not open")
        return store

    async def key(self) -> str | None:
        """The owner's key, for the calls that need it (never for a response)."""
        return await self.secrets().reveal(self._owner_id(), KEY_NAME)

    async def check_key(self, key: str) -> bool:
        """Civitai's `/me` with this key: True (200), False (401/403); CivitaiUnavailable when unreachable."""
        REDACTION.remember(key)
        try:
            await self.get_json("/me", key=key)
        except CivitaiRejected as exc:
            if exc.status in (401, 403):
                return False
            raise CivitaiUnavailable(f"Civitai answered the key check with HTTP {exc.status}") from None
        return True

    async def status(self) -> dict[str, Any]:
        cfg = await self.config(fresh=True)
        metas = {m["name"]: m for m in await self.secrets().list(self._owner_id())}
        meta = metas.get(KEY_NAME)
        return {
            "key_set": meta is not None,
            "key_set_at": (meta["updated_at"] or meta["created_at"]) if meta is not None else None,
            "key_valid": self.key_valid if meta is not None else None,
            "base_url": cfg.site,
            "rate": cfg.rate,
        }

    async def set_key(self, key: str) -> dict[str, Any]:
        await self.config(fresh=True)
        try:
            valid = await self.check_key(key)
        except CivitaiUnavailable:
            raise unavailable("Civitai cannot be reached to check this key: nothing was stored") from None
        if not valid:
            raise StudioError(
                "validation_error",
                "Civitai rejected this key",
                [{"loc": ["body", "key"], "message": "Civitai rejected this key", "type": "key_rejected"}],
            )
        meta, _created = await self.secrets().put(self._owner_id(), KEY_NAME, key)
        self.key_valid = True
        log.info("The Civitai key was set")
        return {"key_set": True, "key_set_at": meta["updated_at"] or meta["created_at"], "key_valid": True}

    async def test_key(self) -> dict[str, Any]:
        await self.config(fresh=True)
        key = await self.key()
        if key is None:
            self.key_valid = None
            return {"key_valid": False}
        try:
            self.key_valid = await self.check_key(key)
        except CivitaiUnavailable:
            raise unavailable("Civitai cannot be reached to check the key") from None
        return {"key_valid": self.key_valid}

    async def delete_key(self) -> dict[str, Any]:
        with contextlib.suppress(StudioError):
            await self.secrets().delete(self._owner_id(), KEY_NAME)
        self.key_valid = None
        log.info("The Civitai key was deleted")
        return {"key_set": False}


def _ident(item: dict[str, Any]) -> object:
    return item["id"] if isinstance(item.get("id"), int) else json.dumps(item, sort_keys=True)


def _shape_images(raw: Any, site: str) -> dict[str, Any]:
    items = raw.get("items") if isinstance(raw, dict) else None
    shaped = [shape_image(i, site) for i in items or [] if isinstance(i, dict)]
    return {"items": [i for i in shaped if i is not None], "next": _next_cursor(raw)}


def _shape_models(raw: Any, site: str) -> dict[str, Any]:
    items = raw.get("items") if isinstance(raw, dict) else None
    shaped = [shape_model(i, site) for i in items or [] if isinstance(i, dict)]
    return {"items": [i for i in shaped if i is not None], "next": _next_cursor(raw)}


def _next_cursor(raw: Any) -> str | None:
    meta = raw.get("metadata") if isinstance(raw, dict) else None
    cursor = meta.get("nextCursor") if isinstance(meta, dict) else None
    if isinstance(cursor, int | float) and not isinstance(cursor, bool):
        cursor = str(cursor)
    return cursor if isinstance(cursor, str) and cursor else None


def _next_page(raw: Any) -> str | None:
    meta = raw.get("metadata") if isinstance(raw, dict) else None
    if not isinstance(meta, dict) or not meta.get("nextPage"):
        return None
    current = meta.get("currentPage")
    return str(int(current) + 1) if isinstance(current, int | float) and not isinstance(current, bool) else None


def _shape_tags(raw: Any, _site: str) -> dict[str, Any]:
    items = raw.get("items") if isinstance(raw, dict) else None
    out = []
    for item in items or []:
        if isinstance(item, dict) and _str(item.get("name")):
            count = item.get("modelCount")
            out.append({"name": item["name"], "count": count if isinstance(count, int) else None})
    return {"items": out, "next": _next_page(raw)}


def _shape_creators(raw: Any, _site: str) -> dict[str, Any]:
    items = raw.get("items") if isinstance(raw, dict) else None
    out = []
    for item in items or []:
        if isinstance(item, dict) and _str(item.get("username")):
            out.append({"username": item["username"], "image_url": _str(item.get("image"))})
    return {"items": out, "next": _next_page(raw)}


# --- "generate from this prompt" ------------------------------------------------------------------------

MAX_RESOLVED = 12  # resources looked up on Civitai for one image


async def prompt_for(
    civitai: Civitai,
    image: dict[str, Any],
    *,
    codes: set[str],
    local: dict[str, cp.LocalFile],
    local_embeddings: list[str],
) -> dict[str, Any]:
    """The prompt-bar text, warnings and resources (present locally or not) for one listed image."""
    meta = cp.normalize_meta(image.get("meta"))
    found = [_resource(r) for r in image.get("resources") or [] if isinstance(r, dict)]
    resources = [r for r in found if r is not None]
    warnings: list[str] = []
    cfg = await civitai.config()

    async def resolve(res: cp.Resource) -> cp.Resource:
        try:
            if res.model_version_id is not None:
                version = await civitai.model_version(res.model_version_id)
            elif res.hash:
                version = await civitai.model_version_by_hash(res.hash)
            else:
                return res
        except StudioError as exc:
            if exc.code == "civitai_unavailable":
                warnings.append(f"Civitai could not be asked about {res.name or res.type}: not checked")
            return res
        primary = next((f for f in version["files"] if f.get("primary")), None) or next(iter(version["files"]), None)
        digest = primary.get("sha256") if primary else None
        name = res.name or (primary["name"].rsplit(".", 1)[0] if primary else "") or version["model"]["name"]
        return cp.Resource(
            res.type if res.type != "other" else cp.resource_type(version["model"]["type"]),
            name,
            hash=digest or res.hash,
            model_version_id=version["id"],
            weight=res.weight,
            page_url=version["page_url"],
            kind=res.kind or version["model"]["type"],
        )

    head = resources[:MAX_RESOLVED]
    resolved = list(await asyncio.gather(*(resolve(r) for r in head))) + resources[MAX_RESOLVED:]
    resolved = [
        r
        if r.page_url or r.model_version_id is None
        else replace(r, page_url=f"{cfg.site}/model-versions/{r.model_version_id}")
        for r in resolved
    ]
    result = cp.build_prompt(
        meta,
        width=_int(image.get("width")),
        height=_int(image.get("height")),
        resources=resolved,
        codes=codes,
        local=local,
        local_embeddings=local_embeddings,
    )
    return {"text": result.text, "warnings": warnings + result.warnings, "resources": result.resources}


def _resource(raw: dict[str, Any]) -> cp.Resource | None:
    kind = raw.get("type")
    name = raw.get("name")
    digest = raw.get("hash")
    version = raw.get("model_version_id")
    weight = raw.get("weight")
    if not isinstance(kind, str):
        return None
    return cp.Resource(
        cp.resource_type(kind) if kind not in ("checkpoint", "lora", "embedding", "vae", "other") else kind,
        name[:300] if isinstance(name, str) else "",
        hash=digest.lower() if isinstance(digest, str) and re.fullmatch(r"[0-9a-fA-F]{8,64}", digest) else None,
        model_version_id=version
        if isinstance(version, int) and not isinstance(version, bool) and version > 0
        else None,
        weight=float(weight) if isinstance(weight, int | float) and not isinstance(weight, bool) else None,
        kind=kind,
    )
