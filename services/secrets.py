"""Secrets at rest: private key files, AES-256-GCM encrypted rows, and redaction of the studio's log lines.

Algorithm: AES-256-GCM from `cryptography` (NIST SP 800-38D) with a fresh 96-bit random nonce for every
encryption and the row's owner and name as associated data, so a ciphertext copied onto another row (or
another user's) fails to decrypt. The key is 32 random bytes in `secrets.key` (mode 0600) in the studio's
data directory, or base64url in the STUDIO_SECRET_KEY environment variable.
Rotation: a file key is replaced by `Secrets.rotate` (new key to secrets.key.next, every row re-encrypted in
one transaction, then the rename); an environment key by STUDIO_SECRET_KEY_PREVIOUS at start-up. Either
way, until the rows are committed under the new key the old key stays where the studio finds it.
Don't: reuse or derive a nonce, return a secret's value from any route, put one in an exception message,
a log line or the audit log, or accept a key file other users can read (checked on POSIX; on Windows the
file's ACL is not checked: keep the data directory in your own profile).
"""

from __future__ import annotations

import asyncio
import base64
import collections
import logging
import os
import re
import secrets as pysecrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..db import audit
from ..db import secrets as secrets_db
from ..db.models import Secret, utcnow
from ..db.store import Store
from ..engine.errors import StudioError, not_found
from ..settings_table import from_environment

log = logging.getLogger("comfyui_studio.security")

SECRET_KEY_ENV = "STUDIO_SECRET_KEY"  # noqa: S105 (a variable name, not a key)
SECRET_KEY_PREVIOUS_ENV = "STUDIO_SECRET_KEY_PREVIOUS"  # noqa: S105 (a variable name)
SECRET_KEY_FILE = "secrets.key"  # noqa: S105 (a file name)
NEXT_KEY_FILE = "secrets.key.next"  # a rotation's new key until its rows are committed
KEY_BYTES = 32
MAX_SECRET_CHARS = 4096
_BLOB_VERSION = b"\x01"
_NONCE_BYTES = 12


# --- private files ---------------------------------------------------------------------------------


class KeyFileError(RuntimeError):
    """A key file exists but must not be used (permissions too open, unreadable, malformed)."""


def check_private(path: Path) -> None:
    """Refuse a key file that anyone but its owner may read or write (POSIX only)."""
    if os.name != "posix":
        return
    mode = path.stat().st_mode
    if mode & 0o077:
        raise KeyFileError(
            f"{path} is readable or writable by other users (mode {mode & 0o777:o}); "
            f"run `chmod 600 {path}` or delete it to have a new one made"
        )


def write_private(path: Path, data: bytes) -> None:
    """Write a file that only its owner can read, atomically (never briefly world-readable)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{pysecrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def read_private(path: Path) -> bytes | None:
    """A private file's bytes, None when it does not exist; KeyFileError when its permissions are loose."""
    if not path.exists():
        return None
    check_private(path)
    return path.read_bytes()


def b64e(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def read_key(path: Path, size: int = KEY_BYTES) -> bytes | None:
    """The key in a key file the studio wrote, None when there is no such file."""
    raw = read_private(path)
    if raw is None:
        return None
    try:
        key = b64d(raw.decode("ascii").strip())
    except ValueError as exc:
        raise KeyFileError(f"{path} is not a key file the studio wrote") from exc
    if len(key) != size:
        raise KeyFileError(f"{path} holds a {len(key)}-byte key; {size} bytes expected")
    return key


def write_key(path: Path, key: bytes) -> None:
    write_private(path, (b64e(key) + "\n").encode("ascii"))


def load_or_create_key(path: Path, size: int = KEY_BYTES) -> bytes:
    key = read_key(path, size)
    if key is None:
        key = pysecrets.token_bytes(size)
        write_key(path, key)
        log.info("Created a new key file %s", path.name)
    return key


@dataclass(frozen=True)
class SecretKeys:
    """The key that seals, older keys that may still open some rows, and where the key comes from."""

    current: bytes
    older: tuple[bytes, ...] = ()
    from_environment: bool = False
    data_dir: Path | None = None  # file keys: the folder of secrets.key (and of secrets.key.next)


def _environment_key(variable: str, environ: dict[str, str] | None) -> bytes | None:
    value = str(from_environment(variable, environ))
    if not value:
        return None
    try:
        key = b64d(value)
    except ValueError:
        key = b""
    if len(key) != KEY_BYTES:
        raise KeyFileError(f"{variable} must be 32 random bytes in base64url")
    return key


def secret_keys(data_dir: Path, environ: dict[str, str] | None = None) -> SecretKeys:
    """STUDIO_SECRET_KEY (and STUDIO_SECRET_KEY_PREVIOUS) when set, else secrets.key beside the database.

    A secrets.key.next left by an unfinished rotation is the current key and secrets.key an older one:
    `Secrets.recover` then finishes the rotation once the store is open.
    """
    key = _environment_key(SECRET_KEY_ENV, environ)
    if key is not None:
        previous = _environment_key(SECRET_KEY_PREVIOUS_ENV, environ)
        older = (previous,) if previous is not None and previous != key else ()
        return SecretKeys(key, older, from_environment=True)
    pending = read_key(data_dir / NEXT_KEY_FILE)
    if pending is not None:
        old = read_key(data_dir / SECRET_KEY_FILE)
        return SecretKeys(pending, (old,) if old is not None else (), data_dir=data_dir)
    return SecretKeys(load_or_create_key(data_dir / SECRET_KEY_FILE), data_dir=data_dir)


def secret_key(data_dir: Path, environ: dict[str, str] | None = None) -> bytes:
    """The key that seals new secrets (see `secret_keys`)."""
    return secret_keys(data_dir, environ).current


# --- log redaction ---------------------------------------------------------------------------------

_PATTERNS = (
    # JWTs (ours and anyone's): header.payload.signature
    re.compile(r"eyJ[\w-]{4,}\.[\w-]{4,}\.[\w-]*"),
    # the studio's own token formats (refresh tokens, CSRF tokens)
    re.compile(r"\b(?:srt|csrf)[0-9]?_[\w.-]{8,}"),
    re.compile(r"(?i)\bBearer\s+[\w.~+/=-]+"),
    # key = value / "key": "value" for names that hold credentials
    re.compile(
        r"(?i)((?:password|passwd|secret|token|api[_-]?key|apikey|authorization|cookie)"
        r"[\"']?\s*[:=]\s*[\"']?)([^\s\"',;&}]+)"
    ),
)


class RedactionFilter(logging.Filter):
    """Scrubs credentials out of log records: known secret values plus token-shaped strings.

    ComfyUI serves its console log over HTTP (/internal/logs), so nothing secret may reach a handler.
    Logger filters do not apply to child loggers' records, so `install_redaction` puts it on every
    `comfyui_studio.*` logger.
    """

    def __init__(self) -> None:
        super().__init__()
        self._values: collections.OrderedDict[str, None] = collections.OrderedDict()

    def remember(self, value: str) -> None:
        """Redact this exact value from now on (secrets as they are stored or read)."""
        if len(value) < 6:
            return
        self._values[value] = None
        self._values.move_to_end(value)
        while len(self._values) > 2000:
            self._values.popitem(last=False)

    def redact(self, text: str) -> str:
        for value in self._values:
            if value in text:
                text = text.replace(value, "[redacted]")
        for pattern in _PATTERNS:
            if pattern.groups:
                text = pattern.sub(lambda m: m.group(1) + "[redacted]", text)
            else:
                text = pattern.sub("[redacted]", text)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:
            message = str(record.msg)
        clean = self.redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


REDACTION = RedactionFilter()


_factory_installed: list[bool] = []


def install_redaction(root: str = "comfyui_studio") -> None:
    """Attach the redaction filter to the studio's logger and every existing child (idempotent).

    A logger's filters do not see records of child loggers created later, so the record factory is
    chained too: it runs the same filter on every `comfyui_studio.*` record, and only on those.
    """
    names = [root] + [n for n in list(logging.Logger.manager.loggerDict) if n.startswith(root + ".")]
    for name in names:
        logger = logging.getLogger(name)
        if REDACTION not in logger.filters:
            logger.addFilter(REDACTION)
    if _factory_installed:
        return
    previous = logging.getLogRecordFactory()
    prefix = root + "."

    def factory(*args: object, **kwargs: object) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        if record.name == root or record.name.startswith(prefix):
            REDACTION.filter(record)
        return record

    logging.setLogRecordFactory(factory)
    _factory_installed.append(True)


# --- the secrets store -----------------------------------------------------------------------------

SECRET_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")


@dataclass(frozen=True)
class SecretBox:
    """AES-256-GCM with the row's identity as associated data."""

    key: bytes

    @staticmethod
    def _aad(owner_id: int, name: str) -> bytes:
        return f"studio-secret:{owner_id}:{name}".encode()

    def seal(self, owner_id: int, name: str, plaintext: str) -> bytes:
        nonce = pysecrets.token_bytes(_NONCE_BYTES)
        sealed = AESGCM(self.key).encrypt(nonce, plaintext.encode("utf-8"), self._aad(owner_id, name))
        return _BLOB_VERSION + nonce + sealed

    def open(self, owner_id: int, name: str, blob: bytes) -> str:
        if blob[:1] != _BLOB_VERSION or len(blob) < 1 + _NONCE_BYTES + 16:
            raise KeyFileError("A stored secret has an unknown format")
        nonce, sealed = blob[1 : 1 + _NONCE_BYTES], blob[1 + _NONCE_BYTES :]
        try:
            return AESGCM(self.key).decrypt(nonce, sealed, self._aad(owner_id, name)).decode("utf-8")
        except InvalidTag:
            raise KeyFileError(
                "A stored secret cannot be decrypted with the current key (was secrets.key replaced?)"
            ) from None

    def try_open(self, owner_id: int, name: str, blob: bytes) -> str | None:
        """The plaintext, None when this key does not open the blob."""
        try:
            return self.open(owner_id, name, blob)
        except KeyFileError:
            return None


def check_secret_name(name: str) -> str:
    if not SECRET_NAME.fullmatch(name):
        raise StudioError(
            "validation_error",
            "A secret's name is 1-64 characters: lowercase letters, digits, '_', '.', '-'",
            [{"loc": ["path", "name"], "message": "invalid secret name", "type": "name_format"}],
        )
    return name


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def _meta(row: Secret) -> dict[str, object]:
    return {"name": row.name, "created_at": _iso(row.created_at), "updated_at": _iso(row.updated_at)}


class Secrets:
    """Per-user encrypted values (the Civitai key first). Routes see names and dates, never values."""

    def __init__(self, store: Store, keys: bytes | SecretKeys) -> None:
        self.store = store
        self.keys = keys if isinstance(keys, SecretKeys) else SecretKeys(keys)
        self.box = SecretBox(self.keys.current)
        # Writes and rotations one at a time: a value sealed under the old key never lands after the re-encryption.
        self._writing = asyncio.Lock()

    async def put(self, owner_id: int, name: str, value: str) -> tuple[dict[str, object], bool]:
        check_secret_name(name)
        REDACTION.remember(value)
        async with self._writing:
            blob = self.box.seal(owner_id, name, value)
            async with self.store.transaction(owner_id) as session:
                row, created = await secrets_db.put(session, owner_id, name, blob)
                return _meta(row), created

    async def list(self, owner_id: int) -> list[dict[str, object]]:
        async with self.store.transaction(owner_id) as session:
            rows = await secrets_db.of_owner(session, owner_id)
        return [_meta(r) for r in rows]

    async def meta(self, owner_id: int, name: str) -> dict[str, object]:
        check_secret_name(name)
        async with self.store.transaction(owner_id) as session:
            row = await secrets_db.get(session, owner_id, name)
        if row is None:
            raise not_found("Secret")
        return _meta(row)

    async def delete(self, owner_id: int, name: str) -> dict[str, object]:
        check_secret_name(name)
        async with self.store.transaction(owner_id) as session:
            row = await secrets_db.get(session, owner_id, name)
            if row is None:
                raise not_found("Secret")
            await secrets_db.remove(session, row.id)
            audit.record(session, owner_id, "delete", "secrets", str(row.id), {})
        return {"name": name, "deleted": True}

    async def reveal(self, owner_id: int, name: str) -> str | None:
        """The plaintext, for services that use it (the Civitai client); never for a route."""
        async with self.store.transaction(owner_id) as session:
            row = await secrets_db.get(session, owner_id, name)
        if row is None:
            return None
        value = self._open(owner_id, name, row.ciphertext)
        REDACTION.remember(value)
        return value

    # -- studio-wide values (PostgreSQL: what every process on the database must hold alike) ---------------

    async def shared_value(self, owner_id: int, name: str, initial: Callable[[], str]) -> str:
        """The value stored under this studio-wide name; `initial()` is stored first when there is none.

        Two processes asking at once both end with the first insert's value. KeyFileError: the stored value
        opens with none of this process's secrets keys."""
        async with self._writing:
            async with self.store.transaction() as session:
                row = await secrets_db.shared(session, name)
                if row is None:
                    await secrets_db.insert_absent(session, owner_id, name, self.box.seal(owner_id, name, initial()))
            async with self.store.transaction() as session:
                row = await secrets_db.shared(session, name)
        assert row is not None
        return self._open(row.owner_id, name, row.ciphertext)

    async def read_shared(self, name: str) -> str | None:
        async with self.store.transaction() as session:
            row = await secrets_db.shared(session, name)
        return None if row is None else self._open(row.owner_id, name, row.ciphertext)

    async def update_shared(self, name: str, change: Callable[[str], str]) -> str:
        """Read, change and write a studio-wide value under a row lock: two processes changing it at once
        apply their changes one after the other. The new value."""
        async with self._writing:
            async with self.store.transaction() as session:
                row = await secrets_db.shared(session, name, for_update=True)
                if row is None:
                    raise KeyFileError(f"The store holds no {name!r}")
                value = change(self._open(row.owner_id, name, row.ciphertext))
                row.ciphertext = self.box.seal(row.owner_id, name, value)
                row.updated_at = utcnow()
        return value

    def _open(self, owner_id: int, name: str, blob: bytes) -> str:
        """Open with the current key, else with an older one still kept (a rotation not yet finished)."""
        for box in (self.box, *(SecretBox(key) for key in self.keys.older)):
            value = box.try_open(owner_id, name, blob)
            if value is not None:
                return value
        return self.box.open(owner_id, name, blob)  # raises the current key's error

    async def rotate(self, actor_id: int) -> dict[str, object]:
        """A new file key, every stored secret re-encrypted under it in one transaction, the key file replaced.

        A crash at any point leaves each row openable by a key on disk: secrets.key.next is written (0600)
        before the transaction and renamed over secrets.key after its commit; `recover` finishes the rest.
        """
        if self.keys.from_environment or self.keys.data_dir is None:
            raise StudioError(
                "conflict",
                f"The secrets key comes from {SECRET_KEY_ENV}, so it is rotated where it is set: put the old "
                f"key in {SECRET_KEY_PREVIOUS_ENV}, a new one in {SECRET_KEY_ENV}, and restart; the stored "
                "secrets are re-encrypted under the new key at start",
            )
        if self.store.dialect == "postgresql":
            # other processes may share the database: a key only this one's secrets.key holds would lock them out
            raise StudioError(
                "conflict",
                "The store is a PostgreSQL database other studio processes may share, and a key rotated here "
                f"would be in this process's secrets.key only: set the same {SECRET_KEY_ENV} on every process, "
                f"then rotate it with {SECRET_KEY_PREVIOUS_ENV} and a restart",
            )
        data_dir = self.keys.data_dir
        pending = data_dir / NEXT_KEY_FILE
        async with self._writing:
            await self._finish_pending()
            new_box = SecretBox(pysecrets.token_bytes(KEY_BYTES))
            write_key(pending, new_box.key)
            committing = False
            try:
                async with self.store.transaction(actor_id) as session:
                    rows = await secrets_db.every(session)
                    for row in rows:
                        try:
                            value = self._open(row.owner_id, row.name, row.ciphertext)
                        except KeyFileError:
                            raise StudioError(
                                "conflict",
                                "A stored secret opens with none of the secrets keys; the key was not rotated "
                                "(delete that secret, or put back the key it was stored with)",
                            ) from None
                        row.ciphertext = new_box.seal(row.owner_id, row.name, value)
                    audit.record(session, actor_id, "rotate", "secrets", "key", {"rotated": len(rows)})
                    committing = True
            except BaseException:
                if committing:
                    # The commit itself failed: it may have happened, so both keys stay and a restart settles it.
                    self.keys = SecretKeys(new_box.key, (self.box.key, *self.keys.older), data_dir=data_dir)
                    self.box = new_box
                else:
                    pending.unlink(missing_ok=True)  # rolled back: the old key still opens every row
                raise
            self.box = new_box
            self.keys = SecretKeys(new_box.key, (), data_dir=data_dir)
            self._install_next_key(data_dir)
        log.info("Rotated the secrets key: %d stored secrets re-encrypted", len(rows))
        return {"rotated": len(rows), "at": _iso(datetime.now(timezone.utc))}

    async def recover(self) -> int:
        """At start, once the store is open: rows that only an older key opens (STUDIO_SECRET_KEY_PREVIOUS, or
        secrets.key during an unfinished rotation) are re-encrypted under the current key in one transaction,
        then secrets.key.next replaces secrets.key. The number of rows re-encrypted."""
        async with self._writing:
            return await self._finish_pending()

    async def _finish_pending(self) -> int:
        pending = self.keys.data_dir is not None and (self.keys.data_dir / NEXT_KEY_FILE).exists()
        if not self.keys.older and not pending:
            return 0
        older = [SecretBox(key) for key in self.keys.older]
        moved = unreadable = 0
        async with self.store.transaction() as session:
            for row in await secrets_db.every(session):
                if self.box.try_open(row.owner_id, row.name, row.ciphertext) is not None:
                    continue
                value = next(
                    (v for box in older if (v := box.try_open(row.owner_id, row.name, row.ciphertext)) is not None),
                    None,
                )
                if value is None:
                    unreadable += 1
                    continue
                row.ciphertext = self.box.seal(row.owner_id, row.name, value)
                moved += 1
            if moved:
                audit.record(session, None, "rotate", "secrets", "key", {"rotated": moved, "at_start": True})
        if unreadable:
            log.warning("%d stored secrets open with none of the secrets keys; they are left as they are", unreadable)
        if moved:
            log.info("Re-encrypted %d stored secrets under the current secrets key", moved)
        self.keys = SecretKeys(self.box.key, (), self.keys.from_environment, self.keys.data_dir)
        if pending and self.keys.data_dir is not None:
            self._install_next_key(self.keys.data_dir)
        return moved

    @staticmethod
    def _install_next_key(data_dir: Path) -> None:
        """secrets.key.next becomes secrets.key in one rename (the old key is gone with it)."""
        os.replace(data_dir / NEXT_KEY_FILE, data_dir / SECRET_KEY_FILE)
        if os.name == "posix":  # the rename itself survives a power cut
            fd = os.open(data_dir, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
