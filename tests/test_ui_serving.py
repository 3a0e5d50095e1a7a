"""The studio page and its assets as the server sends them: CSP, caching, precompressed transfers."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

from harness import StudioRun
from studio_api import Api

DIST = Path(__file__).resolve().parent.parent / "web" / "studio" / "dist"


def _asset_paths() -> list[str]:
    html = (DIST / "index.html").read_text()
    return re.findall(r'(?:src|href)="(/studio/assets/[^"]+)"', html)


def test_the_committed_build_references_only_files_it_contains() -> None:
    paths = _asset_paths()
    assert any(p.endswith(".js") for p in paths) and any(p.endswith(".css") for p in paths)
    for path in paths:
        assert (DIST / path.removeprefix("/studio/")).is_file(), path


async def test_the_page_is_served_with_a_strict_csp_allowing_only_the_theme_script(run: StudioRun, api: Api) -> None:
    async with api.session.get(run.url) as resp:
        assert resp.status == 200 and resp.content_type == "text/html"
        csp = resp.headers["Content-Security-Policy"]
        html = await resp.text()
    hashes = json.loads((DIST / "csp-hashes.json").read_text())["script-src"]
    assert len(hashes) == 1 and f"'{hashes[0]}'" in csp
    assert "'unsafe-inline'" not in csp.split("script-src")[1].split(";")[0]
    assert "frame-ancestors 'none'" in csp
    assert "<script>" in html or "<script " in html


async def test_assets_are_precompressed_and_cached_for_a_year(run: StudioRun, api: Api) -> None:
    for path in _asset_paths():
        async with api.session.get(
            run.host.url + path, headers={"Accept-Encoding": "gzip"}, auto_decompress=False
        ) as resp:
            assert resp.status == 200, path
            assert resp.headers.get("Content-Encoding") == "gzip", path
            assert "immutable" in resp.headers["Cache-Control"]
            body = await resp.read()
        assert gzip.decompress(body) == (DIST / path.removeprefix("/studio/")).read_bytes()


async def test_client_side_pages_get_the_page_and_unknown_api_paths_an_envelope(run: StudioRun, api: Api) -> None:
    async with api.session.get(run.url + "/") as resp:
        assert resp.status == 200 and resp.content_type == "text/html"
    status, body = await api.get("/definitely-not-a-route")
    assert status == 404 and body["error"]["code"] == "not_found"


async def test_every_client_side_url_gets_the_page_but_api_and_asset_paths_never_do(run: StudioRun, api: Api) -> None:
    for path in (
        "/workflows",
        "/workflows/w_01ABCDEFGHJKMNPQRSTVWXYZ12",
        "/workflows/w_AbC_12",
        "/actions",
        "/x/y-z_Q",
    ):
        async with api.session.get(run.url + path) as resp:
            assert resp.status == 200 and resp.content_type == "text/html", path
    for path in ("/api", "/api/v1/nothing-here", "/assets/missing.js"):
        async with api.session.get(run.url + path) as resp:
            assert resp.status == 404, path
            assert resp.content_type != "text/html", path
