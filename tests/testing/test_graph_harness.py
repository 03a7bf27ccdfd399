"""`graph_harness`: a run on a fresh thread, its history oldest first, one-line assertions that
pass, and that fail showing expected against actual (directly, and in a user's pytest run)."""

from __future__ import annotations

import operator
from typing import Annotated, TypedDict

import pytest

from ferrograph.checkpointers import MemorySaver
from ferrograph.graph import END, START, StateGraph
from ferrograph.testing import GraphHarness, GraphRun

pytest_plugins = ["pytester"]


class State(TypedDict):
    count: int
    log: Annotated[list, operator.add]


def build() -> StateGraph:
    g = StateGraph(State)
    g.add_node("step", lambda s: {"count": s["count"] + 1, "log": [s["count"]]})
    g.add_node("review", lambda s: {"log": ["reviewed"]})
    g.add_edge(START, "step")
    g.add_conditional_edges("step", lambda s: "step" if s["count"] < 2 else "review")
    g.add_edge("review", END)
    return g


SOURCES = ["input", "loop", "loop", "loop", "loop"]
STEPS = [-1, 0, 1, 2, 3]
NEXTS = [("__start__",), ("step",), ("step",), ("review",), ()]
FINAL = {"count": 2, "log": [0, 1, "reviewed"]}


@pytest.fixture
def run() -> GraphRun:
    return GraphHarness().run(build(), {"count": 0, "log": []}, saver=MemorySaver())


def test_a_run_and_its_history_oldest_first(run):
    assert run.result == FINAL
    assert (run.sources, run.steps, run.nexts) == (SOURCES, STEPS, NEXTS)
    assert run.state.values == FINAL == run.values[-1]
    assert run.history[0].metadata["step"] == -1
    assert run.thread == {"configurable": {"thread_id": run.thread_id}}
    assert run.graph.get_state(run.thread).values == FINAL


def test_passing_assertions_chain(run):
    assert run.assert_history(sources=SOURCES, steps=STEPS, nexts=[list(n) for n in NEXTS]) is run
    run.assert_values(FINAL).assert_values(count=2).assert_next()
    run.assert_history(steps=STEPS)  # only what is given is checked


def test_each_run_gets_a_fresh_thread():
    harness, saver = GraphHarness(), MemorySaver()
    app = build().compile(checkpointer=saver)
    first, second = harness.run(app, {"count": 0, "log": []}), harness.run(app, {"count": 0, "log": []})
    assert first.thread_id != second.thread_id
    assert len(first.history) == len(second.history) == 5


def test_config_goes_on_with_a_thread_after_an_interrupt():
    harness = GraphHarness()
    app = build().compile(checkpointer=MemorySaver(), interrupt_before=["review"])
    paused = harness.run(app, {"count": 0, "log": []})
    paused.assert_next("review").assert_values(count=2)
    resumed = harness.run(app, None, config=paused.thread)
    assert resumed.thread == paused.thread
    resumed.assert_next().assert_values(FINAL)


def test_a_graph_compiled_with_another_saver_runs_on_the_given_one():
    saver = MemorySaver()
    app = build().compile(checkpointer=MemorySaver(), interrupt_before=["review"])
    run = GraphHarness().run(app, {"count": 0, "log": []}, saver=saver)
    assert run.graph.checkpointer is saver
    run.assert_next("review")  # the interrupt was kept
    assert saver.get_tuple(run.thread) is not None


def test_a_graph_without_a_checkpointer_needs_a_saver():
    with pytest.raises(ValueError, match="no checkpointer: pass saver="):
        GraphHarness().run(build().compile(), {"count": 0, "log": []})


def test_failing_history_shows_expected_actual_and_the_history(run):
    with pytest.raises(AssertionError) as info:
        run.assert_history(sources=SOURCES, steps=[-1, 0, 1])
    message = str(info.value)
    assert f"history of thread {run.thread_id!r} differs:" in message
    assert "steps:\n    expected [-1, 0, 1]\n    actual   [-1, 0, 1, 2, 3]" in message
    assert "sources" not in message.split("history of thread")[1].split("\n", 1)[1].split("(oldest first)")[0]
    assert "#4 step=3 source='loop' next=() values={'count': 2, 'log': [0, 1, 'reviewed']}" in message


def test_failing_values_and_next_say_what_differs(run):
    with pytest.raises(AssertionError, match=r"count:\n    expected 3\n    actual   2"):
        run.assert_values(count=3)
    with pytest.raises(AssertionError, match=r"expected \{'count': 3\}\n  actual   \{'count': 2"):
        run.assert_values({"count": 3})
    with pytest.raises(AssertionError, match="expected 1, but the state has no 'missing'"):
        run.assert_values(missing=1)
    with pytest.raises(AssertionError, match=r"expected \('review',\)\n  actual   \(\) \(finished\)"):
        run.assert_next("review")
    with pytest.raises(TypeError):
        run.assert_values()


async def test_arun_is_the_async_twin():
    run = await GraphHarness().arun(build(), {"count": 0, "log": []}, saver=MemorySaver())
    assert run.result == FINAL
    run.assert_history(sources=SOURCES, steps=STEPS, nexts=NEXTS).assert_next()


def test_in_a_users_session_failures_read_well(pytester):
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\nferrograph_savers = memory sqlite\n")
    pytester.makepyfile(
        """
        import operator
        from typing import Annotated, TypedDict
        from ferrograph.graph import END, START, StateGraph

        class State(TypedDict):
            log: Annotated[list, operator.add]

        def build():
            g = StateGraph(State)
            g.add_node("a", lambda s: {"log": ["a"]})
            g.add_edge(START, "a")
            g.add_edge("a", END)
            return g

        def test_passes(saver, graph_harness):
            graph_harness.run(build(), {"log": []}, saver=saver).assert_history(
                sources=["input", "loop", "loop"], steps=[-1, 0, 1]
            ).assert_values(log=["a"])

        def test_fails(saver, graph_harness):
            run = graph_harness.run(build(), {"log": []}, saver=saver)
            run.assert_history(sources=["input", "loop"])
        """
    )
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, failed=2)
    out = result.stdout.str()
    assert "AssertionError: history of thread 'test-" in out
    assert "  sources:\nE           expected ['input', 'loop']\nE           actual   ['input', 'loop', 'loop']" in out, out
    # The helper's own frames are hidden: the failure points at the user's line.
    assert "run.assert_history(sources=[\"input\", \"loop\"])" in result.stdout.str()
    assert "raise AssertionError" not in result.stdout.str()
