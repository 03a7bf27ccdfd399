"""Fixtures that pick the implementation a graph runs on (see test_differential.py).

ferrograph is imported plainly: a broken import of our own package fails the tests, it never
skips them. Only LangGraph, the reference, may be missing (then its side skips)."""

import pytest

from difftest_harness import load_ferrograph, load_langgraph


@pytest.fixture(scope="session")
def langgraph_impl():
    pytest.importorskip("langgraph", reason="langgraph is the reference implementation")
    return load_langgraph()


@pytest.fixture(scope="session")
def ferrograph_impl():
    return load_ferrograph()


@pytest.fixture(params=["langgraph", "ferrograph"])
def impl(request):
    """One implementation per parametrization."""
    return request.getfixturevalue(f"{request.param}_impl")


@pytest.fixture
def run_both(langgraph_impl, ferrograph_impl):
    """`run_both(scenario, saver=None)`: the scenario on both implementations, compared
    (compat_harness.both)."""
    from compat_harness import both

    return lambda scenario, saver=None: both(scenario, langgraph_impl, ferrograph_impl, saver)
