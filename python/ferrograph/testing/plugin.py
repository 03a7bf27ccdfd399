"""ferrograph's pytest plugin (the `pytest11` entry point `ferrograph`): fixtures to test graphs
on every checkpoint saver. It does nothing unless a test asks for one of its fixtures.

- `saver` / `async_saver`: a fresh saver, set up, one test case per kind: `[memory]`,
  `[sqlite]` (a temporary file), `[postgres]` (a fresh database, see below). `saver` gives the
  sync savers (MemorySaver, SqliteSaver, PostgresSaver), `async_saver` the async ones
  (MemorySaver, AsyncSqliteSaver, AsyncPostgresSaver; needs pytest-asyncio). The kinds are
  restricted per test by `@pytest.mark.ferrograph_savers("sqlite", "postgres")` and for the
  whole run by the ini option `ferrograph_savers = memory sqlite` (or `-o ferrograph_savers=...`).
- `graph_harness`: a `GraphHarness`, to run a graph on a fresh thread and assert on its history.
- `ferrograph_postgres_url`: each test that asks for it gets a fresh, empty Postgres database
  (dropped afterwards) on the server named by FERROGRAPH_TEST_POSTGRES_URL, or else on a
  testcontainers Postgres started once per session when a Docker engine answers (image from the
  `ferrograph_postgres_image` ini option; removed when the session ends); otherwise the test is
  skipped, saying what is missing: the package, the engine or the image.
"""

from __future__ import annotations

import os
import uuid
from typing import Any, AsyncIterator, Iterator, Optional
from urllib.parse import urlsplit, urlunsplit

import pytest

from ferrograph.testing.harness import GraphHarness
from ferrograph.testing.savers import SAVER_KINDS, open_async_saver, open_saver

ENV_URL = "FERROGRAPH_TEST_POSTGRES_URL"
DEFAULT_IMAGE = "postgres:16-alpine"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        "ferrograph_postgres_image",
        "Docker image of the Postgres that ferrograph's fixtures start when "
        f"{ENV_URL} is not set (default {DEFAULT_IMAGE}; without a registry, ferrograph's "
        "scripts/postgres-image.sh builds ferrograph-postgres:15 from Debian's packages)",
        default=DEFAULT_IMAGE,
    )
    parser.addini(
        "ferrograph_savers",
        "The saver kinds the `saver` and `async_saver` fixtures run on, of "
        f"{' '.join(SAVER_KINDS)} (default: all)",
        type="args",
        default=list(SAVER_KINDS),
    )


MARKER = "ferrograph_savers"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(*kinds): run this test's `saver` / `async_saver` only on these kinds "
        f"({', '.join(SAVER_KINDS)})",
    )
    _check_kinds(config.getini("ferrograph_savers"), "the ini option ferrograph_savers")


def _kinds_problem(kinds: list[Any], where: str) -> Optional[str]:
    """What is wrong with `kinds` (naming `where` they came from), or None."""
    unknown = [k for k in kinds if k not in SAVER_KINDS]
    if not unknown and kinds:
        return None
    problem = f"unknown saver kind(s) {', '.join(map(repr, unknown))}" if unknown else "no saver kind"
    return f"{where} names {problem}; choose among: {', '.join(SAVER_KINDS)}"


def _check_kinds(kinds: Any, where: str) -> list[str]:
    """`kinds` as a list, or a usage error (pytest stops with that message)."""
    kinds = list(kinds)
    problem = _kinds_problem(kinds, where)
    if problem:
        raise pytest.UsageError(problem)
    return kinds


SAVER_FIXTURES = ("saver", "async_saver")


def _is_ours(metafunc: pytest.Metafunc, name: str) -> bool:
    """Whether `name` resolves to this plugin's fixture (not one the project overrides it with,
    nor a direct `@pytest.mark.parametrize`)."""
    for mark in metafunc.definition.iter_markers("parametrize"):
        names = mark.args[0] if mark.args else mark.kwargs.get("argnames", ())
        if isinstance(names, str):
            names = [n.strip() for n in names.split(",")]
        if name in names:
            return False
    arg2fixturedefs = getattr(metafunc, "_arg2fixturedefs", None)
    if arg2fixturedefs is None:  # a pytest without this (private) map: assume no override
        return True
    defs = arg2fixturedefs.get(name)
    if not defs:
        return False
    func = getattr(defs[-1], "func", None)
    return getattr(func, "__module__", None) == __name__ and getattr(func, "__name__", None) == name


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    names = [n for n in SAVER_FIXTURES if n in metafunc.fixturenames and _is_ours(metafunc, n)]
    if not names:
        return
    allowed = _check_kinds(metafunc.config.getini("ferrograph_savers"), "the ini option ferrograph_savers")
    kinds = allowed
    mark = metafunc.definition.get_closest_marker(MARKER)
    if mark is not None:
        asked = list(mark.args)
        problem = _kinds_problem(asked, f"@pytest.mark.{MARKER} on {metafunc.definition.nodeid}")
        if problem:  # a collection error for this module, with just the message
            pytest.fail(problem, pytrace=False)
        kinds = [k for k in asked if k in allowed]
        if not kinds:
            reason = (
                f"@pytest.mark.{MARKER} asks for {', '.join(asked)}, "
                f"but the ini option ferrograph_savers allows only {', '.join(allowed)}"
            )
            for name in names:
                metafunc.parametrize(
                    name, [pytest.param(None, marks=pytest.mark.skip(reason=reason), id="no-saver")], indirect=True
                )
            return
    for name in names:
        metafunc.parametrize(name, kinds, indirect=True, ids=kinds)


def _kind(request: pytest.FixtureRequest, name: str) -> str:
    kind = getattr(request, "param", None)
    if kind is None:
        pytest.fail(
            f"the `{name}` fixture is parametrized by ferrograph's plugin: ask for it as an argument "
            "of the test (or of a fixture the test uses), not through request.getfixturevalue",
            pytrace=False,
        )
    return kind


def _conn_string(request: pytest.FixtureRequest, kind: str, filename: str) -> Optional[str]:
    if kind == "sqlite":
        return str(request.getfixturevalue("tmp_path") / filename)
    if kind == "postgres":
        return request.getfixturevalue("ferrograph_postgres_url")
    return None


@pytest.fixture
def saver(request: pytest.FixtureRequest) -> Iterator[Any]:
    """A fresh sync checkpoint saver, set up; the test runs once per kind: `[memory]`
    (MemorySaver), `[sqlite]` (SqliteSaver on a temporary file), `[postgres]` (PostgresSaver on
    a fresh database; skipped with the reason when no Postgres is reachable). Closed afterwards."""
    kind = _kind(request, "saver")
    with open_saver(kind, _conn_string(request, kind, "checkpoints.db")) as s:
        yield s


try:
    import pytest_asyncio
except ImportError:  # pragma: no cover - the fixture explains itself when used

    @pytest.fixture
    def async_saver(request: pytest.FixtureRequest) -> Any:
        """Needs pytest-asyncio."""
        _kind(request, "async_saver")
        pytest.fail("the `async_saver` fixture needs pytest-asyncio (pip install pytest-asyncio)", pytrace=False)

else:

    @pytest_asyncio.fixture
    async def async_saver(request: pytest.FixtureRequest) -> AsyncIterator[Any]:  # type: ignore[misc]
        """A fresh async checkpoint saver, set up, on the test's event loop; the test runs once
        per kind: `[memory]` (MemorySaver), `[sqlite]` (AsyncSqliteSaver on a temporary file),
        `[postgres]` (AsyncPostgresSaver on a fresh database; skipped with the reason when no
        Postgres is reachable). Closed afterwards."""
        kind = _kind(request, "async_saver")
        async with open_async_saver(kind, _conn_string(request, kind, "async-checkpoints.db")) as s:
            yield s


@pytest.fixture
def graph_harness() -> GraphHarness:
    """Runs graphs on fresh threads: `run = graph_harness.run(app, input, saver=saver)`, then
    `run.assert_history(sources=[...], steps=[...])`, `run.assert_values(...)`,
    `run.assert_next(...)`; `await graph_harness.arun(...)` with an async saver."""
    return GraphHarness()


def with_database(url: str, dbname: str) -> str:
    """`url` (a postgresql:// URL or a key=value DSN) pointed at database `dbname`."""
    if "://" in url:
        parts = urlsplit(url)
        return urlunsplit(parts._replace(path="/" + dbname))
    from psycopg.conninfo import make_conninfo

    return make_conninfo(url, dbname=dbname)


#: Labels on the containers the plugin starts: find leftovers of a killed session with
#: `docker ps -a --filter label=org.ferrograph.testing` (the pid is the pytest process's).
CONTAINER_LABEL = "org.ferrograph.testing"
PID_LABEL = "org.ferrograph.testing.pid"

LOCAL_IMAGE_HINT = (
    "without a registry, build a Postgres image from Debian's packages with scripts/postgres-image.sh "
    "(in ferrograph's repository) and set the ini option ferrograph_postgres_image = ferrograph-postgres:15"
)


def _postgres_container_class() -> Any:
    """testcontainers' PostgresContainer: `testcontainers.community.postgres` since 4.15, where
    `testcontainers.postgres` is a deprecated alias; older 4.x releases have only the latter."""
    try:
        from testcontainers.community.postgres import PostgresContainer
    except ImportError:
        from testcontainers.postgres import PostgresContainer
    return PostgresContainer


def _testcontainers_unavailable(image: str) -> Optional[str]:
    """Why testcontainers cannot start `image` here (the package, the engine or the image is
    missing), or None when it can. An image not on the machine is pulled now, so that a registry
    out of reach is a skip with a hint rather than an error in every test."""
    try:
        import docker
        from docker.errors import ImageNotFound

        _postgres_container_class()
    except ImportError as e:
        return f"testcontainers is not installed (no module {e.name}; pip install 'ferrograph[testing]')"
    client = None
    try:
        client = docker.from_env()
        client.ping()
    except Exception as e:
        if client is not None:
            client.close()
        return f"no Docker engine answers ({type(e).__name__}: {e})"
    try:
        client.images.get(image)
    except ImageNotFound:
        try:
            client.images.pull(image)
        except Exception as e:
            return (
                f"the image {image} is not on this machine and cannot be pulled ({type(e).__name__}: {e}); "
                + LOCAL_IMAGE_HINT
            )
    finally:
        client.close()
    return None


@pytest.fixture(scope="session")
def ferrograph_postgres_server(pytestconfig: pytest.Config) -> Iterator[str]:
    """The URL of a Postgres server for this session (its maintenance database): the server of
    FERROGRAPH_TEST_POSTGRES_URL, or a container started once for the session and removed when
    it ends (also when tests failed or the run was interrupted with Ctrl-C)."""
    url = os.environ.get(ENV_URL)
    if url:
        yield url
        return
    image = pytestconfig.getini("ferrograph_postgres_image")
    reason = _testcontainers_unavailable(image)
    if reason is not None:
        pytest.skip(f"Postgres tests need {ENV_URL}, or testcontainers with a Docker engine: {reason}")
    container = _postgres_container_class()(
        image, driver=None, labels={CONTAINER_LABEL: "postgres", PID_LABEL: str(os.getpid())}
    )
    try:
        container.start()
        yield container.get_connection_url()
    finally:
        container.stop()


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
