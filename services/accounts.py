"""Accounts: password hashing with scrypt, login throttling, and the one-time code for first-run setup.

Algorithm: scrypt (RFC 7914) through hashlib.scrypt with OWASP's Password Storage Cheat Sheet parameters
(N=2**17, r=8, p=1: 128 MiB and a few hundred milliseconds per hash), a 16-byte random salt per password,
and the parameters kept in the stored string so they can be raised later; hashes are compared with
hmac.compare_digest. Throttling is a sliding window per account and per address, checked *before* a
password is hashed. Don't: use a fast hash for passwords, log or return a password or a hash, answer an
unknown name differently from a wrong password (a dummy hash is verified so the timing matches), let
the KDF run on the event loop, or take the client's address from a forwarded header.
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import hmac
import logging
import re
import secrets as pysecrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..db import accounts as users_db
from ..db import audit
from ..db.models import User
from ..db.store import Store
from ..engine.errors import StudioError, not_found
from .secrets import REDACTION, KeyFileError, read_private, write_private

log = logging.getLogger("comfyui_studio.security")

USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
MIN_PASSWORD = 8
MAX_PASSWORD = 1024
SETUP_CODE_FILE = "setup-code.txt"
_CODE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


# --- password hashing ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scrypt:
    n: int = 2**17
    r: int = 8
    p: int = 1

    def hash(self, password: str) -> str:
        salt = pysecrets.token_bytes(16)
        digest = self._derive(password, salt, self.n, self.r, self.p)
        return f"scrypt${self.n}${self.r}${self.p}${salt.hex()}${digest.hex()}"

    def verify(self, password: str, stored: str) -> bool:
        try:
            scheme, n, r, p, salt, digest = stored.split("$")
            if scheme != "scrypt":
                return False
            derived = self._derive(password, bytes.fromhex(salt), int(n), int(r), int(p))
        except (ValueError, TypeError):
            return False
        return hmac.compare_digest(derived, bytes.fromhex(digest))

    @staticmethod
    def _derive(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
        return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=2**28, dklen=32)


DEFAULT_KDF = Scrypt()


# --- throttling ------------------------------------------------------------------------------------


class Throttle:
    """Failures per key in a sliding window; in memory (a refused attempt writes nothing)."""

    MAX_KEYS = 10_000

    def __init__(self, limit: int, window_s: float, clock: Callable[[], float] = time.time) -> None:
        self.limit = limit
        self.window_s = window_s
        self.clock = clock
        self._fails: collections.OrderedDict[str, collections.deque[float]] = collections.OrderedDict()

    def _recent(self, key: str) -> collections.deque[float]:
        now = self.clock()
        fails = self._fails.get(key)
        if fails is None:
            return collections.deque()
        while fails and fails[0] <= now - self.window_s:
            fails.popleft()
        if not fails:
            del self._fails[key]
        return fails

    def retry_after(self, key: str) -> float:
        """Seconds until the next attempt is allowed (0: allowed now)."""
        fails = self._recent(key)
        if len(fails) < self.limit:
            return 0.0
        return max(1.0, fails[0] + self.window_s - self.clock())

    def fail(self, key: str) -> None:
        fails = self._fails.setdefault(key, collections.deque())
        fails.append(self.clock())
        self._fails.move_to_end(key)
        while len(fails) > self.limit * 2:
            fails.popleft()
        while len(self._fails) > self.MAX_KEYS:
            self._fails.popitem(last=False)

    def reset(self, key: str) -> None:
        self._fails.pop(key, None)


class LoginGuard:
    """Per-account and per-address limits for everything that checks a password or a setup code."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.per_account = Throttle(5, 15 * 60, clock)
        self.per_address = Throttle(20, 15 * 60, clock)

    def check(self, address: str, account: str | None) -> None:
        wait = self.per_address.retry_after(f"addr:{address}")
        if account is not None:
            wait = max(wait, self.per_account.retry_after(f"acct:{account.lower()}"))
        if wait > 0:
            seconds = int(wait + 0.999)
            raise StudioError(
                "too_many_requests",
                f"Too many failed attempts; try again in {seconds} seconds",
                [{"loc": [], "message": "throttled", "type": "throttled", "retry_after": seconds}],
            )

    def failed(self, address: str, account: str | None) -> None:
        self.per_address.fail(f"addr:{address}")
        if account is not None:
            self.per_account.fail(f"acct:{account.lower()}")

    def succeeded(self, account: str) -> None:
        self.per_account.reset(f"acct:{account.lower()}")


# --- accounts --------------------------------------------------------------------------------------


def check_username(name: str) -> str:
    if not USERNAME.fullmatch(name):
        raise StudioError(
            "validation_error",
            "A user name is 1-64 characters: letters, digits, '_', '.', '-', starting with a letter or digit",
            [{"loc": ["body", "username"], "message": "invalid user name", "type": "name_format"}],
        )
    return name


def check_password(password: str, field: str = "password") -> str:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise StudioError(
            "validation_error",
            f"A password has {MIN_PASSWORD} to {MAX_PASSWORD} characters",
            [{"loc": ["body", field], "message": "password length", "type": "password_length"}],
        )
    return password


def user_to_dict(user: User) -> dict[str, object]:
    return {
        "id": user.id,
        "username": user.username,
        "role": user.role,
        "disabled": user.disabled,
        "has_password": user.password_hash is not None,
        "created_at": user.created_at.isoformat().replace("+00:00", "Z"),
    }


class Accounts:
    """Users and their passwords. The KDF runs in worker threads, at most two at a time."""

    def __init__(self, store: Store, kdf: Scrypt = DEFAULT_KDF) -> None:
        self.store = store
        self.kdf = kdf
        self._kdf_slots = asyncio.Semaphore(2)
        self._dummy: str | None = None

    async def _hash(self, password: str) -> str:
        async with self._kdf_slots:
            return await asyncio.to_thread(self.kdf.hash, password)

    async def _verify(self, password: str, stored: str | None) -> bool:
        if stored is None:
            # Same work for an unknown user as for a wrong password.
            if self._dummy is None:
                self._dummy = await self._hash(pysecrets.token_urlsafe(16))
            stored = self._dummy
            async with self._kdf_slots:
                await asyncio.to_thread(self.kdf.verify, password, stored)
            return False
        async with self._kdf_slots:
            return await asyncio.to_thread(self.kdf.verify, password, stored)

    async def get(self, user_id: int) -> User | None:
        async with self.store.transaction() as session:
            return await users_db.get(session, user_id)

    async def authenticate(self, username: str, password: str) -> User | None:
        """The enabled user with this name and password, or None (whatever the reason)."""
        user = None
        if USERNAME.fullmatch(username):
            async with self.store.transaction() as session:
                user = await users_db.by_username(session, username)
        usable = user is not None and not user.disabled and user.password_hash is not None
        ok = await self._verify(password, user.password_hash if usable and user else None)
        return user if ok and usable else None

    async def verify_password(self, user_id: int, password: str) -> bool:
        user = await self.get(user_id)
        return await self._verify(password, user.password_hash if user else None)

    async def list(self) -> list[dict[str, object]]:
        async with self.store.transaction() as session:
            users = await users_db.all_users(session)
        return [user_to_dict(u) for u in users]

    async def create(self, actor_id: int, username: str, password: str, role: str = "user") -> dict[str, object]:
        check_username(username)
        check_password(password)
        hashed = await self._hash(password)
        async with self.store.transaction(actor_id) as session:
            if await users_db.name_taken(session, username):
                raise StudioError("conflict", "That user name is taken")
            user = await users_db.add(session, username=username, role=role, password_hash=hashed, disabled=False)
            return user_to_dict(user)

    async def set_disabled(self, actor_id: int, user_id: int, disabled: bool) -> dict[str, object]:
        async with self.store.transaction(actor_id) as session:
            user = await users_db.get(session, user_id)
            if user is None:
                raise not_found("User")
            if user.role == "owner":
                raise StudioError("forbidden", "The owner cannot be disabled")
            user.disabled = disabled
            return user_to_dict(user)

    async def set_password(self, actor_id: int, user_id: int, password: str, *, field: str = "password") -> None:
        check_password(password, field)
        hashed = await self._hash(password)
        async with self.store.transaction(actor_id) as session:
            user = await users_db.get(session, user_id)
            if user is None:
                raise not_found("User")
            user.password_hash = hashed

    async def setup_owner(self, owner_id: int, username: str, password: str) -> User:
        """First run: name the owner and give it its password (once: only while it has none)."""
        check_username(username)
        check_password(password)
        hashed = await self._hash(password)
        async with self.store.transaction(owner_id) as session:
            owner = await users_db.get(session, owner_id)
            if owner is None or owner.password_hash is not None:
                raise StudioError("conflict", "The studio is already set up; log in instead")
            if await users_db.name_taken(session, username, except_id=owner_id):
                raise StudioError("conflict", "That user name is taken")
            owner.username = username
            owner.password_hash = hashed
            audit.record(session, owner_id, "setup", "users", str(owner_id))
            return owner

    async def needs_setup(self, owner_id: int) -> bool:
        owner = await self.get(owner_id)
        return owner is not None and owner.password_hash is None


# --- the one-time setup code -----------------------------------------------------------------------


class SetupCode:
    """A one-time code in a 0600 file of the data directory; only its path is ever logged."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / SETUP_CODE_FILE

    def ensure(self) -> Path:
        """Make the code file if there is none (or the old one had loose permissions)."""
        try:
            existing = read_private(self.path)
        except KeyFileError:
            self.path.unlink()
            existing = None
        if existing is None or not existing.strip():
            groups = ["".join(pysecrets.choice(_CODE_ALPHABET) for _ in range(4)) for _ in range(5)]
            write_private(self.path, ("-".join(groups) + "\n").encode("ascii"))
        code = self._read()
        if code:
            REDACTION.remember(code)
        return self.path

    def _read(self) -> str | None:
        try:
            raw = read_private(self.path)
        except KeyFileError:
            return None
        return raw.decode("ascii", "replace").strip() if raw else None

    def matches(self, code: str) -> bool:
        expected = self._read()
        if not expected:
            return False
        normalize = lambda s: s.strip().upper().replace("-", "").replace(" ", "")  # noqa: E731
        return hmac.compare_digest(normalize(code).encode(), normalize(expected).encode())

    def consume(self) -> None:
        self.path.unlink(missing_ok=True)
