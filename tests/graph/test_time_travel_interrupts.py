"""Interrupts, differentially (LangGraph on its InMemorySaver vs ferrograph on every saver of
``timetravel_savers``): interrupt_before / interrupt_after (at compile and at invoke) and
``interrupt()`` inside nodes, resumed with ``invoke(None, cfg)`` / ``Command(resume=...)``.

Interrupt ids are implementation-specific: they are compared as labels given in order of
first sight (``timetravel_harness.TT.interrupt_label``), so an id that changes between two
``get_state`` calls shows up as a difference; their values are compared exactly.
"""

import pytest

pytest.register_assert_rewrite("timetravel_harness")

from timetravel_graphs import ask, ask_parallel, ask_twice, chain, fanout  # noqa: E402
from timetravel_harness import run_both  # noqa: E402
from timetravel_savers import time_travel_saver  # noqa: E402,F401 - fixture


@pytest.fixture
def both(langgraph_impl, ferrograph_impl, time_travel_saver):  # noqa: F811
    return lambda scenario: run_both(scenario, langgraph_impl, ferrograph_impl, time_travel_saver)


def _stream(tt, g, inp, cfg, **kwargs):
    """Canonical 'updates' chunks of a run, plus the nodes it ran."""
    try:
        chunks, error = list(g.stream(inp, cfg, stream_mode="updates", **kwargs)), None
    except Exception as exc:  # noqa: BLE001
        chunks, error = [], repr(exc)
    # Chunks of parallel nodes come in finishing order: compare as a sorted list.
    return {"chunks": sorted(tt.value(chunks), key=repr), "error": error, "ran": tt.ran()}


# --------------------------------------------------------------------------------------------
# interrupt_before / interrupt_after


STATIC = [
    ("before-b", {"interrupt_before": ["b"]}),
    ("after-a", {"interrupt_after": ["a"]}),
    ("before-a-after-b", {"interrupt_before": ["a"], "interrupt_after": ["b"]}),
    ("before-all", {"interrupt_before": "*"}),
    ("after-all", {"interrupt_after": "*"}),
]


@pytest.mark.parametrize("where", ["compile", "invoke"])
@pytest.mark.parametrize("kind,kwargs", STATIC, ids=[k for k, _ in STATIC])
def test_static_interrupts_stream_and_resume(both, where, kind, kwargs):
    def scenario(tt):
        g = tt.build(chain, **(kwargs if where == "compile" else {}))
        run_kwargs = kwargs if where == "invoke" else {}
        tt.rec("first", _stream(tt, g, {"v": 1}, tt.cfg, **run_kwargs))
        tt.rec("state", tt.state())
        for k in range(4):  # resume until done (each resume may stop again)
            tt.rec(f"resume{k}", _stream(tt, g, None, tt.cfg, **run_kwargs))
            tt.rec(f"next{k}", list(g.get_state(tt.cfg).next))
        tt.rec("history", tt.history())

    both(scenario)


@pytest.mark.parametrize("kind,kwargs", STATIC[:3], ids=[k for k, _ in STATIC[:3]])
def test_static_interrupts_invoke_return(both, kind, kwargs):
    def scenario(tt):
        g = tt.build(chain, **kwargs)
        tt.rec("invoke", tt.call(g.invoke, {"v": 1}, tt.cfg))
        tt.rec("state", tt.state())
        tt.rec("resume", tt.call(g.invoke, None, tt.cfg))
        tt.rec("resume2", tt.call(g.invoke, None, tt.cfg))
        tt.rec("outline", tt.outline())

    both(scenario)


def test_interrupt_before_parallel_nodes(both):
    def scenario(tt):
        g = tt.build(fanout, interrupt_before=["c"])
        tt.rec("first", _stream(tt, g, {"v": 1}, tt.cfg))
        tt.rec("state", tt.state())
        tt.rec("resume", _stream(tt, g, None, tt.cfg))
        tt.rec("history", tt.history())

    both(scenario)


def test_interrupt_before_then_update_state_then_resume(both):
    """The human-in-the-loop edit: stop before b, change the state, continue."""

    def scenario(tt):
        g = tt.build(chain, interrupt_before=["b"])
        tt.rec("invoke", tt.call(g.invoke, {"v": 1}, tt.cfg))
        tt.rec("update", tt.call(g.update_state, tt.cfg, {"v": 42}))
        tt.rec("state", tt.state())
        tt.rec("resume", tt.call(g.invoke, None, tt.cfg))
        tt.rec("history", tt.history())

    both(scenario)


def _update_as_due_node(tt, record_history):
    g = tt.build(chain, interrupt_after=["a"])
    tt.rec("invoke", tt.call(g.invoke, {"v": 1}, tt.cfg))
    tt.rec("update", tt.call(g.update_state, tt.cfg, {"v": -1}, as_node="b"))
    tt.rec("state", tt.state())
    tt.rec("resume", tt.call(g.invoke, None, tt.cfg))
    tt.rec("outline", tt.outline())
    if record_history:
        tt.rec("history", tt.history())


def test_interrupt_after_then_update_as_node(both):
    both(lambda tt: _update_as_due_node(tt, False))


def test_interrupt_after_then_update_as_node_history(both):
    both(lambda tt: _update_as_due_node(tt, True))


def test_new_input_while_interrupted_starts_over(both):
    def scenario(tt):
        g = tt.build(chain, interrupt_before=["b"])
        tt.rec("invoke", tt.call(g.invoke, {"v": 1}, tt.cfg))
        tt.rec("invoke2", tt.call(g.invoke, {"v": 10}, tt.cfg))
        tt.rec("outline", tt.outline())

    both(scenario)


# --------------------------------------------------------------------------------------------
# interrupt() inside a node




@pytest.mark.parametrize("strict", [False, True], ids=["", "strict-results"])
def test_interrupt_in_node_invoke_state_and_resume(both, strict):
    def scenario(tt):
        tt.strict_task_results = strict
        g = tt.build(ask)
        Command = tt.impl.Command
        tt.rec("invoke", tt.call(g.invoke, {"log": []}, tt.cfg))
        s1, s2 = g.get_state(tt.cfg), g.get_state(tt.cfg)
        # Interrupt ids are stable across get_state calls and agree with the tasks'.
        assert [i.id for i in s1.interrupts] == [i.id for i in s2.interrupts]
        assert [i.id for i in s1.interrupts] == [i.id for t in s1.tasks for i in t.interrupts]
        assert all(isinstance(i, tt.impl.Interrupt) for i in s1.interrupts)
        tt.rec("state", tt.state())
        tt.rec("state-again", tt.state())
        n_before = len(list(g.get_state_history(tt.cfg)))
        tt.rec("resume", tt.call(g.invoke, Command(resume="Bob"), tt.cfg))
        tt.rec("new-checkpoints", len(list(g.get_state_history(tt.cfg))) - n_before)
        tt.rec("state-after", tt.state())
        tt.rec("history", tt.history())

    both(scenario)


def test_interrupt_in_node_stream_updates(both):
    def scenario(tt):
        g = tt.build(ask)
        tt.rec("first", _stream(tt, g, {"log": []}, tt.cfg))
        tt.rec("resume", _stream(tt, g, tt.impl.Command(resume="Ann"), tt.cfg))

    both(scenario)


@pytest.mark.parametrize("strict", [False, True], ids=["", "strict-results"])
def test_two_interrupts_in_one_node_run_three_times(both, strict):
    def scenario(tt):
        tt.strict_task_results = strict
        g = tt.build(ask_twice)
        Command = tt.impl.Command
        tt.rec("invoke", tt.call(g.invoke, {"log": []}, tt.cfg))
        tt.rec("state1", tt.state())
        tt.rec("resume1", tt.call(g.invoke, Command(resume="one"), tt.cfg))
        tt.rec("state2", tt.state())
        tt.rec("resume2", tt.call(g.invoke, Command(resume="two"), tt.cfg))
        tt.rec("history", tt.history())

    ref, ours = both(scenario)
    for side in (ref, ours):
        total = sum(rec["ran"].get("two", 0) for label, rec in side.log if label.startswith(("invoke", "resume")))
        assert total == 3, (side.impl.name, side.log)


def _interrupted(outcome):
    """An invoke outcome with only the interrupts of its result (values: compared in the strict test)."""
    return {**outcome, "result": outcome["result"]["__interrupt__"]}


def test_parallel_interrupts_invoke_return_values(both):
    def scenario(tt):
        g = tt.build(ask_parallel)
        tt.rec("invoke", tt.call(g.invoke, {"log": []}, tt.cfg))
        p2 = [i.id for i in g.get_state(tt.cfg).interrupts if i.value == "p2?"]
        tt.rec("resume-p2", tt.call(g.invoke, tt.impl.Command(resume={p2[0]: "B"}), tt.cfg))

    both(scenario)


def test_parallel_interrupts_resumed_by_id(both):
    def scenario(tt):
        g = tt.build(ask_parallel)
        Command = tt.impl.Command
        tt.rec("invoke", _interrupted(tt.call(g.invoke, {"log": []}, tt.cfg)))
        state = g.get_state(tt.cfg)
        tt.rec("state", tt.state())
        by_value = {i.value: i.id for i in state.interrupts}
        answers = {by_value["p1?"]: "A1", by_value["p2?"]: "A2"}
        tt.rec("resume", tt.call(g.invoke, Command(resume=answers), tt.cfg))
        tt.rec("state-after", tt.state())
        tt.rec("history", tt.history())

    both(scenario)


def test_parallel_interrupts_resumed_one_at_a_time(both):
    def scenario(tt):
        g = tt.build(ask_parallel)
        Command = tt.impl.Command
        tt.rec("invoke", _interrupted(tt.call(g.invoke, {"log": []}, tt.cfg)))
        by_value = {i.value: i.id for i in g.get_state(tt.cfg).interrupts}
        # Still interrupted: only the interrupts of the return value (values: compared in the strict test).
        tt.rec("resume-p2", _interrupted(tt.call(g.invoke, Command(resume={by_value["p2?"]: "B"}), tt.cfg)))
        tt.rec("state-mid", tt.state())
        remaining = g.get_state(tt.cfg).interrupts
        tt.rec("resume-p1", tt.call(g.invoke, Command(resume={i.id: "A" for i in remaining}), tt.cfg))
        tt.rec("state-after", tt.state())
        tt.rec("outline", tt.outline())

    both(scenario)


@pytest.mark.parametrize("strict", [False, True], ids=["", "strict-results"])
def test_replay_before_interrupt_node_asks_again(both, strict):
    """Replaying a checkpoint before an interrupt()ing node runs it (and stops) again."""

    def scenario(tt):
        tt.strict_task_results = strict
        g = tt.build(ask)
        g.invoke({"log": []}, tt.cfg)
        g.invoke(tt.impl.Command(resume="Bob"), tt.cfg)
        tt.ran()
        tt.rec("replay", tt.call(g.invoke, None, tt.at(1)))
        tt.rec("state", tt.state())
        tt.rec("resume", tt.call(g.invoke, tt.impl.Command(resume="Eve"), tt.cfg))
        tt.rec("history", tt.history())

    both(scenario)
