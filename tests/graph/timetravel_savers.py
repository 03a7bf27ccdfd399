"""Which checkpointers the time-travel tests run ferrograph on: the one place to extend.

``TIME_TRAVEL_SAVERS`` is a list of ``SaverFactory(name, make)``; ``make()`` returns a context
manager yielding a fresh, empty saver (and cleaning it up afterwards). A factory may call
``pytest.skip(reason)`` when its backend is unavailable. The ``time_travel_saver`` fixture is
parametrized over the list (import it into a test module to use it).

Sources, in order, de-duplicated by name:

1. LangGraph's ``InMemorySaver`` — speaks the saver protocol, so ferrograph can use it as is.
   It is the reference saver and always present.
2. The shared saver registry of the checkpointer tests (``tests/checkpointers/conformance.py``,
   ``SAVER_FACTORIES``) when that module exists and imports: every saver registered there
   (ferrograph's MemorySaver, the SQL savers once they land, test doubles...) is picked up here
   without touching this file.
3. Otherwise ferrograph's own ``ferrograph.checkpointers.MemorySaver`` when it exists.

LangGraph itself always runs on its own ``InMemorySaver`` (its ``compile()`` accepts only its
own ``BaseCheckpointSaver`` instances): see ``langgraph_saver``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
from typing import Any, Callable, ContextManager, Iterator

import pytest


@dataclasses.dataclass(frozen=True)
class SaverFactory:
    name: str
    make: Callable[[], ContextManager[Any]]


def _simple(name: str, ctor: Callable[[], Any]) -> SaverFactory:
    @contextlib.contextmanager
    def make() -> Iterator[Any]:
        yield ctor()

    return SaverFactory(name, make)


def langgraph_saver() -> Any:
    """The saver LangGraph (the reference) runs on."""
    from langgraph.checkpoint.memory import InMemorySaver

    return InMemorySaver()


def _shared_registry() -> list:
    """Factories of tests/checkpointers/conformance.py, if that module is there and imports."""
    here = os.path.dirname(os.path.abspath(__file__))
    ckpt_dir = os.path.join(os.path.dirname(here), "checkpointers")
    if not os.path.exists(os.path.join(ckpt_dir, "conformance.py")):
        return []
    if ckpt_dir not in sys.path:
        sys.path.append(ckpt_dir)
    try:
        import conformance  # type: ignore[import-not-found]
    except Exception:  # noqa: BLE001 - missing saver implementation: fall back below
        return []
    return [SaverFactory(f.name, f.make) for f in getattr(conformance, "SAVER_FACTORIES", [])]


def _native_memory() -> list:
    try:
        from ferrograph.checkpointers import MemorySaver  # type: ignore[attr-defined]
    except ImportError:
        return []
    return [_simple("memory", MemorySaver)]


def _collect() -> list:
    out: list = [_simple("langgraph-inmemory", langgraph_saver)]
    shared = _shared_registry()
    out.extend(shared if shared else _native_memory())
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
    with factory.make() as saver:
        yield saver
