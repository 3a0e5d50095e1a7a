"""Rotating the secrets key: every secret stays readable, the old key is gone from disk, a crash at any step
is finished at the next start, an environment key rotates through STUDIO_SECRET_KEY_PREVIOUS, and only the
owner of a file-key studio may ask for it."""

from __future__ import annotations

import base64
import os
import secrets
from pathlib import Path

import aiohttp
import pytest
from harness import StudioRun
from sqlalchemy import select
from studio_api import Api

from comfyui_studio.db import models
from comfyui_studio.services.secrets import KeyFileError, SecretBox, Secrets, b64d, b64e

from .conftest import login, set_up_owner, start_fast

ROTATE = "/secrets/key/rotate"


def file_key(path: Path) -> bytes:
    return b64d(path.read_text().strip())


def env_key() -> tuple[bytes, str]:
    key = os.urandom(32)
    return key, base64.urlsafe_b64encode(key).decode().rstrip("=")


async def stored_rows(run: StudioRun) -> list[models.Secret]:
    async with run.studio.store.session() as session:
        return list((await session.scalars(select(models.Secret).order_by(models.Secret.id))).all())


async def rotations(run: StudioRun) -> list[dict]:
    async with run.studio.store.session() as session:
        query = select(models.AuditLog).where(models.AuditLog.entity == "secrets", models.AuditLog.action == "rotate")
        return [row.changes for row in (await session.scalars(query)).all()]


def sealed_by(key: bytes, rows: list[models.Secret]) -> bool:
    box = SecretBox(key)
    return all(box.try_open(row.owner_id, row.name, row.ciphertext) is not None for row in rows)


async def store_two_secrets(run: StudioRun, api: Api) -> dict[str, str]:
    values = {"civitai": "civitai-" + secrets.token_hex(16), "other": "other-" + secrets.token_hex(8)}
    for name, value in values.items():
        status, body = await api.call("PUT", f"/secrets/{name}", json={"value": value})
        assert status in (200, 201), body
    return values


async def test_rotation_keeps_every_secret_readable_and_replaces_the_key_file(tmp_path: Path, http) -> None:
    run = await start_fast(tmp_path)
    try:
        api = Api(http, run.api)
        values = await store_two_secrets(run, api)
        key_path = run.data_dir / "secrets.key"
        old_key = file_key(key_path)
        assert sealed_by(old_key, await stored_rows(run))

        status, body = await api.post(ROTATE, json={})
        assert status == 200, body
        assert body["data"]["rotated"] == 2 and body["data"]["at"].endswith("Z")

        new_key = file_key(key_path)
        assert new_key != old_key and len(new_key) == 32
        assert not (run.data_dir / "secrets.key.next").exists()
        if os.name == "posix":
            assert key_path.stat().st_mode & 0o777 == 0o600
        # the old key is in no file of the data directory any more, and no key is in the answer
        for path in run.data_dir.rglob("*"):
            if path.is_file():
                text = path.read_bytes()
                assert b64e(old_key).encode() not in text and old_key not in text, path.name
        assert b64e(new_key) not in str(body) and b64e(old_key) not in str(body)
        rows = await stored_rows(run)
        assert sealed_by(new_key, rows) and not any(sealed_by(old_key, [row]) for row in rows)
        # the running studio reads with the new key at once: the Civitai client's key is the stored one
        assert await run.studio.civitai.key() == values["civitai"]
        assert await run.studio.security.secrets.reveal(run.studio.owner_id, "other") == values["other"]
        assert await rotations(run) == [{"rotated": 2}]
        # a secret set after the rotation is sealed with the new key
        status, _ = await api.call("PUT", "/secrets/later", json={"value": "later-" + secrets.token_hex(8)})
        assert status in (200, 201) and sealed_by(new_key, await stored_rows(run))
    finally:
        await run.stop()
    run = await start_fast(tmp_path)  # and after a restart
    try:
        assert await run.studio.civitai.key() == values["civitai"]
    finally:
        await run.stop()


async def test_a_crash_after_the_commit_before_the_rename_is_finished_at_restart(
    tmp_path: Path, http, monkeypatch
) -> None:
    run = await start_fast(tmp_path)
    key_path, next_path = run.data_dir / "secrets.key", run.data_dir / "secrets.key.next"
    try:
        api = Api(http, run.api)
        values = await store_two_secrets(run, api)
        old_key = file_key(key_path)

        def crash(data_dir: Path) -> None:
            raise OSError("power cut before the rename")

        monkeypatch.setattr(Secrets, "_install_next_key", staticmethod(crash))
        status, body = await api.post(ROTATE, json={})
        assert status == 500, body
        monkeypatch.undo()
        # the commit happened: the rows are sealed with the key that is still only in secrets.key.next
        new_key = file_key(next_path)
        assert file_key(key_path) == old_key and sealed_by(new_key, await stored_rows(run))
    finally:
        await run.stop()

    run = await start_fast(tmp_path)
    try:
        assert not next_path.exists() and file_key(key_path) == new_key
        if os.name == "posix":
            assert key_path.stat().st_mode & 0o777 == 0o600
        assert await run.studio.civitai.key() == values["civitai"]
        assert await run.studio.security.secrets.reveal(run.studio.owner_id, "other") == values["other"]
        assert await rotations(run) == [{"rotated": 2}]  # nothing was left to re-encrypt
    finally:
        await run.stop()


async def test_a_crash_before_the_commit_is_finished_at_restart(tmp_path: Path, http) -> None:
    run = await start_fast(tmp_path)
    try:
        values = await store_two_secrets(run, Api(http, run.api))
    finally:
        await run.stop()
    key_path, next_path = run.data_dir / "secrets.key", run.data_dir / "secrets.key.next"
    old_key, new_key = file_key(key_path), os.urandom(32)
    # the state right after step 1: the new key written, the rows still under the old one
    next_path.write_text(b64e(new_key) + "\n")
    next_path.chmod(0o600)

    run = await start_fast(tmp_path)
    try:
        assert not next_path.exists() and file_key(key_path) == new_key
        rows = await stored_rows(run)
        assert sealed_by(new_key, rows) and not any(sealed_by(old_key, [row]) for row in rows)
        assert await run.studio.civitai.key() == values["civitai"]
        assert await rotations(run) == [{"rotated": 2, "at_start": True}]
    finally:
        await run.stop()


async def test_an_environment_key_rotates_with_the_previous_key_at_start(tmp_path: Path, http, monkeypatch) -> None:
    old_key, old_text = env_key()
    new_key, new_text = env_key()
    monkeypatch.setenv("STUDIO_SECRET_KEY", old_text)
    run = await start_fast(tmp_path)
    try:
        api = Api(http, run.api)
        values = await store_two_secrets(run, api)
        # the route does not rotate a key it cannot write: it explains the way
        status, body = await api.post(ROTATE, json={})
        assert status == 409 and body["error"]["code"] == "conflict", body
        assert "STUDIO_SECRET_KEY_PREVIOUS" in body["error"]["message"]
        assert old_text not in str(body)
        assert sealed_by(old_key, await stored_rows(run))
    finally:
        await run.stop()

    # the new key alone opens nothing
    monkeypatch.setenv("STUDIO_SECRET_KEY", new_text)
    run = await start_fast(tmp_path)
    try:
        with pytest.raises(KeyFileError):
            await run.studio.civitai.key()
    finally:
        await run.stop()

    monkeypatch.setenv("STUDIO_SECRET_KEY_PREVIOUS", old_text)
    run = await start_fast(tmp_path)
    try:
        rows = await stored_rows(run)
        assert sealed_by(new_key, rows) and not any(sealed_by(old_key, [row]) for row in rows)
        assert await run.studio.civitai.key() == values["civitai"]
        assert await rotations(run) == [{"rotated": 2, "at_start": True}]
        assert not (run.data_dir / "secrets.key").exists()
    finally:
        await run.stop()

    monkeypatch.delenv("STUDIO_SECRET_KEY_PREVIOUS")  # once re-encrypted, the previous key is not needed
    run = await start_fast(tmp_path)
    try:
        assert await run.studio.security.secrets.reveal(run.studio.owner_id, "other") == values["other"]
        assert len(await rotations(run)) == 1
    finally:
        await run.stop()


async def test_only_the_owner_rotates_the_key(tmp_path: Path, http) -> None:
    run = await start_fast(tmp_path, listen=["0.0.0.0"])  # noqa: S104 (login required)
    try:
        owner = Api(http, run.api)
        await set_up_owner(run, owner)
        status, body = await owner.post("/users", json={"username": "bob", "password": "long enough 1"})
        assert status == 201, body
        async with aiohttp.ClientSession() as other:
            bob = await login(run, other, "bob", "long enough 1")
            status, _ = await bob.call("PUT", "/secrets/civitai", json={"value": "bobs-key-" + secrets.token_hex(8)})
            assert status in (200, 201)
            key_before = file_key(run.data_dir / "secrets.key")
            status, body = await bob.post(ROTATE, json={})
            assert status == 403 and body["error"]["code"] == "forbidden", body
            assert file_key(run.data_dir / "secrets.key") == key_before and await rotations(run) == []
            # without the CSRF token even the owner is refused
            owner_token, owner.csrf_token = owner.csrf_token, "csrf_wrong-token-value"
            status, body = await owner.post(ROTATE, json={})
            assert status == 403 and body["error"]["code"] == "csrf_failed", body
            owner.csrf_token = owner_token
            status, body = await owner.post(ROTATE, json={"key": "mine"})
            assert status == 400, body
            status, body = await owner.post(ROTATE, json={})
            assert status == 200 and body["data"]["rotated"] == 1, body
            bob_id = (await stored_rows(run))[0].owner_id
            assert (await run.studio.security.secrets.reveal(bob_id, "civitai")).startswith("bobs-key-")
    finally:
        await run.stop()
