"""Async twins of the time-travel scenarios (ainvoke, astream, aget_state,
aget_state_history, aupdate_state), differentially: LangGraph on its InMemorySaver vs
ferrograph on every saver of ``timetravel_savers`` (through the savers' async methods).
Each scenario runs in its own event loop (``asyncio.run``) per implementation.
"""

import pytest

pytest.register_assert_rewrite("timetravel_harness")

from timetravel_graphs import (  # noqa: E402
    ask,
    ask_twice,
    async_chain,
    chain,
    failing_fanout,
    failing_fanout_late_sibling,
    fanout,
    map_reduce,
)
from timetravel_harness import run_both  # noqa: E402
from timetravel_savers import time_travel_saver  # noqa: E402,F401 - fixture


@pytest.fixture
def both(langgraph_impl, ferrograph_impl, time_travel_saver):  # noqa: F811
    return lambda scenario: run_both(scenario, langgraph_impl, ferrograph_impl, time_travel_saver)


GRAPHS = {"chain": (chain, {"v": 1}), "async_chain": (async_chain, {"v": 1}), "map_reduce": (map_reduce, {"items": [1, 2]})}


@pytest.mark.parametrize("name", list(GRAPHS))
def test_async_history_two_runs(both, name):
    builder, inp = GRAPHS[name]

    async def scenario(tt):
        g = tt.build(builder)
        tt.rec("run1", await tt.acall(g.ainvoke, inp, tt.cfg))
        tt.rec("run2", await tt.acall(g.ainvoke, inp, tt.cfg))
        tt.rec("history", await tt.ahistory())
        tt.rec("limited", await tt.ahistory(limit=2, filter={"source": "loop"}))
        tt.rec("state", await tt.astate())

    both(scenario)


@pytest.mark.parametrize("as_node", [None, "b"])
@pytest.mark.parametrize("name", ["chain", "async_chain"])
def test_async_fork_and_replay(both, name, as_node):
    builder, inp = GRAPHS[name]

    async def scenario(tt):
        g = tt.build(builder)
        await g.ainvoke(inp, tt.cfg)
        tt.ran()
        past = await tt.aat(2)
        tt.rec("update", await tt.acall(g.aupdate_state, past, {"v": 100}, as_node=as_node))
        latest = (await g.aget_state(tt.cfg)).config
        tt.rec("resume-fork", await tt.acall(g.ainvoke, None, latest))
        tt.rec("replay", await tt.acall(g.ainvoke, None, await tt.aat(1)))
        tt.rec("history", await tt.ahistory())

    both(scenario)


def test_async_astream_replay_updates(both):
    async def scenario(tt):
        g = tt.build(fanout)
        await g.ainvoke({"v": 1}, tt.cfg)
        tt.ran()
        chunks = [c async for c in g.astream(None, await tt.aat(1), stream_mode="updates")]
        tt.rec("chunks", sorted(tt.value(chunks), key=repr))
        tt.rec("ran", tt.ran())
        tt.rec("history", await tt.ahistory())

    both(scenario)


def test_async_interrupt_before_and_resume(both):
    async def scenario(tt):
        g = tt.build(chain)
        chunks = [c async for c in g.astream({"v": 1}, tt.cfg, stream_mode="updates", interrupt_before=["b"])]
        tt.rec("chunks", tt.value(chunks))
        tt.rec("state", await tt.astate())
        tt.rec("resume", await tt.acall(g.ainvoke, None, tt.cfg))
        tt.rec("history", await tt.ahistory())

    both(scenario)


def test_async_interrupt_in_node(both):
    async def scenario(tt):
        g = tt.build(ask)
        tt.rec("invoke", await tt.acall(g.ainvoke, {"log": []}, tt.cfg))
        s1, s2 = await g.aget_state(tt.cfg), await g.aget_state(tt.cfg)
        assert [i.id for i in s1.interrupts] == [i.id for i in s2.interrupts]
        tt.rec("state", await tt.astate())
        tt.rec("resume", await tt.acall(g.ainvoke, tt.impl.Command(resume="Zed"), tt.cfg))
        tt.rec("history", await tt.ahistory())

    both(scenario)


def test_async_two_interrupts(both):
    async def scenario(tt):
        g = tt.build(ask_twice)
        C = tt.impl.Command
        tt.rec("invoke", await tt.acall(g.ainvoke, {"log": []}, tt.cfg))
        tt.rec("resume1", await tt.acall(g.ainvoke, C(resume=1), tt.cfg))
        tt.rec("resume2", await tt.acall(g.ainvoke, C(resume=2), tt.cfg))
        tt.rec("outline", [(h["metadata"]["source"], h["metadata"]["step"], h["next"]) for h in await tt.ahistory()])

    both(scenario)


def test_async_parallel_failure_and_resume(both):
    async def scenario(tt):
        g = tt.build(failing_fanout)
        tt.flags["fail_c"] = True
        tt.rec("invoke", await tt.acall(g.ainvoke, {"v": 1}, tt.cfg))
        tt.rec("state", await tt.astate())
        tt.flags["fail_c"] = False
        tt.rec("resume", await tt.acall(g.ainvoke, None, tt.cfg))
        tt.rec("history", await tt.ahistory())

    both(scenario)


@pytest.mark.parametrize("durability", ["sync", "async", "exit"])
def test_async_a_task_still_running_when_its_sibling_fails_is_cancelled(both, durability):
    """b still runs when c fails: it is cancelled and recorded as failed (CancelledError), so
    the resume runs both again."""

    async def scenario(tt):
        g = tt.build(failing_fanout_late_sibling)
        tt.flags["fail_c"] = True
        tt.rec("invoke", await tt.acall(g.ainvoke, {"v": 1}, tt.cfg, durability=durability))
        tt.rec("history", await tt.ahistory())
        tt.flags["fail_c"] = False
        tt.rec("resume", await tt.acall(g.ainvoke, None, tt.cfg, durability=durability))
        tt.rec("history2", await tt.ahistory())

    both(scenario)


def test_async_unknown_thread(both):
    async def scenario(tt):
        g = tt.build(chain)
        s = await g.aget_state({"configurable": {"thread_id": "nobody"}})
        snap = tt.snap(s, {})
        snap["config"] = snap["config"]["configurable"]
        tt.rec("state", snap)
        tt.rec("history", [x async for x in g.aget_state_history({"configurable": {"thread_id": "nobody"}})])

    both(scenario)
