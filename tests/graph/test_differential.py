"""Differential tests: the same graphs on LangGraph and on ferrograph must behave identically.

Every graph of ``difftest_graphs.CASES`` runs in every mode (invoke, stream "values",
"updates", ["values", "updates"], "debug"; async graphs through ainvoke/astream). Each test
first runs LangGraph and checks the graph's own invariants there, then asks for the ferrograph
implementation (skipped with a reason while it is not importable), runs the same builder on
it and asserts that the canonical outputs (see ``difftest_harness``) are equal.
"""

from collections import Counter

import pytest

from difftest_graphs import ASYNC_CASES, CASES, SYNC_CASES
from difftest_harness import (
    ASYNC_MODES,
    SYNC_MODES,
    assert_debug_well_formed,
    canon,
    canon_combined,
    canon_updates,
    canonical_outcome,
    error_category,
    run_async,
    run_case_sync,
    run_sync,
    update_step_sizes,
)

assert len(CASES) >= 22

SYNC_CASE_MODES = list(SYNC_MODES) + ["ainvoke"]  # sync graphs also run through ainvoke


def _ids(cases):
    return [c.name for c in cases]


def check_outcome(case, out):
    """Invariants of one run on one implementation."""
    expected = case.error
    if expected is None:
        assert out.error is None, f"{out.impl.name} raised {out.error!r}"
    elif isinstance(expected, str):
        assert error_category(out.error, out.impl) == expected, repr(out.error)
        if expected == "GraphRecursionError":
            assert isinstance(out.error, RecursionError)
        if out.impl.RootError is not None:
            assert isinstance(out.error, out.impl.RootError)
    else:  # a node's own exception, unchanged
        assert type(out.error) is expected, repr(out.error)
    if out.mode in ("invoke", "ainvoke") and out.built.check is not None:
        out.built.check(out.result, out.probe)
    elif out.error is not None and out.built.check is not None:
        out.built.check(None, out.probe)
    assert_debug_well_formed(out)


def _step_sizes(case, impl, mode):
    """Superstep windows for an 'updates' stream, from the same implementation's combined
    ["values", "updates"] stream."""
    combined = "values+updates" if mode in SYNC_MODES else "astream-values+updates"
    return update_step_sizes(run_case_sync(case, impl, combined).chunks)


def _compare(case, mode, lg_out, fg_out):
    lg_sizes = fg_sizes = None
    if mode in ("updates", "astream-updates"):
        lg_sizes = _step_sizes(case, lg_out.impl, mode)
        fg_sizes = _step_sizes(case, fg_out.impl, mode)
    expected = canonical_outcome(lg_out, step_sizes=lg_sizes)
    actual = canonical_outcome(fg_out, step_sizes=fg_sizes)
    assert actual == expected
    assert canon(fg_out.probe, fg_out.impl) == canon(lg_out.probe, lg_out.impl)


@pytest.mark.parametrize("mode", SYNC_CASE_MODES)
@pytest.mark.parametrize("case", SYNC_CASES, ids=_ids(SYNC_CASES))
def test_sync_graph_same_on_both(case, mode, langgraph_impl, request):
    lg_out = run_case_sync(case, langgraph_impl, mode)
    check_outcome(case, lg_out)
    fg = request.getfixturevalue("ferrograph_impl")  # skips while ferrograph is missing
    fg_out = run_case_sync(case, fg, mode)
    check_outcome(case, fg_out)
    _compare(case, mode, lg_out, fg_out)


@pytest.mark.asyncio
@pytest.mark.parametrize("mode", list(ASYNC_MODES))
@pytest.mark.parametrize("case", ASYNC_CASES, ids=_ids(ASYNC_CASES))
async def test_async_graph_same_on_both(case, mode, langgraph_impl, request):
    lg_out = await run_async(case, langgraph_impl, mode)
    check_outcome(case, lg_out)
    fg = request.getfixturevalue("ferrograph_impl")
    fg_out = await run_async(case, fg, mode)
    check_outcome(case, fg_out)
    if mode == "astream-updates":
        # step windows come from a separate run; do it outside this event loop
        import concurrent.futures

        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            pool.submit(_compare, case, mode, lg_out, fg_out).result()
    else:
        _compare(case, mode, lg_out, fg_out)


@pytest.mark.parametrize("case", CASES, ids=_ids(CASES))
def test_invariants(case, impl):
    """Each graph's own invariants, per implementation (ferrograph's half skips until ready)."""
    out = run_case_sync(case, impl, "ainvoke" if case.is_async else "invoke")
    check_outcome(case, out)


@pytest.mark.parametrize("case", CASES, ids=_ids(CASES))
def test_stream_modes_agree_with_each_other(case, impl):
    """Within one implementation: the last 'values' chunk is the invoke result, the combined
    stream carries exactly the chunks of the single-mode streams, and every update in the
    'updates' stream belongs to a node that ran (debug task_result)."""
    prefix = "" if not case.is_async else "a"
    invoke = run_case_sync(case, impl, prefix + "invoke")
    names = (
        ("values", "updates", "values+updates", "debug")
        if not case.is_async
        else ("astream-values", "astream-updates", "astream-values+updates", "astream-debug")
    )
    values, updates, combined, debug = (run_case_sync(case, impl, n) for n in names)
    for out in (values, updates, combined, debug):
        assert error_category(out.error, impl) == error_category(invoke.error, impl)
    if invoke.error is None:
        assert canon(values.chunks[-1], impl) == canon(invoke.result, impl)
    assert [canon(c, impl) for m, c in combined.chunks if m == "values"] == [
        canon(c, impl) for c in values.chunks
    ]
    assert sorted(repr(canon(c, impl)) for m, c in combined.chunks if m == "updates") == sorted(
        repr(canon(c, impl)) for c in updates.chunks
    )
    # Counter inclusion: ok task results <= updates <= all task results (a task whose path
    # function raises still has its update streamed; its debug task_result carries the error).
    results = [c["payload"] for c in debug.chunks if c["type"] == "task_result"]
    ok = Counter(p["name"] for p in results if p["error"] is None)
    everything = Counter(p["name"] for p in results)
    streamed = Counter(n for chunk in updates.chunks for n in chunk)
    assert ok <= streamed <= everything, (ok, streamed, everything)


STABILITY_PARAMS = [
    pytest.param(case, mode, id=f"{case.name}-{mode}")
    for case in CASES
    for mode in (
        list(ASYNC_MODES)
        if case.is_async
        else SYNC_CASE_MODES + ["astream-updates", "astream-debug"]
    )
]


@pytest.mark.parametrize(("case", "mode"), STABILITY_PARAMS)
def test_comparison_is_stable_langgraph_vs_itself(case, mode, langgraph_impl):
    """Two independent LangGraph runs must compare equal: proves the canonical forms absorb
    finishing order, random message ids, timestamps and task ids, so a difference against
    ferrograph is a real difference."""
    first = run_case_sync(case, langgraph_impl, mode)
    second = run_case_sync(case, langgraph_impl, mode)
    _compare(case, mode, first, second)


def test_canonical_forms_keep_what_matters(langgraph_impl):
    """The normalisation is not so loose that it hides real differences."""
    impl = langgraph_impl
    a, b, c = {"a": {"x": 1}}, {"b": {"x": 2}}, {"c": None}
    # inside one superstep any order; across supersteps the order matters
    assert canon_updates([a, b, c], impl, [2, 1]) == canon_updates([b, a, c], impl, [2, 1])
    assert canon_updates([a, b, c], impl, [1, 2]) != canon_updates([b, a, c], impl, [1, 2])
    assert canon_updates([a, c], impl) != canon_updates([a, {"c": {}}], impl)  # None != {}
    combined = [("values", {"x": 0}), ("updates", a), ("updates", b), ("values", {"x": 2})]
    swapped = [("values", {"x": 0}), ("updates", a), ("values", {"x": 2}), ("updates", b)]
    assert update_step_sizes(combined) == [2]
    assert canon_combined(combined, impl) != canon_combined(swapped, impl)

    from langchain_core.messages import AIMessage, HumanMessage

    h1 = HumanMessage(content="hi", id="2b0f6a1e-1c1f-4a55-9d0e-3e1d2c3b4a59")
    h2 = HumanMessage(content="hi", id="0f5d7d55-5a3b-4c1e-8f7a-1b2c3d4e5f60")
    assert canon(h1, impl) == canon(h2, impl)  # random ids are not compared
    assert canon(AIMessage(content="hi", id="x"), impl) != canon(h1, impl)  # types are
    assert canon(AIMessage(content="hi", id="x"), impl) != canon(AIMessage(content="hi", id="y"), impl)
    assert canon(ValueError("a"), impl) != canon(ValueError("b"), impl)
    assert canon((1, 2), impl) == canon([1, 2], impl)
