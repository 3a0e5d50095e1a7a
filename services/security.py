"""The security bundle of one studio: accounts, sessions, login throttles, the setup code, secrets, and
which host names and local users the request guards (server_routes/security.py) trust.

Built with the rest of the studio (services/studio.py); the key files load before the store opens, so a
refused key stops start-up with nothing open. On PostgreSQL the session signing keys are read from the store
right after it opens (`share_keys`), before anything else starts.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from ..config import StudioConfig
from ..db import settings as settings_db
from ..db.private import ensure_private_dir
from ..db.store import Store
from ..settings_table import ENVIRONMENT, from_environment, is_set, list_from_environment
from .accounts import Accounts, LoginGuard, SetupCode
from .api_tokens import ApiTokens
from .secrets import KeyFileError, Secrets, install_redaction, secret_keys
from .sessions import Sessions, SigningKeys

log = logging.getLogger("comfyui_studio.security")

LOCAL_LOGIN_ENV = "STUDIO_LOCAL_OWNER_LOGIN"
LOCAL_LOGIN_SETTING = ENVIRONMENT[LOCAL_LOGIN_ENV].name  # a stored row under this name applies when it is unset
ALLOWED_HOSTS_ENV = "STUDIO_ALLOWED_HOSTS"
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
_WILDCARDS = frozenset({"", "0.0.0.0", "::", "*"})  # noqa: S104 (these are what we look for)


# --- host names and loopback -----------------------------------------------------------------------


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
    names = set(LOOPBACK_NAMES)
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


# --- the bundle ------------------------------------------------------------------------------------


@dataclass
class Security:
    """Accounts, sessions, secrets and the request policy of one studio."""

    config: StudioConfig
    store: Store
    accounts: Accounts
    sessions: Sessions
    guard: LoginGuard
    setup_code: SetupCode
    hosts: HostPolicy
    local_owner_login: bool = True
    secrets: Secrets | None = None
    tokens: ApiTokens | None = None  # the ComfyUI-compatible routes' Bearer tokens
    owner_id: int = 0
    clock: Callable[[], float] = field(default=time.time)

    @classmethod
    def build(cls, config: StudioConfig, store: Store) -> Security:
        extra = [*config.extra_allowed_hosts, *list_from_environment(ALLOWED_HOSTS_ENV)]
        return cls(
            config=config,
            store=store,
            accounts=Accounts(store),
            sessions=Sessions(store, SigningKeys(config.data_dir / "session.key")),
            guard=LoginGuard(),
            setup_code=SetupCode(config.data_dir),
            hosts=build_host_policy(config.listen, extra),
            tokens=ApiTokens(store),
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
        return listen_is_loopback(self.config.listen)

    @property
    def login_required(self) -> bool:
        return not (self.local_owner_login and self.loopback_only)

    def load_keys(self) -> None:
        """The key files (before the store opens: a refused key stops start-up with nothing open)."""
        install_redaction()
        ensure_private_dir(self.config.data_dir)  # the studio's private folder: its owner only
        # PostgreSQL: the store holds the key set; an existing session.key only seeds it (`share_keys`).
        self.sessions.keys.load(create=not self.keys_in_store)
        self.secrets = Secrets(self.store, secret_keys(self.config.data_dir))

    @property
    def keys_in_store(self) -> bool:
        """Whether the session signing keys live in the store: on PostgreSQL, shared by every process on it."""
        return self.store.dialect == "postgresql"

    async def share_keys(self, owner_id: int) -> None:
        """Once the store is open, before anything else starts: on PostgreSQL, the signing keys every process
        on the database shares (stored by the first to start). A set this process's secrets key cannot open
        stops start-up with the store closed again."""
        if not self.keys_in_store or self.secrets is None:
            return
        try:
            await self.sessions.keys.share(self.secrets, owner_id)
        except KeyFileError:
            await self.store.close()
            raise

    async def start(self, owner_id: int) -> None:
        """After the store is open: settings from the store, the setup code when one is needed."""
        self.owner_id = owner_id
        if self.secrets is not None:
            await self.secrets.recover()  # an unfinished rotation, or STUDIO_SECRET_KEY_PREVIOUS
        self.local_owner_login = await self._local_login_setting()
        pruned = await self.sessions.prune()
        if pruned:
            log.info("Removed %d expired or revoked sessions", pruned)
        if self.login_required and await self.accounts.needs_setup(owner_id):
            path = self.setup_code.ensure()
            # The path only: ComfyUI serves its console log over HTTP at /internal/logs.
            log.warning("ComfyUI Studio needs its first-run setup: the one-time code is in %s", path)

    async def _local_login_setting(self) -> bool:
        if is_set(LOCAL_LOGIN_ENV):
            return bool(from_environment(LOCAL_LOGIN_ENV))
        async with self.store.transaction() as session:
            stored = await settings_db.read(session, [LOCAL_LOGIN_SETTING])
        value = stored.get(LOCAL_LOGIN_SETTING)
        return value if isinstance(value, bool) else True
