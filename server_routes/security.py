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
import ipaddress
import logging
import os
import socket
import time
import urllib.parse
from collections.abc import AsyncIterator, Callable, Collection, Iterable
from dataclasses import dataclass, field

from aiohttp import web
from sqlalchemy import select

from ..db.models import Setting
from ..db.private import ensure_private_dir
from ..engine.errors import StudioError
from ..services.accounts import Accounts, LoginGuard, SetupCode
from ..services.secrets import Secrets, install_redaction, secret_key
from ..services.sessions import AccessClaims, Identity, Sessions, SigningKeys
from ..services.studio import Studio
from .context import USER_ID, USER_ROLE, request_key
from .middleware import Handler

log = logging.getLogger("comfyui_studio.security")

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
ACCESS_COOKIE = "studio_access"
REFRESH_COOKIE = "studio_refresh"
NONCE_COOKIE = "studio_csrf"
CSRF_HEADER = "X-CSRF-Token"
LOCAL_LOGIN_SETTING = "security.local_owner_login"
LOCAL_LOGIN_ENV = "STUDIO_LOCAL_OWNER_LOGIN"
ALLOWED_HOSTS_ENV = "STUDIO_ALLOWED_HOSTS"
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
_LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
_WILDCARDS = frozenset({"", "0.0.0.0", "::", "*"})  # noqa: S104 (these are what we look for)

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


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class HostPolicy:
    """Names a request's Host may carry. IP literals cannot be rebound, so listening on a wildcard
    address allows any of them (as Vite does); names must be listed."""

    names: frozenset[str]
    any_ip_literal: bool = False

    def allows(self, hostname: str) -> bool:
        return hostname in self.names or (self.any_ip_literal and _is_ip(hostname))


def build_host_policy(listen: Iterable[str], extra: Iterable[str] = (), hostname: str | None = None) -> HostPolicy:
    names = set(_LOOPBACK_NAMES)
    host = (hostname if hostname is not None else socket.gethostname()).lower().rstrip(".")
    if host:
        names.update({host, host.split(".")[0], f"{host.split('.')[0]}.local"})
    wildcard = False
    for address in listen:
        address = address.strip().strip("[]").lower()
        if address in _WILDCARDS:
            wildcard = True
        elif address:
            names.add(address)
    names.update(e.strip().strip("[]").lower().rstrip(".") for e in extra if e.strip())
    return HostPolicy(frozenset(names), any_ip_literal=wildcard)


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


def is_loopback_address(value: str | None) -> bool:
    if not value:
        return False
    value = value.strip().strip("[]").lower()
    if value == "localhost":
        return True
    try:
        address = ipaddress.ip_address(value.split("%")[0])
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return bool(address.is_loopback or (mapped is not None and mapped.is_loopback))


def listen_is_loopback(listen: Iterable[str]) -> bool:
    addresses = [a for a in listen]
    return bool(addresses) and all(is_loopback_address(a) for a in addresses)


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
        and host[0] in _LOOPBACK_NAMES
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


# --- the bundle ------------------------------------------------------------------------------------


@dataclass
class Security:
    """Accounts, sessions, secrets and the request policy of one studio application."""

    studio: Studio
    accounts: Accounts
    sessions: Sessions
    guard: LoginGuard
    setup_code: SetupCode
    hosts: HostPolicy
    local_owner_login: bool = True
    secrets: Secrets | None = None
    clock: Callable[[], float] = field(default=time.time)

    @classmethod
    def build(cls, studio: Studio) -> Security:
        config = studio.config
        extra = list(config.extra_allowed_hosts) + [
            h for h in os.environ.get(ALLOWED_HOSTS_ENV, "").split(",") if h.strip()
        ]
        return cls(
            studio=studio,
            accounts=Accounts(studio.store),
            sessions=Sessions(studio.store, SigningKeys(config.data_dir / "session.key")),
            guard=LoginGuard(),
            setup_code=SetupCode(config.data_dir),
            hosts=build_host_policy(config.listen, extra),
        )

    def set_clock(self, clock: Callable[[], float]) -> None:
        """Tests move time: sessions, key rotation and throttles all read this clock."""
        self.clock = clock
        self.sessions.clock = clock
        self.sessions.keys.clock = clock
        self.guard.per_account.clock = clock
        self.guard.per_address.clock = clock

    @property
    def loopback_only(self) -> bool:
        return listen_is_loopback(self.studio.config.listen)

    @property
    def login_required(self) -> bool:
        return not (self.local_owner_login and self.loopback_only)

    def local_trust(self, request: web.Request) -> bool:
        headers = request.headers
        return local_trust_verdict(
            enabled=self.local_owner_login,
            listen=self.studio.config.listen,
            peer=request.remote,
            host_header=headers.get("Host"),
            sec_fetch_site=headers.get("Sec-Fetch-Site"),
            origin=headers.get("Origin"),
            proxied=any(h in headers for h in _PROXY_HEADERS),
        )

    def load_keys(self) -> None:
        """The key files (before the store opens: a refused key stops start-up with nothing open)."""
        install_redaction()
        data_dir = self.studio.config.data_dir
        ensure_private_dir(data_dir)  # the studio's private folder: its owner only
        self.sessions.keys.load()
        self.secrets = Secrets(self.studio.store, secret_key(self.studio.config.data_dir))

    async def start(self) -> None:
        """After the studio's start: settings from the store, the setup code when one is needed."""
        self.local_owner_login = await self._local_login_setting()
        pruned = await self.sessions.prune()
        if pruned:
            log.info("Removed %d expired or revoked sessions", pruned)
        if self.login_required and await self.accounts.needs_setup(self.studio.owner_id):
            path = self.setup_code.ensure()
            # The path only: ComfyUI serves its console log over HTTP at /internal/logs.
            log.warning("ComfyUI Studio needs its first-run setup: the one-time code is in %s", path)

    async def _local_login_setting(self) -> bool:
        env = os.environ.get(LOCAL_LOGIN_ENV)
        if env is not None:
            return env.strip().lower() not in ("0", "false", "no", "off")
        async with self.studio.store.session() as session:
            row = await session.get(Setting, LOCAL_LOGIN_SETTING)
            if row is None:
                row = await session.scalar(select(Setting).where(Setting.key == LOCAL_LOGIN_SETTING))
        return True if row is None or not isinstance(row.value, bool) else row.value


SECURITY: web.AppKey[Security] = web.AppKey("studio_security", Security)


def install(app: web.Application, studio: Studio) -> Security:
    """Build the bundle: key files load first of all start-up steps, the rest after the store is open."""
    security = Security.build(studio)
    app[SECURITY] = security

    async def keys(_app: web.Application) -> AsyncIterator[None]:
        security.load_keys()
        yield

    async def lifecycle(_app: web.Application) -> AsyncIterator[None]:
        await security.start()
        yield

    app.cleanup_ctx.insert(0, keys)
    app.cleanup_ctx.append(lifecycle)
    return security


# --- middlewares -----------------------------------------------------------------------------------


def _security(request: web.Request) -> Security:
    return request.config_dict[SECURITY]


def _is_websocket(request: web.Request) -> bool:
    return request.headers.get("Upgrade", "").lower() == "websocket"


@web.middleware
async def host_guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse Host names that are not this machine's (DNS rebinding) before anything else runs."""
    verdict = host_verdict(request.headers.get("Host"), _security(request).hosts)
    if not verdict.ok:
        log.warning("Refused a request for a host name that is not allowed (%.64r)", request.headers.get("Host"))
    verdict.raise_if_refused()
    return await handler(request)  # type: ignore[return-value]


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
async def request_guard(request: web.Request, handler: Handler) -> web.StreamResponse:
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
    claims = security.sessions.decode_access(token) if token else None
    if claims is not None:
        request[CLAIMS] = claims
    if request.method in UNSAFE_METHODS:
        csrf_verdict(
            request.method, headers.get(CSRF_HEADER), csrf_expected(request, security, claims)
        ).raise_if_refused()
    return await handler(request)  # type: ignore[return-value]


@web.middleware
async def auth_guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Who is asking: a live session, or the local owner of a loopback-only studio; else 401."""
    security = _security(request)
    route = api_route(request.path)
    match = request.match_info
    public = route is None or (request.method, route) in PUBLIC_API or match.http_exception is not None
    claims = request.get(CLAIMS)
    identity: Identity | None = None
    if claims is not None and not claims.expired:
        identity = await security.sessions.identity(claims)
    elif ACCESS_COOKIE not in request.cookies and request.method in ("GET", "HEAD") and security.local_trust(request):
        owner = security.studio.owner_id
        identity = Identity(owner, "owner", "", None, local=True)
    if identity is not None:
        request[IDENTITY] = identity
        request[USER_ID] = identity.user_id
        request[USER_ROLE] = identity.role
    elif not public:
        expired = claims is not None and claims.expired
        raise StudioError("unauthorized", "Your session has expired" if expired else "Log in to use the studio")
    return await handler(request)  # type: ignore[return-value]


_API_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Resource-Policy": "same-origin",
}


@web.middleware
async def api_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Headers on every API answer; auth answers are never cached. No CORS header, ever."""
    response: web.StreamResponse = await handler(request)  # type: ignore[assignment]
    route = api_route(request.path)
    if route is not None and not response.prepared:
        for name, value in _API_HEADERS.items():
            response.headers.setdefault(name, value)
        if route == "/session" or route.startswith(("/auth/", "/secrets", "/users")):
            response.headers["Cache-Control"] = "no-store"
    return response


def middlewares() -> list[Callable[..., object]]:
    """The guards in order, to follow the envelope middleware."""
    return [host_guard, request_guard, auth_guard]
