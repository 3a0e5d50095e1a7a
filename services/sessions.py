"""Sessions: short-lived access JWTs, opaque refresh tokens rotated on every use, and CSRF tokens.

Algorithms: the access token is a JWT (RFC 7519) signed HS256 with PyJWT, decoded with an explicit
`algorithms=["HS256"]` allow-list, a required `kid` naming one of our keys, and issuer, audience and
expiry checked (so "alg": "none", a foreign key or edited claims all fail). The signing keys live in
`session.key` (0600) beside the database, or on PostgreSQL in the store sealed with the secrets key (every
process on the database shares them), and can be rotated; the previous key keeps verifying until the
last token it signed has expired. The refresh token is 256 random bits, stored only as its SHA-256,
rotated on every use; presenting one that was already rotated revokes its whole family (OAuth 2.0
Security BCP, RFC 9700 §4.14.2, "refresh token rotation"). CSRF tokens are HMAC-SHA256 over the session
family (or, before login, over a random per-browser nonce cookie): OWASP's signed double-submit/
synchronizer token, compared with hmac.compare_digest.
Don't: put anything secret in a JWT (it is only signed), decode one without pinning the algorithm,
store or log a refresh token in clear, compare tokens with ==, or trust a session whose family has
been revoked just because its JWT has not expired yet (every request checks the family).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import secrets as pysecrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import jwt

from ..db import audit
from ..db import sessions as sessions_db
from ..db.models import SessionFamily, User
from ..db.secrets import SHARED_PREFIX
from ..db.store import Store
from ..engine.ids import SESSION_FAMILY, new_id
from .secrets import (
    SECRET_KEY_ENV,
    SECRET_KEY_FILE,
    KeyFileError,
    Secrets,
    b64d,
    b64e,
    read_private,
    write_private,
)

log = logging.getLogger("comfyui_studio.security")

SIGNING_KEY_FILE = "session.key"
ACCESS_TTL_S = 15 * 60
REFRESH_TTL_S = 30 * 24 * 3600
# A rotated token presented again this soon is a second tab racing the first, not a theft.
REUSE_GRACE_S = 5.0
ISSUER = "comfyui-studio"
AUDIENCE = "studio"
ALGORITHM = "HS256"
REFRESH_PREFIX = "srt1_"
CSRF_PREFIX = "csrf1_"
# PostgreSQL: the shared key set's row in the secrets table (a name no user's secret can have).
SHARED_KEYS_NAME = SHARED_PREFIX + "session-keys"
SHARED_KEYS_REFUSED = (
    "The session signing keys in the database cannot be decrypted with this process's secrets key: studio "
    f"processes sharing a database must share {SECRET_KEY_ENV} (set the same value on each) or the same "
    f"{SECRET_KEY_FILE}"
)
# A token naming a key this process does not know reads the store's set again, at most this often.
UNKNOWN_KID_RELOAD_S = 2.0
# And the set is read again this often anyway, so a process signs with the key another one rotated to.
REFRESH_INTERVAL_S = 60.0


# --- signing keys ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SigningKey:
    kid: str
    key: bytes
    created: float

    @property
    def csrf_key(self) -> bytes:
        return hmac.new(self.key, b"studio-csrf-v1", hashlib.sha256).digest()


class SigningKeys:
    """The JWT signing keys: the first signs, all of them verify.

    SQLite: in session.key. PostgreSQL: in the store, sealed with the secrets key (`share`), so every studio
    process on the database signs and verifies with the same set; a process reads it again when a token
    names a key it does not know (another process rotated) and every REFRESH_INTERVAL_S anyway.
    """

    def __init__(self, path: Path, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self.clock = clock
        self.keys: list[SigningKey] = []
        self.shared: Secrets | None = None  # set on PostgreSQL: the key set lives in the store
        self._read_at = 0.0  # time.monotonic() of the last read of the store's set
        self._unknown_reload_at = -UNKNOWN_KID_RELOAD_S
        self._reading = asyncio.Lock()

    def load(self, *, create: bool = True) -> None:
        """The key file; made when missing unless `create` is False (PostgreSQL: the store makes the set)."""
        raw = read_private(self.path)
        if raw is None:
            if create:
                self.keys = [self._new()]
                self._save()
            return
        self.keys = self._decode(raw, str(self.path))

    @staticmethod
    def _decode(raw: bytes | str, where: str) -> list[SigningKey]:
        try:
            data = json.loads(raw)
            keys = [SigningKey(k["kid"], b64d(k["key"]), float(k["created"])) for k in data["keys"]]
        except (ValueError, KeyError, TypeError) as exc:
            raise KeyFileError(f"{where} is not a signing-key set the studio wrote") from exc
        if not keys or any(len(k.key) < 32 for k in keys):
            raise KeyFileError(f"{where} holds no usable signing key")
        return keys

    @staticmethod
    def _encode(keys: list[SigningKey]) -> str:
        return json.dumps({"keys": [{"kid": k.kid, "key": b64e(k.key), "created": k.created} for k in keys]}, indent=1)

    def _new(self) -> SigningKey:
        return SigningKey(pysecrets.token_hex(8), pysecrets.token_bytes(32), self.clock())

    def _save(self) -> None:
        write_private(self.path, self._encode(self.keys).encode("ascii"))

    async def share(self, secrets: Secrets, owner_id: int) -> None:
        """PostgreSQL: use the key set in the store. The first process to start stores one (its session.key's
        keys when it has that file, so sessions signed before survive; else new ones); the others load it.
        KeyFileError when this process's secrets key cannot open it."""
        seed = self.keys or [self._new()]
        try:
            stored = await secrets.shared_value(owner_id, SHARED_KEYS_NAME, lambda: self._encode(seed))
        except KeyFileError:
            raise KeyFileError(SHARED_KEYS_REFUSED) from None
        keys = self._decode(stored, "The database's session signing keys")
        if self.keys and self.path.exists():
            kept = {k.kid for k in self.keys} <= {k.kid for k in keys}
            log.info(
                "The session signing keys are kept in the database; %s %s",
                self.path.name,
                "was copied there and is no longer read" if kept else "is not used (the database already had keys)",
            )
        self.keys = keys
        self.shared = secrets
        self._read_at = time.monotonic()

    async def reload(self) -> bool:
        """Read the store's key set again; whether it changed. A set this process cannot open (the secrets
        key changed under it) keeps the keys it has."""
        if self.shared is None:
            return False
        async with self._reading:
            try:
                stored = await self.shared.read_shared(SHARED_KEYS_NAME)
                keys = self._decode(stored, "The database's session signing keys") if stored is not None else None
            except KeyFileError as exc:
                log.warning("Kept this process's session signing keys: %s", exc)
                return False
            self._read_at = time.monotonic()
            if keys is None or [k.kid for k in keys] == [k.kid for k in self.keys]:
                return False
            self.keys = keys
            log.info("Loaded the session signing keys another studio process rotated (key id %s)", keys[0].kid)
            return True

    async def follow(self, kid: str | None) -> None:
        """Before verifying a token: a key id this process does not know reads the store again (at most once
        every UNKNOWN_KID_RELOAD_S, so forged ids cannot flood the database), and so does a set read more
        than REFRESH_INTERVAL_S ago (this process then signs with the key another one rotated to)."""
        if self.shared is None:
            return
        now = time.monotonic()
        unknown = kid is not None and self.get(kid) is None
        if unknown and now - self._unknown_reload_at >= UNKNOWN_KID_RELOAD_S:
            self._unknown_reload_at = now
        elif now - self._read_at < REFRESH_INTERVAL_S:
            return
        self._read_at = now  # one reader: requests arriving meanwhile do not queue up reads
        await self.reload()

    @property
    def current(self) -> SigningKey:
        return self.keys[0]

    def get(self, kid: str) -> SigningKey | None:
        return next((k for k in self.keys if hmac.compare_digest(k.kid, kid)), None)

    async def rotate(self) -> SigningKey:
        """A new signing key; older keys stay only as long as tokens they signed can still be valid."""
        fresh = self._new()
        if self.shared is None:
            # The key being replaced verifies for one more access lifetime; anything older goes now.
            self.keys = [fresh, self.keys[0]]
            self._save()
        else:
            # The same rule on the store's set, under its row lock: another process may have rotated it.
            stored = await self.shared.update_shared(
                SHARED_KEYS_NAME,
                lambda value: self._encode([fresh, self._decode(value, "The database's session signing keys")[0]]),
            )
            self.keys = self._decode(stored, "The database's session signing keys")
            self._read_at = time.monotonic()
        log.info("Rotated the session signing key (new key id %s)", fresh.kid)
        return fresh


# --- tokens ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AccessClaims:
    user_id: int
    family_id: str
    expires: float
    expired: bool


@dataclass(frozen=True)
class Identity:
    user_id: int
    role: str
    username: str
    family_id: str | None
    local: bool


@dataclass(frozen=True)
class Issued:
    access: str
    refresh: str
    family_id: str
    csrf: str
    identity: Identity


class RefreshRefused(Exception):
    """Why a refresh token was not accepted: unknown, expired, revoked, reused."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def refresh_family(token: str) -> str | None:
    """The family id a refresh token names (not a secret; the random part is)."""
    if not token.startswith(REFRESH_PREFIX):
        return None
    family, _, rest = token[len(REFRESH_PREFIX) :].partition(".")
    return family if family.startswith("sf_") and len(family) <= 32 and rest else None


def _key_id(token: str) -> str | None:
    """The `kid` a token's header names (unverified: only to pick a key), None for anything else."""
    if len(token) > 4096:
        return None
    try:
        kid = jwt.get_unverified_header(token).get("kid")
    except jwt.InvalidTokenError:
        return None
    return kid if isinstance(kid, str) else None


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, timezone.utc)


class Sessions:
    """Issues, checks, rotates and revokes sessions. `clock` is injectable (tests move time)."""

    def __init__(self, store: Store, keys: SigningKeys, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.keys = keys
        self.clock = clock
        self.reuse_grace_s = REUSE_GRACE_S
        # Active families seen recently: family id -> (user id, role, username). Every revocation goes
        # through this object, which drops the entry, so the cache never outlives a revocation.
        self._active: dict[str, tuple[int, str, str, float]] = {}

    # -- CSRF ----------------------------------------------------------------------------------------

    def _csrf(self, key: SigningKey, scope: str) -> str:
        mac = hmac.new(key.csrf_key, scope.encode("utf-8"), hashlib.sha256).digest()
        return CSRF_PREFIX + b64e(mac)

    def csrf_for_family(self, family_id: str) -> str:
        return self._csrf(self.keys.current, f"family:{family_id}")

    def csrf_for_nonce(self, nonce: str) -> str:
        return self._csrf(self.keys.current, f"nonce:{nonce}")

    def csrf_candidates(self, family_ids: list[str], nonce: str | None) -> list[str]:
        scopes = [f"family:{f}" for f in family_ids] + ([f"nonce:{nonce}"] if nonce else [])
        return [self._csrf(k, s) for k in self.keys.keys for s in scopes]

    # -- access tokens -------------------------------------------------------------------------------

    def _access_token(self, user_id: int, family_id: str) -> str:
        now = int(self.clock())
        key = self.keys.current
        claims = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": str(user_id),
            "fam": family_id,
            "iat": now,
            "exp": now + ACCESS_TTL_S,
        }
        return jwt.encode(claims, key.key, algorithm=ALGORITHM, headers={"kid": key.kid})

    async def verify_access(self, token: str | None) -> AccessClaims | None:
        """`decode_access`, once the key set is current: on PostgreSQL a token may be signed by a key another
        studio process rotated to after this one read the set."""
        await self.keys.follow(_key_id(token) if token else None)
        return self.decode_access(token) if token else None

    def decode_access(self, token: str) -> AccessClaims | None:
        """The claims of a token we signed (expired ones too, flagged), or None for anything else."""
        if not token or len(token) > 4096:
            return None
        try:
            header = jwt.get_unverified_header(token)
            kid = header.get("kid")
            if header.get("alg") != ALGORITHM or not isinstance(kid, str):
                return None
            key = self.keys.get(kid)
            if key is None:
                return None
            claims = jwt.decode(
                token,
                key.key,
                algorithms=[ALGORITHM],
                audience=AUDIENCE,
                issuer=ISSUER,
                options={"verify_exp": False, "verify_iat": False, "require": ["exp", "iat", "sub", "fam"]},
            )
            user_id = int(claims["sub"])
            family_id = str(claims["fam"])
            expires = float(claims["exp"])
            issued = float(claims["iat"])
        except (jwt.InvalidTokenError, ValueError, TypeError, KeyError):
            return None
        now = self.clock()
        if issued > now + 60 or expires - issued > ACCESS_TTL_S + 1:
            return None
        return AccessClaims(user_id, family_id, expires, expired=now >= expires)

    async def identity(self, claims: AccessClaims) -> Identity | None:
        """Who a valid, unexpired access token speaks for, if its family is still alive."""
        if claims.expired:
            return None
        cached = self._active.get(claims.family_id)
        if cached is None or cached[3] <= self.clock():
            async with self.store.transaction() as session:
                row = await sessions_db.family_with_user(session, claims.family_id)
            if row is None:
                return None
            family, user = row
            if family.revoked_at is not None or user.disabled or family.expires_at <= _dt(self.clock()):
                return None
            cached = (user.id, user.role, user.username, family.expires_at.timestamp())
            if len(self._active) > 10_000:
                self._active.clear()
            self._active[claims.family_id] = cached
        user_id, role, username, _expires = cached
        if user_id != claims.user_id:
            return None
        return Identity(user_id, role, username, claims.family_id, local=False)

    # -- issuing and rotating ------------------------------------------------------------------------

    def _new_refresh(self, family_id: str) -> str:
        return f"{REFRESH_PREFIX}{family_id}.{pysecrets.token_urlsafe(32)}"

    async def open(self, user: User, *, local: bool = False, reason: str = "login") -> Issued:
        """A new session family for this user, with its first refresh token and access token."""
        now = self.clock()
        family_id = new_id(SESSION_FAMILY)
        refresh = self._new_refresh(family_id)
        async with self.store.transaction(user.id) as session:
            expires = _dt(now + REFRESH_TTL_S)
            await sessions_db.add_family(session, family_id, user.id, local=local, now=_dt(now), expires_at=expires)
            sessions_db.add_token(session, family_id, token_hash(refresh), _dt(now), expires)
            if not local:
                audit.record(session, user.id, reason, "session_families", family_id)
        identity = Identity(user.id, user.role, user.username, family_id, local)
        return Issued(
            self._access_token(user.id, family_id), refresh, family_id, self.csrf_for_family(family_id), identity
        )

    async def refresh(self, token: str) -> Issued | None:
        """Rotate a refresh token. None: a second tab raced this one (no new tokens, nothing revoked).

        Raises RefreshRefused when the token is unknown, expired or revoked; a token that was already
        rotated (outside the short race window) revokes its whole family first.
        """
        family_hint = refresh_family(token)
        if family_hint is None:
            raise RefreshRefused("unknown")
        now = self.clock()
        digest = token_hash(token)
        async with self.store.transaction() as session:
            row = await sessions_db.token_by_hash(session, digest)
            if row is None or row.family_id != family_hint:
                raise RefreshRefused("unknown")
            found = await sessions_db.family_with_user(session, row.family_id)
            family, user = found if found is not None else (None, None)
            if family is None or user is None:
                raise RefreshRefused("unknown")
            if family.revoked_at is not None:
                raise RefreshRefused("revoked")
            if row.used_at is not None:
                if now - row.used_at.timestamp() <= self.reuse_grace_s:
                    return None
                await self._revoke(session, family, "refresh_reuse", now)
                log.warning("A rotated refresh token was presented again: session family %s revoked", family.id)
                reused = True
            else:
                reused = False
            if not reused:
                if row.expires_at <= _dt(now) or family.expires_at <= _dt(now):
                    raise RefreshRefused("expired")
                if user.disabled:
                    raise RefreshRefused("revoked")
                if not await sessions_db.claim_token(session, row.id, _dt(now)):
                    return None
                fresh = self._new_refresh(family.id)
                sessions_db.add_token(session, family.id, token_hash(fresh), _dt(now), family.expires_at)
                family.last_used_at = _dt(now)
        if reused:
            raise RefreshRefused("reused")
        identity = Identity(user.id, user.role, user.username, family.id, family.local)
        return Issued(
            self._access_token(user.id, family.id), fresh, family.id, self.csrf_for_family(family.id), identity
        )

    # -- revoking ------------------------------------------------------------------------------------

    async def _revoke(self, session: Any, family: SessionFamily, reason: str, now: float) -> None:
        family.revoked_at = _dt(now)
        family.revoked_reason = reason
        self._active.pop(family.id, None)
        audit.record(session, family.user_id, "revoke", "session_families", family.id, {"reason": reason})

    async def revoke_family(self, family_id: str, reason: str) -> bool:
        async with self.store.transaction() as session:
            family = await sessions_db.get_family(session, family_id)
            if family is None or family.revoked_at is not None:
                self._active.pop(family_id, None)
                return False
            await self._revoke(session, family, reason, self.clock())
        return True

    async def revoke_user(self, user_id: int, reason: str) -> int:
        """End every session of this user (logout everywhere, password change, disabled account)."""
        async with self.store.transaction() as session:
            families = await sessions_db.live_families(session, user_id)
            for family in families:
                await self._revoke(session, family, reason, self.clock())
        for fam, cached in list(self._active.items()):
            if cached[0] == user_id:
                self._active.pop(fam, None)
        return len(families)

    async def prune(self, *, keep_days: float = 7.0) -> int:
        """Delete session families expired or revoked more than keep_days ago (their tokens cascade)."""
        cutoff = _dt(self.clock() - keep_days * 86400)
        async with self.store.transaction() as session:
            return await sessions_db.prune(session, cutoff)

    async def rotate_signing_key(self) -> str:
        key = await self.keys.rotate()
        return key.kid

    @staticmethod
    def nonce() -> str:
        return base64.urlsafe_b64encode(pysecrets.token_bytes(24)).decode("ascii").rstrip("=")


__all__ = [
    "ACCESS_TTL_S",
    "REFRESH_TTL_S",
    "AccessClaims",
    "Identity",
    "Issued",
    "RefreshRefused",
    "Sessions",
    "SigningKeys",
    "refresh_family",
]
