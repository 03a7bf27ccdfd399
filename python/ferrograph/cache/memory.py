"""`InMemoryCache`: node results kept in this process (LangGraph's `InMemoryCache`)."""

from __future__ import annotations

import threading
from typing import Mapping, Optional, Sequence

from ferrograph.cache.base import BaseCache, FullKey, Namespace, ValueT, decode, encode, expired, expiry

__all__ = ["InMemoryCache"]


class InMemoryCache(BaseCache[ValueT]):
    """A cache in a dict, safe to share between threads; entries are stored encoded, so a
    hit never hands out an object a node may have changed since."""

    def __init__(self) -> None:
        self._entries: dict[Namespace, dict[str, tuple[bytes, Optional[float]]]] = {}
        self._lock = threading.Lock()

    def get(self, keys: Sequence[FullKey]) -> dict[FullKey, ValueT]:
        found: dict[FullKey, ValueT] = {}
        with self._lock:
            for ns, key in keys:
                entry = self._entries.get(tuple(ns), {}).get(key)
                if entry is None:
                    continue
                if expired(entry[1]):
                    del self._entries[tuple(ns)][key]
                    continue
                found[(tuple(ns), key)] = decode(entry[0])
        return found

    async def aget(self, keys: Sequence[FullKey]) -> dict[FullKey, ValueT]:
        return self.get(keys)

    def set(self, pairs: Mapping[FullKey, tuple[ValueT, Optional[int]]]) -> None:
        encoded = {(tuple(ns), key): (encode(value), expiry(ttl)) for (ns, key), (value, ttl) in pairs.items()}
        with self._lock:
            for (ns, key), entry in encoded.items():
                self._entries.setdefault(ns, {})[key] = entry

    async def aset(self, pairs: Mapping[FullKey, tuple[ValueT, Optional[int]]]) -> None:
        self.set(pairs)

    def clear(self, namespaces: Optional[Sequence[Namespace]] = None) -> None:
        with self._lock:
            if namespaces is None:
                self._entries.clear()
            for ns in namespaces or ():
                self._entries.pop(tuple(ns), None)

    async def aclear(self, namespaces: Optional[Sequence[Namespace]] = None) -> None:
        self.clear(namespaces)
