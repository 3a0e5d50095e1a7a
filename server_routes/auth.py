"""Sessions over HTTP: who am I (+ the CSRF token), login, refresh, logout, first-run setup, password change.

Cookies: the access JWT and the refresh token are HttpOnly, SameSite=Strict, Secure over HTTPS; the
refresh cookie is sent only to /studio/api/v1/auth. Nothing here logs a password, a code or a token
(see services/accounts.py and services/sessions.py for the algorithms and their rules).
"""

from __future__ import annotations

import logging

from aiohttp import web
from pydantic import Field

from ..engine.envelope import success
from ..engine.errors import StudioError
from ..services.accounts import check_password, check_username
from ..services.security import Security
from ..services.sessions import ACCESS_TTL_S, REFRESH_TTL_S, Identity, Issued, RefreshRefused
from .context import CREATED, REQUEST_ID, is_owner, studio, user_id
from .middleware import envelope_response
from .routing import DataRoutes
from .security import (
    ACCESS_COOKIE,
    CLAIMS,
    IDENTITY,
    NONCE_COOKIE,
    REFRESH_COOKIE,
    local_trust,
    mount_prefix,
)
from .validation import Schema, read_json

log = logging.getLogger("comfyui_studio.security")

routes = DataRoutes()

AUTH_BODY_LIMIT = 16 * 1024


class LoginBody(Schema):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class SetupBody(Schema):
    code: str = Field(min_length=1, max_length=64)
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class LogoutBody(Schema):
    everywhere: bool = False


class PasswordBody(Schema):
    current_password: str | None = Field(default=None, max_length=1024)
    new_password: str = Field(min_length=1, max_length=1024)


class Empty(Schema):
    pass


def _security(request: web.Request) -> Security:
    return studio(request).security


def _peer(request: web.Request) -> str:
    return request.remote or "unknown"


def _user_dict(identity: Identity) -> dict[str, object]:
    return {"id": identity.user_id, "username": identity.username, "role": identity.role}


def _cookie(
    response: web.StreamResponse, request: web.Request, name: str, value: str, path: str, max_age: int | None
) -> None:
    response.set_cookie(
        name,
        value,
        path=path,
        max_age=max_age,
        httponly=True,
        secure=request.secure,
        samesite="Strict",
    )


def _clear(response: web.StreamResponse, request: web.Request, name: str, path: str) -> None:
    _cookie(response, request, name, "", path, 0)


def _respond(request: web.Request, data: object, status: int = 200) -> web.Response:
    return envelope_response(success(data, request.get(REQUEST_ID, "")), status)


def _with_session(request: web.Request, data: dict[str, object], issued: Issued, status: int = 200) -> web.Response:
    prefix = mount_prefix(request.path)
    response = _respond(request, data, status)
    # The access cookie outlives its JWT so that an expired page still names its family (CSRF, refresh).
    _cookie(response, request, ACCESS_COOKIE, issued.access, prefix, REFRESH_TTL_S)
    _cookie(response, request, REFRESH_COOKIE, issued.refresh, prefix + "/api/v1/auth", REFRESH_TTL_S)
    _clear(response, request, NONCE_COOKIE, prefix)
    return response


def _ended(request: web.Request, data: dict[str, object]) -> web.Response:
    prefix = mount_prefix(request.path)
    response = _respond(request, data)
    _clear(response, request, ACCESS_COOKIE, prefix)
    _clear(response, request, REFRESH_COOKIE, prefix + "/api/v1/auth")
    return response


async def _session_payload(security: Security, identity: Identity | None, csrf: str) -> dict[str, object]:
    login_required = security.login_required
    setup_required = login_required and await security.accounts.needs_setup(security.owner_id)
    return {
        "user": _user_dict(identity) if identity is not None else None,
        "csrf_token": csrf,
        "setup_required": setup_required,
        "login_required": login_required and identity is None,
        "local": bool(identity and identity.local),
        "access_expires_in": ACCESS_TTL_S,
    }


@routes.get("/api/v1/session")
async def get_session(request: web.Request) -> web.StreamResponse:
    """The current user (or null) and the CSRF token bound to this session (or to this browser)."""
    security = _security(request)
    identity = request.get(IDENTITY)
    claims = request.get(CLAIMS)
    if identity is not None and identity.family_id is not None:
        csrf = security.sessions.csrf_for_family(identity.family_id)
        return _respond(request, await _session_payload(security, identity, csrf))
    if local_trust(request):
        owner = await security.accounts.get(security.owner_id)
        if owner is not None and not owner.disabled:
            issued = await security.sessions.open(owner, local=True)
            payload = await _session_payload(security, issued.identity, issued.csrf)
            return _with_session(request, payload, issued)
    if claims is not None:
        # An expired (or revoked) session: the token stays bound to its family so a refresh can follow.
        csrf = security.sessions.csrf_for_family(claims.family_id)
        return _respond(request, await _session_payload(security, None, csrf))
    nonce = request.cookies.get(NONCE_COOKIE, "")
    fresh = not (16 <= len(nonce) <= 64 and nonce.replace("-", "").replace("_", "").isalnum())
    if fresh:
        nonce = security.sessions.nonce()
    response = _respond(request, await _session_payload(security, None, security.sessions.csrf_for_nonce(nonce)))
    if fresh:
        _cookie(response, request, NONCE_COOKIE, nonce, mount_prefix(request.path), None)
    return response


@routes.post("/api/v1/auth/login")
async def login(request: web.Request) -> web.StreamResponse:
    security = _security(request)
    body = await read_json(request, LoginBody, limit=AUTH_BODY_LIMIT)
    check_username(body.username)
    peer = _peer(request)
    security.guard.check(peer, body.username)
    user = await security.accounts.authenticate(body.username, body.password)
    if user is None:
        security.guard.failed(peer, body.username)
        log.warning("Failed login from %s", peer)
        raise StudioError("unauthorized", "Wrong user name or password")
    security.guard.succeeded(body.username)
    issued = await security.sessions.open(user)
    return _with_session(request, await _session_payload(security, issued.identity, issued.csrf), issued)


@routes.post("/api/v1/auth/refresh")
async def refresh(request: web.Request) -> web.StreamResponse:
    """Rotate the refresh token; a reused one ends its whole family."""
    security = _security(request)
    await read_json(request, Empty, limit=AUTH_BODY_LIMIT)
    token = request.cookies.get(REFRESH_COOKIE, "")
    issued: Issued | None = None
    if token:
        try:
            issued = await security.sessions.refresh(token)
        except RefreshRefused as exc:
            if exc.reason == "reused" or not local_trust(request):
                message = "This session was ended" if exc.reason in ("reused", "revoked") else "Log in again"
                raise StudioError("unauthorized", message) from None
        else:
            if issued is None:
                # Another tab rotated this token a moment ago; the browser already holds its new cookies.
                return _respond(request, {"refreshed": True})
    if issued is None:
        # No usable refresh token: only the local owner of a loopback-only studio gets a new session.
        owner = await security.accounts.get(security.owner_id) if local_trust(request) else None
        if owner is None or owner.disabled:
            raise StudioError("unauthorized", "Log in again")
        issued = await security.sessions.open(owner, local=True)
    return _with_session(request, {"refreshed": True, "csrf_token": issued.csrf}, issued)


@routes.post("/api/v1/auth/logout")
async def logout(request: web.Request) -> web.StreamResponse:
    security = _security(request)
    body = await read_json(request, LogoutBody, limit=AUTH_BODY_LIMIT)
    claims = request.get(CLAIMS)
    family = claims.family_id if claims is not None else None
    uid = claims.user_id if claims is not None else None
    if family is None:
        from ..services.sessions import refresh_family

        family = refresh_family(request.cookies.get(REFRESH_COOKIE, ""))
    revoked = 0
    if body.everywhere and uid is not None:
        revoked = await security.sessions.revoke_user(uid, "logout_everywhere")
    elif family is not None:
        revoked = int(await security.sessions.revoke_family(family, "logout"))
    return _ended(request, {"logged_out": True, "sessions_ended": revoked})


@routes.post("/api/v1/auth/setup")
async def setup(request: web.Request) -> web.StreamResponse:
    """First run on a network: name the owner and set its password, with the code from the data folder."""
    security = _security(request)
    body = await read_json(request, SetupBody, limit=AUTH_BODY_LIMIT)
    check_username(body.username)
    check_password(body.password)
    peer = _peer(request)
    security.guard.check(peer, None)
    owner_id = security.owner_id
    if not await security.accounts.needs_setup(owner_id):
        raise StudioError("conflict", "The studio is already set up; log in instead")
    if not security.setup_code.matches(body.code):
        security.guard.failed(peer, None)
        log.warning("Wrong setup code from %s", peer)
        raise StudioError("forbidden", "That setup code is not right; it is in the file the console named")
    owner = await security.accounts.setup_owner(owner_id, body.username, body.password)
    security.setup_code.consume()
    await security.sessions.revoke_user(owner_id, "setup")
    issued = await security.sessions.open(owner, reason="setup")
    request[CREATED] = True
    payload = await _session_payload(security, issued.identity, issued.csrf)
    return _with_session(request, payload, issued, status=201)


@routes.post("/api/v1/auth/password")
async def change_password(request: web.Request) -> web.StreamResponse:
    """Change your password: every session of yours ends, this browser gets a new one."""
    security = _security(request)
    body = await read_json(request, PasswordBody, limit=AUTH_BODY_LIMIT)
    uid = user_id(request)
    check_password(body.new_password, "new_password")
    user = await security.accounts.get(uid)
    if user is None:
        raise StudioError("unauthorized", "Log in to use the studio")
    peer = _peer(request)
    if user.password_hash is not None:
        security.guard.check(peer, user.username)
        if body.current_password is None or not await security.accounts.verify_password(uid, body.current_password):
            security.guard.failed(peer, user.username)
            raise StudioError("forbidden", "The current password is not right")
    await security.accounts.set_password(uid, uid, body.new_password, field="new_password")
    await security.sessions.revoke_user(uid, "password_changed")
    fresh = await security.accounts.get(uid)
    assert fresh is not None
    issued = await security.sessions.open(fresh, reason="password_changed")
    return _with_session(request, await _session_payload(security, issued.identity, issued.csrf), issued)


@routes.post("/api/v1/auth/signing-key/rotate")
async def rotate_signing_key(request: web.Request) -> object:
    """Owner only: sign new access tokens with a new key (the old one verifies until its tokens expire)."""
    security = _security(request)
    await read_json(request, Empty, limit=AUTH_BODY_LIMIT)
    if not is_owner(request):
        raise StudioError("forbidden", "Only the owner can rotate the signing key")
    kid = await security.sessions.rotate_signing_key()
    return {"rotated": True, "key_id": kid}
