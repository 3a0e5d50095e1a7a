"""Where secrets live: encrypted at rest, never in a response, a log line, a debug trace or the SQLite files;
the database and key files out of reach of ComfyUI's own file routes; key files refused when too open."""

from __future__ import annotations

import base64
import json
import logging
import os
import secrets
import urllib.parse
from pathlib import Path

import pytest
from harness import StudioRun
from studio_api import Api

from comfyui_studio.services.secrets import REDACTION, KeyFileError, SecretBox

from .conftest import OWNER_PASSWORD, security_of, set_up_owner, start_fast


async def test_a_stored_secret_is_never_in_a_response_log_debug_trace_or_the_database_files(
    tmp_path: Path, http, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    # development mode: tracebacks and timings in error bodies, the worst case for leaks
    run = await start_fast(tmp_path, dev=True, listen=["0.0.0.0"])  # noqa: S104
    try:
        api = Api(http, run.api)
        await set_up_owner(run, api)
        value = "civitai-" + secrets.token_hex(16)
        bodies: list[str] = []

        async def call(method: str, path: str, **kwargs: object) -> dict:
            status, body = await api.call(method, path, **kwargs)
            bodies.append(json.dumps(body))
            return body

        await call("PUT", "/secrets/civitai", json={"value": value})
        await call("PUT", "/secrets/civitai", json={"value": value})  # update
        await call("GET", "/secrets")
        await call("GET", "/secrets/civitai")
        # error paths that carry the value in the request
        await call("PUT", "/secrets/civitai", json={"value": value, "extra": value})
        await call("PUT", "/secrets/civitai", json={"value": value + "\x01"})
        await call("PUT", "/secrets/civitai", json={"value": value * 1000})
        await call("PUT", "/secrets/" + urllib.parse.quote(value + "/x", safe=""), json={"value": value})
        await call("PUT", "/secrets/civitai", data=value, headers={"Content-Type": "application/json"})
        await call("PUT", "/secrets/civitai", json={"value": value}, headers={"X-CSRF-Token": value})
        await call("GET", "/session")
        # a service that reads it, and a careless log line naming it
        security = security_of(run)
        assert await security.secrets.reveal(run.studio.owner_id, "civitai") == value
        logging.getLogger("comfyui_studio.civitai").warning("calling Civitai with key %s", value)
        logging.getLogger("comfyui_studio.civitai").warning("headers {'Authorization': 'Bearer %s'}", value)
        try:
            raise RuntimeError(f"Civitai said no to {value}")
        except RuntimeError:
            logging.getLogger("comfyui_studio.civitai").exception("request failed")

        for body in bodies:
            assert value not in body
            assert json.loads(body)["ok"] in (True, False)
        assert any("debug" in json.loads(b) for b in bodies)  # dev mode was on
        logged = "\n".join(r.getMessage() + (r.exc_text or "") + logging.Formatter().format(r) for r in caplog.records)
        assert "calling Civitai with key" in logged
        assert value not in logged and OWNER_PASSWORD not in logged
        # the database, its WAL and shared memory, and every other file of the data directory
        for path in run.data_dir.rglob("*"):
            if path.is_file():
                data = path.read_bytes()
                assert value.encode() not in data, path.name
                assert value.encode("utf-16-le") not in data, path.name
                assert OWNER_PASSWORD.encode() not in data, path.name
        assert (run.data_dir / "studio.db-wal").exists()
    finally:
        await run.stop()


def test_a_ciphertext_moved_to_another_row_does_not_decrypt() -> None:
    box = SecretBox(os.urandom(32))
    blob = box.seal(1, "civitai", "key-of-user-1")
    assert box.open(1, "civitai", blob) == "key-of-user-1"
    with pytest.raises(KeyFileError):
        box.open(2, "civitai", blob)
    with pytest.raises(KeyFileError):
        box.open(1, "other", blob)
    assert box.seal(1, "civitai", "same") != box.seal(1, "civitai", "same")  # fresh nonce each time


def test_the_redaction_filter_scrubs_tokens() -> None:
    jwt_like = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl"
    lines = [
        f"cookie studio_access={jwt_like}",
        "refresh srt1_sf_01ABC.Zm9vYmFyYmF6cXV4cXV1eA",
        'body {"password": "hunter2hunter2"}',
        "Authorization: Bearer abc.def.ghi",
        "api_key=0123456789abcdef",
        "token: csrf1_AAAAAAAAAAAAAAAA",
    ]
    for line in lines:
        clean = REDACTION.redact(line)
        assert "[redacted]" in clean
        for secret in (jwt_like, "Zm9vYmFyYmF6cXV4cXV1eA", "hunter2hunter2", "abc.def.ghi", "0123456789abcdef"):
            assert secret not in clean


async def test_database_and_key_files_are_unreachable_through_comfyuis_routes(local_run: StudioRun, http) -> None:
    api = Api(http, local_run.api)
    await api.open_session()
    status, _ = await api.call("PUT", "/secrets/civitai", json={"value": "a-key-to-hide-1234"})
    assert status == 200
    host = local_run.host
    data_dir = local_run.data_dir.resolve()
    # The layout: the data directory is a system folder of ComfyUI's user directory, outside what /view serves.
    assert data_dir.parent == host.user_dir.resolve() and data_dir.name.startswith("__")
    for served in (host.input_dir, host.output_dir, host.temp_dir, host.user_dir / "default"):
        assert not data_dir.is_relative_to(served.resolve())
    files = {p.name: p.read_bytes() for p in data_dir.iterdir() if p.is_file()}
    assert {"studio.db", "session.key", "secrets.key"} <= set(files)
    for name in files:
        assert oct((data_dir / name).stat().st_mode & 0o777) in ("0o600", "0o644") or name.startswith("studio.db")
    for name in ("session.key", "secrets.key"):
        assert (data_dir / name).stat().st_mode & 0o077 == 0

    def q(value: str) -> str:
        return urllib.parse.quote(value, safe="")

    probes: list[str] = []
    for name in files:
        rel_user = f"../__studio/{name}"
        probes += [
            f"/userdata/{q(rel_user)}",
            f"/api/userdata/{q(rel_user)}",
            f"/userdata/{q('..%2F__studio%2F' + name)}",
            f"/userdata/{q(str(data_dir / name))}",
            f"/userdata?dir={q('../__studio')}",
            f"/userdata?dir={q('../__studio')}&recurse=true&full_info=true",
            f"/api/v2/userdata?path={q('../__studio')}",
            f"/v2/userdata?path={q('..')}",
            f"/view?filename={q(name)}&type=output&subfolder={q('../user/__studio')}",
            f"/view?filename={q(name)}&type=input&subfolder={q('../../user/__studio')}",
            f"/view?filename={q('../user/__studio/' + name)}&type=output",
            f"/view?filename={q(str(data_dir / name))}",
            f"/view?filename={q(name)}&subfolder={q(str(data_dir))}",
            f"/api/view?filename={q(name + '[output]')}&subfolder={q('../user/__studio')}",
        ]
    leaks = []
    for probe in probes:
        async with http.get(host.url + probe) as resp:
            body = await resp.read()
        for name, content in files.items():
            if len(content) >= 16 and content[:64] in body:
                leaks.append((probe, name))
        if resp.status == 200 and ("__studio" in body.decode("latin-1") or "studio.db" in body.decode("latin-1")):
            leaks.append((probe, "listing"))
    assert not leaks


async def test_no_server_filesystem_path_in_any_response(local_run: StudioRun, http) -> None:
    from studio_api import load_workflow

    api = Api(http, local_run.api)
    base = str(local_run.host.base_dir)
    seen = []
    seen.append(await api.get("/session"))
    seen.append(await api.get("/status"))
    status, job = await api.post("/jobs", json={"graph": load_workflow("t2i_standin"), "prompt": "a"})
    seen.append((status, job))
    seen.append(await api.get("/jobs"))
    seen.append(await api.get("/calls"))
    seen.append(await api.get("/queue"))
    seen.append(await api.get("/users"))
    seen.append(await api.get("/secrets"))
    seen.append(await api.get("/nope"))
    seen.append(await api.post("/jobs", json={"graph": {"1": {"class_type": "Nope", "inputs": {}}}}))
    for _status, body in seen:
        text = json.dumps(body)
        assert base not in text and "/tmp/" not in text and "__studio" not in text


@pytest.mark.skipif(os.name != "posix", reason="file modes are checked on POSIX only (documented)")
@pytest.mark.parametrize("name", ["session.key", "secrets.key"])
async def test_key_files_looser_than_0600_are_refused_at_start(tmp_path: Path, name: str) -> None:
    run = await start_fast(tmp_path)
    await run.stop()
    key = run.data_dir / name
    key.chmod(0o644)
    with pytest.raises(KeyFileError, match="chmod 600"):
        await start_fast(tmp_path)
    key.chmod(0o600)
    run = await start_fast(tmp_path)
    await run.stop()


async def test_secret_key_can_come_from_the_environment(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("STUDIO_SECRET_KEY", base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("="))
    run = await start_fast(tmp_path)
    try:
        assert not (run.data_dir / "secrets.key").exists()
    finally:
        await run.stop()


async def test_ui_page_security_headers(local_run: StudioRun, http) -> None:
    async with http.get(local_run.url) as resp:
        assert resp.status == 200
        csp = resp.headers["Content-Security-Policy"]
        headers = resp.headers
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert "'unsafe-inline'" not in directives["script-src"] and "'unsafe-eval'" not in directives["script-src"]
    hashes = json.loads((Path(__file__).parents[2] / "web/studio/dist/csp-hashes.json").read_text())["script-src"]
    assert all(f"'{h}'" in directives["script-src"] for h in hashes)
    assert directives["frame-ancestors"] == "'none'" and directives["object-src"] == "'none'"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] in ("same-origin", "no-referrer", "strict-origin-when-cross-origin")
    async with http.get(local_run.api + "/session") as resp:
        assert resp.headers["Cache-Control"] == "no-store"
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        cookie = resp.headers.get("Set-Cookie", "")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/studio" in cookie
