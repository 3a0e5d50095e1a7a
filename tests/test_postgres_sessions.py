"""Studio processes on one PostgreSQL database serve the same users: they share the session signing keys,
kept in the store sealed with the secrets key they share (STUDIO_SECRET_KEY, set once per test by the
postgres_url fixture, as a deployment sets the same value on each process).

Each "process" is a studio with its own data directory, engine and ComfyUI test host, listening on the
network (so every request needs a session); they share only the database and the secrets key.
"""

from __future__ import annotations

import asyncio
import base64
import os
from pathlib import Path

import aiohttp
import jwt
import pytest
from harness import StudioRun, start_studio
from sqlalchemy import func, select
from studio_api import Api, load_workflow

from comfyui_studio.db import accounts
from comfyui_studio.db.models import Secret
from comfyui_studio.db.store import Store
from comfyui_studio.services.accounts import Scrypt
from comfyui_studio.services.secrets import KeyFileError, Secrets, secret_keys
from comfyui_studio.services.sessions import SHARED_KEYS_NAME, SigningKeys

PASSWORD = "correct horse battery staple"  # noqa: S105 (a test account)
ACCESS_COOKIE = "studio_access"


async def _process(base: Path, url: str) -> StudioRun:
    run = await start_studio(base, db_url=url, listen=["0.0.0.0"])  # noqa: S104 (login required)
    run.studio.security.accounts.kdf = Scrypt(n=2**10)
    return run


async def _owner_and_user(a: StudioRun, http: aiohttp.ClientSession) -> tuple[Api, Api]:
    """The owner set up through A, who adds a user; then that user logs in through A."""
    owner = Api(http, a.api)
    code = (a.data_dir / "setup-code.txt").read_text().strip()
    status, body = await owner.post("/auth/setup", json={"code": code, "username": "boss", "password": PASSWORD})
    assert status == 201, body
    status, body = await owner.post("/users", json={"username": "ann", "password": PASSWORD})
    assert status == 201, body
    user = Api(http, a.api)
    status, body = await user.post("/auth/login", json={"username": "ann", "password": PASSWORD})
    assert status == 200, body
    return owner, user


def _same_session_at(run: StudioRun, http: aiohttp.ClientSession, api: Api) -> Api:
    """The same browser session (cookies and CSRF token) sent to another process."""
    other = Api(http, run.api)
    other.cookies = dict(api.cookies)
    other.csrf_token = api.csrf_token
    return other


async def _stored_key_sets(store: Store) -> int:
    async with store.transaction() as session:
        return int(await session.scalar(select(func.count()).where(Secret.name == SHARED_KEYS_NAME)) or 0)


async def test_a_user_logged_in_through_one_process_is_served_by_the_other(tmp_path: Path, postgres_url: str) -> None:
    a = await _process(tmp_path / "a", postgres_url)
    b = await _process(tmp_path / "b", postgres_url)
    try:
        keys_a, keys_b = a.studio.security.sessions.keys, b.studio.security.sessions.keys
        assert [k.kid for k in keys_a.keys] == [k.kid for k in keys_b.keys]
        assert not (a.data_dir / "session.key").exists() and not (b.data_dir / "session.key").exists()
        async with aiohttp.ClientSession() as http:
            status, _ = await Api(http, b.api).get("/jobs")
            assert status == 401, "B needs a session"
            _owner, user = await _owner_and_user(a, http)
            on_b = _same_session_at(b, http, user)
            status, body = await on_b.get("/session")
            assert status == 200 and body["data"]["user"]["username"] == "ann", body
            status, body = await on_b.get("/jobs")
            assert status == 200, body
            # A write needs the CSRF token A handed out: without it B refuses, with it B accepts.
            graph = load_workflow("t2i_standin")
            status, body = await on_b.post("/jobs", json={"graph": graph}, headers={"X-CSRF-Token": "csrf1_forged"})
            assert status == 403, body
            status, body = await on_b.post("/jobs", json={"graph": graph, "prompt": "fox"})
            assert status == 201, body
            # The key set is a studio row, not one of the owner's secrets.
            status, body = await _owner.get("/secrets")
            assert status == 200 and body["data"]["items"] == [], body
    finally:
        await b.stop()
        await a.stop()


async def test_a_key_rotated_through_one_process_is_accepted_by_the_other(tmp_path: Path, postgres_url: str) -> None:
    a = await _process(tmp_path / "a", postgres_url)
    b = await _process(tmp_path / "b", postgres_url)
    try:
        async with aiohttp.ClientSession() as http:
            owner, _user = await _owner_and_user(a, http)
            old_kid = jwt.get_unverified_header(owner.cookies[ACCESS_COOKIE])["kid"]
            status, body = await owner.post("/auth/signing-key/rotate", json={})
            assert status == 200, body
            new_kid = body["data"]["key_id"]
            assert new_kid != old_kid
            status, body = await owner.post("/auth/refresh", json={})
            assert status == 200, body
            assert jwt.get_unverified_header(owner.cookies[ACCESS_COOKIE])["kid"] == new_kid
            # B read the set before the rotation: the unknown key id makes it read the store again.
            assert b.studio.security.sessions.keys.get(new_kid) is None
            on_b = _same_session_at(b, http, owner)
            status, body = await on_b.get("/jobs")
            assert status == 200, body
            status, body = await on_b.post("/jobs", json={"graph": load_workflow("t2i_standin")})
            assert status == 201, body
            # B now signs with the new key too, and still verifies what the old key signed.
            keys_b = b.studio.security.sessions.keys
            assert [k.kid for k in keys_b.keys] == [new_kid, old_kid]
            # Rotating through B starts from the store's newest key: the set stays one, two keys long.
            status, body = await on_b.post("/auth/signing-key/rotate", json={})
            assert status == 200, body
            assert [k.kid for k in keys_b.keys] == [body["data"]["key_id"], new_kid]
            assert await _stored_key_sets(a.studio.store) == 1
    finally:
        await b.stop()
        await a.stop()


async def test_forged_key_ids_read_the_store_at_most_once_per_interval(tmp_path: Path, postgres_url: str) -> None:
    a = await _process(tmp_path / "a", postgres_url)
    try:
        secrets = a.studio.security.secrets
        assert secrets is not None
        reads: list[str] = []
        read_shared = secrets.read_shared

        async def counted(name: str) -> str | None:
            reads.append(name)
            return await read_shared(name)

        secrets.read_shared = counted  # type: ignore[method-assign]
        forged = jwt.encode({"sub": "1"}, "k" * 32, algorithm="HS256", headers={"kid": "0000000000000000"})
        async with aiohttp.ClientSession() as http:
            api = Api(http, a.api)
            api.cookies[ACCESS_COOKIE] = forged
            for _ in range(20):
                status, _ = await api.get("/jobs")
                assert status == 401
        assert reads == [SHARED_KEYS_NAME], "one read of the store, then refused from memory"
    finally:
        await a.stop()


async def test_a_process_with_another_secrets_key_refuses_to_start(
    tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = await _process(tmp_path / "a", postgres_url)
    try:
        other = base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("=")
        monkeypatch.setenv("STUDIO_SECRET_KEY", other)
        with pytest.raises(KeyFileError, match="processes sharing a database must share STUDIO_SECRET_KEY"):
            await _process(tmp_path / "b", postgres_url)
        # Without STUDIO_SECRET_KEY, B's own new secrets.key is another key as well.
        monkeypatch.delenv("STUDIO_SECRET_KEY")
        with pytest.raises(KeyFileError, match="or the same secrets.key"):
            await _process(tmp_path / "c", postgres_url)
        assert await _stored_key_sets(a.studio.store) == 1
    finally:
        await a.stop()


async def test_processes_starting_at_once_end_with_one_key_set(tmp_path: Path, postgres_url: str) -> None:
    stores = [Store(postgres_url) for _ in range(4)]
    for store in stores:
        await store.open()
    try:
        async with stores[0].transaction() as session:
            owner = await accounts.ensure_owner(session)
        key_sets = []
        for n, store in enumerate(stores):
            data_dir = tmp_path / str(n)
            keys = SigningKeys(data_dir / "session.key")
            keys.load(create=False)
            key_sets.append((keys, Secrets(store, secret_keys(data_dir))))
        await asyncio.gather(*(keys.share(secrets, owner) for keys, secrets in key_sets))
        kids = {tuple(k.kid for k in keys.keys) for keys, _ in key_sets}
        assert len(kids) == 1 and len(next(iter(kids))) == 1
        assert await _stored_key_sets(stores[0]) == 1
    finally:
        for store in stores:
            await store.close()


async def test_an_existing_session_key_file_seeds_an_empty_store(tmp_path: Path, postgres_url: str) -> None:
    data_dir = tmp_path / "a" / "user" / "__studio"
    from_file = SigningKeys(data_dir / "session.key")
    from_file.load()  # what a studio on SQLite, or before this release, left in its data directory
    a = await _process(tmp_path / "a", postgres_url)
    b = await _process(tmp_path / "b", postgres_url)
    try:
        expected = [k.kid for k in from_file.keys]
        assert [k.kid for k in a.studio.security.sessions.keys.keys] == expected
        assert [k.kid for k in b.studio.security.sessions.keys.keys] == expected
    finally:
        await b.stop()
        await a.stop()


async def test_a_file_secrets_key_is_not_rotated_through_one_process_on_a_shared_database(
    tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("STUDIO_SECRET_KEY")  # the key is this process's secrets.key
    a = await _process(tmp_path / "a", postgres_url)
    try:
        key_file = a.data_dir / "secrets.key"
        before = key_file.read_bytes()
        async with aiohttp.ClientSession() as http:
            owner, _user = await _owner_and_user(a, http)
            status, body = await owner.post("/secrets/key/rotate", json={})
            assert status == 409, body
            assert body["error"]["code"] == "conflict"
            assert "STUDIO_SECRET_KEY" in body["error"]["message"]
        assert key_file.read_bytes() == before, "the key file is untouched"
    finally:
        await a.stop()
