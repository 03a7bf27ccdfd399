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
