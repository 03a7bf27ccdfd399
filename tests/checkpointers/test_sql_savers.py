"""The SQL savers' own behaviour, on every variant (SQLite sync/async, Postgres sync/async, with
and without a pool): round trips of typed values, storage that grows linearly, list filters,
writes, thread operations, corrupt rows."""

from __future__ import annotations

import datetime
import decimal
import uuid

import pytest

from ferrograph import _core
from ferrograph.checkpointers.base import empty_checkpoint
from ferrograph.errors import CorruptCheckpointError


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
    of the unchanged channels."""
    s = sql_saver
    parent = cfg("t")
    messages: list[str] = []
    expected = len(_core.dumps("x"))
    for step in range(200):
        messages = messages + [f"message {step}"]
        versions = {"messages": step + 1, "topic": 1}
        new = {"messages": step + 1, **({"topic": 1} if step == 0 else {})}
        parent = await s.put(parent, checkpoint({"messages": messages, "topic": "x"}, versions), {"step": step}, new)
        expected += len(_core.dumps(messages))
    blobs, total = await count_blobs(s)
    assert (blobs, total) == (201, expected)
    got = await s.get_tuple(cfg("t"))
    assert got.checkpoint["channel_values"]["messages"] == messages


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
    assert await steps(tags=["b", "a"]) == []
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
