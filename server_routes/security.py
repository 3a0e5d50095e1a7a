"""The studio's request guards: allowed Host, Origin + CSRF token + content type on writes, and sessions.

Each guard is a pure decision function (tested as a matrix) wrapped by a thin middleware, in this order:
Host check (DNS rebinding; Django's ALLOWED_HOSTS, Vite's server.allowedHosts) → Origin/Referer and
Fetch Metadata check (OWASP CSRF Prevention Cheat Sheet, "Verifying Origin with standard headers" and
"Fetch Metadata headers"; web.dev "resource isolation policy") → content type → CSRF token (signed,
session-bound: services/sessions.py) → authentication. Origin: null, a missing Origin and Referer on a
write, and same-site pages on another port are all refused.
Don't: rely on ComfyUI's own origin check (it skips `Origin: null`, requests without Origin, and
non-loopback Hosts), send any Access-Control-Allow-* header, trust X-Forwarded-* or Forwarded
headers, or treat a loopback peer as the local user when ComfyUI listens on a network address.
"""

from __future__ import annotations

import hmac
import logging
import urllib.parse
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from aiohttp import web

from ..engine.errors import StudioError
from ..services.security import (
    LOOPBACK_NAMES,
    HostPolicy,
    Security,
    is_loopback_address,
    listen_is_loopback,
)
from ..services.sessions import AccessClaims, Identity
from .context import USER_ID, USER_ROLE, request_key, studio
from .middleware import Handler

if TYPE_CHECKING:
    from aiohttp.typedefs import Handler as ResponseHandler
    from aiohttp.typedefs import Middleware

log = logging.getLogger("comfyui_studio.security")

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
ACCESS_COOKIE = "studio_access"
REFRESH_COOKIE = "studio_refresh"
NONCE_COOKIE = "studio_csrf"
CSRF_HEADER = "X-CSRF-Token"
API_MARK = "/api/v1/"
# API routes open without a session (relative to /api/v1).
PUBLIC_API = frozenset(
    {
        ("GET", "/session"),
        ("POST", "/auth/login"),
        ("POST", "/auth/refresh"),
        ("POST", "/auth/setup"),
        ("POST", "/auth/logout"),
    }
)
# Routes where the pre-login CSRF token (bound to the nonce cookie) is accepted.
PRE_SESSION_API = frozenset(p for m, p in PUBLIC_API if m == "POST")
_PROXY_HEADERS = ("X-Forwarded-For", "X-Forwarded-Host", "Forwarded", "X-Real-IP")

IDENTITY = request_key("studio_identity", Identity)
CLAIMS = request_key("studio_access_claims", AccessClaims)


# --- pure decisions --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    ok: bool
    code: str = ""
    message: str = ""

    def raise_if_refused(self) -> None:
        if not self.ok:
            raise StudioError(self.code, self.message)


ALLOW = Verdict(True)


def _refuse(code: str, message: str) -> Verdict:
    return Verdict(False, code, message)


def split_host(value: str | None) -> tuple[str, int | None] | None:
    """(hostname lowercased without brackets, port) from a Host header or URL netloc; None if malformed."""
    if not value or len(value) > 255 or any(c in value for c in "/\\@ \t?#%\x00"):
        return None
    try:
        parsed = urllib.parse.urlsplit("//" + value)
        hostname, port = parsed.hostname, parsed.port
    except ValueError:
        return None
    if not hostname:
        return None
    return hostname.rstrip(".").lower(), port


def host_verdict(host_header: str | None, policy: HostPolicy) -> Verdict:
    parsed = split_host(host_header)
    if parsed is None or not policy.allows(parsed[0]):
        return _refuse(
            "host_not_allowed",
            "This host name is not allowed; add it to the studio's allowed hosts if it is yours",
        )
    return ALLOW


def _origin_of(url: str) -> tuple[str, str, int | None] | None:
    try:
        parsed = urllib.parse.urlsplit(url)
        scheme, hostname, port = parsed.scheme.lower(), parsed.hostname, parsed.port
    except ValueError:
        return None
    if scheme not in ("http", "https") or not hostname:
        return None
    return scheme, hostname.rstrip(".").lower(), port


def _default_port(scheme: str) -> int:
    return 443 if scheme == "https" else 80


def same_origin(source: str, host_header: str | None) -> bool:
    """Whether an Origin/Referer names the very host and port this request was sent to."""
    origin = _origin_of(source)
    host = split_host(host_header)
    if origin is None or host is None:
        return False
    scheme, o_name, o_port = origin
    h_name, h_port = host
    return o_name == h_name and (o_port or _default_port(scheme)) == (h_port or _default_port(scheme))


def origin_verdict(
    *,
    method: str,
    host_header: str | None,
    origin: str | None,
    referer: str | None,
    sec_fetch_site: str | None,
    websocket: bool = False,
    api: bool = True,
) -> Verdict:
    """Writes and WebSocket upgrades must come from the studio's own origin; API reads must not be cross-site."""
    if sec_fetch_site is not None and sec_fetch_site not in ("same-origin", "none"):
        if api or method in UNSAFE_METHODS or websocket:
            return _refuse("forbidden", "Cross-site requests to the studio are refused")
    if method not in UNSAFE_METHODS and not websocket:
        return ALLOW
    if origin is not None:
        if origin.strip().lower() == "null" or not same_origin(origin, host_header):
            return _refuse("forbidden", "Requests from another origin are refused")
        return ALLOW
    if referer:
        return (
            ALLOW
            if same_origin(referer, host_header)
            else _refuse("forbidden", "Requests from another origin are refused")
        )
    if websocket:
        return ALLOW  # not a browser: browsers always send Origin on a WebSocket handshake
    return _refuse("forbidden", "A state-changing request needs an Origin (or Referer) header")


def content_type_verdict(method: str, content_type: str, has_body: bool) -> Verdict:
    """A write with a body is JSON (or a multipart upload): never a form or text/plain a page can forge."""
    if method not in UNSAFE_METHODS or not has_body:
        return ALLOW
    if content_type in ("application/json", "multipart/form-data"):
        return ALLOW
    return _refuse("unsupported_media_type", "Send the body as Content-Type: application/json")


def csrf_verdict(method: str, sent: str | None, expected: Collection[str]) -> Verdict:
    if method not in UNSAFE_METHODS:
        return ALLOW
    if not sent:
        return _refuse("csrf_failed", f"The {CSRF_HEADER} header is missing: reload the page")
    if len(sent) <= 128 and any(hmac.compare_digest(sent.encode(), e.encode()) for e in expected):
        return ALLOW
    return _refuse("csrf_failed", f"The {CSRF_HEADER} header does not match this session: reload the page")


def local_trust_verdict(
    *,
    enabled: bool,
    listen: Iterable[str],
    peer: str | None,
    host_header: str | None,
    sec_fetch_site: str | None,
    origin: str | None,
    proxied: bool,
) -> bool:
    """Whether this request is the local user of a loopback-only studio (an owner session, no password)."""
    host = split_host(host_header)
    return (
        enabled
        and listen_is_loopback(listen)
        and is_loopback_address(peer)
        and not proxied
        and host is not None
        and host[0] in LOOPBACK_NAMES
        and sec_fetch_site in (None, "same-origin", "none")
        and (origin is None or same_origin(origin, host_header))
    )


def api_route(path: str) -> str | None:
    """The path after /api/v1 (e.g. "/auth/login"), or None for the page and its assets."""
    index = path.find(API_MARK)
    return None if index < 0 else path[index + len(API_MARK) - 1 :]


def mount_prefix(path: str) -> str:
    index = path.find(API_MARK)
    return path[:index] if index >= 0 else "/studio"


def _security(request: web.Request) -> Security:
    return studio(request).security


def local_trust(request: web.Request) -> bool:
    """Whether this request is the local owner of a loopback-only studio (no password asked)."""
    security = _security(request)
    headers = request.headers
    return local_trust_verdict(
        enabled=security.local_owner_login,
        listen=security.config.listen,
        peer=request.remote,
        host_header=headers.get("Host"),
        sec_fetch_site=headers.get("Sec-Fetch-Site"),
        origin=headers.get("Origin"),
        proxied=any(h in headers for h in _PROXY_HEADERS),
    )


# --- middlewares -----------------------------------------------------------------------------------


def _is_websocket(request: web.Request) -> bool:
    return request.headers.get("Upgrade", "").lower() == "websocket"


@web.middleware
async def host_guard(request: web.Request, handler: Handler) -> object:
    """Refuse Host names that are not this machine's (DNS rebinding) before anything else runs."""
    verdict = host_verdict(request.headers.get("Host"), _security(request).hosts)
    if not verdict.ok:
        log.warning("Refused a request for a host name that is not allowed (%.64r)", request.headers.get("Host"))
    verdict.raise_if_refused()
    return await handler(request)


def csrf_expected(request: web.Request, security: Security, claims: AccessClaims | None) -> list[str]:
    families: list[str] = []
    if claims is not None:
        families.append(claims.family_id)
    route = api_route(request.path) or ""
    nonce = None
    if route in PRE_SESSION_API:
        from ..services.sessions import refresh_family

        family = refresh_family(request.cookies.get(REFRESH_COOKIE, ""))
        if family is not None:
            families.append(family)
        nonce = request.cookies.get(NONCE_COOKIE) or None
    return security.sessions.csrf_candidates(families, nonce)


@web.middleware
async def request_guard(request: web.Request, handler: Handler) -> object:
    """Origin/Fetch Metadata, then the content type, then the CSRF token on every write."""
    security = _security(request)
    headers = request.headers
    api = api_route(request.path) is not None
    origin_verdict(
        method=request.method,
        host_header=headers.get("Host"),
        origin=headers.get("Origin"),
        referer=headers.get("Referer"),
        sec_fetch_site=headers.get("Sec-Fetch-Site"),
        websocket=_is_websocket(request),
        api=api,
    ).raise_if_refused()
    content_type_verdict(request.method, request.content_type, request.body_exists).raise_if_refused()
    token = request.cookies.get(ACCESS_COOKIE)
    claims = await security.sessions.verify_access(token)
    if claims is not None:
        request[CLAIMS] = claims
    if request.method in UNSAFE_METHODS:
        csrf_verdict(
            request.method, headers.get(CSRF_HEADER), csrf_expected(request, security, claims)
        ).raise_if_refused()
    return await handler(request)


@web.middleware
async def auth_guard(request: web.Request, handler: Handler) -> object:
    """Who is asking: a live session, or the local owner of a loopback-only studio; else 401."""
    security = _security(request)
    route = api_route(request.path)
    match = request.match_info
    public = route is None or (request.method, route) in PUBLIC_API or match.http_exception is not None
    claims = request.get(CLAIMS)
    identity: Identity | None = None
    if claims is not None and not claims.expired:
        identity = await security.sessions.identity(claims)
    elif ACCESS_COOKIE not in request.cookies and request.method in ("GET", "HEAD") and local_trust(request):
        owner = security.owner_id
        identity = Identity(owner, "owner", "", None, local=True)
    if identity is not None:
        request[IDENTITY] = identity
        request[USER_ID] = identity.user_id
        request[USER_ROLE] = identity.role
    elif not public:
        expired = claims is not None and claims.expired
        raise StudioError("unauthorized", "Your session has expired" if expired else "Log in to use the studio")
    return await handler(request)


_API_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Resource-Policy": "same-origin",
}


@web.middleware
async def api_headers(request: web.Request, handler: ResponseHandler) -> web.StreamResponse:
    """Headers on every API answer; auth answers are never cached. No CORS header, ever."""
    response = await handler(request)
    route = api_route(request.path)
    if route is not None and not response.prepared:
        for name, value in _API_HEADERS.items():
            response.headers.setdefault(name, value)
        if route == "/session" or route.startswith(("/auth/", "/secrets", "/users", "/tokens")):
            response.headers["Cache-Control"] = "no-store"
    return response


def middlewares() -> list[Middleware]:
    """The guards in order, to follow the envelope middleware."""
    # Inside the envelope they pass on the handler's data, where aiohttp's types expect a response.
    return cast("list[Middleware]", [host_guard, request_guard, auth_guard])
