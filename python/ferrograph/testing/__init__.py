"""Test support for graphs built with ferrograph.

`ferrograph.testing.plugin` is a pytest plugin, registered through the `pytest11` entry point and
inert unless a test asks for its fixtures (`saver`, `async_saver`, `graph_harness`,
`ferrograph_postgres_url`). The helpers below are what the fixtures use, for tests that need
more than the fixtures give:

- `open_saver(kind, conn_string=None, *, pool=False, setup=True)`: a sync saver of a kind in
  `SAVER_KINDS` ("memory", "sqlite", "postgres"), as a context manager;
  `open_async_saver(...)` its async twin.
- `GraphHarness` / `GraphRun`: run a graph on a fresh thread and assert on its history.
"""

from ferrograph.testing.harness import GraphHarness, GraphRun
from ferrograph.testing.savers import SAVER_KINDS, open_async_saver, open_saver

__all__ = ["SAVER_KINDS", "GraphHarness", "GraphRun", "open_async_saver", "open_saver"]
