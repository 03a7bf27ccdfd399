"""A small research agent with no network and no LLM: it plans sub-questions, researches them
in parallel with Send, reviews the findings and loops until the review passes, then writes a
report. The graph lives in `ferrograph.demo`; this script runs the same demo as
`ferrograph demo`: on SQLite, then history, a fork with a changed value, its replay, and both
branches. Run it with `make demo` (or `python examples/research_agent.py [--db PATH]`)."""

from ferrograph.demo import build, builder, main

__all__ = ["build", "builder", "main"]

if __name__ == "__main__":
    main()
