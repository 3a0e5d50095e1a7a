"""Sessions: short-lived access JWTs, opaque refresh tokens rotated on every use, and CSRF tokens.

Algorithms: the access token is a JWT (RFC 7519) signed HS256 with PyJWT, decoded with an explicit
`algorithms=["HS256"]` allow-list, a required `kid` naming one of our keys, and issuer, audience and
expiry checked (so "alg": "none", a foreign key or edited claims all fail). The signing keys live in
`session.key` (0600) beside the database and can be rotated; the previous key keeps verifying until the
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
from ..db.store import Store
from ..engine.ids import SESSION_FAMILY, new_id
from .secrets import KeyFileError, b64d, b64e, read_private, write_private

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
    """The JWT signing keys in session.key: the first signs, all of them verify."""

    def __init__(self, path: Path, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self.clock = clock
        self.keys: list[SigningKey] = []

    def load(self) -> None:
        raw = read_private(self.path)
        if raw is None:
            self.keys = [self._new()]
            self._save()
            return
        try:
            data = json.loads(raw)
            self.keys = [SigningKey(k["kid"], b64d(k["key"]), float(k["created"])) for k in data["keys"]]
        except (ValueError, KeyError, TypeError) as exc:
            raise KeyFileError(f"{self.path} is not a signing-key file the studio wrote") from exc
        if not self.keys or any(len(k.key) < 32 for k in self.keys):
            raise KeyFileError(f"{self.path} holds no usable signing key")

    def _new(self) -> SigningKey:
        return SigningKey(pysecrets.token_hex(8), pysecrets.token_bytes(32), self.clock())

    def _save(self) -> None:
        data = {"keys": [{"kid": k.kid, "key": b64e(k.key), "created": k.created} for k in self.keys]}
        write_private(self.path, json.dumps(data, indent=1).encode("ascii"))

    @property
    def current(self) -> SigningKey:
        return self.keys[0]

    def get(self, kid: str) -> SigningKey | None:
        return next((k for k in self.keys if hmac.compare_digest(k.kid, kid)), None)

    def rotate(self) -> SigningKey:
        """A new signing key; older keys stay only as long as tokens they signed can still be valid."""
        fresh = self._new()
        # The key being replaced verifies for one more access lifetime; anything older goes now.
        self.keys = [fresh, self.keys[0]]
        self._save()
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

    def rotate_signing_key(self) -> str:
        key = self.keys.rotate()
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
