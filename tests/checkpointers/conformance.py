"""The saver conformance suite, written once and run against every saver.

Each check is an `async def check_*(s: Driver)`. The driver exposes the protocol as awaitables
and calls either the saver's sync methods (`mode="sync"`) or its async twins (`mode="async"`),
so every check covers both. `test_conformance.py` runs every check x every factory x both modes.

Adding a saver: register a factory (a context manager yielding a fresh, empty saver) with
`@saver_factory("name")`, here or in a module imported by `conftest.py`. A factory may call
`pytest.skip(reason)` when its backend is unavailable.
"""

from __future__ import annotations

import copy

import contextlib
import dataclasses
import datetime as dt
import uuid
from decimal import Decimal
from typing import Any, AsyncIterator, Awaitable, Callable, ContextManager, Iterator, Optional

import pydantic
import pytest

from ferrograph import _core, serde
from ferrograph.checkpointers import MemorySaver
from ferrograph.checkpointers.base import ERROR, INTERRUPT, RESUME, SCHEDULED, empty_checkpoint
from ferrograph.errors import (
    CheckpointNotFoundError,
    FerrographError,
    InvalidConfigError,
    SerializationError,
)

from dict_saver import DictSaver

# ---------------------------------------------------------------------------------------------
# Factories


@dataclasses.dataclass(frozen=True)
class SaverFactory:
    name: str
    make: Callable[[], ContextManager[Any]]


SAVER_FACTORIES: list[SaverFactory] = []


def saver_factory(name: str) -> Callable[[Callable[[], Iterator[Any]]], Callable[[], Iterator[Any]]]:
    """Registers a generator function yielding a fresh saver (cleanup after the yield)."""

    def register(fn: Callable[[], Iterator[Any]]) -> Callable[[], Iterator[Any]]:
        SAVER_FACTORIES.append(SaverFactory(name, contextlib.contextmanager(fn)))
        return fn

    return register


@saver_factory("memory")
def _memory() -> Iterator[Any]:
    yield MemorySaver()


@saver_factory("dict")
def _dict() -> Iterator[Any]:
    yield DictSaver()


@saver_factory("langgraph-wrapped-memory")
def _langgraph_memory() -> Iterator[Any]:
    pytest.importorskip("langgraph")
    from ferrograph.integrations.langgraph import as_langgraph_saver

    yield as_langgraph_saver(MemorySaver())


# ---------------------------------------------------------------------------------------------
# The driver: one interface over the sync and the async methods


class Driver:
    def __init__(self, saver: Any, mode: str) -> None:
        assert mode in ("sync", "async")
        self.saver = saver
        self.mode = mode

    async def _call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        if self.mode == "sync":
            return getattr(self.saver, name)(*args, **kwargs)
        return await getattr(self.saver, "a" + name)(*args, **kwargs)

    async def get_tuple(self, config: Any) -> Any:
        return await self._call("get_tuple", config)

    async def get(self, config: Any) -> Any:
        return await self._call("get", config)

    async def list(self, config: Any, **kwargs: Any) -> list[Any]:
        if self.mode == "sync":
            return list(self.saver.list(config, **kwargs))
        return [t async for t in self.saver.alist(config, **kwargs)]

    async def put(self, config: Any, checkpoint: Any, metadata: Any, new_versions: Any) -> dict:
        return await self._call("put", config, checkpoint, metadata, new_versions)

    async def put_writes(self, config: Any, writes: Any, task_id: str, task_path: str = "") -> None:
        await self._call("put_writes", config, writes, task_id, task_path)

    async def delete_thread(self, thread_id: str) -> None:
        await self._call("delete_thread", thread_id)

    async def copy_thread(self, source: str, target: str) -> None:
        await self._call("copy_thread", source, target)

    async def prune(self, thread_ids: list[str], strategy: str = "keep_latest") -> None:
        await self._call("prune", thread_ids, strategy=strategy)

    async def delete_for_runs(self, run_ids: list[str]) -> None:
        await self._call("delete_for_runs", run_ids)

    def next_version(self, current: Any) -> Any:
        return self.saver.get_next_version(current, None)


def cfg(thread_id: str, ns: Optional[str] = "", checkpoint_id: Optional[str] = None) -> dict:
    c: dict[str, Any] = {"thread_id": thread_id}
    if ns is not None:
        c["checkpoint_ns"] = ns
    if checkpoint_id is not None:
        c["checkpoint_id"] = checkpoint_id
    return {"configurable": c}


def cid(config: dict) -> str:
    return config["configurable"]["checkpoint_id"]


def ids(tuples: list[Any]) -> list[str]:
    return [t.checkpoint["id"] for t in tuples]


class Chain:
    """Writes checkpoints the way an engine does: each step bumps the versions of the channels it
    writes (through the saver's get_next_version), passes only those as `new_versions`, carries
    the other channels' values and versions over, and parents the new checkpoint on the last."""

    def __init__(self, s: Driver, thread_id: str, ns: str = "", run_id: str = "run-1") -> None:
        self.s = s
        self.config = cfg(thread_id, ns)
        self.values: dict[str, Any] = {}
        self.versions: dict[str, Any] = {}
        self.step = -1
        self.run_id = run_id
        self.configs: list[dict] = []

    async def write(self, **updates: Any) -> dict:
        checkpoint = empty_checkpoint()
        new_versions = {}
        for channel, value in updates.items():
            version = self.s.next_version(self.versions.get(channel))
            self.versions[channel] = version
            new_versions[channel] = version
            self.values[channel] = value
        checkpoint["channel_values"] = dict(self.values)
        checkpoint["channel_versions"] = dict(self.versions)
        metadata = {"source": "input" if self.step < 0 else "loop", "step": self.step, "parents": {}, "run_id": self.run_id}
        self.step += 1
        self.config = await self.s.put(self.config, checkpoint, metadata, new_versions)
        self.configs.append(self.config)
        return self.config


# ---------------------------------------------------------------------------------------------
# Values that must round-trip exactly


@serde.allow
class Profile(pydantic.BaseModel):
    name: str
    tags: tuple[str, ...] = ()
    joined: Optional[dt.datetime] = None


def assert_same(a: Any, b: Any, *, ordered: bool = True) -> None:
    """Equal in value and in type, all the way down; `ordered=False` ignores the key order of
    the outer dicts (a saver may keep channels and versions sorted)."""
    assert type(a) is type(b), (a, b)
    if isinstance(a, dict):
        assert (list(a) if ordered else sorted(a, key=repr)) == (list(b) if ordered else sorted(b, key=repr)), (a, b)
        for k in a:
            assert_same(a[k], b[k], ordered=ordered)
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), (a, b)
        for x, y in zip(a, b):
            assert_same(x, y, ordered=ordered)
    else:
        assert a == b, (a, b)


def rich_values() -> dict[str, Any]:
    when = dt.datetime(2024, 5, 17, 12, 30, 5, 123456, tzinfo=dt.timezone.utc)
    return {
        "tuple": (1, "two", (3.5, None)),
        "set": {1, 2, 3},
        "frozenset": frozenset({"a"}),
        "datetime": when,
        "date": when.date(),
        "bytes": b"\x00\xffraw",
        "uuid": uuid.UUID("12345678-1234-5678-1234-567812345678"),
        "decimal": Decimal("1.10"),
        "big_int": 2**100,
        "float": 0.1,
        "pydantic": Profile(name="ada", tags=("x", "y"), joined=when),
        "nested": {"list": [{"t": (1,)}, {2: "int key"}], "empty": {}, "none": None, "bool": True},
    }


# ---------------------------------------------------------------------------------------------
# Checks


async def check_put_then_get_latest_and_by_id(s: Driver) -> None:
    chain = Chain(s, "t1")
    first = await chain.write(a=1)
    second = await chain.write(a=2)
    assert set(second["configurable"]) >= {"thread_id", "checkpoint_ns", "checkpoint_id"}
    assert second["configurable"]["thread_id"] == "t1"
    assert second["configurable"]["checkpoint_ns"] == ""
    assert cid(first) < cid(second)

    latest = await s.get_tuple(cfg("t1"))
    assert latest.config["configurable"] == second["configurable"]
    assert latest.checkpoint["id"] == cid(second)
    assert latest.checkpoint["channel_values"] == {"a": 2}
    assert latest.metadata["step"] == 0 and latest.metadata["source"] == "loop"

    old = await s.get_tuple(first)
    assert old.checkpoint["channel_values"] == {"a": 1}
    assert old.metadata["source"] == "input" and old.metadata["step"] == -1
    # Without checkpoint_ns the root namespace is meant.
    assert (await s.get_tuple(cfg("t1", ns=None))).checkpoint["id"] == cid(second)
    # An empty checkpoint_id means the latest.
    assert (await s.get_tuple(cfg("t1", checkpoint_id=""))).checkpoint["id"] == cid(second)


async def check_get_tuple_misses_return_none(s: Driver) -> None:
    await Chain(s, "t1").write(a=1)
    assert await s.get_tuple(cfg("nobody")) is None
    assert await s.get_tuple(cfg("t1", ns="child")) is None
    assert await s.get_tuple(cfg("t1", checkpoint_id=_core.new_checkpoint_id()[0])) is None


async def check_parent_config(s: Driver) -> None:
    chain = Chain(s, "t1")
    first = await chain.write(a=1)
    second = await chain.write(a=2)
    assert (await s.get_tuple(first)).parent_config is None
    parent = (await s.get_tuple(second)).parent_config
    assert parent["configurable"]["thread_id"] == "t1"
    assert parent["configurable"]["checkpoint_ns"] == ""
    assert cid(parent) == cid(first)


async def check_checkpoint_fields_survive(s: Driver) -> None:
    checkpoint = empty_checkpoint()
    checkpoint["channel_values"] = {"a": "x", "b": "y"}
    checkpoint["channel_versions"] = {"a": 1, "b": "00000000000000000000000000000002.5"}
    checkpoint["versions_seen"] = {"node": {"a": 1}, "__input__": {}}
    checkpoint["updated_channels"] = ["a"]
    stored = await s.put(cfg("t1"), checkpoint, {"source": "update", "step": 4, "parents": {"": "p"}, "k": [1]}, {"a": 1, "b": "00000000000000000000000000000002.5"})
    got = (await s.get_tuple(stored)).checkpoint
    for key in ("v", "id", "ts", "channel_values", "channel_versions", "versions_seen", "updated_channels"):
        assert_same(got[key], checkpoint[key], ordered=False)
    md = (await s.get_tuple(stored)).metadata
    assert md["source"] == "update" and md["step"] == 4 and md["parents"] == {"": "p"} and md["k"] == [1]


async def check_only_new_versions_are_stored(s: Driver) -> None:
    chain = Chain(s, "t1")
    first = await chain.write(big={"doc": "x" * 50}, n=0)
    for i in range(1, 4):
        await chain.write(n=i)
    latest = await s.get_tuple(cfg("t1"))
    assert latest.checkpoint["channel_values"] == {"big": {"doc": "x" * 50}, "n": 3}
    assert (await s.get_tuple(first)).checkpoint["channel_values"]["n"] == 0

    # A value in channel_values whose channel is not in new_versions is not stored anew:
    # the version stored earlier is what reads back.
    checkpoint = empty_checkpoint()
    checkpoint["channel_values"] = {"n": "not stored", "big": {"doc": "x" * 50}}
    checkpoint["channel_versions"] = dict(chain.versions)
    stored = await s.put(chain.config, checkpoint, {"source": "loop", "step": 9, "parents": {}}, {})
    assert (await s.get_tuple(stored)).checkpoint["channel_values"]["n"] == 3

    # A channel in new_versions without a value reads as absent (cleared), earlier ones intact.
    checkpoint = empty_checkpoint()
    versions = dict(chain.versions, n=s.next_version(chain.versions["n"]))
    checkpoint["channel_values"] = {"big": {"doc": "x" * 50}}
    checkpoint["channel_versions"] = versions
    cleared = await s.put(stored, checkpoint, {"source": "loop", "step": 10, "parents": {}}, {"n": versions["n"]})
    assert (await s.get_tuple(cleared)).checkpoint["channel_values"] == {"big": {"doc": "x" * 50}}
    assert (await s.get_tuple(stored)).checkpoint["channel_values"]["n"] == 3

    # A channel missing from channel_versions does not read back.
    checkpoint = empty_checkpoint()
    checkpoint["channel_values"] = {}
    checkpoint["channel_versions"] = {"n": versions["n"]}
    dropped = await s.put(cleared, checkpoint, {"source": "loop", "step": 11, "parents": {}}, {})
    assert "big" not in (await s.get_tuple(dropped)).checkpoint["channel_values"]


async def check_list_order_filter_before_limit(s: Driver) -> None:
    chain = Chain(s, "t1")
    for i in range(5):
        await chain.write(a=i)
    newest_first = [cid(c) for c in reversed(chain.configs)]

    listed = await s.list(cfg("t1"))
    assert ids(listed) == newest_first
    assert listed[0].checkpoint["channel_values"] == {"a": 4}
    assert cid(listed[0].parent_config) == newest_first[1]
    assert ids(await s.list(cfg("t1"), limit=2)) == newest_first[:2]
    assert await s.list(cfg("t1"), limit=0) == []
    assert ids(await s.list(cfg("t1"), before=chain.configs[2])) == newest_first[3:]
    assert ids(await s.list(cfg("t1"), before=chain.configs[3], limit=2)) == newest_first[2:4]
    assert ids(await s.list(cfg("t1"), filter={"source": "loop", "step": 2})) == [newest_first[1]]
    assert ids(await s.list(cfg("t1"), filter={"source": "loop"}, limit=3)) == newest_first[:3]
    assert ids(await s.list(cfg("t1"), filter={"source": "input"})) == [newest_first[-1]]
    assert await s.list(cfg("t1"), filter={"source": "fork"}) == []
    assert await s.list(cfg("t1"), filter={"run_id": "other"}) == []
    assert await s.list(cfg("nobody")) == []
    # A checkpoint_id in the config lists that one checkpoint only.
    assert ids(await s.list(chain.configs[1])) == [cid(chain.configs[1])]


async def check_list_threads_and_namespaces(s: Driver) -> None:
    root = Chain(s, "t1")
    child = Chain(s, "t1", ns="child:1")
    other = Chain(s, "t2")
    order = []
    for chain in (root, child, other, root, child):
        order.append(cid(await chain.write(a=len(order))))
    every = list(reversed(order))

    assert ids(await s.list(None)) == every
    assert ids(await s.list(None, limit=2)) == every[:2]
    assert ids(await s.list(None, filter={"step": -1})) == [order[2], order[1], order[0]]
    # No checkpoint_ns: every namespace of the thread.
    assert ids(await s.list(cfg("t1", ns=None))) == [order[4], order[3], order[1], order[0]]
    assert ids(await s.list(cfg("t1"))) == [order[3], order[0]]
    assert ids(await s.list(cfg("t1", ns="child:1"))) == [order[4], order[1]]
    listed = await s.list(cfg("t1", ns="child:1"))
    assert listed[0].config["configurable"]["checkpoint_ns"] == "child:1"
    assert (await s.get_tuple(cfg("t1", ns="child:1"))).checkpoint["id"] == order[4]


async def check_metadata_from_config_is_merged(s: Driver) -> None:
    config = {
        "configurable": {"thread_id": "t1", "checkpoint_ns": "", "user": "ada", "n": 3, "__hidden": "x", "obj": object()},
        "metadata": {"tag": "blue", "source": "ignored"},
    }
    stored = await s.put(config, empty_checkpoint(), {"source": "input", "step": -1, "parents": {}}, {})
    md = (await s.get_tuple(stored)).metadata
    assert md["source"] == "input"
    assert md["user"] == "ada" and md["n"] == 3 and md["tag"] == "blue"
    for absent in ("__hidden", "obj", "thread_id", "checkpoint_ns"):
        assert absent not in md
    assert ids(await s.list(cfg("t1"), filter={"user": "ada"})) == [cid(stored)]


async def check_put_writes_and_pending_writes(s: Driver) -> None:
    chain = Chain(s, "t1")
    first = await chain.write(a=1)
    await s.put_writes(first, [("a", 1), ("b", "x")], "task-b", "~path:2")
    await s.put_writes(first, [("a", 2)], "task-a", "~path:2")
    await s.put_writes(first, [("c", 3)], "task-z", "~path:1")
    writes = (await s.get_tuple(first)).pending_writes
    # Sorted by task path, then task id, then write index.
    assert [tuple(w) for w in writes] == [
        ("task-z", "c", 3),
        ("task-a", "a", 2),
        ("task-b", "a", 1),
        ("task-b", "b", "x"),
    ]
    second = await chain.write(a=2)
    assert (await s.get_tuple(second)).pending_writes == []
    assert (await s.list(first))[0].pending_writes == writes


async def check_put_writes_idempotent_and_special_channels_upsert(s: Driver) -> None:
    first = await Chain(s, "t1").write(a=1)
    await s.put_writes(first, [("a", "first"), (ERROR, "boom 1"), (INTERRUPT, {"n": 1})], "task")
    await s.put_writes(first, [("a", "retried"), (ERROR, "boom 2"), (INTERRUPT, {"n": 2})], "task")
    await s.put_writes(first, [(SCHEDULED, None), (RESUME, "yes")], "task")
    writes = {w[1]: w[2] for w in (await s.get_tuple(first)).pending_writes}
    assert writes == {"a": "first", ERROR: "boom 2", INTERRUPT: {"n": 2}, SCHEDULED: None, RESUME: "yes"}
    assert len((await s.get_tuple(first)).pending_writes) == 5


async def check_put_writes_isolated_by_checkpoint_and_namespace(s: Driver) -> None:
    root = await Chain(s, "t1").write(a=1)
    child = await Chain(s, "t1", ns="child").write(a=1)
    await s.put_writes(root, [("ch", "root")], "task")
    await s.put_writes(child, [("ch", "child")], "task")
    assert [w[2] for w in (await s.get_tuple(root)).pending_writes] == ["root"]
    assert [w[2] for w in (await s.get_tuple(child)).pending_writes] == ["child"]


async def check_delete_thread(s: Driver) -> None:
    a = await Chain(s, "t1").write(a=1)
    await Chain(s, "t1", ns="child").write(a=1)
    b = await Chain(s, "t2").write(a=2)
    await s.put_writes(a, [("x", 1)], "task")
    await s.delete_thread("t1")
    assert await s.get_tuple(cfg("t1")) is None
    assert await s.get_tuple(cfg("t1", ns="child")) is None
    assert await s.list(cfg("t1", ns=None)) == []
    assert ids(await s.list(None)) == [cid(b)]
    await s.delete_thread("never-existed")
    # A thread put again after deletion starts from scratch (no stale writes).
    again = await s.put(cfg("t1"), {**empty_checkpoint(), "id": cid(a)}, {"source": "input", "step": -1, "parents": {}}, {})
    assert (await s.get_tuple(again)).pending_writes == []


async def check_copy_thread(s: Driver) -> None:
    chain = Chain(s, "src")
    for i in range(3):
        await chain.write(a=i)
    child = await Chain(s, "src", ns="child").write(c="child")
    await s.put_writes(chain.configs[-1], [("w", "pending")], "task")
    before = ids(await s.list(cfg("src", ns=None)))

    await s.copy_thread("src", "dst")
    assert ids(await s.list(cfg("dst", ns=None))) == before
    assert ids(await s.list(cfg("src", ns=None))) == before
    latest = await s.get_tuple(cfg("dst"))
    assert latest.config["configurable"]["thread_id"] == "dst"
    assert latest.checkpoint["channel_values"] == {"a": 2}
    assert latest.parent_config["configurable"]["thread_id"] == "dst"
    assert [tuple(w) for w in latest.pending_writes] == [("task", "w", "pending")]
    assert latest.metadata["run_id"] == "run-1"
    assert (await s.get_tuple(cfg("dst", ns="child"))).checkpoint["id"] == cid(child)
    # The copy is independent of its source.
    await s.delete_thread("src")
    assert len(await s.list(cfg("dst", ns=None))) == 4

    with pytest.raises(CheckpointNotFoundError, match="nobody"):
        await s.copy_thread("nobody", "dst2")
    assert await s.list(cfg("dst2", ns=None)) == []


async def check_prune_keep_latest(s: Driver) -> None:
    chain = Chain(s, "t1")
    for i in range(4):
        await chain.write(a=i, b=f"b{i}" if i == 0 else None)
    child = Chain(s, "t1", ns="child")
    for i in range(2):
        await child.write(c=i)
    await s.put_writes(chain.configs[-1], [("w", 1)], "task")
    await s.put_writes(chain.configs[0], [("w", 0)], "task")
    keep = Chain(s, "t2")
    for i in range(3):
        await keep.write(a=i)

    await s.prune(["t1"], strategy="keep_latest")
    assert ids(await s.list(cfg("t1"))) == [cid(chain.configs[-1])]
    assert ids(await s.list(cfg("t1", ns="child"))) == [cid(child.configs[-1])]
    latest = await s.get_tuple(cfg("t1"))
    assert latest.checkpoint["channel_values"] == {"a": 3, "b": None}
    assert [tuple(w) for w in latest.pending_writes] == [("task", "w", 1)]
    assert len(await s.list(cfg("t2"))) == 3
    await s.prune([], strategy="keep_latest")
    await s.prune(["nobody"], strategy="keep_latest")


async def check_prune_delete(s: Driver) -> None:
    await Chain(s, "t1").write(a=1)
    await Chain(s, "t1", ns="child").write(a=1)
    kept = await Chain(s, "t2").write(a=2)
    await s.prune(["t1", "nobody"], strategy="delete")
    assert ids(await s.list(None)) == [cid(kept)]
    with pytest.raises(ValueError, match="strategy"):
        await s.prune(["t2"], strategy="everything")
    assert ids(await s.list(None)) == [cid(kept)]


async def check_delete_for_runs(s: Driver) -> None:
    chain = Chain(s, "t1", run_id="run-a")
    for i in range(2):
        await chain.write(a=i)
    chain.run_id = "run-b"
    for i in range(2, 4):
        await chain.write(a=i)
    await s.put_writes(chain.configs[-1], [("w", 1)], "task")
    child = Chain(s, "t1", ns="child", run_id="run-b")
    await child.write(c=1)
    other = Chain(s, "t2", run_id="run-c")
    await other.write(a=1)

    await s.delete_for_runs(["run-b", "run-unknown"])
    assert ids(await s.list(cfg("t1", ns=None))) == [cid(c) for c in reversed(chain.configs[:2])]
    latest = await s.get_tuple(cfg("t1"))
    assert latest.checkpoint["channel_values"] == {"a": 1}
    assert latest.pending_writes == []
    assert await s.get_tuple(cfg("t1", ns="child")) is None
    assert ids(await s.list(cfg("t2"))) == [cid(other.config)]
    await s.delete_for_runs([])


async def check_get_next_version_is_monotonic(s: Driver) -> None:
    v = s.next_version(None)
    seen = [v]
    for _ in range(50):
        nxt = s.next_version(v)
        assert nxt > v
        assert int(str(nxt).split(".")[0]) == int(str(v).split(".")[0]) + 1
        v = nxt
        seen.append(v)
    assert int(str(s.next_version(7)).split(".")[0]) == 8
    assert len(set(seen)) == len(seen)


async def check_values_round_trip_exactly(s: Driver) -> None:
    values = rich_values()
    checkpoint = empty_checkpoint()
    checkpoint["channel_values"] = values
    versions = {k: s.next_version(None) for k in values}
    checkpoint["channel_versions"] = versions
    metadata = {"source": "input", "step": -1, "parents": {}, "labels": ["a", "b"], "score": 0.5, "flag": None}
    stored = await s.put(cfg("t1"), checkpoint, metadata, versions)
    await s.put_writes(stored, list(values.items()), "task")

    got = await s.get_tuple(stored)
    assert set(got.checkpoint["channel_values"]) == set(values)
    for k, v in values.items():
        assert_same(got.checkpoint["channel_values"][k], v)
    for (task_id, channel, value), (k, v) in zip(got.pending_writes, values.items()):
        assert (task_id, channel) == ("task", k)
        assert_same(value, v)
    for k, v in metadata.items():
        assert_same(got.metadata[k], v)
    # What a saver returns is a copy: mutating it does not change what is stored.
    got.checkpoint["channel_values"]["nested"]["list"].append("mutated")
    assert_same((await s.get_tuple(stored)).checkpoint["channel_values"]["nested"], values["nested"])


async def check_repeated_reads_are_independent_copies(s: Driver) -> None:
    """Each read returns objects of its own, however often a value is read (a saver may keep
    decoded values to copy them), at every level and for every kind of value."""
    big = {
        "messages": [
            {"role": "user", "content": "x" * 40 + str(i), "meta": {"tags": [i, "t"], "pair": (i, [i])}}
            for i in range(20)
        ],
        "when": dt.date(2024, 1, 2),
    }
    values = {"big": big, "mixed": {"rich": rich_values(), "pad": "p" * 300}}
    checkpoint = empty_checkpoint()
    checkpoint["channel_values"] = copy.deepcopy(values)
    versions = {k: s.next_version(None) for k in values}
    checkpoint["channel_versions"] = versions
    stored = await s.put(cfg("t1"), checkpoint, {"source": "input", "step": -1, "parents": {}}, versions)
    write = copy.deepcopy(big["messages"][1])
    await s.put_writes(stored, [("messages", copy.deepcopy(write))], "task")
    reads = [lambda: s.get_tuple(stored), lambda: _first_listed(s, stored)]
    for read in reads * 3:
        t = await read()
        written = t.pending_writes[0][2]
        assert_same(written, write)
        written["meta"]["tags"].append("changed")
        got = t.checkpoint["channel_values"]
        assert_same(got["big"], values["big"])
        assert_same(got["mixed"], values["mixed"])
        message = got["big"]["messages"][0]
        message["content"] = "changed"
        message["meta"]["tags"].append("changed")
        message["meta"]["pair"][1].append("changed")
        got["big"]["messages"].append({"role": "intruder"})
        got["mixed"]["rich"]["nested"]["list"].append("changed")
        got["mixed"]["rich"]["set"].add("changed")
    latest = await s.get(stored)
    assert_same(latest["channel_values"]["big"], values["big"])
    assert_same(latest["channel_values"]["mixed"], values["mixed"])


async def check_a_value_rewritten_unchanged_reads_back_per_version(s: Driver) -> None:
    """A channel rewritten with an equal value (a saver may store its text once for both
    versions), then changed: every checkpoint, listed again and again, reads its own value."""
    history = [["m" * 300, str(i // 2)] for i in range(6)]  # each list written twice in a row
    chain = Chain(s, "t1")
    for i, messages in enumerate(history):
        await chain.write(messages=copy.deepcopy(messages), step=i)
    for _ in range(3):
        listed = await s.list(cfg("t1"))
        assert [t.checkpoint["channel_values"]["step"] for t in listed] == list(range(5, -1, -1))
        for t, messages in zip(listed, reversed(history)):
            assert t.checkpoint["channel_values"]["messages"] == messages
            t.checkpoint["channel_values"]["messages"].append("mutated")
    for config, messages in zip(chain.configs, history):
        assert (await s.get_tuple(config)).checkpoint["channel_values"]["messages"] == messages


async def _first_listed(s: Driver, config: dict) -> Any:
    return (await s.list(config, limit=1))[0]


async def check_unserializable_value_is_refused_and_nothing_stored(s: Driver) -> None:
    first = await Chain(s, "t1").write(a=1)
    before = ids(await s.list(None))

    checkpoint = empty_checkpoint()
    checkpoint["channel_values"] = {"ok": 1, "bad_channel": {"inner": [lambda: None]}}
    checkpoint["channel_versions"] = {"ok": s.next_version(None), "bad_channel": s.next_version(None)}
    with pytest.raises(SerializationError, match="bad_channel") as err:
        await s.put(first, checkpoint, {"source": "loop", "step": 0, "parents": {}}, checkpoint["channel_versions"])
    assert "function" in str(err.value)
    assert isinstance(err.value, FerrographError) and isinstance(err.value, TypeError)
    assert ids(await s.list(None)) == before
    assert await s.get_tuple(cfg("t1", checkpoint_id=checkpoint["id"])) is None

    with pytest.raises(SerializationError, match="bad_write"):
        await s.put_writes(first, [("fine", 1), ("bad_write", object())], "task")
    assert (await s.get_tuple(first)).pending_writes == []


async def check_bad_configs_are_clear_errors(s: Driver) -> None:
    first = await Chain(s, "t1").write(a=1)
    checkpoint = empty_checkpoint()
    md = {"source": "loop", "step": 0, "parents": {}}
    with pytest.raises(InvalidConfigError, match="thread_id"):
        await s.get_tuple({"configurable": {"checkpoint_ns": ""}})
    with pytest.raises(InvalidConfigError, match="configurable"):
        await s.get_tuple({})
    with pytest.raises(InvalidConfigError, match="thread_id"):
        await s.put({"configurable": {}}, checkpoint, md, {})
    with pytest.raises(InvalidConfigError, match="checkpoint_id"):
        await s.put_writes(cfg("t1"), [("a", 1)], "task")
    with pytest.raises(InvalidConfigError, match="thread_id"):
        await s.list({"configurable": {"checkpoint_ns": ""}})
    assert isinstance(InvalidConfigError("x"), ValueError)
    assert ids(await s.list(None)) == [cid(first)]


CHECKS: list[Callable[[Driver], Awaitable[None]]] = [
    check_put_then_get_latest_and_by_id,
    check_get_tuple_misses_return_none,
    check_parent_config,
    check_checkpoint_fields_survive,
    check_only_new_versions_are_stored,
    check_list_order_filter_before_limit,
    check_list_threads_and_namespaces,
    check_metadata_from_config_is_merged,
    check_put_writes_and_pending_writes,
    check_put_writes_idempotent_and_special_channels_upsert,
    check_put_writes_isolated_by_checkpoint_and_namespace,
    check_delete_thread,
    check_copy_thread,
    check_prune_keep_latest,
    check_prune_delete,
    check_delete_for_runs,
    check_get_next_version_is_monotonic,
    check_values_round_trip_exactly,
    check_repeated_reads_are_independent_copies,
    check_a_value_rewritten_unchanged_reads_back_per_version,
    check_unserializable_value_is_refused_and_nothing_stored,
    check_bad_configs_are_clear_errors,
]
