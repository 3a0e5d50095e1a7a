"""Attacks on sessions, CSRF and the request guards: each one refused, and nothing written."""

from __future__ import annotations

import base64
import json
import logging
import time

import aiohttp
import jwt
import pytest
from harness import StudioRun
from studio_api import Api, load_workflow

from .conftest import (
    OWNER_PASSWORD,
    Clock,
    HostApi,
    counts,
    login,
    security_of,
    set_up_owner,
    snapshot,
)

SUBMIT = {"graph": load_workflow("t2i_standin"), "prompt": "a cat"}


def _refused(status: int, body: dict, code: str, expected_status: int = 403) -> None:
    assert status == expected_status, body
    assert body["ok"] is False and body["error"]["code"] == code


# --- CSRF and cross-site -------------------------------------------------------------------------------


async def test_cross_origin_post_without_token_is_refused(net_run: StudioRun, owner: Api, http) -> None:
    """A page on another site posts to the studio with the victim's cookies: no token, foreign Origin."""
    lan = HostApi(http, net_run.api, f"studio.lan:{net_run.host.server.port}")
    lan.cookies = dict(owner.cookies)  # the browser would attach the victim's cookies
    lan.csrf_token = owner.csrf_token
    before = await snapshot(net_run)
    for headers in (
        {"Origin": "http://evil.example", "X-CSRF-Token": ""},
        {"Origin": "http://evil.example"},  # even with the right token, the origin is wrong
        {"Origin": "http://studio.lan:1"},  # same site, another port
        {"Origin": "null"},  # a sandboxed frame: ComfyUI's own check lets this through
    ):
        status, body = await lan.post("/jobs", json=SUBMIT, headers=headers)
        _refused(status, body, "forbidden")
    assert await snapshot(net_run) == before


async def test_same_origin_post_with_missing_or_wrong_token_is_refused(net_run: StudioRun, owner: Api) -> None:
    before = await snapshot(net_run)
    other = "csrf1_" + base64.urlsafe_b64encode(b"x" * 32).decode().rstrip("=")
    for token in ("", other, owner.csrf_token + "x", owner.csrf_token.upper()):
        status, body = await owner.post("/jobs", json=SUBMIT, headers={"X-CSRF-Token": token})
        _refused(status, body, "csrf_failed")
    status, body = await owner.call("DELETE", "/secrets/civitai", headers={"X-CSRF-Token": other})
    _refused(status, body, "csrf_failed")
    assert await snapshot(net_run) == before


async def test_csrf_token_of_another_session_is_refused(net_run: StudioRun, owner: Api, http) -> None:
    status, _ = await owner.post("/users", json={"username": "bob", "password": "bob-password-1"})
    assert status == 201
    async with aiohttp.ClientSession() as other_http:
        bob = await login(net_run, other_http, "bob", "bob-password-1")
        before = await snapshot(net_run)
        status, body = await bob.post("/jobs", json=SUBMIT, headers={"X-CSRF-Token": owner.csrf_token})
        _refused(status, body, "csrf_failed")
        assert await snapshot(net_run) == before


async def test_origin_null_and_same_site_other_port_are_refused_on_loopback(local_run: StudioRun, http) -> None:
    api = Api(http, local_run.api)
    await api.open_session()
    before = await snapshot(local_run)
    status, body = await api.post("/jobs", json=SUBMIT, headers={"Origin": "null"})
    _refused(status, body, "forbidden")
    for site in ("same-site", "cross-site"):
        status, body = await api.post("/jobs", json=SUBMIT, headers={"Sec-Fetch-Site": site})
        _refused(status, body, "forbidden")
    # ComfyUI itself refuses a foreign loopback Origin (a bare 403): either way nothing happens.
    status, _ = await api.post("/jobs", json=SUBMIT, headers={"Origin": "http://127.0.0.1:1"})
    assert status == 403
    assert await snapshot(local_run) == before


async def test_write_without_origin_or_referer_is_refused(local_run: StudioRun, http) -> None:
    api = Api(http, local_run.api)
    await api.open_session()
    before = await snapshot(local_run)
    headers = {"X-CSRF-Token": api.csrf_token, "Cookie": api._cookie_header(), "Content-Type": "application/json"}
    async with http.post(local_run.api + "/jobs", data=json.dumps(SUBMIT), headers=headers) as resp:
        body = await resp.json()
        _refused(resp.status, body, "forbidden")
    assert await snapshot(local_run) == before


async def test_dns_rebinding_host_is_refused(local_run: StudioRun, http) -> None:
    """evil.example resolved to 127.0.0.1: the browser sends Host: evil.example, and gets nothing."""
    api = Api(http, local_run.api)
    await api.open_session()
    before = await snapshot(local_run)
    rebound = {"Host": "evil.example:8188"}
    for method, path in (("GET", "/session"), ("GET", "/jobs"), ("GET", "/status"), ("POST", "/jobs")):
        status, body = await api.call(method, path, headers={**rebound, "Origin": "http://evil.example:8188"})
        _refused(status, body, "host_not_allowed", 421)
    async with http.get(local_run.url, headers=rebound) as resp:
        assert resp.status == 421
        assert "ComfyUI Studio" not in await resp.text()
    assert await snapshot(local_run) == before


async def test_text_plain_or_form_body_on_a_json_route_is_415(local_run: StudioRun, http) -> None:
    api = Api(http, local_run.api)
    await api.open_session()
    before = await snapshot(local_run)
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "text/plain; charset=utf-8"):
        status, body = await api.post("/jobs", data=json.dumps(SUBMIT), headers={"Content-Type": content_type})
        _refused(status, body, "unsupported_media_type", 415)
    status, body = await api.post("/auth/logout", data="everywhere=true", headers={"Content-Type": "text/plain"})
    _refused(status, body, "unsupported_media_type", 415)
    assert await snapshot(local_run) == before


async def test_cors_stays_closed(local_run: StudioRun, http) -> None:
    evil = {"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"}
    async with http.options(local_run.api + "/jobs", headers=evil) as resp:
        assert not any(h.lower().startswith("access-control-allow") for h in resp.headers)
    async with http.get(local_run.api + "/session", headers={"Origin": "http://evil.example"}) as resp:
        assert not any(h.lower().startswith("access-control-allow") for h in resp.headers)


async def test_cross_site_websocket_and_event_stream_are_refused(net_run: StudioRun, owner: Api, http) -> None:
    cookie = {"Cookie": owner._cookie_header(), "Host": f"studio.lan:{net_run.host.server.port}"}
    with pytest.raises(aiohttp.WSServerHandshakeError) as info:
        async with http.ws_connect(net_run.api + "/ws", headers={**cookie, "Origin": "http://evil.example"}):
            pass
    assert info.value.status == 403
    async with http.get(net_run.api + "/events", headers={**cookie, "Sec-Fetch-Site": "cross-site"}) as resp:
        assert resp.status == 403
    # without a session at all: 401
    async with http.get(net_run.api + "/events") as resp:
        assert resp.status == 401
    with pytest.raises(aiohttp.WSServerHandshakeError) as info:
        async with http.ws_connect(net_run.api + "/ws"):
            pass
    assert info.value.status == 401


# --- tokens --------------------------------------------------------------------------------------------


async def test_expired_access_token_is_401_then_refresh_works(net_run: StudioRun, owner: Api) -> None:
    clock = Clock(time.time())
    security_of(net_run).set_clock(clock)
    status, _ = await owner.get("/jobs")
    assert status == 200
    clock.advance(15 * 60 + 1)
    status, body = await owner.get("/jobs")
    _refused(status, body, "unauthorized", 401)
    # What the web client does next: GET /session still names the family, then refresh.
    session = await owner.open_session()
    assert session["data"]["user"] is None
    status, body = await owner.post("/auth/refresh", json={})
    assert status == 200, body
    owner.csrf_token = body["data"]["csrf_token"]
    status, _ = await owner.get("/jobs")
    assert status == 200


async def test_replayed_refresh_token_revokes_family(net_run: StudioRun, owner: Api) -> None:
    clock = Clock(time.time())
    security_of(net_run).set_clock(clock)
    stolen = owner.cookies["studio_refresh"]
    status, _ = await owner.post("/auth/refresh", json={})  # the victim rotates it
    assert status == 200
    clock.advance(60)
    thief_cookies = {**owner.cookies, "studio_refresh": stolen}
    before = await counts(net_run)
    status, body = await owner.post(
        "/auth/refresh", json={}, headers={"Cookie": "; ".join(f"{k}={v}" for k, v in thief_cookies.items())}
    )
    _refused(status, body, "unauthorized", 401)
    after = await counts(net_run)
    assert after["audit_log"] == before["audit_log"] + 1  # the revocation is recorded
    # The whole family is over: the victim's current tokens too.
    status, body = await owner.get("/jobs")
    _refused(status, body, "unauthorized", 401)
    status, body = await owner.post("/auth/refresh", json={})
    _refused(status, body, "unauthorized", 401)


@pytest.mark.parametrize("forgery", ["alg_none", "wrong_key", "tampered_claims", "unknown_kid", "hs512"])
async def test_forged_jwt_is_401(net_run: StudioRun, owner: Api, forgery: str) -> None:
    real = owner.cookies["studio_access"]
    header = jwt.get_unverified_header(real)
    claims = jwt.decode(real, options={"verify_signature": False})
    if forgery == "alg_none":
        forged = jwt.encode({**claims, "sub": "1"}, None, algorithm="none", headers={"kid": header["kid"]})
    elif forgery == "wrong_key":
        forged = jwt.encode(claims, "k" * 32, algorithm="HS256", headers={"kid": header["kid"]})
    elif forgery == "unknown_kid":
        forged = jwt.encode(claims, "k" * 32, algorithm="HS256", headers={"kid": "0000"})
    elif forgery == "hs512":
        forged = jwt.encode(claims, "k" * 64, algorithm="HS512", headers={"kid": header["kid"]})
    else:
        head, payload, signature = real.split(".")
        edited = {**claims, "sub": str(int(claims["sub"]) + 1), "exp": claims["exp"] + 86400}
        payload = base64.urlsafe_b64encode(json.dumps(edited).encode()).decode().rstrip("=")
        forged = f"{head}.{payload}.{signature}"
    owner.cookies["studio_access"] = forged
    before = await snapshot(net_run)
    status, body = await owner.get("/jobs")
    _refused(status, body, "unauthorized", 401)
    status, body = await owner.post("/jobs", json=SUBMIT)
    assert status in (401, 403) and body["ok"] is False
    assert await snapshot(net_run) == before


async def test_signing_key_rotation_keeps_current_sessions(net_run: StudioRun, owner: Api) -> None:
    old_kid = jwt.get_unverified_header(owner.cookies["studio_access"])["kid"]
    status, body = await owner.post("/auth/signing-key/rotate", json={})
    assert status == 200 and body["data"]["key_id"] != old_kid
    status, _ = await owner.get("/jobs")  # signed by the previous key: still good
    assert status == 200
    status, body = await owner.post("/auth/refresh", json={})
    assert status == 200
    assert jwt.get_unverified_header(owner.cookies["studio_access"])["kid"] != old_kid


# --- accounts ------------------------------------------------------------------------------------------


async def test_network_studio_requires_login_and_setup_needs_the_code(
    net_run: StudioRun, http, caplog: pytest.LogCaptureFixture
) -> None:
    api = Api(http, net_run.api)
    status, body = await api.get("/session")
    assert status == 200
    assert body["data"]["user"] is None and body["data"]["login_required"] and body["data"]["setup_required"]
    status, body = await api.get("/jobs")
    _refused(status, body, "unauthorized", 401)
    code_file = net_run.data_dir / "setup-code.txt"
    code = code_file.read_text().strip()
    assert oct(code_file.stat().st_mode & 0o777) == "0o600"
    before = await snapshot(net_run)
    status, body = await api.post(
        "/auth/setup", json={"code": "AAAA-BBBB-CCCC-DDDD-EEEE", "username": "boss", "password": OWNER_PASSWORD}
    )
    _refused(status, body, "forbidden")
    assert await snapshot(net_run) == before
    await set_up_owner(net_run, api)
    assert not code_file.exists()
    status, body = await api.post("/auth/setup", json={"code": code, "username": "boss2", "password": OWNER_PASSWORD})
    _refused(status, body, "conflict", 409)
    status, _ = await api.get("/jobs")
    assert status == 200


async def test_setup_code_path_is_logged_never_the_code(tmp_path, caplog: pytest.LogCaptureFixture) -> None:
    from .conftest import start_fast

    caplog.set_level(logging.DEBUG)
    run = await start_fast(tmp_path, listen=["0.0.0.0"])  # noqa: S104
    try:
        code = (run.data_dir / "setup-code.txt").read_text().strip()
        text = "\n".join(r.getMessage() for r in caplog.records)
        assert str(run.data_dir / "setup-code.txt") in text
        assert code not in text and code.replace("-", "") not in text
    finally:
        await run.stop()


async def test_login_brute_force_is_throttled(net_run: StudioRun, owner: Api, http) -> None:
    async with aiohttp.ClientSession() as attacker_http:
        attacker = Api(attacker_http, net_run.api)
        before = await snapshot(net_run)
        for i in range(5):
            status, body = await attacker.post("/auth/login", json={"username": "boss", "password": f"guess-{i}"})
            _refused(status, body, "unauthorized", 401)
        # the account is locked for a while: even the right password is not tried
        status, body = await attacker.post("/auth/login", json={"username": "boss", "password": OWNER_PASSWORD})
        _refused(status, body, "too_many_requests", 429)
        assert body["error"]["details"][0]["retry_after"] > 0
        # per address: spraying other names from the same address is throttled too
        statuses = []
        for i in range(20):
            status, body = await attacker.post("/auth/login", json={"username": f"user{i}", "password": "password-x"})
            statuses.append(status)
        assert statuses[-1] == 429 and set(statuses) <= {401, 429}
        assert await snapshot(net_run) == before  # refusals are kept in memory only


async def test_logout_everywhere_ends_every_session(net_run: StudioRun, owner: Api) -> None:
    async with aiohttp.ClientSession() as other_http:
        laptop = await login(net_run, other_http, "boss", OWNER_PASSWORD)
        status, body = await owner.post("/auth/logout", json={"everywhere": True})
        assert status == 200 and body["data"]["sessions_ended"] >= 2
        for api in (owner, laptop):
            status, _ = await api.get("/jobs")
            assert status == 401
        status, _ = await laptop.post("/auth/refresh", json={})
        assert status == 401


async def test_logout_ends_only_this_session(net_run: StudioRun, owner: Api) -> None:
    async with aiohttp.ClientSession() as other_http:
        laptop = await login(net_run, other_http, "boss", OWNER_PASSWORD)
        status, _ = await laptop.post("/auth/logout", json={})
        assert status == 200
        assert (await laptop.get("/jobs"))[0] == 401
        assert (await owner.get("/jobs"))[0] == 200


async def test_password_change_rotates_everything(net_run: StudioRun, owner: Api) -> None:
    async with aiohttp.ClientSession() as other_http:
        laptop = await login(net_run, other_http, "boss", OWNER_PASSWORD)
        old_csrf = owner.csrf_token
        status, body = await owner.post(
            "/auth/password", json={"current_password": "wrong-password", "new_password": "a new password 2"}
        )
        _refused(status, body, "forbidden")
        status, body = await owner.post(
            "/auth/password", json={"current_password": OWNER_PASSWORD, "new_password": "a new password 2"}
        )
        assert status == 200, body
        assert body["data"]["csrf_token"] != old_csrf
        owner.csrf_token = body["data"]["csrf_token"]
        assert (await laptop.get("/jobs"))[0] == 401
        assert (await laptop.post("/auth/refresh", json={}))[0] == 401
        assert (await owner.get("/jobs"))[0] == 200
        status, _ = await Api(other_http, net_run.api).post(
            "/auth/login", json={"username": "boss", "password": OWNER_PASSWORD}
        )
        assert status == 401


async def test_owner_manages_users_and_users_cannot(net_run: StudioRun, owner: Api) -> None:
    status, body = await owner.post("/users", json={"username": "bob", "password": "bob-password-1"})
    assert status == 201 and body["data"]["role"] == "user" and "password_hash" not in body["data"]
    bob_id = body["data"]["id"]
    status, body = await owner.post("/users", json={"username": "eve", "password": "x" * 9, "role": "owner"})
    _refused(status, body, "validation_error", 400)
    async with aiohttp.ClientSession() as other_http:
        bob = await login(net_run, other_http, "bob", "bob-password-1")
        before = await snapshot(net_run)
        for method, path, payload in (
            ("GET", "/users", None),
            ("POST", "/users", {"username": "mallory", "password": "mallory-pass"}),
            ("PATCH", f"/users/{bob_id}", {"disabled": False}),
            ("POST", "/users/1/password", {"password": "taken-over-1"}),
            ("POST", "/auth/signing-key/rotate", {}),
        ):
            kwargs = {"json": payload} if payload is not None else {}
            status, body = await bob.call(method, path, **kwargs)
            _refused(status, body, "forbidden")
        assert await snapshot(net_run) == before
        # disabling bob ends his sessions at once
        status, _ = await owner.call("PATCH", f"/users/{bob_id}", json={"disabled": True})
        assert status == 200
        assert (await bob.get("/jobs"))[0] == 401
        status, _ = await Api(other_http, net_run.api).post(
            "/auth/login", json={"username": "bob", "password": "bob-password-1"}
        )
        assert status == 401


async def test_loopback_peer_gets_no_owner_session_when_listening_on_the_network(net_run: StudioRun, http) -> None:
    api = Api(http, net_run.api)
    status, body = await api.get("/session")
    assert body["data"]["user"] is None and "studio_access" not in api.cookies
    status, _ = await api.get("/jobs")
    assert status == 401


async def test_local_owner_session_is_not_given_through_a_proxy(local_run: StudioRun, http) -> None:
    api = Api(http, local_run.api)
    status, body = await api.get("/session", headers={"X-Forwarded-For": "203.0.113.7"})
    assert status == 200 and body["data"]["user"] is None
    status, _ = await api.get("/jobs", headers={"X-Forwarded-For": "203.0.113.7"})
    assert status == 401
    status, body = await api.get("/session")
    assert body["data"]["user"]["role"] == "owner" and body["data"]["local"] is True
