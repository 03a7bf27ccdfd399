"""LangGraph's published conformance suite for third-party savers
(`langgraph-checkpoint-conformance`), all eight capabilities, on every SQL saver.

The suite takes instances of LangGraph's own `BaseCheckpointSaver` and drives their async
methods, so each saver runs behind `AsLangGraphSaver`, which forwards every call unchanged.
"""

from __future__ import annotations

import pytest

from sql_savers import SQL_SAVERS, open_saver, postgres_url_for

conformance = pytest.importorskip("langgraph.checkpoint.conformance")
from langgraph.checkpoint.base import BaseCheckpointSaver as LangGraphSaver  # noqa: E402
from langgraph.checkpoint.conformance.capabilities import ALL_CAPABILITIES  # noqa: E402


class AsLangGraphSaver(LangGraphSaver):
    def __init__(self, saver):
        super().__init__()
        self.inner = saver

    async def aget_tuple(self, config):
        return await self.inner.aget_tuple(config)

    async def alist(self, config, *, filter=None, before=None, limit=None):
        async for item in self.inner.alist(config, filter=filter, before=before, limit=limit):
            yield item

    async def aput(self, config, checkpoint, metadata, new_versions):
        return await self.inner.aput(config, checkpoint, metadata, new_versions)

    async def aput_writes(self, config, writes, task_id, task_path=""):
        await self.inner.aput_writes(config, writes, task_id, task_path)

    async def adelete_thread(self, thread_id):
        await self.inner.adelete_thread(thread_id)

    async def adelete_for_runs(self, run_ids):
        await self.inner.adelete_for_runs(run_ids)

    async def acopy_thread(self, source_thread_id, target_thread_id):
        await self.inner.acopy_thread(source_thread_id, target_thread_id)

    async def aprune(self, thread_ids, *, strategy="keep_latest"):
        await self.inner.aprune(thread_ids, strategy=strategy)

    def get_next_version(self, current, channel):
        return self.inner.get_next_version(current, channel)


@pytest.mark.parametrize("kind", SQL_SAVERS)
async def test_langgraph_conformance_suite(kind, request, tmp_path):
    url = postgres_url_for(request, kind)
    counter = iter(range(100))

    async def factory():
        # A fresh database file per capability suite on SQLite; Postgres threads are uuids.
        path = str(tmp_path / f"conformance-{next(counter)}.db")
        async with open_saver(kind, sqlite_path=path, postgres_url=url) as saver:
            yield AsLangGraphSaver(saver)

    registered = conformance.checkpointer_test(name=f"ferrograph-{kind}")(factory)
    report = await conformance.validate(registered)
    failures = {name: r.failures for name, r in report.results.items() if r.passed is not True}
    assert not failures, failures
    assert {name for name, r in report.results.items() if r.detected} == {c.value for c in ALL_CAPABILITIES}
    assert report.conformance_level() == "FULL"
    assert sum(r.tests_passed for r in report.results.values()) == 81
