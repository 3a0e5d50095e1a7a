"""The attack suite's fixtures: studios on loopback and on the network, attackers' clients, row counts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from harness import StudioRun, start_studio
from sqlalchemy import func, select
from studio_api import Api, load_workflow

from comfyui_studio.db import models
from comfyui_studio.services.accounts import Scrypt
from comfyui_studio.services.security import Security

OWNER_PASSWORD = "correct horse battery staple"  # noqa: S105 (a test account)
FAST_KDF = Scrypt(n=2**10)
COUNTED = (
    models.User,
    models.Prompt,
    models.Job,
    models.Image,
    models.ComfyCall,
    models.AuditLog,
    models.Setting,
    models.SessionFamily,
    models.RefreshToken,
    models.Secret,
)


def security_of(run: StudioRun) -> Security:
    return run.studio.security


async def counts(run: StudioRun) -> dict[str, int]:
    async with run.studio.store.session() as session:
        return {m.__tablename__: await session.scalar(select(func.count()).select_from(m)) for m in COUNTED}


def files_under(*folders: Path) -> set[str]:
    return {str(p) for folder in folders for p in folder.rglob("*") if p.is_file()}


async def snapshot(run: StudioRun) -> tuple[dict[str, int], set[str]]:
    """Everything an attack could have written: row counts (audit log included) and input/output files."""
    return await counts(run), files_under(run.host.input_dir, run.host.output_dir, run.host.temp_dir)


class Clock:
    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class HostApi(Api):
    """An Api that names another Host (and Origin), e.g. an extra allowed name that is not loopback."""

    def __init__(self, session: aiohttp.ClientSession, base: str, host: str) -> None:
        super().__init__(session, base)
        self.host = host
        self.origin = f"http://{host}"

    async def call(self, method: str, path: str, **kwargs: object) -> tuple[int, dict]:
        headers = dict(kwargs.pop("headers", None) or {})  # type: ignore[call-overload]
        headers.setdefault("Host", self.host)
        return await super().call(method, path, headers=headers, **kwargs)

    async def open_session(self) -> dict:
        headers = {"Host": self.host}
        if self.cookies:
            headers["Cookie"] = self._cookie_header()
        async with self.session.get(self.base + "/session", headers=headers) as resp:
            self._keep_cookies(resp)
            body = await resp.json(content_type=None)
        self.csrf_token = body["data"]["csrf_token"]
        return body


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def start_fast(base: Path, **config: object) -> StudioRun:
    run = await start_studio(base, **config)
    security_of(run).accounts.kdf = FAST_KDF
    return run


@pytest.fixture
async def local_run(tmp_path: Path) -> AsyncIterator[StudioRun]:
    """ComfyUI on loopback only: the local user is the owner without a password."""
    run = await start_fast(tmp_path)
    yield run
    await run.stop()


@pytest.fixture
async def net_run(tmp_path: Path) -> AsyncIterator[StudioRun]:
    """ComfyUI listening on the network (--listen 0.0.0.0, also reachable as studio.lan): login required."""
    run = await start_fast(tmp_path, listen=["0.0.0.0"], extra_allowed_hosts=["studio.lan"])  # noqa: S104
    yield run
    await run.stop()


async def set_up_owner(run: StudioRun, api: Api, username: str = "boss", password: str = OWNER_PASSWORD) -> dict:
    code = (run.data_dir / "setup-code.txt").read_text().strip()
    status, body = await api.post("/auth/setup", json={"code": code, "username": username, "password": password})
    assert status == 201, body
    return body["data"]


@pytest.fixture
async def owner(net_run: StudioRun, http: aiohttp.ClientSession) -> Api:
    """The network studio's owner, set up and logged in."""
    api = Api(http, net_run.api)
    await set_up_owner(net_run, api)
    return api


async def login(run: StudioRun, session: aiohttp.ClientSession, username: str, password: str) -> Api:
    api = Api(session, run.api)
    status, body = await api.post("/auth/login", json={"username": username, "password": password})
    assert status == 200, body
    api.csrf_token = body["data"]["csrf_token"]
    return api


async def wait_for_job(api: Api, job_id: str, states: tuple[str, ...] = ("done", "error", "rejected")) -> dict:
    for _ in range(400):
        status, body = await api.get(f"/jobs/{job_id}")
        assert status == 200, body
        if body["data"]["state"] in states:
            return body["data"]
        await asyncio.sleep(0.02)
    raise AssertionError(f"job {job_id} did not finish")


async def finished_job(api: Api, prompt: str = "a red square") -> dict:
    status, body = await api.post("/jobs", json={"graph": load_workflow("t2i_standin"), "prompt": prompt})
    assert status == 201, body
    return await wait_for_job(api, body["data"]["id"])
