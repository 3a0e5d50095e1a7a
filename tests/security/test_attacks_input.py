"""Attacks through input: traversal, bombs, forged files, oversize bodies, SQL injection, other users' ids."""

from __future__ import annotations

import io
import struct
import urllib.parse
import zlib

import aiohttp
import pytest
from harness import StudioRun
from PIL import Image as PILImage
from studio_api import Api, load_workflow

from comfyui_studio.services import images as image_service

from .conftest import finished_job, login, security_of, snapshot

TRAVERSALS = [
    "../../../etc/passwd",
    "..\\..\\windows\\win.ini",
    "/etc/passwd",
    "C:\\Windows\\win.ini",
    "name\x00.png",
    "\x00",
    "....//....//etc",
    "%2e%2e%2f%2e%2e%2fetc",
]


def _q(value: str) -> str:
    return urllib.parse.quote(value, safe="")


def _cases() -> list[tuple[str, str, dict | None]]:
    cases: list[tuple[str, str, dict | None]] = []
    for bad in TRAVERSALS:
        q = _q(bad)
        cases += [
            ("GET", f"/jobs/{q}", None),
            ("GET", f"/jobs/{q}/history", None),
            ("GET", f"/images/{q}", None),
            ("GET", f"/images/{q}/thumb", None),
            ("DELETE", f"/queue/{q}", None),
            ("GET", f"/calls/{q}", None),
            ("POST", f"/calls/{q}/replay", {}),
            ("GET", f"/secrets/{q}", None),
            ("PUT", f"/secrets/{q}", {"value": "v"}),
            ("DELETE", f"/secrets/{q}", None),
            ("PATCH", f"/users/{q}", {"disabled": True}),
            ("POST", f"/users/{q}/password", {"password": "long enough 1"}),
            ("GET", f"/jobs?cursor={q}", None),
            ("GET", f"/calls?cursor={q}", None),
            ("GET", f"/calls?job_id={q}", None),
            ("POST", "/users", {"username": bad, "password": "long enough 1"}),
            ("POST", "/auth/login", {"username": bad, "password": "long enough 1"}),
        ]
    return cases


async def test_traversal_absolute_paths_and_nul_in_every_name_like_field_are_400(local_run: StudioRun, http) -> None:
    api = Api(http, local_run.api)
    await api.open_session()
    before = await snapshot(local_run)
    failures = []
    for method, path, payload in _cases():
        kwargs = {"json": payload} if payload is not None else {}
        status, body = await api.call(method, path, **kwargs)
        if status != 400 or body["error"]["code"] != "validation_error":
            failures.append((method, path, status, body["error"]))
    assert not failures
    assert await snapshot(local_run) == before


def _png_header(width: int, height: int) -> bytes:
    """A PNG whose header declares width×height, with one tiny IDAT: a decompression bomb's calling card."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")
    )


def _form(data: bytes | io.BytesIO, filename: str, content_type: str) -> aiohttp.FormData:
    form = aiohttp.FormData()
    form.add_field("image", data, filename=filename, content_type=content_type)
    return form


async def test_20000x20000_png_is_refused_before_decoding(local_run: StudioRun, http, monkeypatch) -> None:
    opened: list[object] = []
    real_open = image_service.PILImage.open

    def spy(*args, **kwargs):
        opened.append(args)
        return real_open(*args, **kwargs)

    monkeypatch.setattr(image_service.PILImage, "open", spy)
    api = Api(http, local_run.api)
    await api.open_session()
    before = await snapshot(local_run)
    status, body = await api.post("/uploads", data=_form(_png_header(20000, 20000), "bomb.png", "image/png"))
    assert status == 413 and body["error"]["code"] == "image_too_large", body
    assert opened == []  # refused from the header: Pillow never saw it
    assert PILImage.MAX_IMAGE_PIXELS is not None  # Pillow's own guard left as it is
    assert await snapshot(local_run) == before


@pytest.mark.parametrize(
    "data,filename,content_type",
    [
        (b"this is not an image at all", "photo.png", "image/png"),
        (b"MZ\x90\x00\x03" + b"\x00" * 200, "photo.png", "image/png"),
        (b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', "x.svg", "image/svg+xml"),
        (b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>', "x.png", "image/png"),
        (b"<!doctype html><html><script>alert(1)</script></html>", "x.html", "text/html"),
        (b"<html><body onload=alert(1)>", "x.png", "image/png"),
        (b"GIF89a" + b"\x00" * 64, "x.gif", "image/gif"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "truncated.png", "image/png"),
    ],
)
async def test_non_images_svg_and_html_uploads_are_415(
    local_run: StudioRun, http, data, filename, content_type
) -> None:
    api = Api(http, local_run.api)
    await api.open_session()
    before = await snapshot(local_run)
    status, body = await api.post("/uploads", data=_form(data, filename, content_type))
    assert status == 415 and body["error"]["code"] == "unsupported_media_type", body
    assert await snapshot(local_run) == before


async def test_uploaded_file_name_never_comes_from_the_client(local_run: StudioRun, http) -> None:
    api = Api(http, local_run.api)
    buffer = io.BytesIO()
    PILImage.new("RGB", (8, 8), (1, 2, 3)).save(buffer, "PNG")
    status, body = await api.post("/uploads", data=_form(buffer.getvalue(), "../../evil.png", "image/png"))
    assert status == 201, body
    names = [p.name for p in local_run.host.input_dir.rglob("*") if p.is_file()]
    assert names and all(n.startswith("studio_") and "evil" not in n for n in names)
    assert not (local_run.host.base_dir / "evil.png").exists()


async def test_50_mb_body_is_413(local_run: StudioRun, http) -> None:
    api = Api(http, local_run.api)
    await api.open_session()
    before = await snapshot(local_run)
    big = io.BytesIO(b'{"graph": "' + b"x" * (50 * 1024 * 1024) + b'"}')
    status, body = await api.post("/jobs", data=big, headers={"Content-Type": "application/json"})
    assert status == 413 and body["error"]["code"] == "payload_too_large"
    bomb = io.BytesIO(b"\x89PNG" + b"\x00" * (50 * 1024 * 1024))
    status, body = await api.post("/uploads", data=_form(bomb, "a.png", "image/png"))  # type: ignore[arg-type]
    assert status == 413
    assert await snapshot(local_run) == before


@pytest.mark.parametrize("depth", [40, 5000, 100_000])
async def test_deeply_nested_json_workflow_is_400(local_run: StudioRun, http, depth: int) -> None:
    api = Api(http, local_run.api)
    await api.open_session()
    before = await snapshot(local_run)
    nested = '{"1": {"class_type": "X", "inputs": {"a": ' + "[" * depth + "]" * depth + "}}}"
    status, body = await api.post(
        "/jobs", data='{"graph": ' + nested + "}", headers={"Content-Type": "application/json"}
    )
    assert status == 400 and body["error"]["code"] in ("validation_error", "bad_json"), body
    assert await snapshot(local_run) == before


async def test_oversize_prompt_is_400(local_run: StudioRun, http) -> None:
    api = Api(http, local_run.api)
    await api.open_session()
    before = await snapshot(local_run)
    limit = local_run.studio.config.max_prompt_chars
    status, body = await api.post("/jobs", json={"graph": load_workflow("t2i_standin"), "prompt": "a" * (limit + 1)})
    assert status == 400 and body["error"]["code"] == "validation_error"
    status, body = await api.post("/jobs", json={"graph": load_workflow("t2i_standin"), "prompt": "a" * 200_000})
    assert status == 400
    assert await snapshot(local_run) == before


async def test_control_characters_in_prompts_are_dropped(local_run: StudioRun, http) -> None:
    api = Api(http, local_run.api)
    status, body = await api.post(
        "/jobs", json={"graph": load_workflow("t2i_standin"), "prompt": "a\x00b\x1b[31mc\u0007d\te\nf"}
    )
    assert status == 201, body
    assert body["data"]["prompt_text"] == "ab[31mcd\te\nf"


SQLI = [
    "'; DROP TABLE jobs; --",
    "Robert'); DROP TABLE users;--",
    '" OR "1"="1',
    "1; UPDATE users SET role='owner' --",
    "' UNION SELECT password_hash FROM users --",
]


async def test_sql_injection_strings_are_stored_verbatim_and_harmless(local_run: StudioRun, http) -> None:
    api = Api(http, local_run.api)
    for text in SQLI:
        status, body = await api.post("/jobs", json={"graph": load_workflow("t2i_standin"), "prompt": text})
        assert status == 201, body
        status, body = await api.get(f"/jobs/{body['data']['id']}")
        assert body["data"]["prompt_text"] == text
        status, body = await api.call("PUT", "/secrets/civitai", json={"value": text})
        assert status == 200, body
        assert await security_of(local_run).secrets.reveal(local_run.studio.owner_id, "civitai") == text
    # as names they are refused by shape, never reach SQL as anything but a bound parameter
    for text in SQLI:
        status, _ = await api.post("/users", json={"username": text, "password": "long enough 1"})
        assert status == 400
        status, _ = await api.get("/jobs", params={"cursor": text})
        assert status == 400
    # a password made of SQL works as a password and nothing else
    status, _ = await api.post("/users", json={"username": "bob", "password": SQLI[1]})
    assert status == 201
    async with aiohttp.ClientSession() as other:
        await login(local_run, other, "bob", SQLI[1])
    status, body = await api.get("/users")
    roles = {u["username"]: u["role"] for u in body["data"]["items"]}
    assert roles == {"owner": "owner", "bob": "user"}
    status, body = await api.get("/jobs", params={"limit": 200})
    assert len(body["data"]["items"]) == len(SQLI)


async def test_another_users_job_image_call_and_secret_are_404(local_run: StudioRun, http) -> None:
    owner = Api(http, local_run.api)
    job = await finished_job(owner, "the owner's")
    image_id = job["images"][0]["id"]
    status, calls = await owner.get("/calls")
    call_id = calls["data"]["items"][0]["id"]
    status, _ = await owner.call("PUT", "/secrets/civitai", json={"value": "owner-civitai-key-123"})
    assert status == 200
    status, _ = await owner.post("/users", json={"username": "bob", "password": "bob-password-1"})
    assert status == 201
    async with aiohttp.ClientSession() as other:
        bob = await login(local_run, other, "bob", "bob-password-1")
        before = await snapshot(local_run)
        for method, path, payload in (
            ("GET", f"/jobs/{job['id']}", None),
            ("GET", f"/jobs/{job['id']}/history", None),
            ("DELETE", f"/queue/{job['id']}", None),
            ("GET", f"/images/{image_id}", None),
            ("GET", f"/images/{image_id}/thumb", None),
            ("GET", f"/calls/{call_id}", None),
            ("GET", "/secrets/civitai", None),
            ("DELETE", "/secrets/civitai", None),
        ):
            kwargs = {"json": payload} if payload is not None else {}
            status, body = await bob.call(method, path, **kwargs)
            assert status == 404 and body["error"]["code"] == "not_found", (method, path, body)
        for path in ("/jobs", "/calls", "/secrets"):
            status, body = await bob.get(path)
            assert status == 200 and body["data"]["items"] == [], path
        assert await snapshot(local_run) == before
        # bob's own secret of the same name is his, and the owner's is untouched
        status, _ = await bob.call("PUT", "/secrets/civitai", json={"value": "bob-civitai-key-456"})
        assert status == 200
    security = security_of(local_run)
    assert await security.secrets.reveal(local_run.studio.owner_id, "civitai") == "owner-civitai-key-123"
