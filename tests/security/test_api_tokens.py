"""API tokens open the ComfyUI-compatible routes only: never a studio route that needs a session."""

from __future__ import annotations

import re
from pathlib import Path

import aiohttp
from aiohttp import web
from harness import StudioRun
from studio_api import Api
from test_docs import registered_routes, studio_app
from testhost import start_test_host

from comfyui_studio.config import StudioConfig
from comfyui_studio.plugin import mount_standalone
from comfyui_studio.server_routes.security import PUBLIC_API
from comfyui_studio.services.comfy_remote import RemoteHost
from comfyui_studio.services.studio import Studio

# A well-formed value for each path parameter: the guard must refuse before any lookup happens.
SAMPLE_IDS = {
    "job_id": "j_0000000000000000",
    "image_id": "i_0000000000000000",
    "board_id": "b_0000000000000000",
}


def concrete(path: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: SAMPLE_IDS.get(m.group(1), "1"), path)


async def test_a_bearer_token_opens_no_studio_route_that_needs_a_session(
    net_run: StudioRun, owner: Api, http: aiohttp.ClientSession
) -> None:
    status, body = await owner.post("/tokens", json={"name": "script"})
    assert status == 201, body
    token = body["data"]["token"]
    origin = owner.origin
    checked = 0
    for route in sorted(registered_routes(studio_app(net_run))):
        method, path = route.split(" ", 1)
        relative = path.removeprefix("/studio/api/v1")
        if not path.startswith("/studio/api/v1/") or (method, relative) in PUBLIC_API:
            continue
        url = net_run.host.url + concrete(path)
        # The token alone, and the token with everything a same-origin page would send but a session
        for headers in (
            {"Authorization": f"Bearer {token}"},
            {"Authorization": f"Bearer {token}", "Origin": origin, "Content-Type": "application/json"},
        ):
            data = b"{}" if method in ("POST", "PUT", "PATCH", "DELETE") else None
            async with http.request(method, url, headers=headers, data=data) as resp:
                answer = await resp.json(content_type=None)
                assert resp.status in (401, 403), (route, resp.status, answer)
                assert answer["ok"] is False and answer["error"]["code"] in ("unauthorized", "forbidden", "csrf_failed")
        checked += 1
    assert checked > 50  # the walk saw the real router


async def test_the_comfyui_routes_of_a_network_studio_need_a_token_even_from_loopback(tmp_path: Path) -> None:
    """Listening beyond loopback, no request is the local owner: a ComfyUI client must send a token."""
    comfy = await start_test_host(tmp_path / "comfy")
    config = StudioConfig(data_dir=tmp_path / "studio", listen=["0.0.0.0"])  # noqa: S104
    studio = Studio.build(config, RemoteHost(comfy.url))
    runner = web.AppRunner(mount_standalone(studio), access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        async with aiohttp.ClientSession() as session:
            for method, path in (("GET", "/history"), ("POST", "/prompt"), ("GET", "/object_info"), ("GET", "/ws")):
                async with session.request(method, url + path, data=b"{}" if method == "POST" else None) as resp:
                    assert resp.status == 401
                    assert (await resp.json())["error"]["code"] == "unauthorized"
            assert studio.security.tokens is not None
            made = await studio.security.tokens.create(studio.owner_id, "ci")
            headers = {"Authorization": f"Bearer {made['token']}"}
            async with session.get(url + "/history", headers=headers) as resp:
                assert resp.status == 200 and await resp.json() == {}
    finally:
        await runner.cleanup()
        await comfy.stop()
