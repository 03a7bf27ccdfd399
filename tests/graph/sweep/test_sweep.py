"""The program sweep: each program of programs/ (LangGraph's documentation and test suite,
only imports changed) runs on LangGraph and on ferrograph in every variant it has (sync and
async, memory and SQLite savers); what it prints, returns and raises must be the same.
docs/compat-sweep.md lists the programs and their sources."""

import pytest

import sweep_harness as sweep

pytest.importorskip("langgraph", reason="langgraph is the reference implementation")


def _cases() -> list:
    cases = []
    for name in sweep.programs():
        for variant in sweep.variants(name):
            reason = sweep.xfail_reason(name, variant)
            marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
            cases.append(pytest.param(name, variant, id=f"{name}-{variant}", marks=marks))
    return cases


@pytest.mark.parametrize(("name", "variant"), _cases())
def test_program_prints_the_same(name: str, variant: str) -> None:
    expected = sweep.run(name, "langgraph", variant)
    assert sweep.run(name, "ferrograph", variant) == expected


def test_only_imports_change() -> None:
    """The ferrograph side of every program differs from its LangGraph source only in import
    lines, and imports nothing from langgraph."""
    for name in sweep.programs():
        source = (sweep.PROGRAMS / f"{name}.py").read_text()
        switched = sweep.ferrograph_source(source)
        changed = [
            (a, b) for a, b in zip(source.splitlines(), switched.splitlines()) if a != b
        ]
        assert all(a.lstrip().startswith("from langgraph") for a, _ in changed), name
        assert "langgraph" not in "".join(b for _, b in changed), name
