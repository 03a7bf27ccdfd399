"""LangGraph's own tests of its Postgres savers (libs/checkpoint-postgres/tests/test_sync.py and
test_async.py), ported as differential tests: each scenario runs on LangGraph's PostgresSaver
(and AsyncPostgresSaver) and on ferrograph's, each on a fresh database of the test server, and
what it observes must be the same. Its metadata filters are jsonb containment (`metadata @>
filter`), which ferrograph's Postgres savers follow, in SQL and where rows are matched in
Python (encrypted metadata)."""

from __future__ import annotations

import os
from typing import Any

import pytest

pytest.importorskip("langgraph.checkpoint.postgres")

from langgraph.checkpoint.base import create_checkpoint, empty_checkpoint  # noqa: E402
from langgraph.checkpoint.postgres import PostgresSaver as LangGraphPostgresSaver  # noqa: E402

from ferrograph.checkpointers import Encryption, PostgresSaver  # noqa: E402

CONFIGS = [
    {"configurable": {"thread_id": "thread-1", "checkpoint_id": "1", "checkpoint_ns": ""}},
    {"configurable": {"thread_id": "thread-2", "checkpoint_id": "2", "checkpoint_ns": ""}},
    {"configurable": {"thread_id": "thread-2", "checkpoint_id": "2-inner", "checkpoint_ns": "inner"}},
]
METADATA = [{"source": "input", "step": 2, "score": 1}, {"source": "loop", "step": 1, "score": None}, {}]


def combined_metadata(saver: Any) -> Any:
    config = {
        "configurable": {"thread_id": "thread-2", "checkpoint_ns": "", "__super_private_key": "super_private_value"},
        "metadata": {"run_id": "my_run_id"},
    }
    saver.put(config, create_checkpoint(empty_checkpoint(), {}, 1), {"source": "loop", "step": 1, "score": None}, {})
    return saver.get_tuple(config).metadata


def search(saver: Any) -> Any:
    first = empty_checkpoint()
    for config, checkpoint, metadata in zip(CONFIGS, [first, create_checkpoint(first, {}, 1), empty_checkpoint()], METADATA):
        saver.put(config, checkpoint, metadata, {})
    seen = {}
    for name, query in {"one key": {"source": "input"}, "step": {"step": 1}, "no keys": {}, "no match": {"source": "update", "step": 1}}.items():
        seen[name] = sorted((t.config["configurable"]["thread_id"], repr(sorted(t.metadata.items()))) for t in saver.list(None, filter=query))
    seen["thread across namespaces"] = sorted(t.config["configurable"]["checkpoint_ns"] for t in saver.list({"configurable": {"thread_id": "thread-2"}}))
    return seen


def null_chars(saver: Any) -> Any:
    config = saver.put(CONFIGS[0], empty_checkpoint(), {"my_key": "\x00abc"}, {})
    return saver.get_tuple(config).metadata["my_key"], [t.metadata["my_key"] for t in saver.list(None, filter={"my_key": "abc"})]


CONTAINMENT_FILTERS = [
    {"user": {"tier": "pro"}},  # part of a nested object
    {"user": {"tier": "pro", "id": 1}},
    {"user": {"tier": "free"}},
    {"tags": [1]},  # part of a list
    {"tags": [2, 1]},  # in any order
    {"tags": [3]},
    {"score": None},  # a key present with null
    {"missing": None},  # not a missing key
    {"flag": True},
    {"flag": 1},  # a bool is not a number
    {"n": 1.0},  # numbers compare as numbers
    {"user.tier": "pro"},  # a dotted key is a key, not a path
]


def containment(saver: Any) -> Any:
    metadata = {"user": {"tier": "pro", "id": 1}, "tags": [1, 2], "score": None, "flag": True, "n": 1}
    saver.put({"configurable": {"thread_id": "t", "checkpoint_ns": ""}}, empty_checkpoint(), metadata, {})
    return [len(list(saver.list(None, filter=f))) for f in CONTAINMENT_FILTERS]


SCENARIOS = [combined_metadata, search, null_chars, containment]


@pytest.fixture
def two_databases(ferrograph_postgres_server: str) -> Any:
    """A fresh database for each library."""
    import uuid

    import psycopg

    from ferrograph.testing.plugin import with_database

    names = [f"ferrograph_test_{uuid.uuid4().hex[:16]}" for _ in range(2)]
    with psycopg.connect(ferrograph_postgres_server, autocommit=True) as admin:
        for name in names:
            admin.execute(f"CREATE DATABASE {name}")
    try:
        yield [with_database(ferrograph_postgres_server, name) for name in names]
    finally:
        with psycopg.connect(ferrograph_postgres_server, autocommit=True) as admin:
            for name in names:
                admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.__name__)
def test_postgres_saver_as_langgraph_s(scenario, two_databases):
    theirs_url, ours_url = two_databases
    with LangGraphPostgresSaver.from_conn_string(theirs_url) as theirs:
        theirs.setup()
        expected = scenario(theirs)
    with PostgresSaver.from_conn_string(ours_url) as ours:
        ours.setup()
        assert scenario(ours) == expected


def test_encrypted_metadata_is_matched_as_the_database_matches(two_databases):
    """Encrypted metadata is matched in Python: with the same results as the SQL containment."""
    clear_url, sealed_url = two_databases
    with PostgresSaver.from_conn_string(clear_url) as clear:
        clear.setup()
        in_sql = containment(clear)
    with PostgresSaver.from_conn_string(sealed_url, encryption=Encryption(key=os.urandom(32), key_id="k1", metadata=True)) as sealed:
        sealed.setup()
        assert containment(sealed) == in_sql
    assert in_sql == [1, 1, 0, 1, 1, 0, 1, 0, 1, 0, 1, 0]


# The async twins (test_async.py): the same scenarios through the a-methods.


class _Sync:
    """A sync face of an async saver, for the scenarios above: each call runs on the loop."""

    def __init__(self, saver: Any, loop: Any) -> None:
        self.saver, self.loop = saver, loop

    def put(self, *args: Any) -> Any:
        return self.loop.run_until_complete(self.saver.aput(*args))

    def get_tuple(self, config: Any) -> Any:
        return self.loop.run_until_complete(self.saver.aget_tuple(config))

    def list(self, config: Any, **kwargs: Any) -> Any:
        async def collect() -> list:
            return [t async for t in self.saver.alist(config, **kwargs)]

        return self.loop.run_until_complete(collect())


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.__name__)
def test_async_postgres_saver_as_langgraph_s(scenario, two_databases):
    import asyncio

    from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver as LangGraphAsyncPostgresSaver

    from ferrograph.checkpointers import AsyncPostgresSaver

    theirs_url, ours_url = two_databases
    loop = asyncio.new_event_loop()
    try:
        observed = []
        for kind, url in ((LangGraphAsyncPostgresSaver, theirs_url), (AsyncPostgresSaver, ours_url)):
            manager = kind.from_conn_string(url)
            saver = loop.run_until_complete(manager.__aenter__())
            try:
                loop.run_until_complete(saver.setup())
                observed.append(scenario(_Sync(saver, loop)))
            finally:
                loop.run_until_complete(manager.__aexit__(None, None, None))
    finally:
        loop.close()
    assert observed[1] == observed[0]
