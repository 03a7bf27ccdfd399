"""The schema history on SQLite and Postgres: fresh databases, upgrades from every earlier
revision with data in them, concurrent setup, downgrade, a database newer than the code, a
failing migration, and setup inside the caller's transaction."""

from __future__ import annotations

import multiprocessing
import shutil
import sqlite3

import pytest

from ferrograph.checkpointers.base import empty_checkpoint
from ferrograph.cli import main as cli
from ferrograph.errors import SchemaVersionError
from ferrograph.migrations import SCRIPT_LOCATION, alembic_config, head_revision, script_directory, upgrade_statements
from migration_helpers import async_saver_for, engine_for, execute, is_postgres, revision, saver_for, setup_worker, shape

REVISIONS = [r.revision for r in reversed(list(script_directory().walk_revisions()))]
EARLIER = REVISIONS[:-1]


def test_history_is_linear_and_has_at_least_two_revisions():
    assert len(REVISIONS) >= 2
    assert script_directory().get_heads() == [REVISIONS[-1]] == [head_revision()]


def test_an_online_upgrade_without_a_url_says_so():
    from alembic import command
    from sqlalchemy.exc import ArgumentError

    with pytest.raises(ArgumentError, match="needs a database URL"):
        command.upgrade(alembic_config(), "head")


def test_fresh_database_is_set_up_to_head_and_setup_is_idempotent(database_url):
    with saver_for(database_url) as saver:
        saver.setup()
        first = shape(database_url)
        saver.setup()
        saver.setup()
    assert revision(database_url) == head_revision()
    assert shape(database_url) == first
    assert set(first) == {
        "ferrograph_alembic_version",
        "ferrograph_checkpoints",
        "ferrograph_checkpoint_blobs",
        "ferrograph_checkpoint_writes",
        "ferrograph_deleted_threads",
    }
    dialect = "postgresql" if is_postgres(database_url) else "sqlite"
    assert upgrade_statements(dialect, head_revision()) == ()


def test_setup_and_the_cli_build_the_same_schema(database_url):
    with saver_for(database_url) as saver:
        saver.setup()
    by_setup = shape(database_url)
    assert cli(["db", "downgrade", database_url, "base"]) == 0
    assert shape(database_url) == {"ferrograph_alembic_version": ([("version_num", False)], [], ["version_num"])}
    assert cli(["db", "upgrade", database_url]) == 0
    assert shape(database_url) == by_setup


def seed(saver):
    """A thread with values, writes, a child namespace and two runs."""
    parent = {"configurable": {"thread_id": "t", "checkpoint_ns": ""}}
    configs = []
    for step in range(4):
        c = empty_checkpoint()
        c["channel_values"] = {"messages": [f"m{i}" for i in range(step + 1)], "topic": ("pregel", step // 2)}
        c["channel_versions"] = {"messages": step + 1, "topic": step // 2 + 1}
        new = {"messages": step + 1, **({"topic": step // 2 + 1} if step % 2 == 0 else {})}
        md = {"source": "loop", "step": step, "parents": {}, "run_id": "run-a" if step < 2 else "run-b"}
        parent = saver.put(parent, c, md, new)
        configs.append(parent)
    saver.put_writes(configs[-1], [("messages", ["pending"]), ("__error__", "boom")], "task-1")
    child = empty_checkpoint()
    child["channel_values"] = {"x": {1, 2}}
    child["channel_versions"] = {"x": 1}
    saver.put({"configurable": {"thread_id": "t", "checkpoint_ns": "sub:1"}}, child, {"step": 0, "run_id": "run-b"}, {"x": 1})
    grow_messages(saver)
    return configs


def long_message(i):
    return {"role": "user", "content": f"message {i}: " + "lorem ipsum " * 15, "id": f"m{i}"}


LONG_STEPS = 40


def grow_messages(saver):
    """A thread whose messages grow by one a step: stored as append deltas from revision 0003 on."""
    parent = {"configurable": {"thread_id": "long", "checkpoint_ns": ""}}
    for step in range(LONG_STEPS):
        c = empty_checkpoint()
        c["channel_values"] = {"messages": [long_message(i) for i in range(step + 1)]}
        c["channel_versions"] = {"messages": step + 1}
        parent = saver.put(parent, c, {"source": "loop", "step": step, "run_id": "run-long"}, {"messages": step + 1})


def snapshot(saver):
    return [tuple(t) for t in saver.list(None)]


@pytest.mark.parametrize("earlier", EARLIER)
def test_upgrade_from_every_earlier_revision_keeps_the_data(database_url, earlier):
    with saver_for(database_url) as saver:
        saver.setup()
        seed(saver)
        before = snapshot(saver)
    assert cli(["db", "downgrade", database_url, earlier]) == 0
    assert revision(database_url) == earlier
    with saver_for(database_url) as saver:
        saver.setup()
        assert revision(database_url) == head_revision()
        assert snapshot(saver) == before
        # Columns added after `earlier` were filled from the data: run_id drives delete_for_runs.
        saver.delete_for_runs(["run-a"])
        assert [t.metadata["run_id"] for t in saver.list({"configurable": {"thread_id": "t"}})] == ["run-b"] * 3


def test_downgrade_below_0003_writes_deltas_back_as_whole_values(database_url):
    from ferrograph import _core

    with saver_for(database_url) as saver:
        saver.setup()
        seed(saver)
    with engine_for(database_url) as engine, engine.connect() as conn:
        deltas = conn.exec_driver_sql("SELECT count(*) FROM ferrograph_checkpoint_blobs WHERE chain IS NOT NULL")
        assert deltas.scalar() > LONG_STEPS // 2
    assert cli(["db", "downgrade", database_url, "0002"]) == 0
    with engine_for(database_url) as engine, engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT version, blob FROM ferrograph_checkpoint_blobs WHERE thread_id = 'long'"
        ).fetchall()
    assert len(rows) == LONG_STEPS
    for version, blob in rows:
        expected = [long_message(i) for i in range(int(version))]
        assert bytes(blob) == _core.dumps(expected)


SMALL_VALUES = {
    "text": 'say "hi" \\ to ünïcode ☃',
    "yes": True,
    "no": False,
    "nothing": None,
    "ratio": 0.1,
    "big": 2**70,
    "pair": (1, "a"),
    "nested": {"k": [1, {"x": None}], "__fg__": "not a tag"},
    "empty": [],
}


def test_downgrade_below_0005_writes_small_values_into_blob_rows(database_url):
    """Small values live in their checkpoint rows from 0005 on; a downgrade gives each its own
    blob row again, exactly as the codec wrote it, and reading them back after the upgrade gives
    the same checkpoints."""
    from ferrograph import _core

    with saver_for(database_url) as saver:
        saver.setup()
        parent = {"configurable": {"thread_id": "small", "checkpoint_ns": ""}}
        for step in range(3):
            c = empty_checkpoint()
            c["channel_values"] = {**SMALL_VALUES, "step": step}
            c["channel_versions"] = {**{k: 1 for k in SMALL_VALUES}, "step": step + 1}
            new = {"step": step + 1, **({k: 1 for k in SMALL_VALUES} if step == 0 else {})}
            parent = saver.put(parent, c, {"source": "loop", "step": step}, new)
        before = snapshot(saver)
    with engine_for(database_url) as engine, engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM ferrograph_checkpoint_blobs").scalar() == 0
    assert cli(["db", "downgrade", database_url, "0004"]) == 0
    with engine_for(database_url) as engine, engine.connect() as conn:
        rows = conn.exec_driver_sql("SELECT channel, version, blob FROM ferrograph_checkpoint_blobs").fetchall()
    stored = {(channel, version): _core.loads(bytes(blob)) for channel, version, blob in rows}
    assert stored == {**{(k, "1"): v for k, v in SMALL_VALUES.items()}, **{("step", str(i + 1)): i for i in range(3)}}
    assert type(stored[("pair", "1")]) is tuple
    with saver_for(database_url) as saver:
        saver.setup()
        assert snapshot(saver) == before


def test_downgrade_below_0003_refuses_a_broken_chain(database_url, capsys):
    with saver_for(database_url) as saver:
        saver.setup()
        grow_messages(saver)
    # The whole values every delta is built on.
    execute(database_url, "DELETE FROM ferrograph_checkpoint_blobs WHERE thread_id = 'long' AND chain IS NULL")
    assert cli(["db", "downgrade", database_url, "0002"]) == 1
    err = capsys.readouterr().err
    assert "cannot downgrade below revision 0003" in err and "'long'" in err and "'messages'" in err
    assert revision(database_url) == head_revision()


def encrypted():
    from ferrograph.checkpointers import Encryption

    return Encryption(key=bytes(range(32)), key_id="k1", metadata=True)


def test_downgrading_an_encrypted_database_works_down_to_0003_then_refuses(database_url, capsys):
    """Encrypted values and metadata survive the downgrades that move rows as they are (0005:
    an encrypting saver keeps no value in the checkpoint row; 0004) and read back after the
    upgrade; the one that joins append deltas in SQL (0003) refuses, naming the channel, and
    leaves the database as it was."""
    from ferrograph.checkpointers import open_saver

    with open_saver(database_url, encryption=encrypted()) as saver:
        grow_messages(saver)
        before = snapshot(saver)
    for target in ("0004", "0003"):
        assert cli(["db", "downgrade", database_url, target]) == 0
        assert revision(database_url) == target
        assert cli(["db", "upgrade", database_url]) == 0
        with open_saver(database_url, create=False, encryption=encrypted()) as saver:
            assert snapshot(saver) == before
    capsys.readouterr()
    assert cli(["db", "downgrade", database_url, "0002"]) == 1
    err = capsys.readouterr().err
    assert "cannot downgrade below revision 0003" in err and "'messages'" in err and "encrypted" in err
    assert revision(database_url) == head_revision()
    with open_saver(database_url, create=False, encryption=encrypted()) as saver:
        assert snapshot(saver) == before


def test_downgrade_below_0002_refuses_encrypted_metadata_with_run_ids(database_url, capsys):
    """Below 0002 the run_id column goes, and an upgrade fills it from the metadata, which SQL
    cannot read once encrypted: refused, where whole encrypted values alone downgrade fine."""
    from ferrograph.checkpointers import Encryption, open_saver

    with open_saver(database_url, encryption=Encryption(key=bytes(range(32)), key_id="k1")) as saver:
        parent = {"configurable": {"thread_id": "t", "checkpoint_ns": ""}}
        for step in range(3):
            c = empty_checkpoint()
            c["channel_values"] = {"topic": f"secret {step}"}
            c["channel_versions"] = {"topic": step + 1}
            parent = saver.put(parent, c, {"source": "loop", "step": step, "run_id": "run-a"}, {"topic": step + 1})
    assert cli(["db", "downgrade", database_url, "0001"]) == 0
    assert cli(["db", "upgrade", database_url]) == 0
    with open_saver(database_url, create=False, encryption=encrypted()) as saver:
        saver.rekey()  # the metadata is encrypted now
    capsys.readouterr()
    assert cli(["db", "downgrade", database_url, "0001"]) == 1
    err = capsys.readouterr().err
    assert "cannot downgrade below revision 0002" in err and "is encrypted" in err and "'t'" in err
    assert revision(database_url) == head_revision()


def test_rev_0001_data_written_by_hand_is_readable_after_upgrade(tmp_path):
    """Rows as revision 0001's code wrote them (no run_id column), upgraded by setup()."""
    from ferrograph import _core

    url = str(tmp_path / "old.db")
    assert cli(["db", "upgrade", url, "0001"]) == 0
    c = empty_checkpoint()
    conn = sqlite3.connect(url)
    with conn:
        conn.execute(
            "INSERT INTO ferrograph_checkpoints VALUES ('t', '', ?, NULL, ?, ?)",
            (
                c["id"],
                _core.dumps({**c, "channel_versions": {"a": 1}}).decode(),
                _core.dumps({"source": "input", "step": -1, "run_id": "r1"}).decode(),
            ),
        )
        conn.execute("INSERT INTO ferrograph_checkpoint_blobs VALUES ('t', '', 'a', '1', ?)", (_core.dumps((1, 2)),))
    conn.close()
    with saver_for(url) as saver:
        saver.setup()
        got = saver.get_tuple({"configurable": {"thread_id": "t"}})
        assert got.checkpoint["channel_values"] == {"a": (1, 2)}
        saver.delete_for_runs(["r1"])
        assert saver.get_tuple({"configurable": {"thread_id": "t"}}) is None


def test_concurrent_setup_from_several_processes(database_url):
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(3)
    workers = [ctx.Process(target=setup_worker, args=(database_url, barrier)) for _ in range(3)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=120)
    assert [w.exitcode for w in workers] == [0, 0, 0]
    assert revision(database_url) == head_revision()
    with saver_for(database_url) as saver:
        seed(saver)


def functions(url):
    """The names of ferrograph's functions other than the insert trigger's (Postgres)."""
    if not is_postgres(url):
        return []
    with engine_for(url) as engine, engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT proname FROM pg_proc WHERE starts_with(proname, 'ferrograph') AND prorettype <> 'trigger'::regtype"
        ).fetchall()
    return sorted(name for (name,) in rows)


def checkpoint_column_type(url):
    """The type of `ferrograph_checkpoints.checkpoint` (JSONB on Postgres before 0009)."""
    with engine_for(url) as engine, engine.connect() as conn:
        if is_postgres(url):
            query = ("SELECT data_type FROM information_schema.columns"
                     " WHERE table_name = 'ferrograph_checkpoints' AND column_name = 'checkpoint'")
            return conn.exec_driver_sql(query).scalar_one()
        return next(row[2] for row in conn.exec_driver_sql("PRAGMA table_info(ferrograph_checkpoints)") if row[1] == "checkpoint")


def deletion_checks(url):
    """The insert triggers of migration 0004 on Postgres, per table, and whether each skips the
    rows of a thread found clean in the transaction (0007's WHEN condition)."""
    if not is_postgres(url):
        return []
    with engine_for(url) as engine, engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT event_object_table, action_condition IS NOT NULL FROM information_schema.triggers"
            " WHERE trigger_name = 'ferrograph_thread_deleted' ORDER BY 1"
        ).fetchall()
    return [tuple(row) for row in rows]


def run_id_index(url):
    """The definition of the run_id index (0002; partial since 0008)."""
    with engine_for(url) as engine, engine.connect() as conn:
        if is_postgres(url):
            query = "SELECT indexdef FROM pg_indexes WHERE indexname = 'ferrograph_checkpoints_run_id_idx'"
        else:
            query = "SELECT sql FROM sqlite_master WHERE name = 'ferrograph_checkpoints_run_id_idx'"
        return conn.exec_driver_sql(query).scalar_one()


def test_downgrade_step_by_step_and_back(database_url):
    with saver_for(database_url) as saver:
        saver.setup()
    head = shape(database_url)
    pg = is_postgres(database_url)
    assert functions(database_url) == (["ferrograph_json", "ferrograph_put_refused"] if pg else [])
    assert checkpoint_column_type(database_url) == ("text" if pg else "TEXT")
    tables = ["ferrograph_checkpoint_writes", "ferrograph_checkpoints"]
    once_per_transaction = [(table, True) for table in tables] if pg else []
    assert deletion_checks(database_url) == once_per_transaction
    assert "WHERE" in run_id_index(database_url) and "run_id IS NOT NULL" in run_id_index(database_url)
    assert cli(["db", "downgrade", database_url, "-1"]) == 0
    assert revision(database_url) == "0008"
    assert functions(database_url) == (["ferrograph_put_refused"] if pg else [])
    assert checkpoint_column_type(database_url) == ("jsonb" if pg else "TEXT")
    assert cli(["db", "downgrade", database_url, "-1"]) == 0
    assert revision(database_url) == "0007"
    assert "WHERE" not in run_id_index(database_url)
    assert deletion_checks(database_url) == once_per_transaction
    assert cli(["db", "downgrade", database_url, "-1"]) == 0
    assert revision(database_url) == "0006"
    assert deletion_checks(database_url) == ([(table, False) for table in tables] if is_postgres(database_url) else [])
    assert cli(["db", "downgrade", database_url, "-1"]) == 0
    assert revision(database_url) == "0005"
    assert functions(database_url) == []
    assert cli(["db", "downgrade", database_url, "-1"]) == 0
    assert revision(database_url) == "0004"
    columns = [name for name, _ in shape(database_url)["ferrograph_checkpoints"][0]]
    assert "channel_values" not in columns and "blob_channels" not in columns
    assert cli(["db", "downgrade", database_url, "-1"]) == 0
    assert revision(database_url) == "0003"
    assert "ferrograph_deleted_threads" not in shape(database_url)
    for previous, gone in (("0002", ("ferrograph_checkpoint_blobs", "chain")), ("0001", ("ferrograph_checkpoints", "run_id"))):
        assert cli(["db", "downgrade", database_url, "-1"]) == 0
        assert revision(database_url) == previous
        table, column = gone
        assert column not in [name for name, _ in shape(database_url)[table][0]]
    assert cli(["db", "downgrade", database_url, "base"]) == 0
    assert revision(database_url) is None
    assert cli(["db", "upgrade", database_url]) == 0
    assert shape(database_url) == head
    assert functions(database_url) == (["ferrograph_json", "ferrograph_put_refused"] if pg else [])
    assert deletion_checks(database_url) == once_per_transaction
    assert "run_id IS NOT NULL" in run_id_index(database_url)


def test_a_database_newer_than_the_code_is_refused(database_url, capsys):
    with saver_for(database_url) as saver:
        saver.setup()
    execute(database_url, "UPDATE ferrograph_alembic_version SET version_num = '9999'")
    with saver_for(database_url) as saver:
        with pytest.raises(SchemaVersionError, match="'9999', newer than this version of ferrograph"):
            saver.setup()
    assert cli(["db", "upgrade", database_url]) == 1
    assert "newer than this version of ferrograph" in capsys.readouterr().err
    assert revision(database_url) == "9999"


async def test_async_savers_refuse_a_newer_database_too(database_url):
    async with async_saver_for(database_url) as saver:
        await saver.setup()
        await saver.setup()
    assert revision(database_url) == head_revision()
    execute(database_url, "UPDATE ferrograph_alembic_version SET version_num = 'zzzz'")
    async with async_saver_for(database_url) as saver:
        with pytest.raises(SchemaVersionError):
            await saver.setup()


@pytest.fixture
def broken_history(tmp_path):
    """This history plus a revision that creates a table, then fails."""
    location = tmp_path / "history"
    shutil.copytree(SCRIPT_LOCATION, location, ignore=shutil.ignore_patterns("__pycache__"))
    (location / "versions" / "9000_broken.py").write_text(
        f'''
import sqlalchemy as sa
from alembic import op

revision = "9000"
down_revision = {head_revision()!r}
branch_labels = None
depends_on = None


def upgrade():
    op.create_table("ferrograph_half_done", sa.Column("x", sa.Integer()))
    op.execute("SELECT * FROM no_such_table")


def downgrade():
    op.drop_table("ferrograph_half_done")
'''
    )
    return str(location)


def test_a_failed_setup_leaves_the_previous_revision(database_url, broken_history):
    with saver_for(database_url) as saver:
        saver.setup()
    before = shape(database_url)
    with saver_for(database_url) as saver:
        saver._script_location = broken_history
        with pytest.raises(Exception, match="no_such_table"):
            saver.setup()
        # The saver's connection is usable afterwards (with the real history: a SQLite saver
        # would run the broken one again on first use).
        saver._script_location = None
        assert saver.get_tuple({"configurable": {"thread_id": "t"}}) is None
    assert revision(database_url) == head_revision()
    assert shape(database_url) == before


def test_a_failed_upgrade_from_the_base_leaves_an_empty_database(database_url, broken_history):
    from alembic import command

    with pytest.raises(Exception, match="no_such_table"):
        command.upgrade(alembic_config(database_url, script_location=broken_history), "head")
    assert revision(database_url) is None
    assert shape(database_url) == {}


def test_a_failed_cli_upgrade_leaves_the_previous_revision(database_url, broken_history):
    from alembic import command

    assert cli(["db", "upgrade", database_url, "0001"]) == 0
    with pytest.raises(Exception, match="no_such_table"):
        command.upgrade(alembic_config(database_url, script_location=broken_history), "head")
    assert revision(database_url) == "0001"
    assert "ferrograph_half_done" not in shape(database_url)


def test_setup_inside_the_callers_sqlite_transaction(tmp_path):
    from ferrograph.checkpointers import SqliteSaver

    path = str(tmp_path / "app.db")
    conn = sqlite3.connect(path, check_same_thread=False)  # default: implicit transactions
    conn.execute("CREATE TABLE app (x)")
    conn.execute("INSERT INTO app VALUES (1)")
    assert conn.in_transaction
    saver = SqliteSaver(conn)
    saver.setup()
    assert conn.in_transaction  # still the caller's to commit
    conn.commit()
    conn.close()
    assert revision(path) == head_revision()


def test_setup_on_a_sqlite_connection_in_autocommit(tmp_path):
    from ferrograph.checkpointers import SqliteSaver

    path = str(tmp_path / "auto.db")
    conn = sqlite3.connect(path, isolation_level=None)
    SqliteSaver(conn).setup()
    assert not conn.in_transaction
    conn.close()
    assert revision(path) == head_revision()


@pytest.mark.parametrize("autocommit", [True, False])
def test_setup_on_a_postgres_connection(ferrograph_postgres_url, autocommit):
    import psycopg

    from ferrograph.checkpointers import PostgresSaver

    with psycopg.connect(ferrograph_postgres_url, autocommit=autocommit) as conn:
        if not autocommit:
            conn.execute("CREATE TABLE app (x int)")  # the caller's transaction is open
        PostgresSaver(conn).setup()
        if not autocommit:
            assert conn.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS
            conn.commit()
    assert revision(ferrograph_postgres_url) == head_revision()
