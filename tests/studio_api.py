"""What tests share besides fixtures: the fixture files, and an HTTP client for the studio's API."""

from __future__ import annotations

import json
from pathlib import Path

import aiohttp
from yarl import URL

FIXTURES = Path(__file__).parent / "fixtures"


def load_workflow(name: str) -> dict:
    return json.loads((FIXTURES / "comfyui" / "workflows" / f"{name}.api.json").read_text())


class Api:
    """A client for /studio/api/v1 that returns (status, envelope).

    Like the studio's web client it holds the session cookies and the CSRF token from GET /session
    (fetched on the first write) and sends X-CSRF-Token with a same-origin Origin on every write.
    It keeps cookies itself: aiohttp's default cookie jar drops cookies set by an IP address host.
    """

    def __init__(self, session: aiohttp.ClientSession, base: str) -> None:
        self.session = session
        self.base = base
        url = URL(base)
        self.origin = f"{url.scheme}://{url.raw_authority}"
        self.cookies: dict[str, str] = {}
        self.csrf_token: str | None = None

    def _keep_cookies(self, resp: aiohttp.ClientResponse) -> None:
        for name, morsel in resp.cookies.items():
            if morsel.value == "" or morsel["max-age"] == "0":
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = morsel.value

    async def open_session(self) -> dict:
        """GET /session: the session cookie (the loopback owner's, here) and the CSRF token."""
        headers = {"Cookie": self._cookie_header()} if self.cookies else {}
        async with self.session.get(self.base + "/session", headers=headers) as resp:
            self._keep_cookies(resp)
            body = await resp.json(content_type=None)
        self.csrf_token = body["data"]["csrf_token"]
        return body

    def _cookie_header(self) -> str:
        return "; ".join(f"{k}={v}" for k, v in self.cookies.items())

    async def call(self, method: str, path: str, **kwargs: object) -> tuple[int, dict]:
        headers = dict(kwargs.pop("headers", None) or {})  # type: ignore[call-overload]
        if method.upper() in ("POST", "PUT", "PATCH", "DELETE"):
            if self.csrf_token is None:
                await self.open_session()
            headers.setdefault("X-CSRF-Token", self.csrf_token)
            headers.setdefault("Origin", self.origin)
        if self.cookies:
            headers.setdefault("Cookie", self._cookie_header())
        async with self.session.request(method, self.base + path, headers=headers, **kwargs) as resp:  # type: ignore[arg-type]
            self._keep_cookies(resp)
            body = await resp.json(content_type=None)
            data = body.get("data") if isinstance(body, dict) else None
            if isinstance(data, dict) and isinstance(data.get("csrf_token"), str):
                self.csrf_token = data["csrf_token"]  # login, setup, refresh: a new session, a new token
            return resp.status, body

    async def get(self, path: str, **kwargs: object) -> tuple[int, dict]:
        return await self.call("GET", path, **kwargs)

    async def post(self, path: str, **kwargs: object) -> tuple[int, dict]:
        return await self.call("POST", path, **kwargs)

    async def delete(self, path: str, **kwargs: object) -> tuple[int, dict]:
        return await self.call("DELETE", path, **kwargs)
