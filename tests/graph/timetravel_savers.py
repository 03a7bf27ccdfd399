"""Which checkpointers the time-travel tests run ferrograph on: the one place to extend.

``TIME_TRAVEL_SAVERS`` is a list of ``SaverFactory(name, make)``; ``make(request)`` (the
pytest request of the test, for fixtures such as ``ferrograph_postgres_url`` or ``tmp_path``)
returns a context manager yielding a fresh, empty saver (and cleaning it up afterwards). A
factory may call ``pytest.skip(reason)`` when its backend is unavailable. The ``time_travel_saver`` fixture is
parametrized over the list (import it into a test module to use it).

Sources, in order, de-duplicated by name:

1. LangGraph's ``InMemorySaver`` — speaks the saver protocol, so ferrograph can use it as is.
   It is the reference saver and always present.
2. The shared saver registry of the checkpointer tests (``tests/checkpointers/conformance.py``,
   ``SAVER_FACTORIES``): every saver registered there (ferrograph's native MemorySaver, the
   pure-Python DictSaver test double, MemorySaver wrapped by ``as_langgraph_saver``) is picked
   up here without touching this file.
3. The synchronous SQL savers of ``tests/checkpointers/sql_savers.py`` (``SQL_SAVERS`` /
   ``open_saver``): SQLite on a temporary file, Postgres on the database of the
   ``ferrograph_postgres_url`` fixture (skipped with its reason when there is no server).
   The async-only SQL savers (``*-async*``) cannot serve ``invoke``; they are not listed.

Both modules import ferrograph plainly: a broken import fails the tests, never skips them.

LangGraph itself always runs on its own ``InMemorySaver`` (its ``compile()`` accepts only its
own ``BaseCheckpointSaver`` instances): see ``langgraph_saver``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import sys
from typing import Any, Callable, ContextManager, Iterator

import pytest


@dataclasses.dataclass(frozen=True)
class SaverFactory:
    name: str
    make: Callable[[pytest.FixtureRequest], ContextManager[Any]]


def _simple(name: str, ctor: Callable[[], Any]) -> SaverFactory:
    @contextlib.contextmanager
    def make(request: pytest.FixtureRequest) -> Iterator[Any]:
        yield ctor()

    return SaverFactory(name, make)


def _checkpointer_tests_dir() -> str:
    here = os.path.dirname(os.path.abspath(__file__))
    path = os.path.join(os.path.dirname(here), "checkpointers")
    if path not in sys.path:
        sys.path.append(path)
    return path


def langgraph_saver() -> Any:
    """The saver LangGraph (the reference) runs on."""
    from langgraph.checkpoint.memory import InMemorySaver

    return InMemorySaver()


def _shared_registry() -> list:
    """Factories of tests/checkpointers/conformance.py (imported plainly: a broken import of
    ferrograph fails the tests instead of quietly testing fewer savers)."""
    _checkpointer_tests_dir()
    import conformance  # type: ignore[import-not-found]

    return [SaverFactory(f.name, lambda request, make=f.make: make()) for f in conformance.SAVER_FACTORIES]


def _sql() -> list:
    _checkpointer_tests_dir()
    import sql_savers  # type: ignore[import-not-found]

    def factory(kind: str) -> SaverFactory:
        @contextlib.contextmanager
        def make(request: pytest.FixtureRequest) -> Iterator[Any]:
            url = request.getfixturevalue("ferrograph_postgres_url") if kind.startswith("postgres") else None
            path = str(request.getfixturevalue("tmp_path") / "checkpoints.db")
            # open_saver is an async context manager; for the sync savers its body is
            # synchronous, so a private event loop drives it.
            loop = asyncio.new_event_loop()
            cm = sql_savers.open_saver(kind, sqlite_path=path, postgres_url=url)
            try:
                saver = loop.run_until_complete(cm.__aenter__())
                try:
                    yield saver
                finally:
                    loop.run_until_complete(cm.__aexit__(None, None, None))
            finally:
                loop.close()

        return SaverFactory(kind, make)

    return [factory(kind) for kind in sql_savers.SQL_SAVERS if "async" not in kind]


def _collect() -> list:
    out: list = [_simple("langgraph-inmemory", langgraph_saver)]
    out.extend(_shared_registry())
    out.extend(_sql())
    seen, unique = set(), []
    for f in out:
        if f.name not in seen:
            seen.add(f.name)
            unique.append(f)
    return unique


TIME_TRAVEL_SAVERS: list = _collect()


@pytest.fixture(params=TIME_TRAVEL_SAVERS, ids=lambda f: f.name)
def time_travel_saver(request: pytest.FixtureRequest) -> Iterator[Any]:
    """A fresh saver for ferrograph, one per registered factory."""
    factory: SaverFactory = request.param
    with factory.make(request) as saver:
        yield saver
