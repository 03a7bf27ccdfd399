"""LangGraph's published conformance suite for third-party savers
(`langgraph-checkpoint-conformance`), run against ferrograph's savers with all eight
capabilities: base (put, put_writes, get_tuple, list, delete_thread) and extended
(delete_for_runs, copy_thread, prune). The suite drives the async methods and counts a
capability as present when the saver overrides LangGraph's default method.

To add a saver, add a factory to SUBJECTS: an async generator yielding a fresh saver."""

from __future__ import annotations

from typing import Any, AsyncIterator, Callable

import pytest

conformance = pytest.importorskip("langgraph.checkpoint.conformance")
from langgraph.checkpoint.conformance.capabilities import ALL_CAPABILITIES  # noqa: E402

from ferrograph.checkpointers import MemorySaver  # noqa: E402
from ferrograph.integrations.langgraph import as_langgraph_saver  # noqa: E402

from dict_saver import DictSaver  # noqa: E402


async def _memory() -> AsyncIterator[Any]:
    # The suite duck-types: our MemorySaver is driven as it is.
    yield MemorySaver()


async def _wrapped_memory() -> AsyncIterator[Any]:
    yield as_langgraph_saver(MemorySaver())


async def _wrapped_dict() -> AsyncIterator[Any]:
    yield as_langgraph_saver(DictSaver())


SUBJECTS: dict[str, Callable[[], AsyncIterator[Any]]] = {
    "MemorySaver": _memory,
    "as_langgraph_saver(MemorySaver)": _wrapped_memory,
    "as_langgraph_saver(DictSaver)": _wrapped_dict,
}


@pytest.mark.parametrize("name", list(SUBJECTS))
async def test_langgraph_conformance_all_capabilities(name: str) -> None:
    registered = conformance.checkpointer_test(name=name)(SUBJECTS[name])
    report = await conformance.validate(registered)
    summary = {
        cap: (r.detected, r.passed, r.tests_passed, r.tests_failed, r.failures) for cap, r in report.results.items()
    }
    assert set(report.results) == {c.value for c in ALL_CAPABILITIES}
    for cap, (detected, passed, _, failed, failures) in summary.items():
        assert detected, f"{name}: capability {cap} not detected"
        assert passed is True, f"{name}: {cap}: {failed} failed: {failures}"
    assert report.conformance_level() == "FULL"
