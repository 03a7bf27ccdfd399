"""`SqliteCache`: node results in a SQLite file, which may be the SQLite saver's own
(LangGraph's `SqliteCache`; its table is created on first use, as the saver's are)."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from typing import Mapping, Optional, Sequence

from ferrograph.cache.base import BaseCache, FullKey, Namespace, ValueT, decode, encode, expired, expiry

__all__ = ["SqliteCache"]

# A namespace is stored as its parts joined by ',' (as LangGraph stores it).
_CREATE = """CREATE TABLE IF NOT EXISTS node_cache (
    ns TEXT NOT NULL,
    key TEXT NOT NULL,
    expiry REAL,
    val BLOB NOT NULL,
    PRIMARY KEY (ns, key)
)"""
_SELECT = "SELECT ns, key, expiry, val FROM node_cache WHERE (ns, key) IN ({pairs})"
_DELETE_ONE = "DELETE FROM node_cache WHERE ns = ? AND key = ?"
_UPSERT = "INSERT OR REPLACE INTO node_cache (ns, key, expiry, val) VALUES (?, ?, ?, ?)"
_DELETE_NS = "DELETE FROM node_cache WHERE ns = ?"
_DELETE_ALL = "DELETE FROM node_cache"


class SqliteCache(BaseCache[ValueT]):
    """A cache in the SQLite file at `path` (WAL mode); one connection, shared by threads
    under a lock; the async methods run the same calls on a worker thread."""

    def __init__(self, *, path: str) -> None:
        self._conn = sqlite3.connect(path, check_same_thread=False)
        self._lock = threading.Lock()
        with self._lock, self._conn:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute(_CREATE)

    def get(self, keys: Sequence[FullKey]) -> dict[FullKey, ValueT]:
        if not keys:
            return {}
        params = [part for ns, key in keys for part in (",".join(ns), key)]
        found: dict[FullKey, ValueT] = {}
        with self._lock, self._conn:
            rows = self._conn.execute(_SELECT.format(pairs=",".join("(?, ?)" for _ in keys)), params).fetchall()
            for ns, key, at, val in rows:
                if expired(at):
                    self._conn.execute(_DELETE_ONE, (ns, key))
                    continue
                found[(tuple(ns.split(",")), key)] = decode(val)
        return found

    async def aget(self, keys: Sequence[FullKey]) -> dict[FullKey, ValueT]:
        return await asyncio.to_thread(self.get, keys)

    def set(self, pairs: Mapping[FullKey, tuple[ValueT, Optional[int]]]) -> None:
        rows = [(",".join(ns), key, expiry(ttl), encode(value)) for (ns, key), (value, ttl) in pairs.items()]
        with self._lock, self._conn:
            self._conn.executemany(_UPSERT, rows)

    async def aset(self, pairs: Mapping[FullKey, tuple[ValueT, Optional[int]]]) -> None:
        await asyncio.to_thread(self.set, pairs)

    def clear(self, namespaces: Optional[Sequence[Namespace]] = None) -> None:
        with self._lock, self._conn:
            if namespaces is None:
                self._conn.execute(_DELETE_ALL)
            else:
                self._conn.executemany(_DELETE_NS, [(",".join(ns),) for ns in namespaces])

    async def aclear(self, namespaces: Optional[Sequence[Namespace]] = None) -> None:
        await asyncio.to_thread(self.clear, namespaces)

    def close(self) -> None:
        with self._lock:
            self._conn.close()
