"""A real PostgreSQL server for the tests: initdb into a temporary directory, a loopback port, stopped at the end.

As root (CI) the server runs as the ``postgres`` user through ``runuser``: initdb and postgres refuse root.
Without PostgreSQL's binaries the tests that need it skip, unless ``CI`` is set: then they fail, as a missing
Chromium does.
"""

from __future__ import annotations

import asyncio
import glob
import itertools
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import asyncpg
import pytest

from comfyui_studio.db.store import Store

TEMPLATE = "studio_template"


def find_bin_dir() -> Path | None:
    """Debian's /usr/lib/postgresql/<version>/bin (newest first), else initdb on PATH."""
    versions = glob.glob("/usr/lib/postgresql/*/bin")
    for candidate in sorted(versions, key=lambda p: [int(n) for n in re.findall(r"\d+", p)], reverse=True):
        if (Path(candidate) / "initdb").exists() and (Path(candidate) / "postgres").exists():
            return Path(candidate)
    on_path = shutil.which("initdb")
    if on_path and shutil.which("postgres"):
        return Path(on_path).parent
    return None


def skip_or_fail_without_postgres() -> Path:
    """The binaries' folder, or a skip (a failure under CI) that says what is missing."""
    bin_dir = find_bin_dir()
    if bin_dir is not None and (os.geteuid() != 0 or _has_postgres_user()):
        return bin_dir
    reason = "needs PostgreSQL's initdb and postgres (Debian's postgresql package, /usr/lib/postgresql/*/bin)"
    if bin_dir is not None:
        reason = "runs PostgreSQL as the postgres user when root (initdb refuses root), and there is none"
    if os.environ.get("CI"):
        pytest.fail(f"CI is set but PostgreSQL is missing: {reason}")
    pytest.skip(reason)


def _has_postgres_user() -> bool:
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        return False
    return True


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PostgresServer:
    """One postgres process on 127.0.0.1:<port> with trust authentication, its data in a temporary directory."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin_dir = bin_dir
        self.root = Path(tempfile.mkdtemp(prefix="studio-pg-"))
        self.data = self.root / "data"
        self.port = _free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self._names = itertools.count(1)
        self._as_user: list[str] = []
        if os.geteuid() == 0:
            # root: the postgres user runs both, and owns the directory they write.
            account = pwd.getpwnam("postgres")
            os.chown(self.root, account.pw_uid, account.pw_gid)
            self._as_user = ["runuser", "-u", "postgres", "--"]

    def _command(self, name: str, *args: str) -> list[str]:
        return [*self._as_user, str(self.bin_dir / name), *args]

    def start(self) -> None:
        subprocess.run(
            self._command("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                          "--locale=C", "--no-sync"),
            check=True, capture_output=True,
        )  # fmt: skip
        # Durability is not what the tests check: no fsync makes CREATE DATABASE and commits cheap.
        with (self.root / "server.log").open("wb") as server_log:
            self.process = subprocess.Popen(
                self._command("postgres", "-D", str(self.data), "-p", str(self.port), "-k", str(self.root),
                              "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off",
                              "-c", "full_page_writes=off", "-c", "max_connections=200"),
                stdout=subprocess.DEVNULL, stderr=server_log,
            )  # fmt: skip
        deadline = time.monotonic() + 30
        ready = [str(self.bin_dir / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres"]
        while subprocess.run(ready, check=False).returncode != 0:
            if self.process.poll() is not None or time.monotonic() > deadline:
                log = (self.root / "server.log").read_text(errors="replace")
                raise RuntimeError(f"PostgreSQL did not start:\n{log}")
            time.sleep(0.05)
        self._in_thread(self._make_template())

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()  # smart shutdown: waits for clients, which are gone by now
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    @staticmethod
    def _in_thread(coro: object) -> None:
        # The session fixture may be set up from inside a test's running loop: migrate on a loop of its own.
        with ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, coro).result()  # type: ignore[arg-type]

    async def _make_template(self) -> None:
        conn = await asyncpg.connect(self.dsn())
        try:
            await conn.execute(f"CREATE DATABASE {TEMPLATE}")
        finally:
            await conn.close()
        store = Store(self.url(TEMPLATE))
        await store.open()
        await store.close()

    async def create_database(self, *, migrated: bool = True) -> str:
        """A fresh database (a copy of the migrated template, or empty); its name."""
        name = f"studio_test_{next(self._names)}"
        conn = await asyncpg.connect(self.dsn())
        try:
            template = f" TEMPLATE {TEMPLATE}" if migrated else ""
            await conn.execute(f"CREATE DATABASE {name}{template}")
        finally:
            await conn.close()
        return name

    async def drop_database(self, name: str) -> None:
        conn = await asyncpg.connect(self.dsn())
        try:
            await conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        finally:
            await conn.close()
