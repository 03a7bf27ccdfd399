"""Retention on every saver (memory, SQLite and Postgres, sync and async): what each policy
deletes and keeps, on a thread with branches, subgraph namespaces, pending writes, values
carried over from old steps and lists stored as append deltas; that what is kept reads back
exactly as before; that a dry run reports what the real run then deletes and changes nothing."""

from __future__ import annotations

import asyncio
import contextlib
import datetime

import pytest
from sql_savers import SaverDriver

from ferrograph import _core
from ferrograph.checkpointers import Retention
from ferrograph.checkpointers.base import empty_checkpoint
from ferrograph.checkpointers.retention import CheckpointHead, parse_duration, plan

NOW = datetime.datetime.now(datetime.timezone.utc)


def cfg(thread_id, checkpoint_id=None, ns=""):
    configurable = {"thread_id": thread_id, "checkpoint_ns": ns}
    if checkpoint_id:
        configurable["checkpoint_id"] = checkpoint_id
    return {"configurable": configurable}


class History:
    """Builds a thread through the saver protocol, step by step, the way the engine does: each
    step's checkpoint carries the versions of every channel and stores only the new ones."""

    def __init__(self, saver):
        self.saver = saver
        self.ids = {}
        self.state = {}  # name -> (values, versions)

    async def step(self, name, thread, parent=None, *, ns="", days_ago=0.0, values=None, metadata=None, writes=None):
        previous_values, previous_versions = self.state[parent] if parent else ({}, {})
        values = {**previous_values, **(values or {})}
        versions = dict(previous_versions)
        new_versions = {}
        for channel, value in values.items():
            if previous_values.get(channel, object()) != value or channel not in previous_versions:
                versions[channel] = self.saver.saver.get_next_version(previous_versions.get(channel), None)
                new_versions[channel] = versions[channel]
        c = empty_checkpoint()
        c["ts"] = (NOW - datetime.timedelta(days=days_ago)).isoformat()
        c["channel_values"] = {k: values[k] for k in new_versions}
        c["channel_versions"] = versions
        md = {"source": "loop", "step": len(self.ids), "parents": {}, **(metadata or {})}
        stored = await self.saver.put(cfg(thread, self.ids.get(parent), ns), c, md, new_versions)
        self.ids[name] = stored["configurable"]["checkpoint_id"]
        self.state[name] = (values, versions)
        if writes:
            await self.saver.put_writes(stored, writes, f"task-{name}")
        return stored


async def build(saver):
    """Thread "t": a main line c0..c4, a branch f1 forked from c1 (made before c3), and two
    subgraph namespaces whose checkpoints ran from c2 and c4; thread "u" of another user.

        c0 - c1 - c2 - c3 - c4          (c0..c2: 40 days old, f1: 35, c3, c4: today)
              \\
               f1
        sub:1  s1a - s1b   (parents: c2, 40 days old)
        sub:4  s4a - s4b   (parents: c4, today)
    """
    h = History(saver)
    msgs = []

    def grow(n):
        msgs.extend(f"message {len(msgs)} " + "x" * 40 for _ in range(n))
        return {"msgs": list(msgs)}

    await h.step("c0", "t", days_ago=40, values={"topic": "retention " * 20, **grow(2), "n": 0}, metadata={"user": "ann"})
    await h.step("c1", "t", "c0", days_ago=40, values={**grow(1), "n": 1}, writes=[("n", 5)])
    await h.step("c2", "t", "c1", days_ago=40, values={**grow(1), "n": 2})
    await h.step("f1", "t", "c1", days_ago=35, values={"n": 100, "branch": "f"})
    await h.step("c3", "t", "c2", days_ago=0.01, values={**grow(3), "n": 3})
    await h.step("c4", "t", "c3", days_ago=0, values={**grow(2), "n": 4}, writes=[("n", 9), ("msgs", ["pending"])])
    parents_c2 = {"parents": {"": h.ids["c2"]}}
    await h.step("s1a", "t", ns="sub:1", days_ago=40, values={"inner": 1}, metadata=parents_c2)
    await h.step("s1b", "t", "s1a", ns="sub:1", days_ago=40, values={"inner": 2}, metadata=parents_c2)
    parents_c4 = {"parents": {"": h.ids["c4"]}}
    await h.step("s4a", "t", ns="sub:4", days_ago=0, values={"inner": 1}, metadata=parents_c4)
    await h.step("s4b", "t", "s4a", ns="sub:4", days_ago=0, values={"inner": 2}, metadata=parents_c4, writes=[("inner", 3)])
    await h.step("u0", "u", days_ago=50, values={"n": 0}, metadata={"user": "bob"})
    await h.step("u1", "u", "u0", days_ago=50, values={"n": 1}, metadata={"user": "bob"})
    return h


NAMESPACE = {"s1a": "sub:1", "s1b": "sub:1", "s4a": "sub:4", "s4b": "sub:4"}
THREAD = {"u0": "u", "u1": "u"}


async def snapshot(saver, h):
    """Every stored checkpoint by name: its tuple's checkpoint, metadata and pending writes."""
    found = {}
    for name, checkpoint_id in h.ids.items():
        t = await saver.get_tuple(cfg(THREAD.get(name, "t"), checkpoint_id, NAMESPACE.get(name, "")))
        if t is not None:
            found[name] = (t.checkpoint, t.metadata, sorted(map(repr, t.pending_writes)), t.parent_config)
    return found


ALL = {"c0", "c1", "c2", "f1", "c3", "c4", "s1a", "s1b", "s4a", "s4b", "u0", "u1"}

CASES = [
    (Retention(keep_last=1), {"c4", "s4b", "u1"}, 0),
    (Retention(keep_last=2), {"c3", "c4", "s4a", "s4b", "u0", "u1"}, 0),
    (Retention(keep_last=1, keep_forks=True), {"c4", "f1", "s4b", "u1"}, 0),
    (Retention(keep_last=3, keep_forks=True), ALL, 0),
    (Retention(keep_last=3), {"c2", "c3", "c4", "s1a", "s1b", "s4a", "s4b", "u0", "u1"}, 0),
    (Retention(older_than="30d"), {"c3", "c4", "s4a", "s4b"}, 1),
    (Retention(older_than=datetime.timedelta(days=36), keep_last=1), {"f1", "c3", "c4", "s4a", "s4b", "u1"}, 0),
    (Retention(keep_last=0, threads=["t"]), {"u0", "u1"}, 1),
    (Retention(keep_last=1, threads=["u", "nobody"]), ALL - {"u0"}, 0),
    (Retention(keep_last=0, filter={"user": "bob"}), ALL - {"u0", "u1"}, 1),
    (Retention(keep_last=1, filter={"user": "ann"}), {"c4", "s4b", "u0", "u1"}, 0),
    (Retention(older_than="45d"), ALL - {"u0", "u1"}, 1),
    (Retention(older_than="60d", keep_last=5), ALL, 0),
]


async def test_each_policy_deletes_exactly_what_it_does_not_keep(every_saver):
    s = every_saver
    for policy, kept, threads_deleted in CASES:
        h = await build(s)
        before = await snapshot(s, h)
        assert set(before) == ALL

        dry = await s.apply_retention(policy, dry_run=True)
        assert await snapshot(s, h) == before, "a dry run deletes nothing"
        result = await s.apply_retention(policy)

        after = await snapshot(s, h)
        assert set(after) == kept, policy
        for name in kept:  # what is kept reads back exactly: values (deltas, carried values), writes
            assert after[name] == before[name], (policy, name)
        deleted = ALL - kept
        assert result.checkpoints == len(deleted), policy
        assert result.writes == sum(len(before[n][2]) for n in deleted), policy
        assert result.threads == threads_deleted, policy
        assert (result.bytes > 0) == bool(deleted), policy
        assert not result.dry_run and dry.dry_run
        assert (dry.threads, dry.checkpoints, dry.writes, dry.bytes, dry.thread_ids) == (
            result.threads, result.checkpoints, result.writes, result.bytes, result.thread_ids), policy
        again = await s.apply_retention(policy)
        assert (again.checkpoints, again.writes, again.bytes) == (0, 0, 0), "a second run finds nothing left"
        for thread_id in ("t", "u"):
            await s.delete_thread(thread_id)


async def test_kept_checkpoints_go_on_and_fork(every_saver):
    """After pruning to the latest checkpoint, the thread continues from it and forks from it,
    with every value (the appended list, values carried from deleted steps) intact."""
    s = every_saver
    h = await build(s)
    await s.apply_retention(Retention(keep_last=1))
    latest = await s.get_tuple(cfg("t"))
    assert latest.config["configurable"]["checkpoint_id"] == h.ids["c4"]
    values = latest.checkpoint["channel_values"]
    assert values["topic"] == "retention " * 20  # stored with c0, which is gone
    assert len(values["msgs"]) == 9
    await h.step("c5", "t", "c4", values={"msgs": values["msgs"] + ["next"], "n": 5})
    child = await s.get_tuple(cfg("t"))
    assert child.checkpoint["channel_values"]["msgs"][-2:] == [values["msgs"][-1], "next"]
    assert child.checkpoint["channel_values"]["topic"] == values["topic"]
    await h.step("fork", "t", "c4", values={"n": -1})
    fork = await s.get_tuple(cfg("t", h.ids["fork"]))
    assert fork.checkpoint["channel_values"]["msgs"] == values["msgs"]
    assert fork.parent_config["configurable"]["checkpoint_id"] == h.ids["c4"]


async def test_policy_needs_a_rule_and_checks_its_arguments():
    with pytest.raises(ValueError, match="keep_last, older_than"):
        Retention()
    with pytest.raises(ValueError, match="keep_last must be an int >= 0"):
        Retention(keep_last=-1)
    with pytest.raises(ValueError, match="older_than must be"):
        Retention(older_than="a month")
    with pytest.raises(TypeError, match="not a single str"):
        Retention(keep_last=1, threads="t")
    assert parse_duration("90m") == datetime.timedelta(minutes=90)
    assert parse_duration("2w") == datetime.timedelta(days=14)


async def test_apply_retention_without_policy_uses_the_savers(every_saver):
    s = every_saver
    with pytest.raises(ValueError, match="needs a policy"):
        await s.apply_retention()


def test_plan_follows_parents_not_ids():
    """keep_last counts a branch's steps by parent links: the newest ids of another branch
    do not take the places of the latest checkpoint's ancestors."""
    heads = [
        CheckpointHead("t", "", "1", None, None),
        CheckpointHead("t", "", "2", "1", None),
        CheckpointHead("t", "", "3", "1", None),  # a fork of 1, newer than 2
        CheckpointHead("t", "", "4", "2", None),
    ]
    policy = Retention(keep_last=2)
    assert plan(heads, policy, NOW) == [("t", "", "1"), ("t", "", "3")]
    assert plan(heads, Retention(keep_last=2, keep_forks=True), NOW) == []


async def _wait_for(predicate, seconds=10.0):
    deadline = asyncio.get_running_loop().time() + seconds
    while not await predicate():
        assert asyncio.get_running_loop().time() < deadline, "the sweeper did not run"
        await asyncio.sleep(0.05)


@pytest.mark.parametrize("kind", ["memory", "sqlite", "sqlite-async", "postgres", "postgres-async"])
async def test_background_sweeping_applies_the_policy_and_stops_with_the_saver(kind, tmp_path, request):
    from ferrograph.checkpointers import AsyncPostgresSaver, AsyncSqliteSaver, MemorySaver, PostgresSaver, SqliteSaver

    policy = Retention(keep_last=1)
    options = {"retention": policy, "sweep_every": "0.1s"}
    url = request.getfixturevalue("ferrograph_postgres_url") if kind.startswith("postgres") else str(tmp_path / "s.db")
    async with contextlib.AsyncExitStack() as stack:
        if kind == "memory":
            saver = MemorySaver(**options)
            stack.callback(saver.stop_sweeping)
        elif kind == "sqlite":
            saver = stack.enter_context(SqliteSaver.from_conn_string(url, **options))
        elif kind == "postgres":
            saver = stack.enter_context(PostgresSaver.from_conn_string(url, **options))
        elif kind == "sqlite-async":
            saver = await stack.enter_async_context(AsyncSqliteSaver.from_conn_string(url, **options))
        else:
            saver = await stack.enter_async_context(AsyncPostgresSaver.from_conn_string(url, **options))
        is_async = kind.endswith("-async")
        if kind != "memory":
            await saver.setup() if is_async else saver.setup()
        driver = SaverDriver(saver, is_async=is_async)
        h = History(driver)
        await h.step("a", "t", values={"n": 1})
        await h.step("b", "t", "a", values={"n": 2})
        await h.step("c", "t", "b", values={"n": 3})

        async def pruned():
            return len(await driver.list(cfg("t"))) == 1

        await _wait_for(pruned)
        assert saver.sweeping
        sweeper = saver._sweeper
    assert not sweeper.running and not saver.sweeping


def test_sweep_every_needs_a_policy():
    from ferrograph.checkpointers import MemorySaver

    with pytest.raises(ValueError, match="sweep_every needs a retention policy"):
        MemorySaver(sweep_every="10m")
    with pytest.raises(TypeError, match="retention must be a ferrograph.checkpointers.Retention"):
        MemorySaver(retention={"keep_last": 1})
