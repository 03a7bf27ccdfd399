"""The SQL savers' own behaviour, on every variant (SQLite sync/async, Postgres sync/async, with
and without a pool): round trips of typed values, storage that grows linearly, list filters,
writes, thread operations, corrupt rows."""

from __future__ import annotations

import datetime
import decimal
import math
import uuid

import pytest

from ferrograph import _core
from ferrograph.checkpointers import sql
from ferrograph.checkpointers.base import empty_checkpoint
from ferrograph.checkpointers.sql import SNAPSHOT_EVERY
from ferrograph.checkpointers.sql import writes
from ferrograph.errors import CorruptCheckpointError


@pytest.fixture(autouse=True)
def values_in_blob_rows(monkeypatch):
    """The tests here check how values are stored in blob rows and read back: every value goes
    there, none being small enough for its checkpoint row (test_sql_inline.py checks those)."""
    monkeypatch.setattr(writes, "INLINE_MAX", -1)


def cfg(thread_id, checkpoint_id=None, ns=""):
    configurable = {"thread_id": thread_id, "checkpoint_ns": ns}
    if checkpoint_id:
        configurable["checkpoint_id"] = checkpoint_id
    return {"configurable": configurable}


def checkpoint(values, versions):
    c = empty_checkpoint()
    c["channel_values"] = dict(values)
    c["channel_versions"] = dict(versions)
    return c


async def put_chain(s, thread_id, n, *, ns="", metadata=None):
    """n checkpoints, each a child of the previous, channel 'count' changing every step and
    channel 'fixed' written once."""
    parent = cfg(thread_id, ns=ns)
    configs = []
    for i in range(n):
        versions = {"count": i + 1, "fixed": 1}
        new = {"count": i + 1, "fixed": 1} if i == 0 else {"count": i + 1}
        md = {"source": "loop", "step": i, "parents": {}, **(metadata or {})}
        parent = await s.put(parent, checkpoint({"count": i, "fixed": "f"}, versions), md, new)
        configs.append(parent)
    return configs


async def test_round_trip_of_typed_values(sql_saver):
    s = sql_saver
    values = {
        "tuple": (1, "a"),
        "set": {1, 2},
        "bytes": b"\x00\xff",
        "when": datetime.datetime(2024, 5, 1, 12, 0, tzinfo=datetime.timezone.utc),
        "id": uuid.UUID(int=7),
        "money": decimal.Decimal("1.10"),
        "nested": {"list": [1, 2.5, None, True]},
    }
    c = checkpoint(values, {k: 1 for k in values})
    c["versions_seen"] = {"node": {"tuple": 1}}
    stored = await s.put(cfg("t"), c, {"source": "input", "step": -1, "parents": {}}, {k: 1 for k in values})
    assert stored == cfg("t", c["id"])
    got = await s.get_tuple(cfg("t"))
    assert got.checkpoint["channel_values"] == values
    assert type(got.checkpoint["channel_values"]["tuple"]) is tuple
    assert got.checkpoint["versions_seen"] == {"node": {"tuple": 1}}
    assert got.metadata == {"source": "input", "step": -1, "parents": {}}
    assert got.parent_config is None
    assert got.pending_writes == []


async def test_unchanged_channels_come_from_earlier_versions_and_are_stored_once(sql_saver):
    s = sql_saver
    configs = await put_chain(s, "t", 5)
    for i, config in enumerate(configs):
        got = await s.get_tuple(config)
        assert got.checkpoint["channel_values"] == {"count": i, "fixed": "f"}
        if i:
            assert got.parent_config == configs[i - 1]
    assert await s.get_tuple(cfg("t", "no-such-id")) is None
    assert await s.get_tuple(cfg("unknown")) is None


async def test_storage_grows_linearly_with_the_thread(sql_saver):
    """200 steps of a growing message list: one blob per changed channel and step, never a copy
    of the unchanged channels, and the list's items are stored about once each (append deltas),
    plus a whole snapshot every SNAPSHOT_EVERY versions."""
    s = sql_saver
    parent = cfg("t")
    messages: list[str] = []
    configs = []
    whole = len(_core.dumps("x"))
    for step in range(200):
        messages = messages + [f"message {step}"]
        versions = {"messages": step + 1, "topic": 1}
        new = {"messages": step + 1, **({"topic": 1} if step == 0 else {})}
        parent = await s.put(parent, checkpoint({"messages": messages, "topic": "x"}, versions), {"step": step}, new)
        configs.append(parent)
        whole += len(_core.dumps(messages))
    blobs, total = await count_blobs(s)
    assert blobs == 201
    snapshots = 200 // (SNAPSHOT_EVERY + 1) + 1
    assert total < 200 * 20 + snapshots * len(_core.dumps(messages)) < whole / 5
    for step in (0, 1, 17, 100, 199):
        got = await s.get_tuple(configs[step])
        assert got.checkpoint["channel_values"] == {"messages": messages[: step + 1], "topic": "x"}
    listed = await s.list(cfg("t"))
    assert [t.checkpoint["channel_values"]["messages"] for t in listed] == [messages[: n + 1] for n in range(200)][::-1]


async def count_blobs(s):
    query = "SELECT count(*), sum(length(blob)) FROM ferrograph_checkpoint_blobs"
    return await raw(s, query)


async def raw(s, query, params=()):
    """Runs SQL on the saver's own connection (tests only)."""
    saver = s.saver
    conn = saver.conn
    if type(saver).__name__ == "SqliteSaver":
        with saver.lock:
            rows = conn.execute(query, params).fetchall()
            conn.commit()
            return rows[0] if rows else None
    if type(saver).__name__ == "AsyncSqliteSaver":
        cursor = await conn.execute(query, params)
        rows = await cursor.fetchall()
        await conn.commit()
        return rows[0] if rows else None
    query = query.replace("length(blob)", "octet_length(blob)").replace("?", "%s")
    if type(saver).__name__ == "PostgresSaver":
        with saver._connection() as c, c.cursor() as cur:
            cur.execute(query, params)
            return cur.fetchone() if cur.description else None
    async with saver._connection() as c, c.cursor() as cur:
        await cur.execute(query, params)
        return await cur.fetchone() if cur.description else None


async def test_list_newest_first_with_before_limit_and_pages(sql_saver):
    s = sql_saver
    configs = await put_chain(s, "t", 230)  # more than one page
    ids = [c["configurable"]["checkpoint_id"] for c in configs]
    listed = await s.list(cfg("t"))
    assert [t.config["configurable"]["checkpoint_id"] for t in listed] == ids[::-1]
    assert [t.checkpoint["channel_values"]["count"] for t in listed[:3]] == [229, 228, 227]
    assert len(await s.list(cfg("t"), limit=10)) == 10
    before = await s.list(cfg("t"), before=configs[5], limit=3)
    assert [t.config["configurable"]["checkpoint_id"] for t in before] == [ids[4], ids[3], ids[2]]
    assert await s.list(cfg("t"), limit=0) == []
    one = await s.list(configs[7])
    assert [t.config for t in one] == [configs[7]]


async def test_list_namespaces_and_all_threads(sql_saver):
    s = sql_saver
    await put_chain(s, "a", 2)
    await put_chain(s, "a", 1, ns="child:1")
    await put_chain(s, "b", 3)
    assert len(await s.list({"configurable": {"thread_id": "a"}})) == 3
    assert len(await s.list(cfg("a"))) == 2
    assert len(await s.list(cfg("a", ns="child:1"))) == 1
    everything = await s.list(None)
    assert len(everything) == 6
    ids = [t.checkpoint["id"] for t in everything]
    assert ids == sorted(ids, reverse=True)


async def test_metadata_filters_run_in_the_database(sql_saver):
    s = sql_saver
    c1 = await s.put(cfg("t"), checkpoint({}, {}), {"source": "input", "step": -1, "user": "ann", "n": 1.5}, {})
    c2 = await s.put(c1, checkpoint({}, {}), {"source": "loop", "step": 0, "user": "bob", "ok": True}, {})
    await s.put(c2, checkpoint({}, {}), {"source": "loop", "step": 1, "parents": {"": "x"}, "tags": ["a", "b"]}, {})

    async def steps(**flt):
        return [t.metadata["step"] for t in await s.list(cfg("t"), filter=flt)]

    assert await steps(source="loop") == [1, 0]
    assert await steps(source="loop", step=0) == [0]
    assert await steps(step=-1) == [-1]
    assert await steps(user="ann") == [-1]
    assert await steps(n=1.5) == [-1]
    assert await steps(ok=True) == [0]
    assert await steps(parents={"": "x"}) == [1]
    assert await steps(tags=["a", "b"]) == [1]
    # As LangGraph's savers: SQLite compares values, Postgres tests containment (`@>`).
    postgres = s.saver.dialect is sql.POSTGRES
    assert await steps(tags=["b", "a"]) == ([1] if postgres else [])
    assert await steps(tags=["a"]) == ([1] if postgres else [])
    assert await steps(source="update") == []
    assert await steps(step="0") == []  # a string is not the number 0
    assert await steps(source="loop", step=99) == []


@pytest.mark.parametrize("key", ["a'; DROP TABLE ferrograph_checkpoints; --", 'x"y', "", "a b", "$.x", 3])
async def test_metadata_filter_keys_are_validated(sql_saver, key):
    await put_chain(sql_saver, "t", 1)
    with pytest.raises(ValueError, match="invalid metadata filter key"):
        await sql_saver.list(cfg("t"), filter={key: "x"})
    assert len(await sql_saver.list(cfg("t"))) == 1


async def test_metadata_filter_values_are_bound_not_spliced(sql_saver):
    s = sql_saver
    hostile = "x' OR '1'='1"
    await s.put(cfg("t"), checkpoint({}, {}), {"source": hostile}, {})
    await s.put(cfg("t"), checkpoint({}, {}), {"source": "loop"}, {})
    assert [t.metadata["source"] for t in await s.list(cfg("t"), filter={"source": hostile})] == [hostile]


async def test_config_metadata_is_stored_with_the_checkpoint(sql_saver):
    s = sql_saver
    config = {
        "configurable": {"thread_id": "t", "checkpoint_ns": "", "user_id": "u1", "__secret": "no", "obj": object()},
        "metadata": {"tag": "blue"},
    }
    await s.put(config, checkpoint({}, {}), {"source": "input", "step": -1}, {})
    got = await s.get_tuple(cfg("t"))
    assert got.metadata == {"source": "input", "step": -1, "user_id": "u1", "tag": "blue"}
    assert [t.metadata["step"] for t in await s.list(cfg("t"), filter={"user_id": "u1"})] == [-1]


async def test_put_writes_is_idempotent_and_special_channels_replace(sql_saver):
    s = sql_saver
    (config,) = await put_chain(s, "t", 1)
    await s.put_writes(config, [("a", 1), ("b", (2,))], "task-2", "path-b")
    await s.put_writes(config, [("a", 10), ("b", 20)], "task-2", "path-b")  # ignored
    await s.put_writes(config, [("__error__", "first"), ("__interrupt__", "i")], "task-1", "path-a")
    await s.put_writes(config, [("__error__", "second")], "task-1", "path-a")  # replaces
    got = await s.get_tuple(config)
    assert got.pending_writes == [
        ("task-1", "__interrupt__", "i"),
        ("task-1", "__error__", "second"),
        ("task-2", "a", 1),
        ("task-2", "b", (2,)),
    ]
    listed = await s.list(cfg("t"))
    assert listed[0].pending_writes == got.pending_writes


async def test_a_batch_stores_a_task_written_twice_as_calls_one_by_one_would(sql_saver):
    """A batch's pending writes go out as one statement: a key written twice in it keeps the
    first ordinary write and the last special one, as separate calls do (Postgres refuses a
    statement that upserts a row twice)."""
    s = sql_saver
    (config,) = await put_chain(s, "t", 1)
    calls = [
        ("put_writes", (config, [("a", 1), ("b", (2,))], "task-2", "path-b")),
        ("put_writes", (config, [("a", 10), ("b", 20)], "task-2", "path-b")),
        ("put_writes", (config, [("__error__", "first"), ("__interrupt__", "i")], "task-1", "path-a")),
        ("put_writes", (config, [("__error__", "second")], "task-1", "path-a")),
    ]
    saver = s.saver
    results = await saver.arun_batch(calls) if "Async" in type(saver).__name__ else saver.run_batch(calls)
    assert results == [None] * 4
    assert (await s.get_tuple(config)).pending_writes == [
        ("task-1", "__interrupt__", "i"),
        ("task-1", "__error__", "second"),
        ("task-2", "a", 1),
        ("task-2", "b", (2,)),
    ]


@pytest.mark.parametrize("small_values_in_rows", [True, False])
async def test_a_batch_stores_text_that_array_parameters_must_escape(sql_saver, monkeypatch, small_values_in_rows):
    """A batch's rows go out column by column (on Postgres as array literals): quotes,
    backslashes, commas, braces, spaces, the word NULL, non-ASCII text and an empty string in
    ids, namespaces, task paths, channel names, metadata and values come back as they went in,
    with small values in the checkpoint rows (their channel names as JSON keys) or not."""
    if small_values_in_rows:
        monkeypatch.setattr(writes, "INLINE_MAX", 256)
    s = sql_saver
    awkward = 'a "quoted" \\ back,slash {brace} NULL é 🙂'
    thread, ns = f"thread {awkward}", f"ns{awkward}"
    base = {"configurable": {"thread_id": thread, "checkpoint_ns": ns}}
    first = checkpoint({awkward: awkward, "empty": ""}, {awkward: 1, "empty": 1})
    second = checkpoint({awkward: "NULL", "empty": "\\"}, {awkward: 2, "empty": 2})
    calls = [
        ("put", (base, first, {"source": "input", "step": -1, "note": awkward}, {awkward: 1, "empty": 1})),
        ("put_writes", ({"configurable": {**base["configurable"], "checkpoint_id": first["id"]}},
                        [(awkward, b'\x00\\"{,}'), ("empty", "")], f"task {awkward}", f"path {awkward}")),
        ("put", ({"configurable": {**base["configurable"], "checkpoint_id": first["id"]}}, second,
                 {"source": "loop", "step": 0, "note": "NULL"}, {awkward: 2, "empty": 2})),
    ]
    saver = s.saver
    results = await saver.arun_batch(calls) if "Async" in type(saver).__name__ else saver.run_batch(calls)
    assert results[2]["configurable"] == {"thread_id": thread, "checkpoint_ns": ns, "checkpoint_id": second["id"]}
    latest, older = await s.list(base)
    assert latest.checkpoint["channel_values"] == {awkward: "NULL", "empty": "\\"}
    assert (latest.metadata["note"], older.metadata["note"]) == ("NULL", awkward)
    assert older.checkpoint["channel_values"] == {awkward: awkward, "empty": ""}
    assert older.pending_writes == [(f"task {awkward}", awkward, b'\x00\\"{,}'), (f"task {awkward}", "empty", "")]
    assert latest.parent_config["configurable"]["checkpoint_id"] == first["id"]


async def test_writes_belong_to_their_checkpoint(sql_saver):
    s = sql_saver
    first, second = await put_chain(s, "t", 2)
    await s.put_writes(first, [("a", 1)], "task")
    assert (await s.get_tuple(second)).pending_writes == []
    assert (await s.get_tuple(first)).pending_writes == [("task", "a", 1)]


async def test_delete_thread(sql_saver):
    s = sql_saver
    configs = await put_chain(s, "t", 3)
    await put_chain(s, "t", 1, ns="child")
    await s.put_writes(configs[-1], [("a", 1)], "task")
    await put_chain(s, "other", 2)
    await s.delete_thread("t")
    assert await s.list({"configurable": {"thread_id": "t"}}) == []
    assert len(await s.list(cfg("other"))) == 2
    assert (await count_blobs(s))[0] == 3  # only the other thread's: fixed@1, count@1, count@2


async def test_copy_thread(sql_saver):
    s = sql_saver
    configs = await put_chain(s, "src", 3)
    await s.put_writes(configs[-1], [("a", "w")], "task")
    await s.copy_thread("src", "dst")
    src, dst = await s.list(cfg("src")), await s.list(cfg("dst"))
    assert [t.checkpoint for t in dst] == [t.checkpoint for t in src]
    assert [t.metadata for t in dst] == [t.metadata for t in src]
    assert dst[0].pending_writes == [("task", "a", "w")]
    assert dst[0].parent_config == cfg("dst", src[1].checkpoint["id"])
    await s.delete_thread("src")
    assert len(await s.list(cfg("dst"))) == 3


async def test_prune_keep_latest_keeps_the_latest_per_namespace_and_collects_blobs(sql_saver):
    s = sql_saver
    configs = await put_chain(s, "t", 5)
    child = await put_chain(s, "t", 2, ns="child")
    await s.put_writes(configs[-1], [("a", 1)], "task")
    await s.put_writes(configs[0], [("a", 1)], "task")
    await put_chain(s, "other", 3)
    await s.prune(["t"], strategy="keep_latest")
    kept = await s.list({"configurable": {"thread_id": "t"}})
    assert sorted(t.config["configurable"]["checkpoint_id"] for t in kept) == sorted(
        [configs[-1]["configurable"]["checkpoint_id"], child[-1]["configurable"]["checkpoint_id"]]
    )
    latest = await s.get_tuple(cfg("t"))
    assert latest.checkpoint["channel_values"] == {"count": 4, "fixed": "f"}
    assert latest.pending_writes == [("task", "a", 1)]
    # t keeps fixed@1 + count@5 in each namespace; 'other' keeps its 4 blobs.
    assert (await count_blobs(s))[0] == 2 + 2 + 4
    assert len(await s.list(cfg("other"))) == 3


async def test_prune_delete_and_bad_strategy(sql_saver):
    s = sql_saver
    await put_chain(s, "t", 3)
    with pytest.raises(ValueError, match="strategy"):
        await s.prune(["t"], strategy="everything")
    await s.prune(["t"], strategy="delete")
    assert await s.list(cfg("t")) == []
    await s.prune([], strategy="delete")


async def test_delete_for_runs(sql_saver):
    s = sql_saver
    first = await put_chain(s, "t", 2, metadata={"run_id": "run-1"})
    second = await put_chain(s, "t", 2, metadata={"run_id": "run-2"})
    await s.put_writes(first[-1], [("a", 1)], "task")
    await put_chain(s, "u", 1, metadata={"run_id": "run-1"})
    await s.delete_for_runs(["run-1", "nope"])
    remaining = await s.list({"configurable": {}})
    assert {t.metadata["run_id"] for t in remaining} == {"run-2"}
    assert [t.config for t in remaining] == second[::-1]
    assert (await s.get_tuple(second[-1])).checkpoint["channel_values"] == {"count": 1, "fixed": "f"}
    await s.delete_for_runs([])


async def test_corrupt_rows_name_thread_and_checkpoint(sql_saver):
    s = sql_saver
    (config,) = await put_chain(s, "t", 1)
    checkpoint_id = config["configurable"]["checkpoint_id"]
    await raw(s, "UPDATE ferrograph_checkpoint_blobs SET blob = ? WHERE channel = 'count'", (b"{not json",))
    with pytest.raises(CorruptCheckpointError) as info:
        await s.get_tuple(config)
    message = str(info.value)
    assert "'t'" in message and checkpoint_id in message and "'count'" in message


async def test_unserializable_values_name_their_channel(sql_saver):
    from ferrograph.errors import SerializationError

    with pytest.raises(SerializationError, match="mychannel"):
        await sql_saver.put(cfg("t"), checkpoint({"mychannel": object()}, {"mychannel": 1}), {}, {"mychannel": 1})
    assert await sql_saver.list(cfg("t")) == []


async def test_next_version_is_increasing_as_a_string(sql_saver):
    s = sql_saver.saver
    v1 = s.get_next_version(None, None)
    v2 = s.get_next_version(v1, None)
    assert v1 < v2 and v2.startswith("0" * 31 + "2.")


def test_codec_is_ferrograph_json():
    assert _core.loads(_core.dumps((1, 2))) == (1, 2)


def message(i):
    """A chat message of about 200 bytes, so that a delta is much smaller than the list."""
    return {"role": "user" if i % 2 else "assistant", "content": f"message {i}: " + "lorem ipsum " * 12, "id": f"m{i}"}


async def grow(s, thread_id, steps, *, ns="", parent=None, start=0, metadata=None, extra=None):
    """`steps` checkpoints whose 'messages' channel gains one message each, and the lists they
    hold; `parent` and `start` continue an earlier call."""
    parent = parent or cfg(thread_id, ns=ns)
    messages = [message(i) for i in range(start)]
    configs, lists = [], []
    for step in range(start, start + steps):
        messages = messages + [message(step)]
        values = {"messages": messages, **(extra or {})}
        c = checkpoint(values, {"messages": step + 1, **{k: 1 for k in extra or {}}})
        new = {"messages": step + 1, **({k: 1 for k in extra or {}} if step == start else {})}
        parent = await s.put(parent, c, {"step": step, **(metadata or {})}, new)
        configs.append(parent)
        lists.append(messages)
    return configs, lists


async def count_deltas(s):
    return (await raw(s, "SELECT count(*) FROM ferrograph_checkpoint_blobs WHERE chain IS NOT NULL"))[0]


async def assert_reads(s, configs, lists):
    for config, expected in zip(configs, lists):
        assert (await s.get_tuple(config)).checkpoint["channel_values"]["messages"] == expected


async def test_growing_lists_are_stored_as_deltas_with_a_snapshot_every_k(sql_saver):
    s = sql_saver
    n = 3 * SNAPSHOT_EVERY
    configs, lists = await grow(s, "t", n)
    # The first value is stored whole, then SNAPSHOT_EVERY deltas, a whole value, and so on.
    assert await count_deltas(s) == n - math.ceil(n / (SNAPSHOT_EVERY + 1))
    longest = "cardinality(chain)" if "postgres" in type(s.saver).__name__.lower() else "json_array_length(chain)"
    assert (await raw(s, f"SELECT max({longest}) FROM ferrograph_checkpoint_blobs"))[0] == SNAPSHOT_EVERY
    await assert_reads(s, configs, lists)


async def test_deltas_are_exact_encodings(sql_saver):
    """Items are compared as encoded bytes: 1 and True, 1 and 1.0, a tuple and a list differ."""
    s = sql_saver
    big = "x" * 300
    steps = [
        [big, 1],
        [big, 1, True],
        [big, True, True, 2],  # 1 -> True: not an extension
        [big, True, True, 2, 2.0, (1,), [1], {"a": None}],
        [big, True, True, 2, 2.0, (1,), [1], {"a": None}],  # unchanged, new version
        [big, True, True, 2, 2.0, (1,), [1], {"a": None}, 10**30],
        [big, True],  # shrinks
        (big, True, 3),  # a tuple is not a list
        [big, True, 3],
        [big, True, 3, "]", "[", ","],
    ]
    parent, configs = cfg("t"), []
    for version, value in enumerate(steps, start=1):
        parent = await s.put(parent, checkpoint({"v": value}, {"v": version}), {}, {"v": version})
        configs.append(parent)
    assert await count_deltas(s) >= 4
    for config, expected in zip(configs, steps):
        got = (await s.get_tuple(config)).checkpoint["channel_values"]["v"]
        assert got == expected and _core.dumps(got) == _core.dumps(expected)


async def test_a_mutated_list_and_an_emptied_channel_are_stored_whole(sql_saver):
    s = sql_saver
    items = [message(0), message(1)]
    c1 = await s.put(cfg("t"), checkpoint({"m": items}, {"m": 1}), {}, {"m": 1})
    items[0]["content"] = "edited in place"
    items.append(message(2))
    c2 = await s.put(c1, checkpoint({"m": items}, {"m": 2}), {}, {"m": 2})
    c3 = await s.put(c2, checkpoint({}, {"m": 3}), {}, {"m": 3})  # emptied
    c4 = await s.put(c3, checkpoint({"m": items + [message(3)]}, {"m": 4}), {}, {"m": 4})
    assert (await s.get_tuple(c2)).checkpoint["channel_values"]["m"][0]["content"] == "edited in place"
    assert (await s.get_tuple(c3)).checkpoint["channel_values"] == {}
    assert (await s.get_tuple(c4)).checkpoint["channel_values"]["m"] == items + [message(3)]
    assert await count_deltas(s) == 0


def count_queries(monkeypatch, name):
    """Records the statements (`sql.Query`) each run of operation `sql.<name>` issues, per run."""
    runs: list[list[sql.Query]] = []
    original = getattr(sql, name)

    def counted(*args, **kwargs):
        statements: list[sql.Query] = []
        runs.append(statements)
        op = original(*args, **kwargs)
        try:
            step = next(op)
            while True:
                if isinstance(step, sql.Query):
                    statements.append(step)
                step = op.send((yield step))
        except StopIteration as stop:
            return stop.value

    monkeypatch.setattr(sql, name, counted)
    return runs


async def test_a_batch_of_chained_puts_reads_at_most_the_first_one_s_answer(sql_saver, monkeypatch):
    """A graph's background writer stores a run's steps as one batch: only the first put is
    checked against concurrent writers, and on Postgres even its check is not read back (a
    refusal raises in the server), so a runner sends the whole batch at once (one round
    trip); on SQLite the check is read in the write transaction."""
    s = sql_saver
    runs = count_queries(monkeypatch, "batch")
    parent = cfg("t")
    calls = []
    for step in range(4):
        c = checkpoint({"n": step}, {"n": step + 1})
        config = {"configurable": {**parent["configurable"], sql.EXPECT_LATEST: True}}
        calls.append(("put", (config, c, {"step": step}, {"n": step + 1})))
        parent = cfg("t", c["id"])
        calls.append(("put_writes", (parent, [("n", step + 1)], f"task-{step}", "")))
    saver = s.saver
    if "Async" in type(saver).__name__:
        results = await saver.arun_batch(calls)
    else:
        results = saver.run_batch(calls)
    assert [r["configurable"]["checkpoint_id"] for r in results[::2]] == [c[1][1]["id"] for c in calls[::2]]
    assert results[1::2] == [None] * 4
    read = [query.rows for query in runs[0]]
    if saver.dialect.puts_in_one_statement:
        assert read.count(True) == 0
    else:
        assert read.count(True) == 1
    # The batch's pending writes go out with its last statement; on SQLite its checkpoint rows
    # with the one before (a Postgres put with values in blob rows, as here, is one statement
    # of its own; test_sql_inline.py has puts whose values fit their rows).
    checkpoints = [i for i, query in enumerate(runs[0]) if query.sql.startswith(f"INSERT INTO {sql.CHECKPOINTS} ")]
    writes = [i for i, query in enumerate(runs[0]) if query.sql.startswith(f"INSERT INTO {sql.WRITES}")]
    assert writes == [len(runs[0]) - 1]
    if saver.dialect.name == "sqlite":
        assert checkpoints == [len(runs[0]) - 2]
    stored = await s.list(cfg("t"))
    assert [t.checkpoint["channel_values"] for t in stored] == [{"n": n} for n in (3, 2, 1, 0)]
    assert [t.pending_writes for t in stored] == [[(f"task-{n}", "n", n + 1)] for n in (3, 2, 1, 0)]


async def test_a_batch_longer_than_one_statement_holds_stores_every_row(sql_saver):
    """A batch of more checkpoints and writes than one statement takes (SQLite: 64 rows) is
    stored whole, in order."""
    parent = cfg("t")
    calls = []
    for step in range(70):
        c = checkpoint({"n": step}, {"n": step + 1})
        calls.append(("put", (parent, c, {"step": step}, {"n": step + 1})))
        parent = cfg("t", c["id"])
        calls.append(("put_writes", (parent, [("n", step + 1)], f"task-{step}", "")))
    saver = sql_saver.saver
    await saver.arun_batch(calls) if "Async" in type(saver).__name__ else saver.run_batch(calls)
    stored = await sql_saver.list(cfg("t"))
    assert [t.checkpoint["channel_values"] for t in stored] == [{"n": n} for n in range(69, -1, -1)]
    assert [t.pending_writes for t in stored] == [[(f"task-{n}", "n", n + 1)] for n in range(69, -1, -1)]
    assert [t.parent_config["configurable"]["checkpoint_id"] for t in stored[:-1]] == [t.config["configurable"]["checkpoint_id"] for t in stored[1:]]


async def test_a_chain_is_read_in_one_query(sql_saver, monkeypatch):
    s = sql_saver
    configs, lists = await grow(s, "t", 2 * SNAPSHOT_EVERY + 5, extra={"topic": "x"})
    assert await count_deltas(s) > SNAPSHOT_EVERY
    # One statement reads the checkpoint with its values (every row of every chain) and its
    # pending writes.
    expected = 1
    runs = count_queries(monkeypatch, "get_tuple")
    await assert_reads(s, configs, lists)
    assert {len(statements) for statements in runs} == {expected}
    runs = count_queries(monkeypatch, "list_checkpoints")
    listed = await s.list(cfg("t"))
    assert [t.checkpoint["channel_values"]["messages"] for t in listed] == lists[::-1]
    assert len(runs[0]) == expected


async def test_copy_thread_copies_the_chains(sql_saver):
    s = sql_saver
    configs, lists = await grow(s, "src", SNAPSHOT_EVERY + 4)
    await s.copy_thread("src", "dst")
    await s.delete_thread("src")
    dst = [cfg("dst", c["configurable"]["checkpoint_id"]) for c in configs]
    await assert_reads(s, dst, lists)
    # The copy goes on growing, as deltas over the copied rows.
    more, more_lists = await grow(s, "dst", 3, parent=dst[-1], start=len(lists))
    await assert_reads(s, more, more_lists)


async def test_prune_keep_latest_keeps_the_chain_of_the_latest(sql_saver):
    s = sql_saver
    configs, lists = await grow(s, "t", SNAPSHOT_EVERY + 6, extra={"topic": "x"})
    await grow(s, "t", 4, ns="child")
    await s.prune(["t"], strategy="keep_latest")
    assert (await s.get_tuple(configs[-1])).checkpoint["channel_values"] == {"messages": lists[-1], "topic": "x"}
    # The latest value is a snapshot and 4 deltas (5 rows), plus topic; the child's latest is a
    # snapshot and 3 deltas.
    assert (await count_blobs(s))[0] == 5 + 1 + 4
    more, more_lists = await grow(s, "t", 2, parent=configs[-1], start=len(lists))
    await assert_reads(s, more, more_lists)


async def test_delete_for_runs_keeps_what_other_runs_build_on(sql_saver):
    s = sql_saver
    first, _ = await grow(s, "t", 6, metadata={"run_id": "run-1"})
    second, lists = await grow(s, "t", 6, parent=first[-1], start=6, metadata={"run_id": "run-2"})
    await s.delete_for_runs(["run-1"])
    assert len(await s.list(cfg("t"))) == 6
    await assert_reads(s, second, lists)


async def test_a_missing_base_is_a_corrupt_checkpoint_naming_thread_and_checkpoint(sql_saver):
    s = sql_saver
    configs, _ = await grow(s, "t", 5)
    checkpoint_id = configs[-1]["configurable"]["checkpoint_id"]
    await raw(s, "DELETE FROM ferrograph_checkpoint_blobs WHERE version = '1'")
    with pytest.raises(CorruptCheckpointError) as info:
        await s.get_tuple(configs[-1])
    message_ = str(info.value)
    assert "'t'" in message_ and checkpoint_id in message_ and "'messages'" in message_ and "'1'" in message_
    with pytest.raises(CorruptCheckpointError):
        await s.list(cfg("t"))


async def test_a_value_whose_row_is_missing_reads_as_an_absent_channel(sql_saver, monkeypatch):
    """As a saver without that version stores it: the channel is left out. The read statement
    finds no row for it, and does not look again: the row names the channels it has in blob
    rows, at versions the database prints as Python does."""
    s = sql_saver
    configs, lists = await grow(s, "t", 3, extra={"topic": "x"})
    await raw(s, "DELETE FROM ferrograph_checkpoint_blobs WHERE channel = 'topic'")
    runs = count_queries(monkeypatch, "get_tuple")
    got = await s.get_tuple(configs[-1])
    assert got.checkpoint["channel_values"] == {"messages": lists[-1]}
    assert "topic" in got.checkpoint["channel_versions"]
    assert len(runs[0]) == 1
    listed = await s.list(cfg("t"))
    assert [t.checkpoint["channel_values"] for t in listed] == [{"messages": m} for m in lists[::-1]]


async def test_a_stale_cache_stores_the_whole_value(sql_saver):
    """Another process deleted the rows this saver's next delta would extend: it stores the
    whole value instead."""
    s = sql_saver
    configs, lists = await grow(s, "t", 5)
    deltas = await count_deltas(s)
    await raw(s, "DELETE FROM ferrograph_checkpoint_blobs WHERE version = '5'")
    more, more_lists = await grow(s, "t", 2, parent=configs[-1], start=5)
    assert await count_deltas(s) == deltas - 1 + 1  # version 6 whole, version 7 a delta over it
    await assert_reads(s, more, more_lists)
    # Rewritten behind the saver's back: same version, other chain.
    await raw(s, "UPDATE ferrograph_checkpoint_blobs SET chain = NULL, blob = ? WHERE version = '7'",
              (_core.dumps(more_lists[-1]),))
    again, again_lists = await grow(s, "t", 1, parent=more[-1], start=7)
    await assert_reads(s, again, again_lists)


async def test_typed_metadata_round_trips_even_where_jsonb_reorders_keys(sql_saver):
    # Postgres JSONB stores object keys sorted by length, which moves a typed value's tag key
    # behind its body; values must still come back with their types.
    when = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
    configs = await put_chain(sql_saver, "typed-md", 1, metadata={"when": when, "pair": (1, 2), "tags": {"a", "b"}})
    got = (await sql_saver.get_tuple(configs[-1])).metadata
    assert got["when"] == when and isinstance(got["when"], datetime.datetime)
    assert got["pair"] == (1, 2) and isinstance(got["pair"], tuple)
    assert got["tags"] == {"a", "b"}


REFUSE_CHECKPOINTS = {
    "sqlite": [
        "CREATE TRIGGER refuse_checkpoints BEFORE INSERT ON ferrograph_checkpoints"
        " BEGIN SELECT RAISE(ABORT, 'refused'); END"
    ],
    "postgres": [
        "CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'refused'; END $$ LANGUAGE plpgsql",
        "CREATE TRIGGER refuse_checkpoints BEFORE INSERT ON ferrograph_checkpoints"
        " FOR EACH ROW EXECUTE FUNCTION refuse()",
    ],
}


async def test_a_put_whose_checkpoint_fails_stores_no_value(sql_saver, monkeypatch):
    """A put is atomic: when the checkpoint row cannot be inserted, neither the whole values
    nor the append delta it would have written are stored, and the saver's memory of what it
    stored last is untouched (the next put stores a correct delta)."""
    s = sql_saver
    configs, lists = await grow(s, "t", 3, extra={"topic": "x"})
    before = await count_blobs(s)
    backend = "postgres" if "postgres" in type(s.saver).__name__.lower() else "sqlite"
    for statement in REFUSE_CHECKPOINTS[backend]:
        await raw(s, statement)
    runs = count_queries(monkeypatch, "put")
    with pytest.raises(Exception, match="refused"):
        await grow(s, "t", 1, parent=configs[-1], start=3, extra={"topic": "y"})
    if backend == "postgres":
        assert len(runs[0]) == 1  # one statement: no BEGIN, no COMMIT of its own
    marked = {"configurable": {**configs[-1]["configurable"], sql.EXPECT_LATEST: True}}
    with pytest.raises(Exception, match="refused"):  # the line's lock and the put, one sync
        await grow(s, "t", 1, parent=marked, start=3)
    if backend == "postgres":
        assert len(runs[1]) == 2
    assert await count_blobs(s) == before
    assert len(await s.list(cfg("t"))) == 3
    await raw(s, "DROP TRIGGER refuse_checkpoints" + (" ON ferrograph_checkpoints" if backend == "postgres" else ""))
    more, more_lists = await grow(s, "t", 2, parent=configs[-1], start=3)
    await assert_reads(s, configs + more, lists + more_lists)
    assert await count_deltas(s) == 4


async def test_a_write_that_fails_midway_stores_nothing_and_the_saver_goes_on(sql_saver):
    """A write is one transaction even where it fails after some of its statements went out:
    refused by the database (a trigger) or by Python (a value that cannot be serialized,
    after the batch's first write was sent). Nothing of it is stored, the connection is not
    left inside a transaction, and the next write is stored."""
    s = sql_saver
    saver = s.saver
    backend = "postgres" if "postgres" in type(saver).__name__.lower() else "sqlite"
    (first,) = await put_chain(s, "t", 1)

    async def run_batch(calls):
        return await saver.arun_batch(calls) if "Async" in type(saver).__name__ else saver.run_batch(calls)

    def unserializable():
        return object()

    def writes_of(task_id, value):
        return ("put_writes", (first, [("count", value)], task_id, ""))

    for statement in REFUSE_CHECKPOINTS[backend]:
        await raw(s, statement)
    refused_put = ("put", (first, checkpoint({"count": 5}, {"count": 5}), {"step": 1}, {"count": 5}))
    with pytest.raises(Exception, match="refused"):
        await run_batch([writes_of("a", 1), refused_put])
    with pytest.raises(Exception, match="object"):
        await run_batch([writes_of("b", 2), writes_of("c", unserializable())])
    await raw(s, "DROP TRIGGER refuse_checkpoints" + (" ON ferrograph_checkpoints" if backend == "postgres" else ""))
    assert (await s.get_tuple(first)).pending_writes == []
    if backend == "postgres" and hasattr(saver.conn, "info"):  # a single connection, not a pool
        import psycopg

        assert saver.conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    await s.put_writes(first, [("count", 3)], "d")
    await run_batch([writes_of("e", 4), refused_put])
    got = await s.get_tuple(first)
    assert [(w[0], w[2]) for w in got.pending_writes] == [("d", 3), ("e", 4)]
    assert len(await s.list(cfg("t"))) == 2


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_a_put_in_the_callers_transaction_commits_and_rolls_back_with_it(kind, request, tmp_path):
    """On a connection whose transaction the caller holds open, puts (marked or not) join it:
    they are gone when the caller rolls back, and stored when the caller commits."""
    from ferrograph.checkpointers import PostgresSaver, SqliteSaver

    if kind == "sqlite":
        import sqlite3

        conn = sqlite3.connect(str(tmp_path / "caller.db"), isolation_level=None)
        saver = SqliteSaver(conn)
        saver.setup()

        def begin():
            conn.execute("BEGIN")

        rollback, commit, close = (lambda: conn.execute("ROLLBACK")), (lambda: conn.execute("COMMIT")), conn.close
    else:
        import psycopg

        conn = psycopg.connect(request.getfixturevalue("ferrograph_postgres_url"))
        saver = PostgresSaver(conn)
        saver.setup()
        conn.commit()

        def begin():
            conn.execute("SELECT 1")  # opens the caller's transaction

        rollback, commit, close = conn.rollback, conn.commit, conn.close
    marked = {"configurable": {"thread_id": "t", "checkpoint_ns": "", sql.EXPECT_LATEST: True}}
    try:
        begin()
        first = saver.put(marked, checkpoint({"m": [message(0)]}, {"m": 1}), {"step": 0}, {"m": 1})
        saver.put(cfg("t", first["configurable"]["checkpoint_id"]), checkpoint({"m": [message(0), message(1)]}, {"m": 2}),
                  {"step": 1}, {"m": 2})
        assert len(list(saver.list(cfg("t")))) == 2
        rollback()
        assert saver.get_tuple(cfg("t")) is None
        begin()
        first = saver.put(marked, checkpoint({"m": [message(0)]}, {"m": 1}), {"step": 0}, {"m": 1})
        second_config = {"configurable": {**first["configurable"], sql.EXPECT_LATEST: True}}
        second = saver.put(second_config, checkpoint({"m": [message(0), message(1)]}, {"m": 2}), {"step": 1}, {"m": 2})
        commit()
        got = saver.get_tuple(cfg("t"))
        assert got.config == second and got.checkpoint["channel_values"]["m"] == [message(0), message(1)]
        assert got.parent_config == first
    finally:
        close()


async def test_a_postgres_put_sends_a_delta_alone_and_again_whole_when_the_cache_is_stale(sql_saver, monkeypatch):
    s = sql_saver
    if "postgres" not in type(s.saver).__name__.lower():
        pytest.skip("SQLite runs a put as statements in one transaction")
    configs, lists = await grow(s, "t", 3)
    runs = count_queries(monkeypatch, "put")
    more, more_lists = await grow(s, "t", 1, parent=configs[-1], start=3)
    assert len(runs[0]) == 1 and await count_deltas(s) == 3
    await raw(s, "DELETE FROM ferrograph_checkpoint_blobs WHERE version = '4'")
    again, again_lists = await grow(s, "t", 1, parent=more[-1], start=4)
    # The delta over version 4 cannot be written: the put is refused and runs again, whole.
    assert [len(statements) for statements in runs[1:]] == [1, 1]
    assert "extended" in runs[1][0].sql and "extended" not in runs[2][0].sql
    assert await count_deltas(s) == 2
    await assert_reads(s, configs + again, lists + again_lists)


# ---- thread summaries (`ferrograph threads`)


class ListingOnly:
    """Holds listed tuples and offers only `list`, so that `scan_threads` summarizes them
    checkpoint by checkpoint, as it does for savers without `thread_summaries`."""

    def __init__(self, tuples):
        self.tuples = tuples

    def list(self, config, *, filter=None):
        wanted = (config or {}).get("configurable", {}).get("thread_id")
        return iter(
            [
                t
                for t in self.tuples
                if (wanted is None or t.config["configurable"]["thread_id"] == wanted)
                and all(t.metadata.get(k) == v for k, v in (filter or {}).items())
            ]
        )


async def put_threads(s):
    """Threads written in this order: `a` (a line, a fork of it, and a child namespace that holds
    its latest checkpoint), `c` (metadata without step or source), `typed` (a typed source,
    whose tag Postgres JSONB moves behind its body), then `B`, a copy of `a`: same checkpoint
    ids, so only the thread id orders it after `a`."""
    line = await put_chain(s, "a", 4)
    fork = checkpoint({"count": 9}, {"count": 9})
    await s.put(line[1], fork, {"source": "update", "step": 2, "parents": {}}, {"count": 9})
    await put_chain(s, "a", 2, ns="child:1")
    await s.put(cfg("c"), checkpoint({"x": 1}, {"x": 1}), {"when": datetime.datetime(2026, 1, 2)}, {"x": 1})
    await s.put(cfg("typed"), checkpoint({"x": 1}, {"x": 1}), {"step": 5, "source": ("loop", 1)}, {"x": 1})
    await s.copy_thread("a", "B")


async def test_thread_summaries_are_what_reading_every_checkpoint_gives(sql_saver):
    from ferrograph._inspect import ThreadSummary, scan_threads

    s = sql_saver
    assert await s.thread_summaries() == []
    assert await s.thread_summaries("a") == []
    await put_threads(s)
    listed = ListingOnly(await s.list(None))
    fast = [ThreadSummary(*row) for row in await s.thread_summaries()]
    assert fast == scan_threads(listed)
    assert [(t.thread_id, t.checkpoints, t.namespaces) for t in fast] == [
        ("typed", 1, {""}),
        ("c", 1, {""}),
        ("a", 7, {"", "child:1"}),
        ("B", 7, {"", "child:1"}),
    ]
    assert (fast[0].last_step, fast[0].last_source) == (5, ("loop", 1))
    assert (fast[1].last_step, fast[1].last_source) == (None, None)
    latest = (await s.list(cfg("a", ns="child:1")))[0]
    assert fast[2].last_checkpoint_id == latest.config["configurable"]["checkpoint_id"]
    assert (fast[2].last_ts, fast[2].last_step, fast[2].last_source) == (latest.checkpoint["ts"], 1, "loop")
    for thread_id in ("a", "B", "c", "typed", "missing"):
        one = [ThreadSummary(*row) for row in await s.thread_summaries(thread_id)]
        assert one == scan_threads(listed, thread_id)
        assert [t.thread_id for t in one] == ([thread_id] if thread_id != "missing" else [])


async def test_thread_summaries_filtered_by_metadata_are_the_matching_threads(sql_saver):
    """The threads table's metadata filter (`ferrograph ui`): the threads with a checkpoint
    whose metadata matches, from the aggregate queries, as reading every checkpoint gives."""
    from ferrograph._inspect import ThreadSummary, scan_threads

    s = sql_saver
    await put_threads(s)
    listed = ListingOnly(await s.list(None))
    cases = {
        "update": ({"source": "update"}, ["a", "B"]),
        "typed value": ({"source": ("loop", 1)}, ["typed"]),
        "datetime": ({"when": datetime.datetime(2026, 1, 2)}, ["c"]),
        "two keys": ({"source": "loop", "step": 1}, ["a", "B"]),
        "none": ({"source": "nowhere"}, []),
    }
    for name, (metadata, expected) in cases.items():
        fast = [ThreadSummary(*row) for row in await s.thread_summaries(None, metadata)]
        assert [t.thread_id for t in fast] == expected, name
        assert fast == scan_threads(listed, metadata=metadata), name
    assert [t[0] for t in await s.thread_summaries("a", {"source": "update"})] == ["a"]
    assert await s.thread_summaries("c", {"source": "update"}) == []


async def test_thread_summaries_read_no_values_nor_writes(sql_saver, monkeypatch):
    s = sql_saver
    await put_threads(s)
    await s.put_writes(cfg("c", (await s.list(cfg("c")))[0].config["configurable"]["checkpoint_id"]), [("x", 2)], "task")
    before = await s.thread_summaries()
    runs = count_queries(monkeypatch, "thread_summaries")
    await raw(s, "DELETE FROM ferrograph_checkpoint_blobs")
    await raw(s, "DELETE FROM ferrograph_checkpoint_writes")
    assert await s.thread_summaries() == before
    assert await s.thread_summaries("a") == [row for row in before if row[0] == "a"]
    assert [len(statements) for statements in runs] == [1, 1]
    assert all(sql.BLOBS not in q.sql and sql.WRITES not in q.sql for statements in runs for q in statements)


async def test_tuples_of_one_read_do_not_share_values_that_can_change(sql_saver):
    """A read decodes a value many checkpoints name once per checkpoint when it is mutable (a
    list, a dict): changing one tuple's value leaves the others' as stored."""
    s = sql_saver
    parent = cfg("t")
    for step in range(3):
        versions = {"items": 1, "settings": 1, "name": 1, "step": step + 1}
        new = dict(versions) if step == 0 else {"step": step + 1}
        values = {"items": [1, 2], "settings": {"k": "v"}, "name": "n", "step": step}
        parent = await s.put(parent, checkpoint(values, versions), {"step": step}, new)
    listed = await s.list(cfg("t"))
    assert [t.checkpoint["channel_values"]["step"] for t in listed] == [2, 1, 0]
    listed[0].checkpoint["channel_values"]["items"].append(3)
    listed[0].checkpoint["channel_values"]["settings"]["k"] = "changed"
    for t in listed[1:]:
        assert t.checkpoint["channel_values"] == {"items": [1, 2], "settings": {"k": "v"}, "name": "n", "step": t.metadata["step"]}


async def test_versions_the_database_prints_otherwise_than_python_are_read(sql_saver):
    """The read statement matches versions as the database prints the checkpoint's JSON
    numbers; a version Python prints otherwise (1e+20 against 1.0e+20 or 100000000000000000000,
    a float for a big int, True against 1) is looked up again by its Python key."""
    s = sql_saver
    versions = {"big": 1e20, "huge": 12345678901234567890, "tenth": 0.1, "flag": True}
    values = {"big": "b", "huge": [1], "tenth": {"t": 1}, "flag": 2}
    stored = await s.put(cfg("t"), checkpoint(values, versions), {"step": 0}, versions)
    assert (await s.get_tuple(cfg("t"))).checkpoint["channel_values"] == values
    assert (await s.get_tuple(stored)).checkpoint["channel_values"] == values
    assert [t.checkpoint["channel_values"] for t in await s.list(cfg("t"))] == [values]


def test_sqlite_s_log_stays_bounded_under_a_steady_stream_of_commits(tmp_path):
    """A saver from from_conn_string has SQLite move the log into the file in the commit that
    takes it past `WAL_CHECKPOINTS` pages, after which the log is written from its start again:
    3,000 commits of a 3 KB write (about 25 MB of log without it) leave it at about 4 MB, and
    nothing committed is lost."""
    import os

    from ferrograph.checkpointers import SqliteSaver
    from ferrograph.checkpointers.sqlite import WAL_CHECKPOINTS

    path = str(tmp_path / "stream.db")
    with SqliteSaver.from_conn_string(path) as saver:
        assert saver.conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == WAL_CHECKPOINTS
        saver.setup()
        first = saver.put(cfg("t"), checkpoint({"m": [1]}, {"m": 1}), {"step": 0}, {"m": 1})
        for i in range(3000):
            saver.put_writes(first, [("m", "x" * 3000)], f"task-{i}")
        assert os.path.getsize(path + "-wal") < (WAL_CHECKPOINTS + 100) * 4096
        assert os.path.getsize(path) > 3000 * 3000  # the writes are in the file itself
        assert len(saver.get_tuple(cfg("t")).pending_writes) == 3000
    with SqliteSaver.from_conn_string(path) as saver:
        assert len(saver.get_tuple(cfg("t")).pending_writes) == 3000


def test_a_reader_that_stays_does_not_hold_up_sqlite_s_writes(tmp_path):
    """Another connection in the middle of a read keeps the log from being written from its
    start again, and its pages past the reader's snapshot from being moved into the file: the
    saver's commits go on regardless (the automatic checkpoint waits for no reader), and the log
    starts over once the reader is gone."""
    import os
    import sqlite3
    import time

    from ferrograph.checkpointers import SqliteSaver
    from ferrograph.checkpointers.sqlite import WAL_CHECKPOINTS

    path = str(tmp_path / "read.db")
    with SqliteSaver.from_conn_string(path) as saver:
        saver.setup()
        first = saver.put(cfg("t"), checkpoint({"m": [1]}, {"m": 1}), {"step": 0}, {"m": 1})
        reader = sqlite3.connect(path, isolation_level=None)
        reader.execute("BEGIN")
        reader.execute(f"SELECT count(*) FROM {sql.CHECKPOINTS}").fetchall()  # holds a snapshot
        start = time.monotonic()
        for i in range(1500):
            saver.put_writes(first, [("m", "x" * 3000)], f"task-{i}")
        assert time.monotonic() - start < 10
        held = os.path.getsize(path + "-wal")
        assert held > (WAL_CHECKPOINTS + 100) * 4096  # nothing could be moved past the snapshot
        reader.execute("COMMIT")
        reader.close()
        for i in range(1500, 4500):
            saver.put_writes(first, [("m", "x" * 3000)], f"task-{i}")
        # Written from its start again once all of it was moved (about 25 MB more otherwise).
        assert os.path.getsize(path + "-wal") < held + 100 * 4096
        assert len(saver.get_tuple(cfg("t")).pending_writes) == 4500


def test_async_sqlite_s_log_stays_bounded_too(tmp_path):
    """As above, for AsyncSqliteSaver.from_conn_string."""
    import asyncio
    import os

    pytest.importorskip("aiosqlite")
    from ferrograph.checkpointers import AsyncSqliteSaver
    from ferrograph.checkpointers.sqlite import WAL_CHECKPOINTS

    path = str(tmp_path / "wal.db")

    async def main():
        async with AsyncSqliteSaver.from_conn_string(path) as saver:
            async with saver.conn.execute("PRAGMA wal_autocheckpoint") as cursor:
                assert (await cursor.fetchone())[0] == WAL_CHECKPOINTS
            first = await saver.aput(cfg("t"), checkpoint({"m": [1]}, {"m": 1}), {"step": 0}, {"m": 1})
            for i in range(2000):
                await saver.aput_writes(first, [("m", "x" * 3000)], f"task-{i}")
            assert os.path.getsize(path + "-wal") < (WAL_CHECKPOINTS + 100) * 4096
            assert len((await saver.aget_tuple(cfg("t"))).pending_writes) == 2000

    asyncio.run(main())


def test_sqlite_runs_a_put_with_inline_values_and_a_task_s_writes_as_one_statement(tmp_path, monkeypatch):
    """On the saver's autocommit connection, a put whose values all go in its row and a task's
    pending writes are each one statement, atomic on its own: no BEGIN and no COMMIT."""
    from ferrograph.checkpointers import SqliteSaver

    monkeypatch.setattr(writes, "INLINE_MAX", 256)
    with SqliteSaver.from_conn_string(str(tmp_path / "one.db")) as saver:
        saver.setup()
        statements = []
        saver.conn.set_trace_callback(statements.append)
        first = saver.put(cfg("t"), checkpoint({"n": 1}, {"n": 1}), {"step": 0}, {"n": 1})
        saver.put_writes(first, [("n", 2), ("m", 3)], "task")
        saver.conn.set_trace_callback(None)
        # (SQLite traces a statement again at the start of each trigger run it makes.)
        assert [s.split()[:3] for s in dict.fromkeys(statements)] == [
            ["INSERT", "INTO", sql.CHECKPOINTS],
            ["INSERT", "INTO", sql.WRITES],
        ]
        got = saver.get_tuple(cfg("t"))
        assert got.checkpoint["channel_values"] == {"n": 1}
        assert sorted(w[1:] for w in got.pending_writes) == [("m", 3), ("n", 2)]


def test_held_statements_go_out_grouped_but_never_before_what_they_depend_on():
    """A Postgres batch groups the statements it does not read by text; a statement that reads
    what earlier ones write (a delta over a row of the batch, a checked put) goes after every
    group held before it."""
    pytest.importorskip("psycopg")
    from ferrograph.checkpointers.postgres import Held

    held = Held()
    statements = [
        sql.Query("A", [1], rows=False),
        sql.Query("B", [2], rows=False),
        sql.Query("A", [3], rows=False),
        sql.Query("D", [4], rows=False, depends=True),
        sql.Query("A", [5], rows=False),
    ]
    assert all(held.hold(q) for q in statements)
    assert [(q.sql, q.params) for q in held.take()] == [("A", [[1], [3]]), ("B", [[2]]), ("D", [[4]]), ("A", [[5]])]
    assert held.take() == []


def test_the_delta_cache_stays_bounded_by_entries_without_an_encoding():
    """Consumed triggers (absent) and big non-list values keep no encoding; their entries still
    count towards max_bytes, so a saver serving ever new threads does not grow without bound."""
    from ferrograph.checkpointers.sql.deltas import ENTRY_BYTES, DeltaCache, Stored

    cache = DeltaCache(max_bytes=100 * ENTRY_BYTES)
    for n in range(1000):
        cache.update(f"thread-{n}", "", {"branch:to:a": Stored("00001.0", b"", None, 0, absent=True)})
    kept = [n for n in range(1000) if cache.line(f"thread-{n}", "")]
    assert len(kept) == 100
    assert kept == list(range(900, 1000))  # the least recently used went first


def test_a_staged_view_shows_an_operation_what_it_learnt_and_the_cache_only_once_committed():
    """A write operation's puts read their line through the staged view: each sees what the
    earlier ones stored (and forgot), over what the cache knew; the cache learns it all at
    `commit`, and nothing of an operation that does not commit."""
    from ferrograph.checkpointers.sql.deltas import DeltaCache, Stored

    def entry(version: str) -> Stored:
        return Stored(version, b"[1]", None, 3)

    cache = DeltaCache()
    cache.update("t", "", {"kept": entry("1"), "forgotten": entry("1"), "replaced": entry("1")})
    before = dict(cache.line("t", ""))
    staged = cache.staged()
    staged.update("t", "", {"replaced": entry("2"), "forgotten": None})
    staged.update("t", "", {"new": entry("2")})
    staged.update("t", "", {"new": entry("3")})
    staged.update("other", "ns", {"a": entry("1")})
    assert {k: v.version for k, v in staged.line("t", "").items()} == {"kept": "1", "replaced": "2", "new": "3"}
    assert {k: v.version for k, v in staged.line("other", "ns").items()} == {"a": "1"}
    assert staged.line("unknown", "") == {}
    assert dict(cache.line("t", "")) == before and not cache.line("other", "ns")  # not committed yet
    staged.forget_threads(["other"])
    assert staged.line("other", "ns") == {}
    staged.commit()
    assert {k: v.version for k, v in cache.line("t", "").items()} == {"kept": "1", "replaced": "2", "new": "3"}
    assert not cache.line("other", "ns")


def test_sqlite_finds_the_checkpoints_of_runs_by_the_run_id_index(tmp_path):
    """The run_id index holds only checkpoints with a run id (migration 0008); the lookups of
    `delete_for_runs` still use it."""
    from ferrograph.checkpointers import SqliteSaver

    with SqliteSaver.from_conn_string(str(tmp_path / "runs.db")) as saver:
        saver.setup()
        calls = []
        for i in range(300):
            metadata = {"step": i, **({} if i % 10 else {"run_id": f"run-{i % 3}"})}
            calls.append(("put", (cfg(f"t{i}"), checkpoint({"n": i}, {"n": 1}), metadata, {"n": 1})))
        saver.run_batch(calls)
        # With the statistics of a database mostly of checkpoints without a run id.
        saver.conn.execute("ANALYZE")
        d = sql.SQLITE
        for statement in (d.threads_of_runs, d.delete_runs[-1]):
            plan = saver.conn.execute("EXPLAIN QUERY PLAN " + statement, ['["run-1"]']).fetchall()
            assert any(row[3].startswith(f"SEARCH {sql.CHECKPOINTS} USING INDEX ferrograph_checkpoints_run_id_idx")
                       for row in plan), plan
        indexed = saver.conn.execute(
            f"SELECT count(*) FROM {sql.CHECKPOINTS} INDEXED BY ferrograph_checkpoints_run_id_idx WHERE run_id IS NOT NULL"
        ).fetchone()[0]
        assert indexed == 30
        saver.delete_for_runs(["run-1"])
        assert [t.metadata.get("run_id") for t in saver.list(None)].count("run-1") == 0
        assert len(list(saver.list(None))) == 290
