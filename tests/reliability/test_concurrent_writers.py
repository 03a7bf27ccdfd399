"""Concurrent writers: two runs stepping one thread at once must not interleave their steps.

The engine marks the checkpoints a run writes as it steps (`__ferrograph_expect_latest__` in
the put config); every ferrograph saver checks, atomically with the insert, that the parent is
still the thread's latest checkpoint in that namespace, and raises ConcurrentUpdateError naming
the thread otherwise. Forks and updates are not marked: they legitimately add siblings.

Races: two runners load the same checkpoint, meet at a barrier inside the node of the first
step, and both write that step's checkpoint; exactly one goes on, the other fails, and the
thread's history is one line (every checkpoint's parent is the one before it).
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from reliability_processes import conn_string, finish
from reliability_worker import CONFLICT, RACE_STEPS, race_graph
from ferrograph.checkpointers import MemorySaver
from ferrograph.errors import ConcurrentUpdateError
from ferrograph.testing import open_async_saver, open_saver

EXPECT = "__ferrograph_expect_latest__"


def assert_one_line(saver, thread: str) -> list:
    """The thread's history, oldest first, checked to be a single chain without repeats."""
    tuples = list(saver.list({"configurable": {"thread_id": thread}}))[::-1]
    ids = [t.config["configurable"]["checkpoint_id"] for t in tuples]
    assert len(set(ids)) == len(ids)
    for previous, t in zip(tuples, tuples[1:]):
        assert t.parent_config["configurable"]["checkpoint_id"] == previous.config["configurable"]["checkpoint_id"]
    steps = [t.metadata["step"] for t in tuples]
    assert steps == list(range(-1, len(steps) - 1))
    return tuples


def seed(saver, thread: str) -> None:
    """A thread stopped right before its first `step` run: the checkpoint both racers load."""
    graph = race_graph(None).compile(checkpointer=saver, interrupt_before=["step"])
    graph.invoke({"count": 0, "by": []}, {"configurable": {"thread_id": thread}})


# ---- the saver protocol


def marked(config: dict) -> dict:
    return {"configurable": {**config["configurable"], EXPECT: True}}


def checkpoint(n: int) -> dict:
    from ferrograph import _core

    return {
        "v": 4,
        "id": _core.new_checkpoint_id()[0],
        "ts": "2024-01-01T00:00:00+00:00",
        "channel_values": {"n": n},
        "channel_versions": {"n": f"{n + 1:032}.0"},
        "versions_seen": {},
        "updated_channels": ["n"],
    }


def put(saver, config: dict, n: int) -> dict:
    cp = checkpoint(n)
    return saver.put(config, cp, {"source": "loop", "step": n}, {"n": cp["channel_versions"]["n"]})


@pytest.mark.parametrize("kind", ["memory", "sqlite", "postgres"])
def test_a_marked_put_whose_parent_is_not_the_latest_is_refused(kind, request, tmp_path):
    conn = None if kind == "memory" else conn_string(request, kind, tmp_path)
    with open_saver(kind, conn) as saver:
        root = {"configurable": {"thread_id": "t1", "checkpoint_ns": ""}}
        first = put(saver, marked(root), 0)
        with pytest.raises(ConcurrentUpdateError, match="t1"):
            put(saver, marked(root), 0)  # a second first checkpoint
        second = put(saver, marked(first), 1)
        with pytest.raises(ConcurrentUpdateError, match="'t1'|\"t1\"") as info:
            put(saver, marked(first), 1)  # a stale parent
        assert second["configurable"]["checkpoint_id"] in str(info.value)
        assert len(list(saver.list({"configurable": {"thread_id": "t1"}}))) == 2
        # Unmarked (LangGraph's own puts, forks, updates): a sibling is fine.
        put(saver, first, 1)
        assert len(list(saver.list({"configurable": {"thread_id": "t1"}}))) == 3
        # Other namespaces and threads are other lines.
        put(saver, marked({"configurable": {"thread_id": "t1", "checkpoint_ns": "child"}}), 0)
        put(saver, marked({"configurable": {"thread_id": "t2", "checkpoint_ns": ""}}), 0)


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
async def test_async_savers_refuse_a_stale_marked_put(kind, request, tmp_path):
    conn = conn_string(request, kind, tmp_path)
    async with open_async_saver(kind, conn) as saver:
        root = {"configurable": {"thread_id": "t1", "checkpoint_ns": ""}}
        cp = checkpoint(0)
        first = await saver.aput(marked(root), cp, {"source": "input", "step": -1}, {"n": cp["channel_versions"]["n"]})
        cp = checkpoint(1)
        await saver.aput(marked(first), cp, {"source": "loop", "step": 0}, {"n": cp["channel_versions"]["n"]})
        with pytest.raises(ConcurrentUpdateError, match="t1"):
            cp = checkpoint(2)
            await saver.aput(marked(first), cp, {"source": "loop", "step": 0}, {"n": cp["channel_versions"]["n"]})


def test_forks_updates_and_replays_are_not_conflicts():
    """Time travel keeps working: update_state on an old checkpoint, and a replay or resume
    from a checkpoint the caller names, branch off without tripping the check."""
    saver = MemorySaver()
    graph = race_graph(None).compile(checkpointer=saver)
    config = {"configurable": {"thread_id": "tt"}}
    graph.invoke({"count": 0, "by": []}, config)
    history = list(graph.get_state_history(config))
    old = history[3].config
    fork = graph.update_state(old, {"count": 1})
    assert graph.invoke(None, fork)["count"] == RACE_STEPS
    assert graph.invoke(None, history[2].config)["count"] == RACE_STEPS
    assert graph.invoke(None, old)["count"] == RACE_STEPS
    # The update checkpoint is no longer the latest: replaying it continues its own branch.
    assert graph.invoke(None, fork)["count"] == RACE_STEPS


# ---- two runners, one thread


def test_two_threads_stepping_one_thread_on_the_memory_saver():
    saver = MemorySaver()
    seed(saver, "race")
    barrier = threading.Barrier(2, timeout=60)
    graph = race_graph(None, barrier=barrier.wait).compile(checkpointer=saver)
    outcomes: list = []

    def run() -> None:
        try:
            outcomes.append(graph.invoke(None, {"configurable": {"thread_id": "race"}}))
        except Exception as e:  # noqa: BLE001 - recorded and checked below
            outcomes.append(e)

    runners = [threading.Thread(target=run) for _ in range(2)]
    for r in runners:
        r.start()
    for r in runners:
        r.join(timeout=90)
    assert not any(r.is_alive() for r in runners)
    errors = [o for o in outcomes if isinstance(o, BaseException)]
    states = [o for o in outcomes if not isinstance(o, BaseException)]
    assert len(errors) == 1 and len(states) == 1, outcomes
    assert isinstance(errors[0], ConcurrentUpdateError)
    assert '"race"' in str(errors[0]) or "'race'" in str(errors[0])
    assert states[0]["count"] == RACE_STEPS and len(set(states[0]["by"])) == 1
    history = assert_one_line(saver, "race")
    assert history[-1].checkpoint["channel_values"]["count"] == RACE_STEPS


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_two_processes_stepping_one_thread(kind, request, tmp_path, workers):
    conn = conn_string(request, kind, tmp_path)
    run_dir = tmp_path / "runs"
    run_dir.mkdir()
    with open_saver(kind, conn) as saver:
        seed(saver, "race")
        procs = [workers("race", kind, conn, "race", str(run_dir)) for _ in range(2)]
        results = [finish(p) for p in procs]
        statuses = sorted(status for status, _report, _err in results)
        assert statuses == [0, CONFLICT], results
        winner = next(report for status, report, _err in results if status == 0)
        loser = next(report for status, report, _err in results if status == CONFLICT)
        assert "concurrent update" in loser["conflict"] and "race" in loser["conflict"]
        assert winner["state"]["count"] == RACE_STEPS and len(set(winner["state"]["by"])) == 1
        history = assert_one_line(saver, "race")
        assert history[-1].checkpoint["channel_values"]["count"] == RACE_STEPS
        # Only the winner's steps after the first are in the thread.
        assert {pid for t in history for pid in t.checkpoint["channel_values"].get("by", [])} <= set(winner["state"]["by"])
