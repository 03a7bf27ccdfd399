"""Small values in the checkpoint row (migration 0005), on every SQL saver: where values go,
that reads give them back whatever row held them, rows written before 0005, and the chains of a
list written again unchanged."""

from __future__ import annotations

import pytest

from ferrograph import _core
from ferrograph.checkpointers import sql
from ferrograph.checkpointers.sql import writes
from ferrograph.errors import CorruptCheckpointError
from test_sql_savers import checkpoint, cfg, count_blobs, message, raw


def big_list(n):
    return [message(i) for i in range(n)]


async def put_steps(s, thread_id, values_of_steps):
    """Chained puts; each step's dict holds its values, every channel's version bumped when its
    value differs from the step before."""
    parent, configs, versions, previous = cfg(thread_id), [], {}, {}
    for values in values_of_steps:
        new = {}
        for channel, value in values.items():
            if channel not in previous or previous[channel] != value:
                versions[channel] = new[channel] = versions.get(channel, 0) + 1
        parent = await s.put(parent, checkpoint(values, versions), {"source": "loop", "step": len(configs)}, new)
        configs.append(parent)
        previous = values
    return configs


async def test_small_values_live_in_the_checkpoint_row_and_big_ones_in_blob_rows(sql_saver):
    s = sql_saver
    small = {"step": 1, "node": "agent", "flag": None, "pair": (1, "a"), "ok": True}
    steps = [{**small, "messages": big_list(3)}, {**small, "step": 2, "messages": big_list(3)}]
    configs = await put_steps(s, "t", steps)
    # Only the big list has a row of its own, stored once (its version did not change).
    assert (await count_blobs(s))[0] == 1
    for config, values in zip(configs, steps):
        got = (await s.get_tuple(config)).checkpoint["channel_values"]
        assert got == values and type(got["pair"]) is tuple
    listed = await s.list(cfg("t"))
    assert [t.checkpoint["channel_values"] for t in listed] == steps[::-1]
    assert all(len(_core.dumps(v)) <= sql.INLINE_MAX for v in small.values())
    assert len(_core.dumps(big_list(3))) > sql.INLINE_MAX


async def test_a_value_crossing_the_limit_moves_between_row_and_blob(sql_saver):
    """A list that grows past INLINE_MAX leaves the row for blob rows (and deltas over them); one
    that shrinks back comes back into the row."""
    s = sql_saver
    steps = [{"messages": big_list(n)} for n in (0, 1, 2, 3, 4, 1, 0)]
    configs = await put_steps(s, "t", steps)
    for config, values in zip(configs, steps):
        assert (await s.get_tuple(config)).checkpoint["channel_values"] == values


async def test_rows_written_before_0005_are_read_from_blob_rows(sql_saver, monkeypatch):
    """Rows without `channel_values` and `blob_channels` (NULL, as revision 0004 wrote them):
    every value is in a blob row, found from `channel_versions`."""
    s = sql_saver
    monkeypatch.setattr(writes, "INLINE_MAX", -1)
    steps = [{"step": 1, "messages": big_list(1)}, {"step": 2, "messages": big_list(2)}]
    configs = await put_steps(s, "t", steps)
    await raw(s, "UPDATE ferrograph_checkpoints SET channel_values = NULL, blob_channels = NULL")
    monkeypatch.setattr(writes, "INLINE_MAX", sql.INLINE_MAX)
    for config, values in zip(configs, steps):
        assert (await s.get_tuple(config)).checkpoint["channel_values"] == values
    # A new put on the old rows carries the unchanged value on.
    steps.append({"step": 3, "messages": big_list(2)})
    versions = {"step": 3, "messages": 2}
    config = await s.put(configs[-1], checkpoint(steps[-1], versions), {"step": 2}, {"step": 3})
    assert (await s.get_tuple(config)).checkpoint["channel_values"] == steps[-1]
    assert [t.checkpoint["channel_values"] for t in await s.list(cfg("t"))] == steps[::-1]


async def test_a_saver_that_did_not_store_a_value_carries_it_on(sql_saver):
    """Another saver (a new process: nothing cached) puts the next checkpoint of a thread; the
    unchanged big value is found where the first saver stored it, the small ones again in the
    row."""
    s = sql_saver
    steps = [{"step": 1, "messages": big_list(2), "topic": "x"}]
    configs = await put_steps(s, "t", steps)
    s.saver.deltas.forget_threads()
    values = {"step": 2, "messages": big_list(2), "topic": "x"}
    config = await s.put(configs[-1], checkpoint(values, {"step": 2, "messages": 1, "topic": 1}), {}, {"step": 2})
    assert (await s.get_tuple(config)).checkpoint["channel_values"] == values
    assert (await count_blobs(s))[0] == 1


async def test_a_list_written_again_unchanged_keeps_a_chain_of_one(sql_saver):
    """An agent's messages, written again unchanged at every other step (a node that returns
    them): each such version is an empty delta whose chain names only the versions that hold
    items, so reading it takes two rows however often it was rewritten."""
    s = sql_saver
    messages = big_list(3)
    parent, configs = cfg("t"), []
    for version in range(1, 3 * sql.SNAPSHOT_EVERY):
        if version % 10 == 0:
            messages = messages + [message(version)]
        parent = await s.put(parent, checkpoint({"messages": messages}, {"messages": version}), {}, {"messages": version})
        configs.append((parent, messages))
    longest = "cardinality(chain)" if "postgres" in type(s.saver).__name__.lower() else "json_array_length(chain)"
    assert (await raw(s, f"SELECT max({longest}) FROM ferrograph_checkpoint_blobs"))[0] <= 5
    for config, expected in configs:
        assert (await s.get_tuple(config)).checkpoint["channel_values"]["messages"] == expected


async def test_a_corrupt_row_of_small_values_names_the_checkpoint(sql_saver):
    s = sql_saver
    (config,) = await put_steps(s, "t", [{"step": 1}])
    await raw(s, "UPDATE ferrograph_checkpoints SET channel_values = ?", (b"{not json",))
    with pytest.raises(CorruptCheckpointError) as info:
        await s.get_tuple(config)
    message_text = str(info.value)
    assert "channel values" in message_text and config["configurable"]["checkpoint_id"] in message_text


async def test_values_handed_over_only_when_new_are_carried_on_by_a_cold_saver(sql_saver):
    """A caller that hands over only the new versions' values (as ferrograph's engine does), to
    a saver that did not store the unchanged ones (a new process): the small ones are copied
    from the parent's row, the big ones stay in their blob rows."""
    s = sql_saver
    first = {"step": 1, "topic": "x", "messages": big_list(2)}
    (config,) = await put_steps(s, "t", [first])
    s.saver.deltas.forget_threads()
    versions = {"step": 2, "topic": 1, "messages": 1}
    config = await s.put(config, checkpoint({"step": 2}, versions), {}, {"step": 2})
    expected = {**first, "step": 2}
    assert (await s.get_tuple(config)).checkpoint["channel_values"] == expected
    # And again, now from what this saver remembers.
    config = await s.put(config, checkpoint({"step": 3}, {**versions, "step": 3}), {}, {"step": 3})
    assert (await s.get_tuple(config)).checkpoint["channel_values"] == {**expected, "step": 3}


async def test_a_channel_left_without_a_value_is_carried_on_without_reading_the_parent(sql_saver):
    """A trigger channel consumed at a step keeps its version and holds no value: the next
    checkpoints carry it on from what the saver remembers, with no statement reading the
    parent's row, and it reads back without a value."""
    s = sql_saver
    config = await s.put(cfg("t"), checkpoint({"step": 1}, {"step": 1, "branch:to:a": 1}), {}, {"step": 1, "branch:to:a": 1})
    later = checkpoint({"step": 2}, {"step": 2, "branch:to:a": 1})
    first_statement = next(sql.put(s.saver.dialect, config, later, {}, {"step": 2}, s.saver.deltas))
    assert first_statement.sql != s.saver.dialect.select_channel_values
    config = await s.put(config, later, {}, {"step": 2})
    assert (await s.get_tuple(config)).checkpoint["channel_values"] == {"step": 2}
    # A saver that did not store it (nothing remembered) reads the parent's row and agrees.
    s.saver.deltas.forget_threads()
    config = await s.put(config, checkpoint({"step": 3}, {"step": 3, "branch:to:a": 1}), {}, {"step": 3})
    assert (await s.get_tuple(config)).checkpoint["channel_values"] == {"step": 3}


async def test_a_batch_of_puts_with_small_values_stores_their_rows_in_one_statement(sql_saver, monkeypatch):
    """A graph's background batch of puts whose values all fit their rows stores the rows
    together (on Postgres as arrays: the text is the same for every count), before the
    batch's writes; every field comes back as put, whatever characters the ids and channel
    names hold, and a checkpoint put twice in the batch keeps its second row."""
    from test_sql_savers import count_queries

    s = sql_saver
    runs = count_queries(monkeypatch, "batch")
    thread = 'quote " backslash \\ comma , brace {} NULL é'
    parent = cfg(thread)
    calls, ids = [], []
    for step in range(3):
        c = checkpoint({'ch "1"\\': step, "n": None}, {'ch "1"\\': step + 1, "n": 1})
        metadata = {"source": "loop", "step": step, "parents": {}, "note": 'a "b" \\c'}
        calls.append(("put", (parent, c, metadata, {'ch "1"\\': step + 1, "n": 1} if step == 0 else {'ch "1"\\': step + 1})))
        parent = cfg(thread, c["id"])
        ids.append(c["id"])
        calls.append(("put_writes", (parent, [("n", b"\x00\xff")], f"task-{step}", "")))
    again = checkpoint({'ch "1"\\': 9, "n": None}, {'ch "1"\\': 9, "n": 1})
    again["id"] = ids[-1]
    calls.append(("put", (cfg(thread, ids[-2]), again, {"source": "update", "step": 9, "parents": {}}, {'ch "1"\\': 9})))
    saver = s.saver
    await saver.arun_batch(calls) if "Async" in type(saver).__name__ else saver.run_batch(calls)
    inserts = [q for q in runs[0] if q.sql.startswith(f"INSERT INTO {sql.CHECKPOINTS} ")]
    assert len(inserts) == 1
    assert runs[0].index(inserts[0]) == len(runs[0]) - 2
    stored = await s.list(cfg(thread))
    assert [t.config["configurable"]["checkpoint_id"] for t in stored] == ids[::-1]
    assert [t.checkpoint["channel_values"] for t in stored] == [{'ch "1"\\': 9, "n": None}, {'ch "1"\\': 1, "n": None}, {'ch "1"\\': 0, "n": None}]
    assert stored[0].metadata == {"source": "update", "step": 9, "parents": {}}
    assert stored[1].metadata["note"] == 'a "b" \\c'
    assert [t.parent_config and t.parent_config["configurable"]["checkpoint_id"] for t in stored] == [ids[1], ids[0], None]
    assert [t.pending_writes for t in stored] == [[(f"task-{n}", "n", b"\x00\xff")] for n in (2, 1, 0)]
