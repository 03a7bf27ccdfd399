"""Caches of node results (`compile(cache=...)` with `add_node(..., cache_policy=...)`):
`ferrograph.cache.memory.InMemoryCache` and `ferrograph.cache.sqlite.SqliteCache`, both on
the `BaseCache` protocol of `ferrograph.cache.base`, with LangGraph's names and methods."""

from ferrograph.cache.base import BaseCache

__all__ = ["BaseCache"]
