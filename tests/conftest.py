"""Shared fixtures: the studio on the ComfyUI test host (SQLite or PostgreSQL), and its API client (studio_api)."""

from __future__ import annotations

import base64
import logging
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest
from harness import StudioRun, start_studio
from pg import PostgresServer, skip_or_fail_without_postgres
from studio_api import Api

from comfyui_studio.db.store import Store


class _WriterFailures(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture(autouse=True)
def the_job_writer_never_fails(request: pytest.FixtureRequest) -> Iterator[None]:
    """A batch the lifecycle's writer cannot store is lost state: every test fails on one, unless it says
    it provokes one (``@pytest.mark.writer_may_fail``)."""
    handler = _WriterFailures()
    logger = logging.getLogger("comfyui_studio.live")
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
    if request.node.get_closest_marker("writer_may_fail") is None:
        assert handler.messages == [], handler.messages


DATABASES = ("sqlite", "postgresql")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A test marked ``both_databases`` runs once per database: its ``store`` is SQLite, then PostgreSQL."""
    if "database" in metafunc.fixturenames and metafunc.definition.get_closest_marker("both_databases"):
        metafunc.parametrize("database", DATABASES, indirect=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One PostgreSQL server for the whole run, started the first time a test needs it."""
    server = PostgresServer(skip_or_fail_without_postgres())
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture
def database(request: pytest.FixtureRequest) -> str:
    """Which database the ``store`` fixture opens: SQLite unless the test is marked ``both_databases``."""
    return str(getattr(request, "param", "sqlite"))


@pytest.fixture
async def postgres_url(postgres_server: PostgresServer, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[str]:
    """A fresh database of its own on the test server, already migrated (a copy of the migrated template).

    Studio processes sharing a database share their secrets key (it seals the session signing keys they
    share): the test's studios get one STUDIO_SECRET_KEY, as a deployment sets the same value on each."""
    monkeypatch.setenv("STUDIO_SECRET_KEY", base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("="))
    name = await postgres_server.create_database()
    yield postgres_server.url(name)
    await postgres_server.drop_database(name)


@pytest.fixture
def store_url(tmp_path: Path, database: str, request: pytest.FixtureRequest) -> str:
    """The ``store`` fixture's database: a file in the test's data directory, or a fresh PostgreSQL database."""
    if database == "postgresql":
        return str(request.getfixturevalue("postgres_url"))
    return f"sqlite+aiosqlite:///{tmp_path / 'studio.db'}"


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[Store]:
    """A migrated store, no studio around it (SQLite unless the test is marked ``both_databases``)."""
    s = Store(store_url)
    await s.open()
    yield s
    await s.close()


@pytest.fixture
def studio_database(database: str, request: pytest.FixtureRequest) -> dict[str, object]:
    """The ``run`` fixture's database setting: SQLite's default file, or a fresh PostgreSQL database."""
    if database == "postgresql":
        return {"db_url": request.getfixturevalue("postgres_url")}
    return {}


@pytest.fixture
async def run(tmp_path: Path, studio_database: dict[str, object]) -> AsyncIterator[StudioRun]:
    studio_run = await start_studio(tmp_path, **studio_database)
    yield studio_run
    await studio_run.stop()


@pytest.fixture
async def api(run: StudioRun) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession() as session:
        yield Api(session, run.api)


@pytest.fixture
async def slow_run(tmp_path: Path) -> AsyncIterator[StudioRun]:
    """The studio on a test host whose nodes take 0.3 s each: jobs stay queued and running long enough to act on."""
    studio_run = await start_studio(tmp_path, node_delay=0.3)
    yield studio_run
    await studio_run.stop()


@pytest.fixture
async def slow_api(slow_run: StudioRun) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession() as session:
        yield Api(session, slow_run.api)
