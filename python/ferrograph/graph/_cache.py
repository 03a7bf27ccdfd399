"""A run's use of its graph's node cache (`compile(cache=...)`), shared by both drivers.

Before a step runs, each due task of a node with a `CachePolicy` gets a key: namespace
("__pregel_ns_writes", the function's module and qualified name, the node's name) and a
128-bit hash of what `key_func` makes of the node's input. The driver reads those keys from
the cache in one call; a task found there is not run: its cached writes stand in for it (and
"updates" shows them marked `"__metadata__": {"cached": True}`, as LangGraph does). A task
that runs and finishes (no error, no interrupt) has its writes stored under its key with the
policy's TTL; the driver writes them once the step's tasks are done.
"""

from __future__ import annotations

import hashlib
from typing import Any, Optional

from ferrograph.cache.base import FullKey

__all__ = ["NodeCache", "CACHE_NS_WRITES", "cache_namespace"]

CACHE_NS_WRITES = "__pregel_ns_writes"


def cache_namespace(name: str, fn: Any) -> tuple[str, str, str]:
    """Where a node's results are kept: the same for every graph that runs the same function
    under the same node name."""
    qualname = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None)
    module = getattr(fn, "__module__", None)
    identifier = f"{module}.{qualname}" if qualname is not None and module is not None else "__dynamic__"
    return (CACHE_NS_WRITES, identifier, name)


class NodeCache:
    """This run's cache keys (by task index, for the current step) and what to store."""

    def __init__(self) -> None:
        self.keys: dict[int, tuple[FullKey, Optional[int]]] = {}
        self.to_store: dict[FullKey, tuple[list, Optional[int]]] = {}

    def plan(self, tasks: dict[int, tuple[str, Any, Any, Any]]) -> list[FullKey]:
        """Key each task `i -> (name, fn, policy, input)`; returns the keys to look up."""
        self.keys = {}
        for i, (name, fn, policy, node_input) in tasks.items():
            key = policy.key_func(node_input)
            digest = hashlib.blake2b(key.encode() if isinstance(key, str) else key, digest_size=16).hexdigest()
            self.keys[i] = ((cache_namespace(name, fn), digest), policy.ttl)
        return [key for key, _ttl in self.keys.values()]

    def hits(self, found: dict[FullKey, Any]) -> list[tuple[int, list]]:
        """The tasks `found` has writes for, in task order, with those writes."""
        return [(i, list(found[key])) for i, (key, _ttl) in sorted(self.keys.items()) if key in found]

    def finished(self, i: int, writes: list) -> None:
        """Task `i` ran to its end: its writes are stored (a task that wrote nothing is not)."""
        planned = self.keys.get(i)
        if planned is not None and writes:
            key, ttl = planned
            self.to_store[key] = (writes, ttl)

    def take(self) -> dict[FullKey, tuple[list, Optional[int]]]:
        stored, self.to_store = self.to_store, {}
        return stored
