"""One response shape for every route: success and every error path, and nothing written on a refusal."""

from __future__ import annotations

import io
import json
from pathlib import Path

import aiohttp
import pytest
from harness import StudioRun, start_studio
from sqlalchemy import func, select
from studio_api import Api, load_workflow

from comfyui_studio.db.models import AuditLog, ComfyCall, Job, Prompt
from comfyui_studio.engine.envelope import failure, success
from comfyui_studio.engine.errors import ERROR_STATUS, StudioError


def test_success_and_failure_share_one_shape() -> None:
    ok = success({"a": 1}, "r1")
    bad = failure(StudioError("not_found", "Job not found"), "r2")
    assert set(ok) == set(bad) == {"ok", "data", "error", "meta"}
    assert ok == {"ok": True, "data": {"a": 1}, "error": None, "meta": {"request_id": "r1"}}
    assert bad["error"] == {"code": "not_found", "message": "Job not found", "details": []}


@pytest.mark.parametrize("code,status", sorted(ERROR_STATUS.items()))
def test_every_error_code_has_its_status(code: str, status: int) -> None:
    assert StudioError(code, "x").status == status


def _graph() -> dict:
    return load_workflow("t2i_standin")


ERROR_CASES = [
    ("GET", "/nope", {}, 404, "not_found"),
    ("PUT", "/jobs", {"json": {}}, 405, "method_not_allowed"),
    ("POST", "/jobs", {"data": b"{not json", "headers": {"Content-Type": "application/json"}}, 400, "bad_json"),
    (
        "POST",
        "/jobs",
        {"data": json.dumps({"graph": _graph()}), "headers": {"Content-Type": "text/plain"}},
        415,
        "unsupported_media_type",
    ),
    ("POST", "/jobs", {"json": {"graph": _graph(), "surprise": 1}}, 400, "validation_error"),
    ("POST", "/jobs", {"json": {"graph": "not a graph"}}, 400, "validation_error"),
    ("POST", "/jobs", {"json": {"graph": {}}}, 400, "validation_error"),
    ("POST", "/jobs", {"json": {"graph": {"1": {"class_type": 7, "inputs": {}}}}}, 400, "validation_error"),
    ("POST", "/jobs", {"json": {"graph": _graph(), "front": "yes"}}, 400, "validation_error"),
    ("POST", "/jobs", {"json": {"graph": _graph(), "prompt": "x" * 30_000}}, 400, "validation_error"),
    (
        "POST",
        "/jobs",
        {"data": b"{" + b'"a":' * 1 + b"[" * 200 + b"]" * 200 + b"}", "headers": {"Content-Type": "application/json"}},
        400,
        "validation_error",
    ),
    (
        "POST",
        "/jobs",
        {"data": io.BytesIO(b"x" * (3 * 1024 * 1024)), "headers": {"Content-Type": "application/json"}},
        413,
        "payload_too_large",
    ),
    ("GET", "/jobs", {"params": {"limit": "0"}}, 400, "validation_error"),
    ("GET", "/jobs", {"params": {"cursor": "' OR 1=1 --"}}, 400, "validation_error"),
    ("GET", "/jobs/j_00000000000000000000000000", {}, 404, "not_found"),
    ("GET", "/jobs/not-an-id", {}, 400, "validation_error"),
    ("DELETE", "/queue/j_00000000000000000000000000", {}, 404, "not_found"),
    ("POST", "/queue/clear", {"json": {"scope": "everything"}}, 400, "validation_error"),
    ("GET", "/calls/abc", {}, 400, "validation_error"),
    ("GET", "/images/i_00000000000000000000000000/thumb", {}, 404, "not_found"),
]


@pytest.mark.parametrize(
    "method,path,kwargs,status,code", ERROR_CASES, ids=[f"{c[0]} {c[1]} {c[4]}" for c in ERROR_CASES]
)
async def test_every_refusal_is_an_envelope_and_writes_nothing(
    run: StudioRun, api: Api, method: str, path: str, kwargs: dict, status: int, code: str
) -> None:
    before = await _counts(run)
    got_status, body = await api.call(method, path, **kwargs)
    assert got_status == status, body
    assert body["ok"] is False and body["data"] is None
    assert body["error"]["code"] == code and body["error"]["message"]
    assert isinstance(body["error"]["details"], list)
    assert body["meta"]["request_id"]
    assert "debug" not in body and "Traceback" not in json.dumps(body)
    assert await _counts(run) == before


async def _counts(run: StudioRun) -> dict[str, int]:
    async with run.studio.store.session() as session:
        return {
            model.__tablename__: await session.scalar(select(func.count()).select_from(model))
            for model in (Job, Prompt, ComfyCall, AuditLog)
        }


async def test_development_mode_adds_debug_timings_and_traceback_context(tmp_path: Path) -> None:
    run = await start_studio(tmp_path, dev=True)
    try:
        async with aiohttp.ClientSession() as session:
            api = Api(session, run.api)
            status, body = await api.get("/jobs")
            assert status == 200 and body["debug"]["elapsed_ms"] >= 0
            status, body = await api.get("/jobs/j_00000000000000000000000000")
            assert status == 404 and "elapsed_ms" in body["debug"]
    finally:
        await run.stop()


async def test_production_mode_has_no_debug_member(api: Api) -> None:
    for path in ("/jobs", "/jobs/j_00000000000000000000000000", "/nope"):
        _status, body = await api.get(path)
        assert "debug" not in body
