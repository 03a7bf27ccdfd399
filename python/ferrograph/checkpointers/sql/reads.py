"""Reads: `get_tuple` and `list`, as operations (see runner.py). A page of checkpoints comes
with the values and pending writes it needs in one statement (`Dialect.select_tuples`); a Rust
`RowPage` groups the rows, decodes the checkpoints and their metadata, and builds the tuples as
they are iterated. With the saver's encryption, stored values are decrypted as they come off the
rows (before append deltas are rebuilt)."""

from __future__ import annotations

from typing import Any, Generator, Iterator, Mapping, Optional, Sequence, TypeVar

from ferrograph import _core
from ferrograph.checkpointers.encryption import Encryption
from ferrograph.checkpointers.sql.dialect import Dialect
from ferrograph.checkpointers.sql.rows import location
from ferrograph.checkpointers.sql.runner import Emit, Op, Query, Step
from ferrograph.errors import InvalidConfigError

__all__ = ["get_tuple", "list_checkpoints"]

#: Rows fetched per round trip when listing, and keys per batched lookup.
PAGE = 100
BATCH = 500

T = TypeVar("T")


def _chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _read_page(d: Dialect, conditions: Sequence[str], params: Sequence[Any], limit: int, several: bool,
               encryption: Optional[Encryption]) -> Generator[Step, Any, _core.RowPage]:
    """Up to `limit` checkpoints matching `conditions`, newest first, with the blob rows and
    pending writes they need (those `select_tuples` found; `_complete` reads the rest)."""
    return _core.RowPage((yield Query(d.select_tuples(conditions, several), [*params, limit])), d.ranks_rows, encryption)


def _complete(d: Dialect, page: _core.RowPage, indices: Optional[Sequence[int]] = None) -> Generator[Step, Any, None]:
    """Reads the blob rows that the tuples of `page` at `indices` need and `select_tuples` did
    not return (`RowPage.missing`: versions are matched as text in the database, where a number
    may print otherwise than in Python, and a row written before migration 0005 does not say
    which channels it has in blob rows)."""
    missing = page.missing(None if indices is None else list(indices))
    for chunk in _chunks(missing, BATCH) if missing else ():
        page.add_blobs((yield Query(d.select_blobs, d.keys_param(chunk, 4))))


def get_tuple(d: Dialect, config: Mapping[str, Any], encryption: Optional[Encryption] = None) -> Op:
    thread_id, checkpoint_ns, checkpoint_id = location(config)
    if checkpoint_id:
        conditions, params = ["thread_id = ?", "checkpoint_ns = ?", "checkpoint_id = ?"], [thread_id, checkpoint_ns, checkpoint_id]
    else:
        conditions, params = ["thread_id = ?", "checkpoint_ns = ?"], [thread_id, checkpoint_ns]
    page = yield from _read_page(d, conditions, params, 1, False, encryption)
    if not len(page):
        return None
    yield from _complete(d, page)
    return next(page.tuples())


def list_checkpoints(
    d: Dialect,
    config: Optional[Mapping[str, Any]],
    *,
    filter: Optional[Mapping[str, Any]] = None,
    before: Optional[Mapping[str, Any]] = None,
    limit: Optional[int] = None,
    encryption: Optional[Encryption] = None,
) -> Op:
    """Newest first, a page at a time; emits tuples."""
    conditions: list[str] = []
    params: list[Any] = []
    configurable = (config or {}).get("configurable") or {}
    if configurable and configurable.get("thread_id") is None:
        # No config (or an empty one) lists every thread; a config naming no thread is a mistake.
        raise InvalidConfigError("config['configurable'] must name a thread_id (pass config=None to list every thread)")
    if configurable.get("thread_id") is not None:
        conditions.append("thread_id = ?")
        params.append(str(configurable["thread_id"]))
    if configurable.get("checkpoint_ns") is not None:
        conditions.append("checkpoint_ns = ?")
        params.append(configurable["checkpoint_ns"])
    if configurable.get("checkpoint_id"):
        conditions.append("checkpoint_id = ?")
        params.append(configurable["checkpoint_id"])
    before_id = ((before or {}).get("configurable") or {}).get("checkpoint_id")
    if before_id:
        conditions.append("checkpoint_id < ?")
        params.append(before_id)
    filter_conditions, filter_params, in_python = d.metadata_filter(filter, encryption)
    conditions.extend(filter_conditions)
    params.extend(filter_params)
    if limit is not None and limit <= 0:
        return

    remaining = limit
    after: Optional[list[Any]] = None
    while True:
        page_size = PAGE if (in_python or remaining is None) else min(PAGE, remaining)
        page_conditions = conditions + (["(checkpoint_id, thread_id, checkpoint_ns) < (?, ?, ?)"] if after else [])
        page = yield from _read_page(d, page_conditions, params + (after or []), page_size, True, encryption)
        fetched = len(page)
        indices: Sequence[int] = range(fetched)
        if in_python:
            indices = [i for i in indices if d.metadata_matches(page.metadata(i), in_python)]
        if remaining is not None:
            indices = indices[:remaining]
            remaining -= len(indices)
        if indices:
            yield from _complete(d, page, indices)
            yield Emit(page.tuples(list(indices)))
        last = page.last_position()
        if fetched < page_size or remaining == 0 or last is None:
            return
        after = list(last)
