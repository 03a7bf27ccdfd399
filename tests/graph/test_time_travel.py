"""Time travel, differentially: the same scenarios on LangGraph (its InMemorySaver) and on
ferrograph (every saver of ``timetravel_savers.TIME_TRAVEL_SAVERS``), compared through the
canonical forms of ``timetravel_harness`` (checkpoint ids as positions, interrupt ids as
labels, timestamps/task ids/run ids dropped; everything else exact).

Each test body is a scenario run once per implementation; ``tt.ran()`` records which nodes
each operation ran.
"""

import pytest

pytest.register_assert_rewrite("timetravel_harness")

from timetravel_graphs import GRAPHS, chain, failing_fanout, failing_fanout_late_sibling, fanout, loop, map_reduce
from timetravel_harness import run_both, run_on
from timetravel_savers import time_travel_saver  # noqa: F401 - fixture

GRAPH_NAMES = list(GRAPHS)


@pytest.fixture
def both(langgraph_impl, ferrograph_impl, time_travel_saver):  # noqa: F811
    """``both(scenario)`` runs it on the two implementations and compares."""
    return lambda scenario: run_both(scenario, langgraph_impl, ferrograph_impl, time_travel_saver)


# --------------------------------------------------------------------------------------------
# History


@pytest.mark.parametrize("name", GRAPH_NAMES)
def test_history_after_one_invoke(both, name):
    builder, inp = GRAPHS[name]

    def scenario(tt):
        g = tt.build(builder)
        tt.rec("invoke", tt.call(g.invoke, inp, tt.cfg))
        tt.rec("outline", tt.outline())
        tt.rec("history", tt.history())
        tt.rec("state", tt.state())

    both(scenario)


@pytest.mark.parametrize("name", GRAPH_NAMES)
def test_history_after_two_invokes_steps_continue(both, name):
    builder, inp = GRAPHS[name]

    def scenario(tt):
        g = tt.build(builder)
        tt.rec("invoke1", tt.call(g.invoke, inp, tt.cfg))
        tt.rec("invoke2", tt.call(g.invoke, inp, tt.cfg))
        tt.rec("outline", tt.outline())
        tt.rec("history", tt.history())
        steps = [s.metadata["step"] for s in g.get_state_history(tt.cfg)]
        assert steps == sorted(steps, reverse=True), steps

    both(scenario)


def test_history_filter_before_limit(both):
    def scenario(tt):
        g = tt.build(chain)
        g.invoke({"v": 1}, tt.cfg)
        g.invoke({"v": 5}, tt.cfg)
        tt.ran()
        tt.rec("filter-input", tt.outline(filter={"source": "input"}))
        tt.rec("filter-step", tt.outline(filter={"step": 2}))
        tt.rec("filter-none", tt.outline(filter={"source": "nope"}))
        tt.rec("limit", tt.outline(limit=3))
        tt.rec("before", tt.outline(before=tt.at(4)))
        tt.rec("before+limit", tt.outline(before=tt.at(6), limit=2))
        tt.rec("filter+limit", tt.history(filter={"source": "loop"}, limit=2))

    both(scenario)


def test_get_state_at_past_checkpoint(both):
    def scenario(tt):
        g = tt.build(fanout)
        g.invoke({"v": 1}, tt.cfg)
        tt.ran()
        for k in range(5):
            tt.rec(f"state@{k}", tt.state(tt.at(k)))
        assert tt.ran() == {}

    both(scenario)


def test_a_lone_task_s_writes_are_kept_when_applying_them_fails(both):
    """A step of one task whose update a reducer refuses: the run raises, and the task's writes
    were saved as the checkpoint's pending writes all the same, as LangGraph saves a task's
    writes before it applies the step."""

    def scenario(tt):
        from typing import Annotated, TypedDict

        def picky(current: list, new: list) -> list:
            if "boom" in new:
                raise ValueError("the reducer refuses boom")
            return current + new

        class State(TypedDict):
            log: Annotated[list, picky]

        def build(tt):
            g = tt.impl.StateGraph(State)
            g.add_node("fine", lambda s: {"log": ["fine"]})
            g.add_node("bad", lambda s: {"log": ["boom"]})
            g.add_edge(tt.impl.START, "fine")
            g.add_edge("fine", "bad")
            return g

        g = tt.build(build)
        tt.rec("run", tt.call(g.invoke, {"log": []}, tt.cfg))
        # The thread's state applies the saved writes again, so reading it meets the reducer's
        # refusal: only a saved write can make it fail.
        tt.rec("state", tt.call(tt.state))
        tt.rec("history", tt.call(tt.outline))

    both(scenario)


def test_get_state_unknown_thread_is_empty(both):
    def scenario(tt):
        g = tt.build(chain)
        g.invoke({"v": 1}, tt.cfg)
        cfg = {"configurable": {"thread_id": "never-used"}}
        s = g.get_state(cfg)
        snap = tt.snap(s, {})
        # The echoed config is compared (configurable only) here; exactly in the test below.
        snap["config"] = snap["config"]["configurable"]
        tt.rec("unknown", snap)
        tt.rec("history", tt.outline(cfg))

    both(scenario)


def test_get_state_unknown_thread_echoes_config_exactly(both):
    def scenario(tt):
        g = tt.build(chain)
        cfg = {"configurable": {"thread_id": "never-used"}}
        tt.rec("config", g.get_state(cfg).config)

    both(scenario)


# --------------------------------------------------------------------------------------------
# Metadata


def _metadata_scenario(cfg):
    def scenario(tt):
        g = tt.build(chain)
        tt.rec("invoke", tt.call(g.invoke, {"v": 1}, cfg))
        tt.rec("metadata", [tt.metadata(s.metadata) for s in g.get_state_history(tt.cfg)])
        # A second run without metadata: its checkpoints do not carry the first run's.
        g.invoke({"v": 2}, tt.cfg)
        tt.rec("metadata2", [tt.metadata(s.metadata) for s in g.get_state_history(tt.cfg)])
        # update_state with a config carrying metadata.
        g.update_state(cfg, {"v": 0})
        tt.rec("metadata-update", tt.metadata(g.get_state(tt.cfg).metadata))

    return scenario


def test_config_metadata_and_scalar_configurables_copied(both):
    cfg = {
        "configurable": {
            "thread_id": "t1",
            "user": "ann",
            "count": 3,
            "ratio": 0.5,
            "flag": True,
            "obj": {"not": "copied"},
            "lst": [1],
            "none": None,
            "__private": "x",
        },
        "metadata": {"origin": "test", "who": "me"},
    }
    both(_metadata_scenario(cfg))


@pytest.mark.parametrize("value", [{"k": [1, 2]}, [1], None, (1,)], ids=["dict", "list", "none", "tuple"])
def test_config_metadata_non_string_values(both, value):
    cfg = {"configurable": {"thread_id": "t1"}, "metadata": {"origin": "test", "extra": value}}
    both(_metadata_scenario(cfg))


# --------------------------------------------------------------------------------------------
# Forks (update_state on a past checkpoint) and replays


@pytest.mark.parametrize("as_node", [None, "a", "b", "c"])
@pytest.mark.parametrize("at", [1, 2, 3])
def test_fork_chain(both, at, as_node):
    """update_state on checkpoint `at` (0 = input), then invoke(None, returned config)."""

    def scenario(tt):
        g = tt.build(chain)
        g.invoke({"v": 1}, tt.cfg)
        tt.ran()
        fork = tt.call(g.update_state, tt.at(at), {"v": 100}, as_node=as_node)
        tt.rec("update", fork)
        tt.rec("after-update", tt.history())
        new_cfg = g.get_state(tt.cfg).config
        tt.rec("resume", tt.call(g.invoke, None, new_cfg))
        tt.rec("history", tt.history())
        tt.rec("state", tt.state())

    both(scenario)


@pytest.mark.parametrize("as_node", [None, "b", "c", "d"])
def test_fork_fanout(both, as_node):
    def scenario(tt):
        g = tt.build(fanout)
        g.invoke({"v": 1}, tt.cfg)
        tt.ran()
        cfg = g.update_state(tt.at(2), {"log": ["patched"]}, as_node=as_node)
        tt.rec("after-update", tt.history())
        tt.rec("resume", tt.call(g.invoke, None, cfg))
        tt.rec("history", tt.history())

    both(scenario)


def test_update_latest_then_continue(both):
    """update_state on the latest checkpoint, with and without as_node."""

    def scenario(tt):
        g = tt.build(chain)
        g.invoke({"v": 1}, tt.cfg)
        tt.ran()
        tt.rec("update-none", tt.call(g.update_state, tt.cfg, {"v": 7}))
        tt.rec("state1", tt.state())
        tt.rec("update-as-a", tt.call(g.update_state, tt.cfg, {"v": 8}, as_node="a"))
        tt.rec("state2", tt.state())
        tt.rec("resume", tt.call(g.invoke, None, tt.cfg))
        tt.rec("history", tt.history())

    both(scenario)


def test_two_forks_from_same_checkpoint(both):
    def scenario(tt):
        g = tt.build(chain)
        g.invoke({"v": 1}, tt.cfg)
        tt.ran()
        base = tt.at(1)
        cfg1 = g.update_state(base, {"v": 10})
        tt.rec("run1", tt.call(g.invoke, None, cfg1))
        cfg2 = g.update_state(base, {"v": 20})
        tt.rec("run2", tt.call(g.invoke, None, cfg2))
        tt.rec("history", tt.history())

    both(scenario)


@pytest.mark.parametrize("name", GRAPH_NAMES)
@pytest.mark.parametrize("at", [0, 1, 2])
def test_replay_past_checkpoint(both, name, at):
    """invoke(None, cfg of a past checkpoint): a fork checkpoint, then only later nodes run."""
    builder, inp = GRAPHS[name]

    def scenario(tt):
        g = tt.build(builder)
        g.invoke(inp, tt.cfg)
        tt.ran()
        tt.rec("replay", tt.call(g.invoke, None, tt.at(at)))
        tt.rec("history", tt.history())

    both(scenario)


@pytest.mark.parametrize("name", GRAPH_NAMES)
def test_replay_final_checkpoint(both, name):
    builder, inp = GRAPHS[name]

    def scenario(tt):
        g = tt.build(builder)
        g.invoke(inp, tt.cfg)
        tt.ran()
        final = g.get_state(tt.cfg).config
        tt.rec("replay", tt.call(g.invoke, None, final))
        tt.rec("history", tt.history())

    both(scenario)


def test_replay_stream_updates(both):
    def scenario(tt):
        g = tt.build(chain)
        g.invoke({"v": 1}, tt.cfg)
        tt.ran()
        chunks = list(g.stream(None, tt.at(1), stream_mode="updates"))
        tt.rec("chunks", tt.value(chunks))
        tt.rec("ran", tt.ran())

    both(scenario)


def test_fork_then_new_input_on_fork(both):
    """invoke with new input on a fork's config: starts from the fork's state."""

    def scenario(tt):
        g = tt.build(chain)
        g.invoke({"v": 1}, tt.cfg)
        tt.ran()
        cfg = g.update_state(tt.at(2), {"v": 50}, as_node="c")
        tt.rec("new-input", tt.call(g.invoke, {"v": 3}, cfg))
        tt.rec("history", tt.history())

    both(scenario)


# --------------------------------------------------------------------------------------------
# Failure and resume


def _failure_scenario(tt):
    g = tt.build(failing_fanout)
    tt.flags["fail_c"] = True
    tt.rec("invoke", tt.call(g.invoke, {"v": 1}, tt.cfg))
    tt.rec("state", tt.state())
    tt.rec("history", tt.history())
    tt.flags["fail_c"] = False
    tt.rec("resume", tt.call(g.invoke, None, tt.cfg))
    tt.rec("state-after", tt.state())
    return g


def test_parallel_failure_resumes_failed_node_only(both):
    def scenario(tt):
        _failure_scenario(tt)
        tt.rec("history-after", tt.history())  # the resumed task's result: checked exactly below

    both(scenario)


def test_parallel_failure_history_after_resume(both):
    def scenario(tt):
        tt.strict_task_results = True
        _failure_scenario(tt)
        tt.rec("history-after", tt.history())

    both(scenario)


def test_failure_state_shape_on_langgraph(langgraph_impl):
    """The reference behaviour the differential test relies on (LANGGRAPH_NOTES)."""
    from timetravel_savers import langgraph_saver

    def scenario(tt):
        g = tt.build(failing_fanout)
        tt.flags["fail_c"] = True
        tt.call(g.invoke, {"v": 1}, tt.cfg)
        s = g.get_state(tt.cfg)
        assert s.next == ("c",)
        assert sorted(t.name for t in s.tasks) == ["b", "c"]
        by = {t.name: t for t in s.tasks}
        assert by["b"].result == {"log": ["b"], "v": 200} and by["b"].error is None
        assert by["c"].error is not None
        tt.flags["fail_c"] = False
        tt.ran()
        g.invoke(None, tt.cfg)
        assert tt.ran() == {"c": 1, "d": 1}

    run_on(scenario, langgraph_impl, langgraph_saver())


# --------------------------------------------------------------------------------------------
# Durability




@pytest.mark.parametrize("durability", ["sync", "async", "exit"])
@pytest.mark.parametrize("name", ["chain", "fanout", "loop"])
def test_durability(both, durability, name):
    builder, inp = GRAPHS[name]

    def scenario(tt):
        g = tt.build(builder)
        tt.rec("invoke", tt.call(g.invoke, inp, tt.cfg, durability=durability))
        tt.rec("history", tt.history())
        tt.rec("invoke2", tt.call(g.invoke, inp, tt.cfg, durability=durability))
        tt.rec("history2", tt.history())

    both(scenario)


@pytest.mark.parametrize("durability", ["sync", "async", "exit"])
def test_a_task_finishing_after_its_sibling_failed_is_saved(both, durability):
    """b ends after c's failure: its writes are still saved, so the resume runs c only."""

    def scenario(tt):
        g = tt.build(failing_fanout_late_sibling)
        tt.flags["fail_c"] = True
        tt.rec("invoke", tt.call(g.invoke, {"v": 1}, tt.cfg, durability=durability))
        tt.rec("history", tt.history())
        tt.flags["fail_c"] = False
        tt.rec("resume", tt.call(g.invoke, None, tt.cfg, durability=durability))
        tt.rec("history2", tt.history())

    both(scenario)


def test_durability_exit_with_failure(both):
    def scenario(tt):
        g = tt.build(failing_fanout)
        tt.flags["fail_c"] = True
        tt.rec("invoke", tt.call(g.invoke, {"v": 1}, tt.cfg, durability="exit"))
        tt.rec("history", tt.history())
        tt.flags["fail_c"] = False
        tt.rec("resume", tt.call(g.invoke, None, tt.cfg, durability="exit"))
        tt.rec("history2", tt.history())

    both(scenario)





def test_send_task_path_exact(both):
    def scenario(tt):
        tt.exact_task_paths = True
        g = tt.build(map_reduce)
        g.invoke({"items": [1]}, tt.cfg)
        tt.rec("paths", [tt.task(t)["path"] for s in g.get_state_history(tt.cfg) for t in s.tasks])

    both(scenario)
