"""Attacks through files and odd JSON: PNG text bombs, oversize imports, deep nesting in files,
malformed multipart headers, non-finite numbers, and the data directory's permissions."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sqlite3
import stat
import struct
import tracemalloc
import zlib
from pathlib import Path

import aiohttp
import pytest
from harness import StudioRun, start_studio
from studio_api import Api, load_workflow
from yarl import URL

from comfyui_studio.db.private import PrivatePathError, ensure_private_dir, ensure_private_file
from comfyui_studio.engine.jsoncodec import JSONInputError, dumps, loads_input
from comfyui_studio.engine.uiformat import ConversionError, png_text, workflow_from_png
from comfyui_studio.services.eventhub import EventHub

from .conftest import snapshot, wait_for_job

MIB = 1024 * 1024


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png(*chunks: bytes) -> bytes:
    ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00\x00\x00\x00")
    head = b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr)
    return head + b"".join(chunks) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def _ztxt(key: str, compressed: bytes) -> bytes:
    return _chunk(b"zTXt", key.encode("latin-1") + b"\0\0" + compressed)


def _itxt(key: str, compressed: bytes) -> bytes:
    return _chunk(b"iTXt", key.encode("latin-1") + b"\0\1\0" + b"\0" + b"\0" + compressed)


_BOMB = zlib.compress(b" " * (64 * MIB), 9)  # ~64 KB that inflates to 64 MiB


def _strict(text: str) -> object:
    """JSON as a browser reads it: NaN and Infinity are errors."""

    def refuse(name: str) -> object:
        raise ValueError(f"{name} is not JSON")

    return json.loads(text, parse_constant=refuse)


# -- 1. decompression bombs in PNG text chunks ----------------------------------------------------


def _peak_mib(fn) -> float:
    tracemalloc.start()
    try:
        fn()
    except ConversionError:
        pass
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / MIB


def test_png_text_bombs_in_workflow_chunks_stop_at_the_total_cap() -> None:
    png = _png(*(_ztxt(key, _BOMB) for key in ("prompt", "workflow") * 4))
    assert len(png) < 1 * MIB
    with pytest.raises(ConversionError, match="larger than 16 MiB once inflated"):
        png_text(png)
    # Never much more than the 16 MiB cap in memory (zlib's growing buffer doubles it at most);
    # without the cap these eight chunks took 512 MiB.
    assert _peak_mib(lambda: png_text(png)) < 40


def test_png_text_chunks_that_cannot_hold_a_workflow_are_never_inflated() -> None:
    prompt = json.dumps({"1": {"class_type": "EmptyImage", "inputs": {}}}).encode()
    png = _png(*(_ztxt(f"junk{i}", _BOMB) for i in range(8)), _chunk(b"tEXt", b"prompt\0" + prompt))
    assert _peak_mib(lambda: png_text(png)) < 8
    assert png_text(png) == {"prompt": prompt.decode()}


def test_many_small_chunks_cannot_add_up_past_the_cap() -> None:
    five = zlib.compress(b"x" * (5 * MIB), 9)
    png = _png(_ztxt("prompt", five), _itxt("workflow", five), _ztxt("prompt", five), _ztxt("workflow", five))
    with pytest.raises(ConversionError, match="once inflated"):
        png_text(png)


async def test_png_bomb_import_is_400_and_writes_nothing(local_run: StudioRun, http) -> None:
    api = Api(http, local_run.api)
    await api.open_session()
    before = await snapshot(local_run)
    png = _png(*(_ztxt("workflow", _BOMB) for _ in range(8)))
    form = aiohttp.FormData()
    form.add_field("file", png, filename="bomb.png", content_type="image/png")
    status, body = await api.post("/workflows/import", data=form)
    assert status == 400 and body["error"]["code"] == "validation_error", body
    assert "once inflated" in body["error"]["message"]
    assert await snapshot(local_run) == before


# -- 2. an import over its limit is refused before it is read --------------------------------------


async def _raw_post(run: StudioRun, api: Api, path: str, head: dict[str, str], body_chunks) -> tuple[int, int]:
    """POST over a raw socket; (status, body bytes sent before the status line came back)."""
    url = URL(run.api + path)
    reader, writer = await asyncio.open_connection(url.host, url.port)
    headers = {
        "Host": f"{url.host}:{url.port}",
        "Origin": api.origin,
        "X-CSRF-Token": api.csrf_token or "",
        "Cookie": api._cookie_header(),
        **head,
    }
    writer.write(
        (f"POST {url.raw_path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n").encode()
    )
    sent = 0
    status_line = asyncio.ensure_future(reader.readline())
    try:
        for chunk in body_chunks:
            if status_line.done():
                break
            try:
                writer.write(chunk)
                await writer.drain()
            except (ConnectionError, OSError):
                break
            sent += len(chunk)
            await asyncio.sleep(0)
        line = await asyncio.wait_for(status_line, 10)
    finally:
        writer.close()
    return int(line.split()[1]), sent


async def test_import_over_the_limit_by_content_length_is_413_before_reading(local_run: StudioRun, http) -> None:
    api = Api(http, local_run.api)
    await api.open_session()
    before = await snapshot(local_run)
    head = {"Content-Type": "multipart/form-data; boundary=b", "Content-Length": str(90 * MIB)}
    # Only 64 KiB of the 90 MiB announced are ever sent: the answer must not wait for the rest.
    status, sent = await _raw_post(local_run, api, "/workflows/import", head, [b"--b\r\n" + b"x" * 65536])
    assert status == 413
    assert sent <= 65536 + 5
    assert await snapshot(local_run) == before


async def test_chunked_import_is_cut_off_at_the_limit(local_run: StudioRun, http) -> None:
    api = Api(http, local_run.api)
    await api.open_session()
    head = {"Content-Type": "multipart/form-data; boundary=b", "Transfer-Encoding": "chunked"}
    part = b'--b\r\nContent-Disposition: form-data; name="file"; filename="w.json"\r\n\r\n'

    def chunks():
        piece = b"x" * (256 * 1024)
        yield b"%x\r\n%s\r\n" % (len(part), part)
        for _ in range(90 * 4):  # up to 90 MiB
            yield b"%x\r\n%s\r\n" % (len(piece), piece)

    status, sent = await _raw_post(local_run, api, "/workflows/import", head, chunks())
    assert status == 413
    assert sent < 24 * MIB  # stopped near the 16 MiB cap, not after the whole body


# -- 3. deep nesting in files and PNG chunks -------------------------------------------------------


@pytest.mark.parametrize("depth", [5000, 100_000])
async def test_deeply_nested_json_file_import_is_400(local_run: StudioRun, http, caplog, depth: int) -> None:
    api = Api(http, local_run.api)
    await api.open_session()
    before = await snapshot(local_run)
    form = aiohttp.FormData()
    form.add_field("file", ("[" * depth + "]" * depth).encode(), filename="deep.json", content_type="application/json")
    with caplog.at_level(logging.ERROR):
        status, body = await api.post("/workflows/import", data=form)
    assert status == 400 and body["error"]["code"] == "validation_error", body
    assert "nested deeper than" in body["error"]["message"]
    assert not [r for r in caplog.records if r.exc_info]  # no traceback in ComfyUI's console
    assert await snapshot(local_run) == before


async def test_png_with_a_deeply_nested_prompt_is_400(local_run: StudioRun, http, caplog) -> None:
    api = Api(http, local_run.api)
    await api.open_session()
    before = await snapshot(local_run)
    deep = b'{"1": {"class_type": "X", "inputs": {"a": ' + b"[" * 5000 + b"]" * 5000 + b"}}}"
    form = aiohttp.FormData()
    form.add_field("file", _png(_chunk(b"tEXt", b"prompt\0" + deep)), filename="deep.png", content_type="image/png")
    with caplog.at_level(logging.ERROR):
        status, body = await api.post("/workflows/import", data=form)
    assert status == 400 and body["error"]["code"] == "validation_error", body
    assert "prompt metadata is nested deeper than" in body["error"]["message"]
    assert not [r for r in caplog.records if r.exc_info]
    assert await snapshot(local_run) == before


def test_workflow_from_png_refuses_non_finite_numbers_in_its_chunks() -> None:
    prompt = b'{"1": {"class_type": "X", "inputs": {"sigma": NaN}}}'
    with pytest.raises(ConversionError, match="NaN at 1.inputs.sigma"):
        workflow_from_png(_png(_chunk(b"tEXt", b"prompt\0" + prompt)))


# -- 4. malformed multipart headers ----------------------------------------------------------------


@pytest.mark.parametrize(
    "path,field",
    [("/uploads", "image"), ("/workflows/import", "file")],
)
async def test_nul_in_a_multipart_file_name_is_400(local_run: StudioRun, http, path: str, field: str) -> None:
    api = Api(http, local_run.api)
    await api.open_session()
    before = await snapshot(local_run)
    body = (
        b'--b\r\nContent-Disposition: form-data; name="' + field.encode() + b'"; filename="x.png\x00.html"\r\n'
        b"Content-Type: image/png\r\n\r\n\x89PNG\r\n\x1a\n\r\n--b--\r\n"
    )
    status, envelope = await api.post(path, data=body, headers={"Content-Type": "multipart/form-data; boundary=b"})
    assert 400 <= status < 500, envelope
    assert envelope["ok"] is False and envelope["error"]["code"] == "validation_error"
    assert await snapshot(local_run) == before


async def test_unknown_and_repeated_form_fields_are_400(local_run: StudioRun, http) -> None:
    api = Api(http, local_run.api)
    form = aiohttp.FormData()
    form.add_field("file", b"{}", filename="a.json")
    form.add_field("file", b"{}", filename="b.json")
    status, body = await api.post("/workflows/import", data=form)
    assert status == 400 and "sent twice" in body["error"]["message"]
    form = aiohttp.FormData()
    form.add_field("other", b"{}", filename="a.json")
    status, body = await api.post("/workflows/import", data=form)
    assert status == 400 and body["error"]["details"][0]["loc"] == ["body", "other"]


# -- 5. the data directory and database are private ------------------------------------------------


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
async def test_a_new_data_directory_is_0700_and_the_database_0600(tmp_path: Path, http) -> None:
    old = os.umask(0o022)
    try:
        run = await start_studio(tmp_path)
    finally:
        os.umask(old)
    try:
        api = Api(http, run.api)
        status, body = await api.post("/jobs", json={"graph": load_workflow("t2i_standin"), "prompt": "a red square"})
        assert status == 201, body
        await wait_for_job(api, body["data"]["id"])
        assert _mode(run.data_dir) == 0o700
        db = run.data_dir / "studio.db"
        assert _mode(db) == 0o600
        companions = [p for p in (Path(f"{db}-wal"), Path(f"{db}-shm")) if p.exists()]
        assert companions  # WAL mode: written while the studio runs
        assert all(_mode(p) == 0o600 for p in companions)
        # Keys, setup code, database: every file at the top is private too (thumbnails sit behind 0700).
        loose = [p.name for p in run.data_dir.iterdir() if p.is_file() and _mode(p) & 0o077]
        assert loose == []
    finally:
        await run.stop()


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
async def test_an_existing_loose_data_directory_and_database_are_tightened(tmp_path: Path) -> None:
    data_dir = tmp_path / "user" / "__studio"
    data_dir.mkdir(parents=True, mode=0o755)
    data_dir.chmod(0o755)
    db = data_dir / "studio.db"
    sqlite3.connect(db).close()
    db.chmod(0o644)
    run = await start_studio(tmp_path)
    try:
        assert _mode(data_dir) == 0o700
        assert _mode(db) == 0o600
    finally:
        await run.stop()


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_a_data_directory_that_cannot_be_tightened_is_refused_with_a_clear_message(tmp_path: Path, monkeypatch) -> None:
    folder = tmp_path / "shared"
    folder.mkdir(mode=0o777)
    folder.chmod(0o777)

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "chmod", refuse)
    with pytest.raises(PrivatePathError, match=r"open to other users \(mode 777\).*chmod 700"):
        ensure_private_dir(folder)
    file = tmp_path / "f.db"
    file.touch()
    monkeypatch.undo()
    file.chmod(0o666)
    ensure_private_file(file)
    assert _mode(file) == 0o600


# -- 6. NaN and Infinity ---------------------------------------------------------------------------


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
async def test_non_finite_numbers_in_a_body_are_400_naming_the_path(local_run: StudioRun, http, constant) -> None:
    api = Api(http, local_run.api)
    await api.open_session()
    before = await snapshot(local_run)
    graph = json.dumps(load_workflow("t2i_standin"))
    first = next(iter(load_workflow("t2i_standin")))
    raw = graph.replace(f'"{first}": {{', f'"{first}": {{"sigma_hint": {constant}, ', 1)
    body = '{"graph": ' + raw + ', "prompt": "a red square"}'
    status, envelope = await api.post("/jobs", data=body, headers={"Content-Type": "application/json"})
    assert status == 400 and envelope["error"]["code"] == "validation_error", envelope
    assert envelope["error"]["details"][0]["loc"] == ["body", "graph", first, "sigma_hint"]
    assert constant.lstrip("-") in envelope["error"]["message"]
    assert await snapshot(local_run) == before


async def test_non_finite_numbers_in_an_imported_file_are_400(local_run: StudioRun, http) -> None:
    api = Api(http, local_run.api)
    form = aiohttp.FormData()
    form.add_field("file", b'{"1": {"class_type": "EmptyImage", "inputs": {"width": Infinity}}}', filename="w.json")
    status, body = await api.post("/workflows/import", data=form)
    assert status == 400 and body["error"]["details"][0]["loc"] == ["file", "1", "inputs", "width"], body


async def test_no_response_ever_carries_nan_even_from_a_stored_row(local_run: StudioRun, http) -> None:
    api = Api(http, local_run.api)
    status, body = await api.post("/jobs", json={"graph": load_workflow("t2i_standin"), "prompt": "a red square"})
    assert status == 201
    job_id = body["data"]["id"]
    await wait_for_job(api, job_id)
    # What ComfyUI could have reported and the store kept as it came: NaN written by another tool.
    db = sqlite3.connect(local_run.data_dir / "studio.db")
    with db:
        db.execute('UPDATE jobs SET parameters = \'{"cfg": NaN, "steps": Infinity}\' WHERE id = ?', (job_id,))
    db.close()
    url = f"{local_run.api}/jobs/{job_id}"
    async with http.get(url, headers={"Cookie": api._cookie_header()}) as resp:
        text = await resp.text()
    data = _strict(text)
    assert resp.status == 200, text
    assert data["data"]["parameters"] == {"cfg": None, "steps": None}


def test_json_codec_round_trip() -> None:
    assert dumps({"a": float("nan"), "b": [float("inf"), 1.5], "c": "NaN"}) == '{"a":null,"b":[null,1.5],"c":"NaN"}'
    with pytest.raises(JSONInputError) as caught:
        loads_input('{"a": [1, {"b": -Infinity}]}', max_depth=8)
    assert caught.value.kind == "non_finite" and caught.value.loc == ["a", "1", "b"]
    assert loads_input('{"a": "NaN"}', max_depth=8) == {"a": "NaN"}
    hub = EventHub()
    event = hub.publish("job", {"value": float("nan")})
    assert _strict(event.data_json) == {"value": None}
