"""Postgres savers opened from a URL survive the server ending their connection, and work through
PgBouncer in transaction pooling mode.

- `from_conn_string` savers (sync and async) open a new connection in place of one the server
  ended (`pg_terminate_backend` between steps or in the middle of a write, `idle_session_timeout`
  while a node thinks) and run the interrupted operation again once: the run goes on, no node
  runs twice, every step is stored once.
- Behind PgBouncer (Debian's package, started here on a free loopback port in front of the test
  server; `make test` installs it), with `prepare_threshold=None` nothing is prepared; with
  psycopg's default a saver that meets a lost prepared statement turns preparing off and runs
  the operation again. The schema is set up through it too: `ferrograph db upgrade|downgrade|
  current URL` and `setup()` (sync and async, from several savers at once).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Iterator
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from reliability_worker import wait_until
from test_lost_connections import EXPECTED, build, steps
from ferrograph.checkpointers import AsyncPostgresSaver, PostgresSaver
from ferrograph.testing import open_saver

CONFIG = {"configurable": {"thread_id": "t"}}


@pytest.fixture
def url(ferrograph_postgres_url: str) -> str:
    """The test's database, set up."""
    with PostgresSaver.from_conn_string(ferrograph_postgres_url) as saver:
        saver.setup()
    return ferrograph_postgres_url


def terminate(url: str, pid: int) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(%s)", [pid])


async def run_graph(driver: str, url: str, graph_of, **options) -> tuple[dict, list[int], int]:
    """The graph `graph_of(saver)` builds, run on a saver from `url` with durability "sync";
    its result, the stored steps and how many backends the saver used."""
    if driver == "sync":
        with PostgresSaver.from_conn_string(url, **options) as saver:
            first = saver.conn.info.backend_pid
            result = graph_of(saver).invoke({"log": []}, CONFIG, durability="sync")
            return result, steps(saver, "t"), int(saver.conn.info.backend_pid != first) + 1
    async with AsyncPostgresSaver.from_conn_string(url, **options) as asaver:
        first = asaver.conn.info.backend_pid
        result = await graph_of(asaver).ainvoke({"log": []}, CONFIG, durability="sync")
        backends = int(asaver.conn.info.backend_pid != first) + 1
    with open_saver("postgres", url, setup=False) as reader:
        return result, steps(reader, "t"), backends


@pytest.mark.parametrize("driver", ["sync", "async"])
async def test_a_backend_terminated_between_steps_is_replaced(driver, url):
    runs: list[str] = []

    def graph_of(saver):
        # While b runs, the saver's connection is idle between two writes: the server ends it.
        return build(lambda: terminate(url, saver.conn.info.backend_pid), runs).compile(checkpointer=saver)

    result, stored, backends = await run_graph(driver, url, graph_of)
    assert result == EXPECTED
    assert stored == [-1, 0, 1, 2, 3]
    assert runs == ["a", "b", "c"]  # b's writes were stored on the new connection, not run again
    assert backends == 2


@pytest.mark.parametrize("driver", ["sync", "async"])
async def test_a_backend_terminated_in_the_middle_of_a_put_is_replaced_and_the_put_runs_again(driver, url):
    with psycopg.connect(url, autocommit=True) as db:
        # The put of step 1 waits inside its checkpoint INSERT (after inserting its values in
        # the same transaction) until the test ends the backend.
        db.execute("CREATE TABLE cut_control (on_step text)")
        db.execute(
            "CREATE FUNCTION cut_slow() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
            " IF EXISTS (SELECT 1 FROM cut_control WHERE on_step = NEW.metadata ->> 'step') THEN"
            " PERFORM pg_sleep(60); END IF; RETURN NEW; END $$"
        )
        db.execute(
            "CREATE TRIGGER cut_slow BEFORE INSERT ON ferrograph_checkpoints FOR EACH ROW EXECUTE FUNCTION cut_slow()"
        )
        db.execute("INSERT INTO cut_control VALUES ('1')")
        done = threading.Event()

        def cut() -> None:
            row = wait_until(
                lambda: done.is_set()
                or db.execute("SELECT pid FROM pg_stat_activity WHERE wait_event = 'PgSleep' AND datname = current_database()").fetchone(),
                "the put of step 1 to reach its INSERT",
                timeout=60,
            )
            if row is True:
                return
            db.execute("DELETE FROM cut_control")
            db.execute("SELECT pg_terminate_backend(%s)", [row[0]])

        cutter = threading.Thread(target=cut)
        cutter.start()
        runs: list[str] = []
        try:
            result, stored, backends = await run_graph(driver, url, lambda saver: build(runs=runs).compile(checkpointer=saver))
        finally:
            done.set()
            cutter.join(timeout=90)
        assert result == EXPECTED
        assert stored == [-1, 0, 1, 2, 3]
        assert runs == ["a", "b", "c"]
        assert backends == 2
        # One row per checkpoint: the cut-off insert left nothing, its second run one row.
        assert db.execute("SELECT count(*), count(DISTINCT checkpoint_id) FROM ferrograph_checkpoints").fetchone() == (5, 5)


@pytest.mark.parametrize("driver", ["sync", "async"])
async def test_a_connection_ended_by_idle_session_timeout_is_replaced(driver, url):
    with psycopg.connect(url, autocommit=True) as db:
        name = db.execute("SELECT current_database()").fetchone()[0]
        db.execute(f'ALTER DATABASE "{name}" SET idle_session_timeout = 200')
    runs: list[str] = []

    def graph_of(saver):
        def think() -> None:
            # b reads its thread (the async saver's sync method serves a node's thread too),
            # then thinks longer than the server lets an idle session live (a model call, say).
            # The read matters: after a pipelined write, psycopg's closing flush request keeps
            # the server from arming idle_session_timeout at all.
            saver.get_tuple(CONFIG)
            time.sleep(0.6)

        return build(think, runs).compile(checkpointer=saver)

    result, stored, backends = await run_graph(driver, url, graph_of)
    assert result == EXPECTED
    assert stored == [-1, 0, 1, 2, 3]
    assert runs == ["a", "b", "c"]  # b's writes were stored on the new connection, not run again
    assert backends == 2


# ---- PgBouncer in transaction pooling mode


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def pgbouncer_url(ferrograph_postgres_url: str, tmp_path: Path) -> Iterator[str]:
    """The test's database through a PgBouncer in transaction pooling mode with one server
    connection per database and user (so two clients always share it)."""
    binary = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
    if not os.path.exists(binary):
        pytest.fail("pgbouncer is not installed: `make pgbouncer` (apt-get install pgbouncer)", pytrace=False)
    server = urlsplit(ferrograph_postgres_url)
    port = _free_port()
    home = tmp_path / "pgbouncer"
    home.mkdir()
    (home / "users.txt").write_text(f'"{server.username or "postgres"}" ""\n')
    (home / "pgbouncer.ini").write_text(
        "[databases]\n"
        f"* = host={server.hostname} port={server.port or 5432}\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
        f"auth_type = trust\nauth_file = {home / 'users.txt'}\n"
        "pool_mode = transaction\ndefault_pool_size = 1\nmax_client_conn = 100\n"
        "ignore_startup_parameters = extra_float_digits\n"
    )
    # PgBouncer refuses to run as root; as root it is told to become nobody.
    for path in (tmp_path, home, *home.iterdir()):
        path.chmod(0o755 if path.is_dir() else 0o644)
    command = [binary, *(["-u", "nobody"] if os.geteuid() == 0 else []), str(home / "pgbouncer.ini")]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = urlunsplit(server._replace(netloc=f"{server.username or 'postgres'}@127.0.0.1:{port}"))

    def answers() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"pgbouncer ended: {proc.communicate()[0]}")
        try:
            with psycopg.connect(url, connect_timeout=2) as conn:
                return conn.execute("SELECT 1").fetchone() == (1,)
        except psycopg.OperationalError:
            return False

    try:
        wait_until(answers, "pgbouncer to answer", timeout=30)
        yield url
    finally:
        proc.terminate()
        proc.communicate(timeout=30)


def _graph_runs_on_two_savers_at_once(url: str, **options) -> list[PostgresSaver]:
    """Two savers through the bouncer step two threads at once (their transactions share the
    one server connection); each gets the uninterrupted result."""
    savers: list[PostgresSaver] = []
    outcomes: dict[str, object] = {}

    def run(thread: str) -> None:
        try:
            with PostgresSaver.from_conn_string(url, **options) as saver:
                savers.append(saver)
                graph = build().compile(checkpointer=saver)
                for i in range(8):
                    config = {"configurable": {"thread_id": f"{thread}-{i}"}}
                    assert graph.invoke({"log": []}, config) == EXPECTED
                    assert len(list(graph.get_state_history(config))) == 5
                outcomes[thread] = "ok"
        except BaseException as e:  # noqa: BLE001 - reported below
            outcomes[thread] = e

    runners = [threading.Thread(target=run, args=(name,)) for name in ("x", "y")]
    for runner in runners:
        runner.start()
    for runner in runners:
        runner.join(timeout=120)
    assert outcomes == {"x": "ok", "y": "ok"}
    return savers


def test_through_pgbouncer_with_prepared_statements_off(pgbouncer_url):
    with PostgresSaver.from_conn_string(pgbouncer_url, prepare_threshold=None) as saver:
        saver.setup()  # migrations run through the bouncer too
    savers = _graph_runs_on_two_savers_at_once(pgbouncer_url, prepare_threshold=None)
    assert [s.conn.prepare_threshold for s in savers] == [None, None]


def test_through_pgbouncer_a_lost_prepared_statement_turns_preparing_off(pgbouncer_url):
    with PostgresSaver.from_conn_string(pgbouncer_url) as saver:
        saver.setup()
    # psycopg's default prepares a statement on its fifth run; the bouncer then hands the
    # next transaction a server connection that has another client's statement of that name.
    savers = _graph_runs_on_two_savers_at_once(pgbouncer_url)
    assert None in [s.conn.prepare_threshold for s in savers]


async def test_through_pgbouncer_async(pgbouncer_url):
    async with AsyncPostgresSaver.from_conn_string(pgbouncer_url, prepare_threshold=None) as saver:
        await saver.setup()
        graph = build().compile(checkpointer=saver)
        for i in range(8):
            config = {"configurable": {"thread_id": f"a-{i}"}}
            assert await graph.ainvoke({"log": []}, config) == EXPECTED
            assert len([s async for s in graph.aget_state_history(config)]) == 5


def test_db_commands_and_setup_through_pgbouncer(pgbouncer_url, capsys):
    """Every migration runs through the bouncer (a fresh database to head, down a step and up
    again), and setup() of several savers at once (their transactions share the one server
    connection), with psycopg's default preparing, finds the schema current and does nothing."""
    from concurrent.futures import ThreadPoolExecutor

    from ferrograph.cli import main as cli
    from ferrograph.migrations import head_revision

    assert cli(["db", "upgrade", pgbouncer_url]) == 0
    assert cli(["db", "downgrade", pgbouncer_url, "-1"]) == 0
    capsys.readouterr()
    assert cli(["db", "current", pgbouncer_url]) == 0
    assert head_revision() not in capsys.readouterr().out
    assert cli(["db", "upgrade", pgbouncer_url]) == 0
    capsys.readouterr()
    assert cli(["db", "current", pgbouncer_url]) == 0
    assert head_revision() in capsys.readouterr().out
    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(_setup_through, [pgbouncer_url] * 4, range(4))) == [head_revision()] * 4


async def test_async_setup_through_pgbouncer_on_a_database_behind_head(pgbouncer_url):
    from ferrograph.cli import main as cli

    assert cli(["db", "upgrade", pgbouncer_url, "0003"]) == 0
    async with AsyncPostgresSaver.from_conn_string(pgbouncer_url) as saver:
        await saver.setup()
        graph = build().compile(checkpointer=saver)
        assert await graph.ainvoke({"log": []}, CONFIG) == EXPECTED


def _setup_through(url: str, number: int) -> str:
    """A saver's setup() through the bouncer, then a run on it; the revision it leaves."""
    from ferrograph.migrations import head_revision

    with PostgresSaver.from_conn_string(url) as saver:
        for _ in range(3):
            saver.setup()
        graph = build().compile(checkpointer=saver)
        assert graph.invoke({"log": []}, {"configurable": {"thread_id": f"s{number}"}}) == EXPECTED
    with psycopg.connect(url, prepare_threshold=None) as conn:
        row = conn.execute("SELECT version_num FROM ferrograph_alembic_version").fetchone()
    assert row is not None
    return row[0] if row[0] == head_revision() else f"not at head: {row[0]}"

