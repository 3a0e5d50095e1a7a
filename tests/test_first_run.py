"""First run: the default library is seeded at start-up, so a refused request writes nothing."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import aiohttp
import pytest
from harness import StudioRun, start_studio
from studio_api import Api

LIBRARY_ACTIONS = 15
LIBRARY_WORKFLOWS = 5


def row_counts(data_dir: Path) -> dict[str, int]:
    """Rows per table of the studio's store, audit log and call log included."""
    with sqlite3.connect(data_dir / "studio.db") as conn:
        query = "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        tables = [name for (name,) in conn.execute(query)]
        return {t: conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables}  # noqa: S608


def audit_rows(data_dir: Path) -> list[tuple]:
    with sqlite3.connect(data_dir / "studio.db") as conn:
        return conn.execute("SELECT * FROM audit_log ORDER BY id").fetchall()


async def test_the_default_library_is_in_the_store_before_any_request(run: StudioRun) -> None:
    counts = row_counts(run.data_dir)
    assert counts["actions"] == LIBRARY_ACTIONS
    assert counts["workflows"] == LIBRARY_WORKFLOWS
    assert counts["workflow_versions"] == LIBRARY_WORKFLOWS
    with sqlite3.connect(run.data_dir / "studio.db") as conn:
        owner = conn.execute("SELECT id FROM users WHERE role = 'owner'").fetchone()[0]
        owners = {o for (o,) in conn.execute("SELECT DISTINCT owner_id FROM actions")}
        audited = conn.execute(
            "SELECT count(*) FROM audit_log WHERE entity IN ('actions', 'workflows', 'workflow_versions')"
        ).fetchone()[0]
    assert owners == {owner}
    assert audited == LIBRARY_ACTIONS + 2 * LIBRARY_WORKFLOWS


@pytest.mark.parametrize(
    ("path", "body", "status", "code"),
    [
        ("/generate", {"text": "a lighthouse at dusk"}, 409, "conflict"),  # no checkpoint on the test host
        ("/actions/generate/run", {"text": "a lighthouse", "parameters": {"steps": 0}}, 400, "validation_error"),
        ("/actions/upscale/run", {"parameters": {"bogus": 1}}, 400, "validation_error"),
        ("/actions/generate/run", {"text": "a castle --ar nonsense"}, 400, "validation_error"),
    ],
)
async def test_a_refused_request_on_a_fresh_store_writes_nothing(
    run: StudioRun, api: Api, path: str, body: dict, status: int, code: str
) -> None:
    await api.open_session()  # the session and CSRF token first: logging in is not what is measured
    before, audit_before = row_counts(run.data_dir), audit_rows(run.data_dir)
    got, answer = await api.post(path, json=body)
    assert (got, answer["error"]["code"]) == (status, code), answer
    assert row_counts(run.data_dir) == before
    assert audit_rows(run.data_dir) == audit_before


async def test_seeding_again_at_the_next_start_changes_nothing(tmp_path: Path) -> None:
    first = await start_studio(tmp_path)
    await first.stop()
    counts, audit = row_counts(first.data_dir), audit_rows(first.data_dir)
    second = await start_studio(tmp_path)
    try:
        again = row_counts(second.data_dir)
        assert again.pop("comfy_calls") == counts.pop("comfy_calls") + 1, "each start reads ComfyUI's definitions"
        assert again == counts
        assert audit_rows(second.data_dir) == audit
    finally:
        await second.stop()


async def test_an_edited_default_action_is_left_alone_at_the_next_start(tmp_path: Path) -> None:
    first = await start_studio(tmp_path)
    async with aiohttp.ClientSession() as session:
        api = Api(session, first.api)
        got, body = await api.call("PATCH", "/actions/upscale", json={"label": "Bigger"})
        assert got == 200, body
    await first.stop()
    second = await start_studio(tmp_path)
    try:
        async with aiohttp.ClientSession() as session:
            got, body = await Api(session, second.api).get("/actions")
        slots = {a["slot"]: a for a in body["data"]}
        assert slots["upscale"]["label"] == "Bigger"
    finally:
        await second.stop()


async def test_a_studio_started_before_comfyui_seeds_its_library_and_finds_the_checkpoint_later(
    tmp_path: Path,
) -> None:
    """Standalone, in front of a ComfyUI that is not up yet: the library needs nothing from ComfyUI, and the
    checkpoint the default actions run on is chosen once ComfyUI answers with one."""
    import asyncio
    import socket

    from test_remote_events import start_standalone
    from testhost import start_test_host

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    app = await start_standalone(tmp_path / "studio", f"http://127.0.0.1:{port}")
    comfy = None
    try:
        counts = row_counts(tmp_path / "studio")
        assert (counts["actions"], counts["workflows"]) == (LIBRARY_ACTIONS, LIBRARY_WORKFLOWS)
        async with aiohttp.ClientSession() as session:
            api = Api(session, app.api)
            got, body = await api.get("/actions/status")
            assert (got, body["error"]["code"]) == (502, "comfy_unavailable"), body
            # ComfyUI comes up, with a checkpoint already in its folder.
            (tmp_path / "comfy" / "models" / "checkpoints").mkdir(parents=True)
            (tmp_path / "comfy" / "models" / "checkpoints" / "sd15.safetensors").write_bytes(b"model")
            comfy = await start_test_host(tmp_path / "comfy", port=port)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 10
            while True:
                got, body = await api.get("/actions/status")
                if got == 200 and body["data"]["checkpoint"] == "sd15.safetensors":
                    break
                assert loop.time() < deadline, body
                await asyncio.sleep(0.2)
            got, body = await api.get("/actions")
            assert all(a["ready"] for a in body["data"])
    finally:
        await app.runner.cleanup()
        if comfy is not None:
            await comfy.stop()
