"""Id kinds: the one place that names each kind's prefix and shape, for generating, validating and routing.

An id is a kind's prefix and a ULID (26 Crockford base-32 characters): it sorts by creation time, so
cursors over ids page in creation order.
"""

from __future__ import annotations

import os
import re
import threading
import time
from datetime import datetime, timezone
from typing import NamedTuple

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_ULID = "[0-9A-Z]{26}"


class IdKind(NamedTuple):
    name: str
    prefix: str

    @property
    def pattern(self) -> str:
        """The anchored regular expression, for schemas (pydantic's `pattern=`)."""
        return f"^{re.escape(self.prefix)}{_ULID}$"

    def matches(self, value: str) -> bool:
        return _COMPILED[self.prefix].fullmatch(value) is not None


JOB = IdKind("job", "j_")
IMAGE = IdKind("image", "i_")
WORKFLOW = IdKind("workflow", "w_")
WORKFLOW_VERSION = IdKind("workflow version", "wv_")
ACTION = IdKind("action", "a_")
SHORTCODE = IdKind("shortcode", "sc_")
SESSION_FAMILY = IdKind("session family", "sf_")
BOARD = IdKind("board", "b_")

KINDS = (JOB, IMAGE, WORKFLOW, WORKFLOW_VERSION, ACTION, SHORTCODE, SESSION_FAMILY, BOARD)
_COMPILED = {kind.prefix: re.compile(re.escape(kind.prefix) + _ULID) for kind in KINDS}

_lock = threading.Lock()
_last = [0, 0]


def new_id(kind: IdKind) -> str:
    """A new id of this kind: monotonic within this process."""
    with _lock:
        now = time.time_ns() // 1_000_000
        if now <= _last[0]:
            now = _last[0]
            rand = _last[1] + 1
        else:
            rand = int.from_bytes(os.urandom(10), "big") >> 1
        _last[0], _last[1] = now, rand
    return _encode(kind, now, rand)


def id_floor(kind: IdKind, at: datetime) -> str:
    """The smallest id of this kind made at ``at`` or later: a date bound as an id range."""
    aware = at if at.tzinfo is not None else at.replace(tzinfo=timezone.utc)  # naive: UTC, as the store keeps dates
    return _encode(kind, max(0, int(aware.timestamp() * 1000)), 0)


def id_at(kind: IdKind, at: datetime) -> str:
    """A new id of this kind dated ``at`` (a record of something made earlier, e.g. an imported file)."""
    aware = at if at.tzinfo is not None else at.replace(tzinfo=timezone.utc)
    return _encode(kind, max(0, int(aware.timestamp() * 1000)), int.from_bytes(os.urandom(10), "big") >> 1)


def _encode(kind: IdKind, millis: int, rand: int) -> str:
    value = (millis << 80) | rand
    chars = []
    for _ in range(26):
        chars.append(_CROCKFORD[value & 31])
        value >>= 5
    return kind.prefix + "".join(reversed(chars))
