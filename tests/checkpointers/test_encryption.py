"""Encryption at rest on every saver: a run's values and pending writes are stored AES-256-GCM
encrypted (the raw database holds none of their plaintext) while metadata stays queryable;
keys rotate (`keys=[new, old]`) and `rekey` moves everything to the newest key; a missing or
wrong key, or altered ciphertext, is an error naming the key id, never garbage.

The memory saver has no raw bytes to read from outside: that it holds values encrypted is
shown by what it refuses once its keys are taken away or replaced (`saver.encryption = ...`,
how a live memory saver rotates keys), and tampering by the crypt crate's own tests."""

from __future__ import annotations

import base64
import contextlib
import os
from typing import Annotated, Any, AsyncIterator, TypedDict

import pytest

from ferrograph.checkpointers import (
    AsyncPostgresSaver,
    AsyncSqliteSaver,
    Encryption,
    MemorySaver,
    PostgresSaver,
    Retention,
    SqliteSaver,
)
from ferrograph.errors import DecryptionError, EncryptionKeyError
from ferrograph.graph import END, START, StateGraph

SECRET = "s3cr3t-pl41ntext"
K1 = Encryption(key=bytes(range(32)), key_id="k1")
K2 = Encryption(key=os.urandom(32), key_id="k2")
THREAD = {"configurable": {"thread_id": "t"}}
SQL_KINDS = ["sqlite", "sqlite-async", "postgres", "postgres-async"]
KINDS = ["memory", "memory-async", *SQL_KINDS]


class State(TypedDict):
    notes: Annotated[list, lambda a, b: a + b]
    last: str


def note(i: int) -> str:
    """A note long enough that the list outgrows the checkpoint row (stored in blob rows, as
    append deltas) after a few steps, while the small values stay in the row."""
    return f"{SECRET}-{i}-" + "." * 100


def graph():
    """Appends a secret-bearing note each step (so the list is stored as append deltas)."""
    g = StateGraph(State)
    g.add_node("note", lambda s: {"notes": [note(len(s["notes"]))], "last": f"{SECRET}-last"})
    g.add_edge(START, "note")
    g.add_conditional_edges("note", lambda s: END if len(s["notes"]) >= 6 else "note")
    return g


class Harness:
    """One saver kind, opened as often as a test needs, with awaitable calls. The memory saver
    is one saver for the whole test, reopened by giving it other keys."""

    def __init__(self, kind: str, url: str) -> None:
        self.kind, self.url = kind, url
        self.is_async = kind.endswith("-async")
        self.is_memory = kind.startswith("memory")
        self.memory = MemorySaver() if self.is_memory else None
        self.cls = {"sqlite": SqliteSaver, "sqlite-async": AsyncSqliteSaver, "postgres": PostgresSaver,
                    "postgres-async": AsyncPostgresSaver}.get(kind)

    @contextlib.asynccontextmanager
    async def open(self, encryption: Any = None) -> AsyncIterator[Any]:
        if self.memory is not None:
            self.memory.encryption = encryption
            yield self.memory
        elif self.is_async:
            async with self.cls.from_conn_string(self.url, encryption=encryption) as saver:
                await saver.setup()
                yield saver
        else:
            with self.cls.from_conn_string(self.url, encryption=encryption) as saver:
                saver.setup()
                yield saver

    async def call(self, saver: Any, name: str, *args: Any, **kwargs: Any) -> Any:
        if self.is_async:
            return await getattr(saver, "a" + name)(*args, **kwargs)
        return getattr(saver, name)(*args, **kwargs)

    async def invoke(self, saver: Any, value: Any, config: dict) -> Any:
        app = graph().compile(checkpointer=saver)
        return await app.ainvoke(value, config) if self.is_async else app.invoke(value, config)

    async def history(self, saver: Any, config: dict = THREAD, **kwargs: Any) -> list:
        if self.is_async:
            return [t async for t in saver.alist(config, **kwargs)]
        return list(saver.list(config, **kwargs))

    def raw(self) -> bytes:
        """Everything the database holds, as stored: SQLite's files, or every row of the
        saver's Postgres tables in Postgres' own text form."""
        if self.kind.startswith("sqlite"):
            data = b""
            for suffix in ("", "-wal"):
                if os.path.exists(self.url + suffix):
                    with open(self.url + suffix, "rb") as f:
                        data += f.read()
            return data
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            out = b""
            for table in ("ferrograph_checkpoints", "ferrograph_checkpoint_blobs", "ferrograph_checkpoint_writes"):
                for (row,) in conn.execute(f"SELECT t::text FROM {table} AS t"):
                    out += row.encode() + b"\n"
            # Text shows bytea in hex: the stored bytes themselves too.
            for table, column in (("ferrograph_checkpoint_blobs", "blob"), ("ferrograph_checkpoint_writes", "blob"),
                                  ("ferrograph_checkpoints", "channel_values")):
                for (blob,) in conn.execute(f"SELECT {column} FROM {table} WHERE {column} IS NOT NULL"):
                    out += bytes(blob) + b"\n"
            return out

    def alter_one_blob(self) -> None:
        """Flips the last byte (in the GCM tag) of one stored channel value."""
        if self.kind.startswith("sqlite"):
            import sqlite3

            conn = sqlite3.connect(self.url)
            with conn:
                rowid, blob = conn.execute(
                    "SELECT rowid, blob FROM ferrograph_checkpoint_blobs WHERE channel = 'last' AND blob IS NOT NULL"
                    " ORDER BY version DESC LIMIT 1"
                ).fetchone()
                conn.execute("UPDATE ferrograph_checkpoint_blobs SET blob = ? WHERE rowid = ?",
                             (blob[:-1] + bytes([blob[-1] ^ 1]), rowid))
            conn.close()
            return
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(
                "UPDATE ferrograph_checkpoint_blobs SET blob = overlay(blob placing"
                " decode(lpad(to_hex(get_byte(blob, length(blob) - 1) # 1), 2, '0'), 'hex')"
                " from length(blob) for 1) WHERE (thread_id, channel, version) = (SELECT thread_id, channel, version"
                " FROM ferrograph_checkpoint_blobs WHERE channel = 'last' AND blob IS NOT NULL ORDER BY version DESC LIMIT 1)"
            )


async def assert_held_encrypted(h: Harness) -> None:
    """The memory saver's stand-in for reading its raw bytes: without keys, every checkpoint
    of the thread is refused, naming the key id, by list too: values read before (twice, which
    a saver holding plain values would keep decoded) were not kept."""
    assert h.memory is not None
    encryption = h.memory.encryption
    for _ in range(2):
        configs = [t.config for t in h.memory.list(None)]
        for config in configs:
            h.memory.get_tuple(config)
    assert len(configs) >= 8
    h.memory.encryption = None
    try:
        for config in configs:
            with pytest.raises(EncryptionKeyError, match="key id 'k.*has no encryption"):
                h.memory.get_tuple(config)
            with pytest.raises(EncryptionKeyError, match="key id 'k.*has no encryption"):
                next(iter(h.memory.list(config, limit=1)))
    finally:
        h.memory.encryption = encryption


@pytest.fixture(params=SQL_KINDS)
def sql_harness(request, tmp_path):
    kind = request.param
    url = request.getfixturevalue("ferrograph_postgres_url") if kind.startswith("postgres") else str(tmp_path / "enc.db")
    return Harness(kind, url)


@pytest.fixture(params=KINDS)
def harness(request, tmp_path):
    kind = request.param
    url = request.getfixturevalue("ferrograph_postgres_url") if kind.startswith("postgres") else str(tmp_path / "enc.db")
    return Harness(kind, url)


async def _pending_write(h: Harness, saver: Any) -> dict:
    """Stores a secret pending write against the thread's latest checkpoint; its config."""
    latest = (await h.call(saver, "get_tuple", THREAD)).config
    await h.call(saver, "put_writes", latest, [("notes", [f"{SECRET}-pending"])], "task-1")
    return latest


async def test_values_and_writes_are_stored_encrypted(harness):
    h = harness
    async with h.open(K1) as saver:
        result = await h.invoke(saver, {"notes": [], "last": ""}, {**THREAD, "metadata": {"user": "alice"}})
        assert result["notes"] == [note(i) for i in range(6)]
        latest = await _pending_write(h, saver)
        found = await h.call(saver, "get_tuple", latest)
        assert found.checkpoint["channel_values"]["notes"] == result["notes"]
        assert found.pending_writes == [("task-1", "notes", [f"{SECRET}-pending"])]
        # Metadata stays in clear, so filters still run in the database.
        assert len(await h.history(saver, filter={"user": "alice"})) == len(await h.history(saver))
        if h.is_memory:
            await assert_held_encrypted(h)
            return
        # Growing lists are still stored as append deltas, each row encrypted on its own.
        stats = await h.call(saver, "storage_stats")
        assert max(stats.chains) >= 1, stats.chains
    raw = h.raw()
    assert SECRET.encode() not in raw
    assert b"alice" in raw and b"k1" in raw
    # Read back in a fresh saver, whole history included.
    async with h.open(K1) as saver:
        states = await h.history(saver)
        assert [len(t.checkpoint["channel_values"].get("notes", [])) for t in states] == [6, 5, 4, 3, 2, 1, 0, 0]
        # Stored rows are not bound to their thread: a copied thread reads back.
        await h.call(saver, "copy_thread", "t", "copy")
        copied = await h.call(saver, "get_tuple", {"configurable": {"thread_id": "copy"}})
        assert copied.checkpoint["channel_values"] == states[0].checkpoint["channel_values"]
        assert copied.pending_writes == [("task-1", "notes", [f"{SECRET}-pending"])]


async def test_a_missing_or_wrong_key_is_an_error_naming_the_key_id(harness):
    h = harness
    async with h.open(K1) as saver:
        await h.invoke(saver, {"notes": [], "last": ""}, THREAD)
    async with h.open() as saver:
        with pytest.raises(EncryptionKeyError, match=r"key id 'k1'.*has no encryption"):
            await h.call(saver, "get_tuple", THREAD)
    async with h.open(Encryption(key=os.urandom(32), key_id="k1")) as saver:
        with pytest.raises(DecryptionError, match=r"key id \"k1\" failed authentication"):
            await h.call(saver, "get_tuple", THREAD)
    async with h.open(K2) as saver:
        with pytest.raises(EncryptionKeyError, match=r"key id \"k1\", which is not among this saver's keys \(\"k2\"\)"):
            await h.history(saver)


async def test_rotate_rekey_read_back(harness):
    h = harness
    async with h.open(K1) as saver:
        await h.invoke(saver, {"notes": [], "last": ""}, THREAD)
        await _pending_write(h, saver)
    before = None if h.is_memory else h.raw()
    rotated = Encryption(keys=[K2, K1])
    async with h.open(rotated) as saver:
        # Old values read with the old key; a new run writes with the new one.
        assert len((await h.call(saver, "get_tuple", THREAD)).checkpoint["channel_values"]["notes"]) == 6
        await h.invoke(saver, {"notes": [], "last": ""}, {"configurable": {"thread_id": "t2"}})
        result = await h.call(saver, "rekey", batch_size=3)
        # The memory saver rekeys in one atomic step.
        assert result.key_id == "k2" and result.reencrypted > 0 and result.batches > (0 if h.is_memory else 2)
        # Run again, it finds nothing left to do: an interrupted rekey is simply resumed.
        again = await h.call(saver, "rekey")
        assert again.reencrypted == 0 and again.examined == result.examined
    if not h.is_memory:
        assert SECRET.encode() not in h.raw() and before != h.raw()
    async with h.open(K2) as saver:
        found = await h.call(saver, "get_tuple", THREAD)
        assert found.checkpoint["channel_values"]["notes"] == [note(i) for i in range(6)]
        assert found.pending_writes == [("task-1", "notes", [f"{SECRET}-pending"])]
        assert len(await h.history(saver)) == 8
        assert len(await h.history(saver, {"configurable": {"thread_id": "t2"}})) == 8
        # The thread goes on under the new key.
        await h.invoke(saver, None, {"configurable": {"thread_id": "t2"}})


async def test_rekey_encrypts_values_stored_before_encryption(harness):
    h = harness
    async with h.open() as saver:
        await h.invoke(saver, {"notes": [], "last": ""}, THREAD)
        before = await h.history(saver)
    if not h.is_memory:
        assert SECRET.encode() in h.raw()
    async with h.open(K1) as saver:
        # Plain values stay readable once encryption is turned on...
        assert len((await h.call(saver, "get_tuple", THREAD)).checkpoint["channel_values"]["notes"]) == 6
        # ...and rekey encrypts them.
        assert (await h.call(saver, "rekey")).reencrypted > 0
        if h.is_memory:
            await assert_held_encrypted(h)
            assert len(await h.history(saver)) == 8
            return
    if h.kind.startswith("sqlite"):
        async with h.open(K1) as saver:
            await h.call(saver, "vacuum")
    # What was in blob rows is encrypted now, and the small values an unencrypted saver kept in
    # the checkpoint rows (migration 0005) moved to encrypted blob rows: no plaintext is left.
    assert SECRET.encode() not in h.raw()
    async with h.open(K1) as saver:
        assert [t.checkpoint for t in await h.history(saver)] == [t.checkpoint for t in before]
        assert [t.metadata for t in await h.history(saver)] == [t.metadata for t in before]
        assert (await h.call(saver, "rekey")).reencrypted == 0


USER = "m3t4d4t4-user"
K1_METADATA = Encryption(key=bytes(range(32)), key_id="k1", metadata=True)


async def assert_metadata_held_encrypted(h: Harness) -> None:
    """The memory saver's stand-in for reading raw metadata: without keys, reading it is refused."""
    assert h.memory is not None
    encryption = h.memory.encryption
    h.memory.encryption = None
    try:
        with pytest.raises(EncryptionKeyError, match="the metadata.*key id 'k"):
            h.memory.checkpoint_heads()
    finally:
        h.memory.encryption = encryption


async def test_metadata_is_stored_encrypted_and_still_filters(harness):
    h = harness
    async with h.open(K1_METADATA) as saver:
        await h.invoke(saver, {"notes": [], "last": ""}, {**THREAD, "metadata": {"user": USER}})
        other = {"configurable": {"thread_id": "other"}}
        run_id = "1f0c4b6e-0000-6000-8000-00000000b0b0"
        await h.invoke(saver, {"notes": [], "last": ""}, {**other, "run_id": run_id, "metadata": {"user": "bob"}})
        history = await h.history(saver)
        assert len(history) == 8 and all(t.metadata["user"] == USER for t in history)
        assert (await h.call(saver, "get_tuple", THREAD)).metadata["user"] == USER
        # Filters decrypt and match each checkpoint (a scan), with limit and before as before.
        assert [t.config for t in await h.history(saver, None, filter={"user": USER})] == [t.config for t in history]
        assert len(await h.history(saver, None, filter={"user": USER}, limit=3)) == 3
        assert len(await h.history(saver, filter={"user": USER}, before=history[2].config)) == 5
        assert await h.history(saver, filter={"user": "carol"}) == []
        found = await h.history(saver, filter={"source": "loop", "step": 2})
        assert [t.metadata["step"] for t in found] == [2]
        # Retention filters too.
        dry = await h.call(saver, "apply_retention", Retention(keep_last=1, filter={"user": "bob"}), dry_run=True)
        assert dry.checkpoints == 7 and dry.thread_ids == []
        if not h.is_memory:
            # The thread summaries decrypt the latest metadata's step and source.
            summaries = {row[0]: row for row in await h.call(saver, "thread_summaries")}
            assert summaries["t"][5:] == (6, "loop")
            assert [row[0] for row in await h.call(saver, "thread_summaries", None, {"user": "bob"})] == ["other"]
        # Run ids stay usable.
        assert (await h.history(saver, other))[0].metadata["run_id"] == run_id
        await h.call(saver, "delete_for_runs", [run_id])
        assert await h.history(saver, other) == []
        if h.is_memory:
            await assert_metadata_held_encrypted(h)
    if not h.is_memory:
        raw = h.raw()
        assert USER.encode() not in raw and b'"source"' not in raw
    async with h.open(K2) as saver:
        with pytest.raises(EncryptionKeyError, match=r"key id \"k1\", which is not among this saver's keys"):
            await h.history(saver, filter={"user": USER})


async def test_rekey_encrypts_metadata_once_configured(harness):
    h = harness
    async with h.open(K1) as saver:
        await h.invoke(saver, {"notes": [], "last": ""}, {**THREAD, "metadata": {"user": USER}})
    if not h.is_memory:
        assert USER.encode() in h.raw()
    rotated = Encryption(keys=[K2, K1], metadata=True)
    async with h.open(rotated) as saver:
        result = await h.call(saver, "rekey")
        assert result.reencrypted >= 8 + 8  # the values, and the 8 checkpoints' metadata
        assert (await h.call(saver, "rekey")).reencrypted == 0
        if h.is_memory:
            await assert_metadata_held_encrypted(h)
    if not h.is_memory:
        assert USER.encode() not in h.raw()
    async with h.open(Encryption(keys=[K2])) as saver:
        # Reading needs no flag: encrypted metadata is recognised.
        assert len(await h.history(saver, filter={"user": USER})) == 8


async def test_altered_ciphertext_is_refused(sql_harness):
    h = sql_harness
    async with h.open(K1) as saver:
        await h.invoke(saver, {"notes": [], "last": ""}, THREAD)
    h.alter_one_blob()
    async with h.open(K1) as saver:
        with pytest.raises(DecryptionError, match=r"channel 'last'.*thread 't'.*key id \"k1\" failed authentication"):
            await h.call(saver, "get_tuple", THREAD)


def test_encryption_arguments_are_checked(monkeypatch):
    with pytest.raises(ValueError, match="16 bytes; AES-256 needs exactly 32"):
        Encryption(key=b"x" * 16, key_id="k")
    with pytest.raises(TypeError, match="key_id="):
        Encryption(key=bytes(32))
    with pytest.raises(ValueError, match="not valid base64"):
        Encryption(key="not base64!", key_id="k")
    with pytest.raises(ValueError, match='key id "k1" is given twice'):
        Encryption(keys=[K1, K1])
    with pytest.raises(TypeError, match="encryption must be a ferrograph.checkpointers.Encryption"):
        SqliteSaver.from_conn_string(":memory:", encryption="key").__enter__()
    with pytest.raises(TypeError, match="encryption must be a ferrograph.checkpointers.Encryption"):
        MemorySaver(encryption="key")
    assert "k1" in repr(K1) and bytes(range(32)).hex() not in repr(K1)
    key = base64.b64encode(os.urandom(32)).decode()
    old = base64.b64encode(bytes(range(32))).decode()
    monkeypatch.setenv("FERROGRAPH_AES_KEY", key)
    assert Encryption.from_env().key_ids == ["default"]
    monkeypatch.setenv("FERROGRAPH_AES_KEY_ID", "2026-12")
    monkeypatch.setenv("FERROGRAPH_AES_OLD_KEYS", f"k1:{old}")
    env = Encryption.from_env()
    assert env.key_ids == ["2026-12", "k1"] and not env.encrypts_metadata
    monkeypatch.setenv("FERROGRAPH_AES_METADATA", "1")
    assert Encryption.from_env().encrypts_metadata and "metadata=True" in repr(Encryption.from_env())
    assert env.decrypt(K1.encrypt(b"[1]")) == b"[1]"
    monkeypatch.delenv("FERROGRAPH_AES_KEY")
    with pytest.raises(EncryptionKeyError, match="FERROGRAPH_AES_KEY is not set"):
        Encryption.from_env()
