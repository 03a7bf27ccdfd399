"""The cache protocol a graph uses, as LangGraph's `BaseCache`: values by (namespace, key),
each stored with a time to live, read and written in batches, cleared by namespace.

A graph keeps a node's writes under namespace `("__pregel_ns_writes", <function's module and
qualified name>, <node name>)` and a key hashed from the node's input. Values are encoded
with ferrograph's codec (the active serializer: a graph's calls allow the classes its schemas
name, as for its checkpoints), so a read returns fresh objects and only allowed classes are
ever rebuilt."""

from __future__ import annotations

import abc
import time
from typing import Any, Generic, Mapping, Optional, Sequence, TypeVar

from ferrograph import serde

__all__ = ["BaseCache", "Namespace", "FullKey", "ValueT"]

ValueT = TypeVar("ValueT")
Namespace = tuple[str, ...]
FullKey = tuple[Namespace, str]


class BaseCache(abc.ABC, Generic[ValueT]):
    """A cache: `get` the live values of some keys, `set` values with a TTL in seconds
    (None: no expiry), `clear` namespaces (all when None); `a`-prefixed async twins."""

    @abc.abstractmethod
    def get(self, keys: Sequence[FullKey]) -> dict[FullKey, ValueT]: ...

    @abc.abstractmethod
    async def aget(self, keys: Sequence[FullKey]) -> dict[FullKey, ValueT]: ...

    @abc.abstractmethod
    def set(self, pairs: Mapping[FullKey, tuple[ValueT, Optional[int]]]) -> None: ...

    @abc.abstractmethod
    async def aset(self, pairs: Mapping[FullKey, tuple[ValueT, Optional[int]]]) -> None: ...

    @abc.abstractmethod
    def clear(self, namespaces: Optional[Sequence[Namespace]] = None) -> None: ...

    @abc.abstractmethod
    async def aclear(self, namespaces: Optional[Sequence[Namespace]] = None) -> None: ...


def expiry(ttl: Optional[int]) -> Optional[float]:
    """When an entry set now with `ttl` seconds to live expires (epoch seconds), or None."""
    return None if ttl is None else time.time() + ttl


def expired(at: Optional[float]) -> bool:
    return at is not None and time.time() >= at


def encode(value: Any) -> bytes:
    return serde.dumps(value, context="a cached node result")


def decode(data: bytes) -> Any:
    return serde.loads(data)
