"""Harness of the "LangGraph programs run unchanged" differential tests (test_compat_*.py).

A scenario is written once against ``tt.impl`` (the names of one implementation, see
``compat_names``) and records what it observes with ``tt.rec``; ``both`` runs it on LangGraph
and on ferrograph and compares the records label by label (``timetravel_harness.run_both``).
Scenarios that need a checkpointer take the ``time_travel_saver`` fixture's saver for
ferrograph (memory, SQLite, Postgres...) while LangGraph runs on its InMemorySaver; the others
run without one.
"""

from __future__ import annotations

import contextlib
import io
import re
from typing import Any, Callable

from difftest_harness import Impl
from timetravel_harness import TT, run_both, with_time_travel_names


def compat_names(impl: Impl) -> Impl:
    """``impl`` plus the names of the run-time API (Runtime, stream writers, managed values)."""
    impl = with_time_travel_names(impl)
    if impl.name == "langgraph":
        from langgraph.config import get_config, get_stream_writer
        from langgraph.errors import GraphDrained
        from langgraph.runtime import RunControl, Runtime, get_runtime
        from langgraph.types import StreamWriter
    else:
        from ferrograph.config import get_config, get_stream_writer
        from ferrograph.errors import GraphDrained
        from ferrograph.runtime import RunControl, Runtime, get_runtime
        from ferrograph.types import StreamWriter
    return Impl(
        **{
            **vars(impl),
            "get_config": get_config,
            "get_stream_writer": get_stream_writer,
            "GraphDrained": GraphDrained,
            "RunControl": RunControl,
            "Runtime": Runtime,
            "get_runtime": get_runtime,
            "StreamWriter": StreamWriter,
        }
    )


def both(scenario: Callable, langgraph_impl: Impl, ferrograph_impl: Impl, saver: Any = None) -> tuple:
    """Run `scenario(tt)` on both implementations (ferrograph on `saver`) and compare."""

    def wrapped(tt: TT) -> Any:
        tt.impl = compat_names(tt.impl)
        return scenario(tt)

    if _is_async(scenario):

        async def awrapped(tt: TT) -> Any:
            tt.impl = compat_names(tt.impl)
            return await scenario(tt)

        return run_both(awrapped, langgraph_impl, ferrograph_impl, saver)
    return run_both(wrapped, langgraph_impl, ferrograph_impl, saver)


def _is_async(fn: Callable) -> bool:
    import inspect

    return inspect.iscoroutinefunction(fn)


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def printed(fn: Callable[[], Any]) -> tuple[Any, str]:
    """fn's result and what it printed (ANSI codes kept: LangGraph's print_mode bolds)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        result = fn()
    return result, out.getvalue()


def attempt(tt: TT, fn: Callable[[], Any]) -> dict:
    """fn's canonical result, or the built-in class its error is (ferrograph's errors subclass
    the built-in ones LangGraph raises, e.g. GraphValidationError is a ValueError)."""
    try:
        return {"result": tt.value(fn()), "error": None}
    except Exception as exc:  # noqa: BLE001 - compared
        builtin = next(c for c in type(exc).__mro__ if c.__module__ == "builtins")
        return {"result": None, "error": builtin.__name__}


__all__ = ["both", "compat_names", "printed", "attempt"]
