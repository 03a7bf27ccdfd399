"""ferrograph's pytest plugin: fixtures that reach real databases.

`ferrograph_postgres_url` gives each test that asks for it a fresh, empty Postgres database
(dropped afterwards) on the server named by FERROGRAPH_TEST_POSTGRES_URL, or else on a
testcontainers Postgres started once per session when a Docker engine answers (image from the
`ferrograph_postgres_image` ini option); otherwise the test is skipped, saying why.
"""

from __future__ import annotations

import os
import uuid
from typing import Iterator, Optional
from urllib.parse import urlsplit, urlunsplit

import pytest

ENV_URL = "FERROGRAPH_TEST_POSTGRES_URL"
DEFAULT_IMAGE = "postgres:16-alpine"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        "ferrograph_postgres_image",
        "Docker image of the Postgres that ferrograph's fixtures start when "
        f"{ENV_URL} is not set (default {DEFAULT_IMAGE})",
        default=DEFAULT_IMAGE,
    )


def with_database(url: str, dbname: str) -> str:
    """`url` (a postgresql:// URL or a key=value DSN) pointed at database `dbname`."""
    if "://" in url:
        parts = urlsplit(url)
        return urlunsplit(parts._replace(path="/" + dbname))
    from psycopg.conninfo import make_conninfo

    return make_conninfo(url, dbname=dbname)


def _docker_unavailable() -> Optional[str]:
    """Why testcontainers cannot start Postgres here, or None when it can."""
    try:
        import docker
        import testcontainers.postgres  # noqa: F401
    except ImportError as e:
        return f"testcontainers is not installed ({e.name})"
    try:
        docker.from_env().ping()
    except Exception as e:
        return f"no Docker engine answers ({type(e).__name__}: {e})"
    return None


@pytest.fixture(scope="session")
def ferrograph_postgres_server(pytestconfig: pytest.Config) -> Iterator[str]:
    """The URL of a Postgres server for this session (its maintenance database)."""
    url = os.environ.get(ENV_URL)
    if url:
        yield url
        return
    reason = _docker_unavailable()
    if reason is not None:
        pytest.skip(f"Postgres tests need {ENV_URL} or a Docker engine for testcontainers: {reason}")
    from testcontainers.postgres import PostgresContainer

    with PostgresContainer(pytestconfig.getini("ferrograph_postgres_image"), driver=None) as container:
        yield container.get_connection_url()


@pytest.fixture
def ferrograph_postgres_url(ferrograph_postgres_server: str) -> Iterator[str]:
    """A fresh database for this test on the session's server; dropped when the test ends."""
    import psycopg
    from psycopg import sql

    dbname = f"ferrograph_test_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(ferrograph_postgres_server, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    try:
        yield with_database(ferrograph_postgres_server, dbname)
    finally:
        with psycopg.connect(ferrograph_postgres_server, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname)))
