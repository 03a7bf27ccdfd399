"""Harness of the program sweep (test_sweep.py): LangGraph's own programs run unchanged.

Each module in ``programs/`` is a LangGraph program as its documentation or test suite writes
it, importing from ``langgraph``; LLM calls go to the deterministic ``fake_chat`` model. It
defines ``main()`` and/or ``async def amain()``; a program that persists takes the saver as
``main(checkpointer)`` so that the same program runs on the memory and the SQLite saver.

``run(program, lib, variant)`` executes the program's source on one library: for ferrograph
its ``langgraph`` imports are rewritten through ``IMPORT_MAP`` (and only those lines change),
then the function runs with stdout captured. The record is what it printed, what it returned
and the error it raised, with what is random by nature (uuids, interrupt ids, timestamps,
addresses) replaced by labels in order of first sight, so the two libraries' records compare
as text.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import io
import pprint
import re
import sys
import types
from pathlib import Path
from typing import Any, AsyncIterator, Callable, Iterator

PROGRAMS = Path(__file__).parent / "programs"

# langgraph module -> the ferrograph module a user imports instead (the whole switch).
IMPORT_MAP = {
    "langgraph.graph": "ferrograph.graph",
    "langgraph.graph.message": "ferrograph.graph.message",
    "langgraph.graph.state": "ferrograph.graph.state",
    "langgraph.types": "ferrograph.types",
    "langgraph.constants": "ferrograph.graph",
    "langgraph.config": "ferrograph.config",
    "langgraph.runtime": "ferrograph.runtime",
    "langgraph.errors": "ferrograph.errors",
    "langgraph.managed": "ferrograph.managed",
    "langgraph.cache.memory": "ferrograph.cache.memory",
    "langgraph.cache.sqlite": "ferrograph.cache.sqlite",
    "langgraph.prebuilt": "ferrograph.prebuilt",
    "langgraph.checkpoint.memory": "ferrograph.checkpointers",
    "langgraph.checkpoint.sqlite": "ferrograph.checkpointers",
    "langgraph.checkpoint.sqlite.aio": "ferrograph.checkpointers",
}

_IMPORT = re.compile(r"^(\s*)from (langgraph(?:\.\w+)*) import ", re.M)


def ferrograph_source(source: str) -> str:
    """`source` with its langgraph imports switched to ferrograph's; nothing else changes."""

    def switch(m: re.Match) -> str:
        module = m.group(2)
        if module not in IMPORT_MAP:
            raise AssertionError(f"no ferrograph module for `from {module} import`; add it to IMPORT_MAP")
        return f"{m.group(1)}from {IMPORT_MAP[module]} import "

    out = _IMPORT.sub(switch, source)
    left = [line for line in out.splitlines() if re.match(r"\s*(from|import)\s+langgraph\b", line)]
    assert not left, f"imports of langgraph the rewrite does not cover: {left}"
    return out


def programs() -> list[str]:
    return sorted(p.stem for p in PROGRAMS.glob("p*.py"))


def load(name: str, lib: str) -> types.ModuleType:
    path = PROGRAMS / f"{name}.py"
    source = path.read_text()
    if lib == "ferrograph":
        source = ferrograph_source(source)
    module = types.ModuleType(f"sweep_{name}_{lib}")
    module.__file__ = str(path)
    # Registered while it runs: dataclasses and pydantic resolve annotations through it.
    sys.modules[module.__name__] = module
    exec(compile(source, str(path), "exec"), module.__dict__)
    return module


def variants(name: str) -> list[str]:
    """`sync-none`, `sync-memory`, `async-sqlite`...: each entry point on each saver it takes."""
    module = load(name, "langgraph")
    out = []
    try:
        for kind, fn_name in (("sync", "main"), ("async", "amain")):
            fn = getattr(module, fn_name, None)
            if fn is None:
                continue
            savers = ["memory", "sqlite"] if "checkpointer" in inspect.signature(fn).parameters else ["none"]
            out += [f"{kind}-{saver}" for saver in savers]
    finally:
        sys.modules.pop(module.__name__, None)
    return out


def xfail_reason(name: str, variant: str) -> str | None:
    """The program's declared known difference: XFAIL = "reason" or {variant: "reason"}."""
    module = load(name, "langgraph")
    sys.modules.pop(module.__name__, None)
    xfail = getattr(module, "XFAIL", None)
    if isinstance(xfail, dict):
        return xfail.get(variant)
    return xfail


def _memory_saver(lib: str) -> Any:
    if lib == "langgraph":
        from langgraph.checkpoint.memory import InMemorySaver
    else:
        from ferrograph.checkpointers import InMemorySaver
    return InMemorySaver()


@contextlib.contextmanager
def _sync_saver(lib: str, saver: str) -> Iterator[Any]:
    if saver == "memory":
        yield _memory_saver(lib)
        return
    if lib == "langgraph":
        from langgraph.checkpoint.sqlite import SqliteSaver
    else:
        from ferrograph.checkpointers import SqliteSaver
    with SqliteSaver.from_conn_string(":memory:") as cp:
        yield cp  # both create their tables on first use


@contextlib.asynccontextmanager
async def _async_saver(lib: str, saver: str) -> AsyncIterator[Any]:
    if saver == "memory":
        yield _memory_saver(lib)
        return
    if lib == "langgraph":
        from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
    else:
        from ferrograph.checkpointers import AsyncSqliteSaver
    async with AsyncSqliteSaver.from_conn_string(":memory:") as cp:
        yield cp


def _outcome(fn: Callable[[], Any]) -> tuple[str, Any, str | None]:
    out = io.StringIO()
    result, error = None, None
    with contextlib.redirect_stdout(out):
        try:
            result = fn()
        except Exception as exc:  # noqa: BLE001 - part of the record
            error = describe_error(exc)
    return out.getvalue(), result, error


def describe_error(exc: BaseException) -> str:
    """A library's own errors by class name (their texts are each library's own); a program's
    errors by class and message."""
    module = type(exc).__module__
    if module.startswith(("langgraph", "ferrograph", "pydantic")):
        return type(exc).__name__
    return f"{type(exc).__name__}: {exc}"


def run(name: str, lib: str, variant: str) -> str:
    kind, saver = variant.split("-")
    module = load(name, lib)
    try:
        if kind == "sync":
            def call() -> Any:
                if saver == "none":
                    return module.main()
                with _sync_saver(lib, saver) as cp:
                    return module.main(cp)

            printed, result, error = _outcome(call)
        else:
            async def acall() -> Any:
                if saver == "none":
                    return await module.amain()
                async with _async_saver(lib, saver) as cp:
                    return await module.amain(cp)

            printed, result, error = _outcome(lambda: asyncio.run(acall()))
    finally:
        sys.modules.pop(module.__name__, None)
    record = printed
    if result is not None:
        record += "--- returned\n" + pprint.pformat(result, width=100) + "\n"
    if error is not None:
        record += f"--- raised {error}\n"
    return normalize(record)


_RANDOM = re.compile(
    r"(?P<uuid>[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})"
    r"|(?P<hex>\b[0-9a-f]{32}\b)"
    r"|(?P<ts>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:[+-]\d\d:\d\d|Z)?)"
    r"|(?P<addr>\b0x[0-9a-f]{6,}\b)"
)


def normalize(text: str) -> str:
    labels: dict[str, str] = {}

    def label(m: re.Match) -> str:
        if m.group("ts"):
            return "<ts>"
        if m.group("addr"):
            return "<addr>"
        key = m.group(0)
        if key not in labels:
            labels[key] = f"<id{len(labels)}>"
        return labels[key]

    return _RANDOM.sub(label, text)
