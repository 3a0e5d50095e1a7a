"""Per-user API tokens for ComfyUI clients: made once, shown once, stored as a SHA-256 digest, revocable.

A token is `cs_` + 32 random bytes (url-safe base64). The store keeps its digest and a short prefix to tell
tokens apart in Settings; a request's token is hashed and looked up by digest, so neither the token nor its
digest is ever logged, audited (db/store.py redacts columns named *token*) or answered.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from datetime import datetime
from functools import partial

from ..db import api_tokens as repo
from ..db.models import ApiToken, utcnow
from ..db.store import Store
from ..engine.errors import StudioError, not_found

TOKEN_PREFIX = "cs_"  # noqa: S105 (a marker, not a secret)
SHOWN_PREFIX_CHARS = 10  # "cs_" and 7 characters of the random part: enough to tell tokens apart
MAX_NAME_CHARS = 64
MAX_TOKENS_PER_USER = 50
MAX_TOKEN_CHARS = 128
TOUCH_EVERY_S = 60.0  # last_used_at is written at most this often per token: a use costs no write
# A checked token is trusted this long without asking the store again (a script's burst of requests costs
# one read); a revocation here ends it at once, one in another studio process on the same store within this.
CHECKED_FOR_S = 2.0


def digest_of(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def token_to_dict(row: ApiToken) -> dict[str, object]:
    """A token as Settings shows it: never the token, never its digest."""
    return {
        "id": row.id,
        "name": row.name,
        "prefix": row.prefix,
        "created_at": _iso(row.created_at),
        "last_used_at": _iso(row.last_used_at),
        "revoked_at": _iso(row.revoked_at),
        "revoked": row.revoked_at is not None,
    }


def check_token_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > MAX_NAME_CHARS or any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise StudioError(
            "validation_error",
            f"A token's name is 1 to {MAX_NAME_CHARS} characters, no control characters",
            [{"loc": ["body", "name"], "message": "invalid name", "type": "value_error"}],
        )
    return name


class ApiTokens:
    def __init__(self, store: Store, clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.clock = clock
        self._touched: dict[int, float] = {}  # token id → when this process last wrote its last_used_at
        self._checked: dict[str, tuple[float, repo.TokenHolder]] = {}  # digest → (when, holder)

    async def create(self, owner_id: int, name: str) -> dict[str, object]:
        """A new token: the answer holds it, the only time it is ever shown."""
        name = check_token_name(name)
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        async with self.store.transaction(owner_id) as session:
            live = [t for t in await repo.of_owner(session, owner_id) if t.revoked_at is None]
            if len(live) >= MAX_TOKENS_PER_USER:
                raise StudioError("conflict", f"You have {len(live)} tokens: revoke one before making another")
            row = await repo.add(
                session, owner_id=owner_id, name=name, digest=digest_of(token), prefix=token[:SHOWN_PREFIX_CHARS]
            )
            answer = token_to_dict(row)
        return {**answer, "token": token}

    async def list(self, owner_id: int) -> list[dict[str, object]]:
        async with self.store.transaction(owner_id) as session:
            return [token_to_dict(row) for row in await repo.of_owner(session, owner_id)]

    async def revoke(self, owner_id: int, token_id: int) -> dict[str, object]:
        async with self.store.transaction(owner_id) as session:
            row = await repo.owned(session, owner_id, token_id)
            if row is None:
                raise not_found("Token")
            if row.revoked_at is None:
                row.revoked_at = utcnow()
                await session.flush()
            self._checked.pop(row.token_digest, None)
            return token_to_dict(row)

    async def holder(self, token: str) -> repo.TokenHolder | None:
        """Who an unrevoked token of an enabled user speaks for (None otherwise); notes the use."""
        if not token.startswith(TOKEN_PREFIX) or len(token) > MAX_TOKEN_CHARS:
            return None
        digest = digest_of(token)
        now = self.clock()
        checked = self._checked.get(digest)
        if checked is not None and now - checked[0] < CHECKED_FOR_S:
            return checked[1]
        # A read off the writer's queue; the lookup is by digest (an index), the check of what it found
        # constant-time all the same.
        found = await self.store.read(partial(repo.holder, digest=digest))
        if found is None or not hmac.compare_digest(found.token_digest, digest):
            self._checked.pop(digest, None)
            return None
        if len(self._checked) > 10_000:
            self._checked.clear()
        self._checked[digest] = (now, found)
        if now - self._touched.get(found.token_id, -TOUCH_EVERY_S) >= TOUCH_EVERY_S:
            self._touched[found.token_id] = now
            async with self.store.transaction() as session:
                await repo.touch(session, found.token_id, utcnow())
        return found
