"""durability="async" (the default): a run hands its saver calls to a background writer, which
writes them in order and coalesces what queued meanwhile into one batch (one transaction on the
SQL savers). The run waits for the writer before it returns or raises, a failed write reaches
the caller, and nothing queued after a failed batch is written."""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from typing import Any, Callable, Optional, TypedDict

import pytest

from ferrograph import serde
from ferrograph.checkpointers import MemorySaver
from ferrograph.checkpointers.base import BaseCheckpointSaver, empty_checkpoint
from ferrograph.checkpointers.sql import EXPECT_LATEST
from ferrograph.errors import ConcurrentUpdateError, GraphValidationError
from ferrograph.graph import START, StateGraph
from ferrograph.graph._writer import value_bytes

NODES = 5


class State(TypedDict):
    n: int


def linear(saver: Any, last: Any = None, first: Any = None) -> Any:
    """START -> n0 -> ... -> n4; `first()` runs inside the first node, `last()` inside the last."""

    def step(state: State) -> dict:
        if first is not None and state["n"] == 0:
            first()
        return {"n": state["n"] + 1}

    def final(state: State) -> dict:
        if last is not None:
            last()
        return {"n": state["n"] + 1}

    g = StateGraph(State)
    names = [f"n{i}" for i in range(NODES)]
    for name in names[:-1]:
        g.add_node(name, step)
    g.add_node(names[-1], final)
    g.add_edge(START, names[0])
    for a, b in zip(names, names[1:]):
        g.add_edge(a, b)
    return g.compile(checkpointer=saver)


class RecordingSaver(BaseCheckpointSaver):
    """A saver double over a MemorySaver that records each batch it is handed. `hold(batch_no)`
    runs before a batch is written (to make a write slow); `fail(calls)` returning an exception
    makes the batch fail before any of it is stored, as a transaction would."""

    def __init__(self, hold: Any = None, fail: Any = None) -> None:
        self.inner = MemorySaver()
        self.batches: list[list[tuple[str, tuple]]] = []
        self.hold = hold
        self.fail = fail
        self.lock = threading.Lock()

    def get_tuple(self, config: dict) -> Any:
        return self.inner.get_tuple(config)

    def list(self, config: Optional[dict], **kwargs: Any) -> Any:
        return self.inner.list(config, **kwargs)

    def put(self, *args: Any) -> Any:
        return self.run_batch([("put", args)])[0]

    def put_writes(self, *args: Any) -> Any:
        return self.run_batch([("put_writes", args)])[0]

    def run_batch(self, calls: Any) -> list:
        calls = list(calls)
        with self.lock:
            self.batches.append(calls)
            number = len(self.batches)
        if self.hold is not None:
            self.hold(number)
        error = self.fail(calls) if self.fail is not None else None
        if error is not None:
            raise error
        return [getattr(self.inner, method)(*args) for method, args in calls]

    async def aget_tuple(self, config: dict) -> Any:
        return self.get_tuple(config)

    async def alist(self, config: Optional[dict], **kwargs: Any) -> Any:
        for item in self.list(config, **kwargs):
            yield item

    async def aput(self, *args: Any) -> Any:
        return self.put(*args)

    async def aput_writes(self, *args: Any) -> Any:
        return self.put_writes(*args)

    async def arun_batch(self, calls: Any) -> list:
        return await asyncio.to_thread(self.run_batch, calls)

    def calls(self) -> list[tuple[str, tuple]]:
        return [call for batch in self.batches for call in batch]

    def stored(self, thread: str) -> list:
        return list(self.inner.list({"configurable": {"thread_id": thread}}))


async def run_with(driver: str, graph: Any, config: dict) -> None:
    """Runs `graph` from {"n": 0} to its end through one of the four drivers."""
    if driver == "invoke":
        graph.invoke({"n": 0}, config)
    elif driver == "stream":
        list(graph.stream({"n": 0}, config))
    elif driver == "ainvoke":
        await graph.ainvoke({"n": 0}, config)
    else:
        [chunk async for chunk in graph.astream({"n": 0}, config)]


def cfg(thread: str) -> dict:
    return {"configurable": {"thread_id": thread}}


def checkpoint_id(config: dict) -> Optional[str]:
    return (config.get("configurable") or {}).get("checkpoint_id")


def check_order(calls: list[tuple[str, tuple]]) -> None:
    """The calls of a linear run, in the order the run made them: each checkpoint a child of the
    one before, each task's writes against the latest checkpoint."""
    assert [method for method, _ in calls] == ["put"] + ["put_writes", "put"] * (NODES + 1)
    latest = None
    for method, args in calls:
        if method == "put":
            assert checkpoint_id(args[0]) == latest
            latest = args[1]["id"]
        else:
            assert checkpoint_id(args[0]) == latest


def slow_first_write() -> tuple[Any, dict]:
    """A saver whose first write starts while the first node waits for it, and lasts until
    the last node has run: everything the run queues meanwhile has to wait for it."""
    started, release = threading.Event(), threading.Event()

    def hold(number: int) -> None:
        if number == 1:
            started.set()
            assert release.wait(10)

    def first() -> None:
        assert started.wait(10)

    return RecordingSaver(hold=hold), {"first": first, "last": release.set}


@pytest.mark.parametrize("driver", ["invoke", "ainvoke"])
async def test_calls_queued_during_a_slow_write_go_out_as_one_batch_in_order(driver):
    saver, nodes = slow_first_write()
    graph = linear(saver, **nodes)
    if driver == "invoke":
        assert graph.invoke({"n": 0}, cfg("t")) == {"n": NODES}
    else:
        assert await graph.ainvoke({"n": 0}, cfg("t")) == {"n": NODES}
    # Batch 2: what queued while batch 1 was written (up to n3 at least; the last node may
    # still be returning when batch 1 ends, then its writes are batch 3).
    assert 2 <= len(saver.batches) <= 3
    assert len(saver.batches[1]) >= 2 * (NODES - 1)
    check_order(saver.calls())
    assert len(saver.stored("t")) == NODES + 2


@pytest.mark.parametrize("driver", ["invoke", "stream", "ainvoke", "astream"])
async def test_a_run_returns_only_once_everything_is_stored(driver):
    saver = RecordingSaver(hold=lambda _number: time.sleep(0.02))
    graph = linear(saver)
    await run_with(driver, graph, cfg("t"))
    # Read behind the graph's back: nothing may still be on its way.
    stored = saver.stored("t")
    assert len(stored) == NODES + 2
    assert stored[0].checkpoint["channel_values"]["n"] == NODES
    history = list(graph.get_state_history(cfg("t")))
    assert [s.values.get("n") for s in history][0] == NODES


def test_closing_a_stream_waits_for_its_writes():
    saver = RecordingSaver(hold=lambda _number: time.sleep(0.05))
    graph = linear(saver)
    stream = graph.stream({"n": 0}, cfg("t"), stream_mode="updates")
    next(stream)
    stream.close()
    written = len(saver.calls())
    assert len(saver.stored("t")) >= 2
    time.sleep(0.2)
    assert len(saver.calls()) == written


def test_reads_wait_for_a_running_stream_s_writes():
    saver = RecordingSaver(hold=lambda _number: time.sleep(0.05))
    graph = linear(saver)
    stream = graph.stream({"n": 0}, cfg("t"), stream_mode="updates")
    next(stream)
    next(stream)
    # Queued before this read: the snapshot shows n0's and n1's updates.
    assert graph.get_state(cfg("t")).values == {"n": 2}
    stream.close()


class DiskFull(Exception):
    pass


def fail_at_step(step: int) -> Any:
    def fail(calls: list[tuple[str, tuple]]) -> Optional[Exception]:
        if any(method == "put" and args[2].get("step") == step for method, args in calls):
            return DiskFull(f"no space for step {step}")
        return None

    return fail


@pytest.mark.parametrize("driver", ["invoke", "stream", "ainvoke", "astream"])
async def test_a_failed_write_reaches_the_caller_and_nothing_after_it_is_written(driver):
    saver = RecordingSaver(fail=fail_at_step(2))
    graph = linear(saver)
    with pytest.raises(DiskFull):
        await run_with(driver, graph, cfg("t"))
    # The failed batch was written again call by call, up to the failing put; nothing after.
    last = saver.batches[-1]
    assert len(last) == 1 and fail_at_step(2)(last)
    steps = [t.metadata["step"] for t in saver.stored("t")]
    assert steps[0] == 1
    with pytest.raises(DiskFull):
        graph.invoke(None, cfg("t"))
    assert [t.metadata["step"] for t in saver.stored("t")][0] == 1


def test_a_failed_write_is_raised_once_when_the_run_itself_fails_too():
    saver = RecordingSaver(hold=lambda _number: time.sleep(0.05), fail=fail_at_step(0))

    def boom(state: State) -> dict:
        raise ValueError("node failed")

    g = StateGraph(State)
    g.add_node("boom", boom)
    g.add_edge(START, "boom")
    graph = g.compile(checkpointer=saver)
    with pytest.raises((ValueError, DiskFull)):
        graph.invoke({"n": 0}, cfg("t"))


def test_sync_durability_writes_each_call_before_going_on():
    saver = RecordingSaver()
    graph = linear(saver)
    graph.invoke({"n": 0}, cfg("t"), durability="sync")
    assert all(len(batch) == 1 for batch in saver.batches)
    check_order(saver.calls())


def _stored_checkpoint(saver: Any, thread: str) -> dict:
    config = saver.put(cfg(thread), empty_checkpoint(), {"source": "input", "step": -1, "parents": {}}, {})
    return config


def _conflicting_batch(first: dict, thread: str) -> list[tuple[str, tuple]]:
    """put_writes on `first`, a child of `first`, then another child of `first` that must be
    the latest: the last put fails the check, so the batch must leave nothing behind."""
    meta = {"source": "loop", "step": 0, "parents": {}}
    parent = {"configurable": {"thread_id": thread, "checkpoint_ns": "", "checkpoint_id": checkpoint_id(first)}}
    marked = {"configurable": {**parent["configurable"], EXPECT_LATEST: True}}
    return [
        ("put_writes", (parent, [("n", 1)], "task-1", "")),
        ("put", (marked, empty_checkpoint(), meta, {})),
        ("put", (marked, empty_checkpoint(), meta, {})),
    ]


@pytest.mark.ferrograph_savers("sqlite", "postgres")
def test_a_batch_is_one_transaction(saver):
    first = _stored_checkpoint(saver, "t")
    with pytest.raises(ConcurrentUpdateError):
        saver.run_batch(_conflicting_batch(first, "t"))
    # A first call with nothing to store (no writes) leaves the next call's statements in the
    # batch's transaction all the same.
    nothing = ("put_writes", ({"configurable": {"thread_id": "t", "checkpoint_id": checkpoint_id(first)}}, [], "task-0", ""))
    with pytest.raises(ConcurrentUpdateError):
        saver.run_batch([nothing, *_conflicting_batch(first, "t")])
    latest = saver.get_tuple(cfg("t"))
    assert checkpoint_id(latest.config) == checkpoint_id(first)
    assert not latest.pending_writes
    assert len(list(saver.list(cfg("t")))) == 1
    # A batch that passes stores everything, and returns each call's result.
    batch = _conflicting_batch(first, "t")[:2]
    results = saver.run_batch(batch)
    assert results[0] is None and checkpoint_id(results[1]) == batch[1][1][1]["id"]
    assert len(list(saver.list(cfg("t")))) == 2


@pytest.mark.ferrograph_savers("sqlite", "postgres")
async def test_an_async_batch_is_one_transaction(async_saver):
    first = await async_saver.aput(cfg("t"), empty_checkpoint(), {"source": "input", "step": -1, "parents": {}}, {})
    with pytest.raises(ConcurrentUpdateError):
        await async_saver.arun_batch(_conflicting_batch(first, "t"))
    latest = await async_saver.aget_tuple(cfg("t"))
    assert checkpoint_id(latest.config) == checkpoint_id(first)
    assert not latest.pending_writes
    assert len([t async for t in async_saver.alist(cfg("t"))]) == 1


@pytest.mark.ferrograph_savers("sqlite", "postgres")
def test_a_graph_on_a_sql_saver_writes_in_batches_and_a_conflict_stops_it(saver):
    graph = linear(saver)
    assert graph.invoke({"n": 0}, cfg("t")) == {"n": NODES}
    assert len(list(saver.list(cfg("t")))) == NODES + 2

    # Another writer advances the thread while a run is on it: the run's next checkpoint
    # fails the check, its whole batch is rolled back and the error reaches the caller.
    def sneak() -> None:
        latest = saver.get_tuple(cfg("u"))
        if latest is not None and latest.metadata["step"] == 1:
            saver.put(latest.config, empty_checkpoint(), {"source": "update", "step": 99, "parents": {}}, {})

    def step(state: State) -> dict:
        time.sleep(0.05)  # the writer catches up
        sneak()
        return {"n": state["n"] + 1}

    g = StateGraph(State)
    for name in ("a", "b", "c", "d"):
        g.add_node(name, step)
    g.add_edge(START, "a")
    g.add_edge("a", "b")
    g.add_edge("b", "c")
    g.add_edge("c", "d")
    with pytest.raises(ConcurrentUpdateError):
        g.compile(checkpointer=saver).invoke({"n": 0}, cfg("u"))
    steps = sorted(t.metadata["step"] for t in saver.list(cfg("u")))
    assert 99 in steps and max(s for s in steps if s != 99) <= 2


class Long(TypedDict):
    n: int
    blob: str


def looping(saver: Any, steps: int, blob_size: int, seen_behind: list, stored_puts: Any, **bounds: Any) -> Any:
    """One node that runs `steps` times, writing a fresh `blob_size`-character string each time,
    and records how many of the run's checkpoints were not yet stored when it ran."""

    def node(state: Long) -> dict:
        # Checkpoints made so far: the input's and one per step before this one.
        seen_behind.append(state["n"] + 1 - stored_puts())
        return {"n": state["n"] + 1, "blob": str(state["n"] % 10) * blob_size}

    g = StateGraph(Long)
    g.add_node("step", node)
    g.add_edge(START, "step")
    g.add_conditional_edges("step", lambda s: "step" if s["n"] < steps else "__end__")
    return g.compile(checkpointer=saver, **bounds)


def slow_saver() -> tuple["RecordingSaver", Any]:
    """A saver whose every batch takes 5 ms, and a count of the puts it has stored."""
    saver = RecordingSaver()
    stored = [0]

    def run_batch(calls: Any) -> list:
        time.sleep(0.005)
        results = RecordingSaver.run_batch(saver, calls)
        with saver.lock:
            stored[0] += sum(method == "put" for method, _ in calls)
        return results

    saver.run_batch = run_batch  # type: ignore[method-assign]
    return saver, lambda: stored[0]


async def run_long(driver: str, graph: Any, config: dict) -> Any:
    start = {"n": 0, "blob": ""}
    if driver == "invoke":
        return graph.invoke(start, {**config, "recursion_limit": 1000})
    return await graph.ainvoke(start, {**config, "recursion_limit": 1000})


@pytest.mark.parametrize("driver", ["invoke", "ainvoke"])
async def test_the_writer_holds_at_most_max_pending_steps(driver):
    saver, stored = slow_saver()
    behind: list[int] = []
    graph = looping(saver, 60, 10, behind, stored, max_pending_steps=3)
    assert (await run_long(driver, graph, cfg("t")))["n"] == 60
    # The bound counts what is queued or being written; the node sees at most that many
    # checkpoints not stored, plus the one the step it runs in was just handed over with.
    assert max(behind) <= 3 + 1
    assert len(saver.stored("t")) == 62
    assert [t.metadata["step"] for t in saver.stored("t")][:3] == [60, 59, 58]
    assert saver.stored("t")[0].checkpoint["channel_values"]["n"] == 60


@pytest.mark.parametrize("driver", ["invoke", "ainvoke"])
async def test_the_writer_holds_at_most_max_pending_bytes(driver):
    saver, stored = slow_saver()
    behind: list[int] = []
    # Each step writes 10 KB: 50 KB hold about four steps' values (with their writes).
    graph = looping(saver, 60, 10_000, behind, stored, max_pending_bytes=50_000)
    assert (await run_long(driver, graph, cfg("t")))["n"] == 60
    assert max(behind) <= 4
    assert saver.stored("t")[0].checkpoint["channel_values"]["blob"] == "9" * 10_000


@pytest.mark.parametrize("driver", ["invoke", "ainvoke"])
async def test_without_a_tight_bound_the_writer_falls_behind(driver):
    # The same run under the default bounds: the graph gets well ahead of its writer, which
    # is what the bound tests above keep from happening.
    saver, stored = slow_saver()
    behind: list[int] = []
    graph = looping(saver, 60, 10, behind, stored)
    await run_long(driver, graph, cfg("t"))
    assert max(behind) > 10


def test_one_value_larger_than_the_bound_is_still_written():
    saver, stored = slow_saver()
    graph = looping(saver, 3, 100_000, [], stored, max_pending_bytes=1_000)
    assert graph.invoke({"n": 0, "blob": ""}, cfg("t"))["blob"] == "2" * 100_000
    assert len(saver.stored("t")) == 5


@pytest.mark.parametrize("bound", [0, -1, 1.5, True, "10"])
def test_bounds_must_be_positive_ints(bound):
    g = StateGraph(State)
    g.add_node("a", lambda s: s)
    g.add_edge(START, "a")
    for option in ("max_pending_bytes", "max_pending_steps"):
        with pytest.raises(GraphValidationError, match=option):
            g.compile(checkpointer=MemorySaver(), **{option: bound})


def test_a_value_counts_its_encoded_size():
    # Strings, bytes and numbers directly; anything else by the codec.
    assert value_bytes("x" * 20_000) == 20_000
    assert value_bytes(b"y" * 300) == 300
    assert value_bytes(12) == 8
    messages = [{"role": "user", "content": "z" * 200}] * 20
    assert value_bytes(messages) == len(serde.dumps(messages)) > 4_000
    # One the codec refuses counts its shallow size (the saver raises the codec's error).
    unknown = object()
    assert value_bytes(unknown) == sys.getsizeof(unknown)


class _LateExecutor:
    """A writer pool whose threads start half a second late: the run holds the GIL while it
    computes, so a pooled drain often starts only once the run waits for it. `asked` is set
    when a drain is asked for."""

    def __init__(self) -> None:
        self.started: list[threading.Timer] = []
        self.asked = threading.Event()

    def submit(self, fn: Any) -> None:
        timer = threading.Timer(0.5, fn)
        timer.start()
        self.started.append(timer)
        self.asked.set()


def test_what_no_writer_thread_has_taken_is_written_by_the_run_as_it_ends(monkeypatch):
    from ferrograph.graph import _writer

    late = _LateExecutor()
    monkeypatch.setattr(_writer, "_executor", lambda: late)
    monkeypatch.setattr(_writer, "DRAIN_DELAY", 0.0)
    writers: list[threading.Thread] = []
    saver = RecordingSaver(hold=lambda _number: writers.append(threading.current_thread()))
    # The first node waits until a pooled drain has been asked for (the timer needs the GIL).
    graph = linear(saver, first=lambda: late.asked.wait(10))
    assert graph.invoke({"n": 0}, cfg("t")) == {"n": NODES}
    # Everything went out as one batch, written on the run's own thread before it returned.
    assert writers == [threading.current_thread()]
    check_order(saver.calls())
    assert len(saver.stored("t")) == NODES + 2
    # The drain the run had asked for, starting late, finds nothing left to write.
    assert late.started
    for timer in late.started:
        timer.join()
    assert len(saver.batches) == 1


def test_a_run_quicker_than_the_drain_delay_wakes_no_writer_thread(monkeypatch):
    """Its steps wait for it to end and are written then, on its own thread, as one batch: no
    pooled thread is asked for (a woken thread would take the GIL from the run)."""
    from ferrograph.graph import _writer

    late = _LateExecutor()
    monkeypatch.setattr(_writer, "_executor", lambda: late)
    monkeypatch.setattr(_writer, "DRAIN_DELAY", 60.0)
    writers: list[threading.Thread] = []
    saver = RecordingSaver(hold=lambda _number: writers.append(threading.current_thread()))
    for thread in ("t1", "t2"):
        assert linear(saver).invoke({"n": 0}, cfg(thread)) == {"n": NODES}
    assert writers == [threading.current_thread()] * 2 and len(saver.batches) == 2
    assert not late.started
    check_order(saver.batches[0])


def test_a_run_ahead_of_its_bound_writes_its_queue_itself(monkeypatch):
    """At `max_pending_steps` before any pooled thread was asked for, the run writes what is
    queued on its own thread rather than wait for one."""
    from ferrograph.graph import _writer

    late = _LateExecutor()
    monkeypatch.setattr(_writer, "_executor", lambda: late)
    monkeypatch.setattr(_writer, "DRAIN_DELAY", 60.0)
    writers: list[threading.Thread] = []
    saver = RecordingSaver(hold=lambda _number: writers.append(threading.current_thread()))
    g = StateGraph(State)
    names = [f"n{i}" for i in range(NODES)]
    for name in names:
        g.add_node(name, lambda state: {"n": state["n"] + 1})
    g.add_edge(START, names[0])
    for a, b in zip(names, names[1:]):
        g.add_edge(a, b)
    graph = g.compile(checkpointer=saver, max_pending_steps=2)
    start = time.monotonic()
    assert graph.invoke({"n": 0}, cfg("t")) == {"n": NODES}
    assert time.monotonic() - start < 30
    assert len(saver.batches) > 1 and set(writers) == {threading.current_thread()}
    assert not late.started
    check_order(saver.calls())


def test_a_slow_node_s_earlier_steps_are_written_while_it_runs():
    """With the default delay, the checkpoints before a node that takes a while are stored in
    the background while it runs, not when the run ends."""
    saver = RecordingSaver()
    seen: list[int] = []

    def slow() -> None:
        deadline = time.monotonic() + 10
        while not saver.stored("t") and time.monotonic() < deadline:
            time.sleep(0.001)
        seen.append(len(saver.stored("t")))

    assert linear(saver, last=slow).invoke({"n": 0}, cfg("t")) == {"n": NODES}
    assert seen and seen[0] >= 1
    assert len(saver.stored("t")) == NODES + 2


class Carried(TypedDict):
    n: int
    fixed: str


def test_a_batch_carries_values_on_from_checkpoints_of_its_own(tmp_path):
    """A put carries a value it does not store anew from its parent's row when the saver does
    not remember it (here: no delta cache): in a batch, that parent may be a put of the same
    batch, whose row is stored before it is read."""
    from ferrograph.checkpointers import SqliteSaver

    def inc(state: Carried) -> dict:
        return {"n": state["n"] + 1}

    g = StateGraph(Carried)
    for i in range(NODES):
        g.add_node(f"n{i}", inc)
    g.add_edge(START, "n0")
    for i in range(NODES - 1):
        g.add_edge(f"n{i}", f"n{i + 1}")
    with SqliteSaver.from_conn_string(str(tmp_path / "db.sqlite")) as saver:
        saver.deltas = None
        graph = g.compile(checkpointer=saver)
        assert graph.invoke({"n": 0, "fixed": "kept"}, cfg("t")) == {"n": NODES, "fixed": "kept"}
        stored = [t.checkpoint["channel_values"] for t in saver.list(cfg("t"))][:-1]  # the input's has no state
        assert [(values["n"], values.get("fixed")) for values in stored] == [(n, "kept") for n in range(NODES, -1, -1)]


def test_call_later_calls_once_after_its_delay_unless_cancelled(monkeypatch):
    """The timer a sync run's writer starts its pooled drain with (`_core.call_later`)."""
    from ferrograph import _core

    calls: list[Any] = []
    fired = threading.Event()
    start = time.monotonic()
    _core.call_later(0.05, lambda: (calls.append(time.monotonic() - start), fired.set()))
    cancelled = _core.call_later(0.01, lambda: calls.append("cancelled"))
    assert cancelled.cancel() is True
    assert cancelled.cancel() is False  # already cancelled
    assert fired.wait(10)
    time.sleep(0.05)
    assert len(calls) == 1 and calls[0] >= 0.05
    # An error in the call is reported as unraisable, and later calls still run.
    reported: list[Any] = []
    monkeypatch.setattr(sys, "unraisablehook", reported.append)
    after = threading.Event()
    _core.call_later(0, lambda: 1 / 0)
    _core.call_later(0.01, after.set)
    assert after.wait(10)
    assert [type(r.exc_value) for r in reported] == [ZeroDivisionError]
    with pytest.raises(ValueError, match="delay must be a number of seconds"):
        _core.call_later(-1, lambda: None)


def test_call_later_keeps_each_call_s_time_whatever_was_scheduled_before():
    """The timer thread is woken only for a call earlier than all it holds: a call due before
    one already waiting is made on time, not when the other is due; one due after it is made
    after it; cancelled calls hold nothing up."""
    from ferrograph import _core

    made: list[tuple[str, float]] = []
    done = threading.Event()
    start = time.monotonic()

    def make(name: str, last: bool = False) -> Callable[[], None]:
        def call() -> None:
            made.append((name, time.monotonic() - start))
            if last:
                done.set()
        return call

    distant = _core.call_later(30, make("distant"))
    for _ in range(50):
        _core.call_later(0.2, make("cancelled")).cancel()
    _core.call_later(0.3, make("second", last=True))
    _core.call_later(0.1, make("first"))
    assert done.wait(10)
    assert distant.cancel() is True
    assert [name for name, _at in made] == ["first", "second"]
    # Made on time: long before the distant call, each at or after its delay.
    assert 0.1 <= made[0][1] < 5 and 0.3 <= made[1][1] < 5
