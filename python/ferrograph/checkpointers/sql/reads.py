"""Reads: `get_tuple` and `list`, as operations (see runner.py). A page of checkpoints comes
with the values and pending writes it needs in one statement (`Dialect.select_tuples`); the
rows are split into records, blob rows and writes, and the tuples are built as they are
iterated. With the saver's encryption, stored values are decrypted as they come off the rows
(before append deltas are rebuilt)."""

from __future__ import annotations

from dataclasses import dataclass
from operator import itemgetter
from typing import Any, Generator, Iterator, Mapping, Optional, Sequence, TypeVar

from ferrograph.checkpointers.base import CheckpointTuple
from ferrograph.checkpointers.encryption import Encryption, open_value
from ferrograph.checkpointers.sql.deltas import BlobRows, rebuild
from ferrograph.checkpointers.sql.dialect import Dialect
from ferrograph.checkpointers.sql.rows import config_for, corrupt, decode, decode_metadata, load, location
from ferrograph.checkpointers.sql.runner import Emit, Op, Query, Step
from ferrograph.errors import CorruptCheckpointError, EncryptionError, InvalidConfigError

__all__ = ["get_tuple", "list_checkpoints"]

#: Rows fetched per round trip when listing, and keys per batched lookup.
PAGE = 100
BATCH = 500

T = TypeVar("T")

#: Decoded pending writes of each checkpoint, by (thread_id, checkpoint_ns, checkpoint_id).
WriteRows = dict[tuple[str, str, str], list]


@dataclass
class _Record:
    thread_id: str
    checkpoint_ns: str
    checkpoint_id: str
    parent_checkpoint_id: Optional[str]
    checkpoint: dict
    metadata: dict
    #: The encoded small values held in the row (None for a row written before migration 0005,
    #: whose values are all in blob rows), decoded when its tuple is built.
    inline: Any


def _record(row: Sequence[Any], encryption: Optional[Encryption]) -> _Record:
    thread_id, checkpoint_ns, checkpoint_id, parent, checkpoint, metadata, inline = row
    decoded = decode(checkpoint, "the checkpoint", thread_id, checkpoint_ns, checkpoint_id)
    if not isinstance(decoded, dict):
        raise CorruptCheckpointError(
            f"checkpoint {checkpoint_id!r} (thread {thread_id!r}) is not a JSON object"
        )
    meta = decode_metadata(metadata, encryption, thread_id, checkpoint_ns, checkpoint_id)
    return _Record(thread_id, checkpoint_ns, checkpoint_id, parent, decoded, meta, inline)


def _opened(encryption: Optional[Encryption], blob: Any, what: str, channel: Any, thread_id: str, checkpoint_ns: str,
            checkpoint_id: Optional[str] = None) -> Any:
    """A stored value's encoding: decrypted when encrypted. An error says where it was read:
    `what`, with the channel's repr in place of `{}` (written only when it is reported)."""
    try:
        return open_value(encryption, blob)
    except EncryptionError as e:
        at = f"checkpoint {checkpoint_id!r} of " if checkpoint_id else ""
        ns = f", namespace {checkpoint_ns!r}" if checkpoint_ns else ""
        raise type(e)(f"cannot read {what.format(repr(channel))} ({at}thread {thread_id!r}{ns}): {e}") from None


def _chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _split(d: Dialect, rows: Sequence[Sequence[Any]], encryption: Optional[Encryption]) -> tuple[list[_Record], BlobRows, WriteRows]:
    """A `select_tuples` result as its checkpoints (newest first), its blob rows by key, and
    the decoded pending writes of each checkpoint, in order."""
    checkpoints = []
    blobs: BlobRows = {}
    write_rows = []
    for row in rows:
        kind = row[0]
        if kind == 1:
            chain = row[9]
            blob = _opened(encryption, row[8], "channel {}", row[4], row[2], row[3])
            blobs[(row[2], row[3], row[4], row[5])] = (blob, None if chain is None else d.chain_value(chain))
        elif kind == 0:
            checkpoints.append(row)
        else:
            write_rows.append(row)
    # Rows come ranked, or with what to order them by (see `select_tuples`).
    if len(checkpoints) > 1:
        if d.ranks_rows:
            checkpoints.sort(key=_rank)
        else:
            checkpoints.sort(key=_newest_first, reverse=True)
    writes: WriteRows = {}
    if write_rows:
        write_rows.sort(key=_rank if d.ranks_rows else _write_order)
        for _, _, thread_id, checkpoint_ns, checkpoint_id, task_id, channel, _, blob, _ in write_rows:
            blob = _opened(encryption, blob, "the pending write to {}", channel, thread_id, checkpoint_ns, checkpoint_id)
            value = load(blob, channel, "the pending write to {}", thread_id, checkpoint_ns, checkpoint_id)
            writes.setdefault((thread_id, checkpoint_ns, checkpoint_id), []).append((task_id, channel, value))
    records = [_record(row[2:9], encryption) for row in checkpoints]
    for r in records:
        if r.inline is not None:
            r.inline = _opened(encryption, r.inline, "the channel values", None, r.thread_id, r.checkpoint_ns, r.checkpoint_id)
    return records, blobs, writes


_rank = itemgetter(1)
#: A checkpoint row's (checkpoint_id, thread_id, checkpoint_ns), `order_newest_first` reversed:
#: Python orders str by code point, as SQLite's BINARY collation orders their UTF-8 bytes.
_newest_first = itemgetter(4, 2, 3)
#: An unranked write row's (task_path, task_id, idx).
_write_order = itemgetter(7, 5, 9)


def _read_page(d: Dialect, conditions: Sequence[str], params: Sequence[Any], limit: int, several: bool,
               encryption: Optional[Encryption]) -> Generator[Step, Any, tuple[list[_Record], BlobRows, WriteRows]]:
    """Up to `limit` checkpoints matching `conditions`, newest first, with the blob rows and
    decoded pending writes they need (the blob rows `select_tuples` found; `_tuples` reads the
    rest)."""
    return _split(d, (yield Query(d.select_tuples(conditions, several), [*params, limit])), encryption)


def _prints_as_in_python(version: Any) -> bool:
    """Whether the database reads a channel version out of the checkpoint's JSON as the text
    Python gives it: a string, or an int that SQLite's JSON keeps as an integer."""
    return type(version) is str or (type(version) is int and -(2**63) <= version < 2**63)


#: Decoded values of these types cannot change, so the tuples of one read may share them.
_IMMUTABLE = frozenset({str, int, float, bool, type(None)})


def _values(r: _Record, blobs: BlobRows, whole: dict, shared: dict) -> dict[str, Any]:
    """The channel values of `r`: those held in its row, and the others from `blobs` (a
    version without a row is a channel without a value). `whole` keeps the encodings rebuilt
    from chains and `shared` the immutable values decoded so far, by key, for the other
    checkpoints of the read."""
    thread_id, checkpoint_ns = r.thread_id, r.checkpoint_ns
    values: dict[str, Any] = {}
    if r.inline is not None:
        # The codec's own bytes (no JSONB reordering to undo, unlike `decode`'s columns).
        values = load(r.inline, "", "the channel values", thread_id, checkpoint_ns, r.checkpoint_id)
        if not isinstance(values, dict):
            raise corrupt("the channel values", thread_id, checkpoint_ns, r.checkpoint_id, "not a JSON object")
    for channel, version in (r.checkpoint.get("channel_versions") or {}).items():
        if channel in values:
            continue
        key = (thread_id, checkpoint_ns, str(channel), str(version))
        if key in shared:
            values[channel] = shared[key]
            continue
        row = blobs.get(key)
        if row is None:
            continue
        blob = row[0]
        if row[1] is not None:
            blob = whole.get(key)
            if blob is None:
                blob = whole[key] = rebuild(blobs, key, r.checkpoint_id)
        if blob is None:
            continue
        value = values[channel] = load(blob, channel, "channel {}", thread_id, checkpoint_ns, r.checkpoint_id)
        if type(value) in _IMMUTABLE:
            shared[key] = value
    return values


def _tuples(
    d: Dialect, records: Sequence[_Record], blobs: BlobRows, writes: WriteRows, encryption: Optional[Encryption]
) -> Generator[Step, Any, Iterator[CheckpointTuple]]:
    """The tuples of `records` from the rows `select_tuples` returned with them. A version it
    missed (versions are matched as text in the database, where a number may print otherwise
    than in Python, or the row is absent) is looked up once more by its Python key, with the
    rows of its chain; a version with no row at all is a channel without a value.

    The tuples' values are decoded as the tuples are iterated. Decoded at once, a page's values
    are all alive together even for a caller that handles one tuple at a time: Python's cyclic
    collector then ran about six times as often while listing a thread, with full collections
    of the whole heap among them."""
    # A row written since migration 0005 names the channels it has in blob rows, and the others
    # have their values in the row or none: only a version the database may print otherwise
    # than Python (a float) is looked up again.
    missing = sorted(
        {
            key
            for r in records
            for channel, version in (r.checkpoint.get("channel_versions") or {}).items()
            if (r.inline is None or (type(version) is not str and not _prints_as_in_python(version)))
            and (key := (r.thread_id, r.checkpoint_ns, str(channel), str(version))) not in blobs
        }
    )
    for chunk in _chunks(missing, BATCH):
        for thread_id, checkpoint_ns, channel, version, blob, chain in (
            yield Query(d.select_blobs, d.keys_param(chunk, 4))
        ):
            blob = _opened(encryption, blob, "channel {}", channel, thread_id, checkpoint_ns)
            blobs[(thread_id, checkpoint_ns, channel, version)] = (blob, d.chain_value(chain))
    return _build(records, blobs, writes)


def _build(records: Sequence[_Record], blobs: BlobRows, writes: WriteRows) -> Iterator[CheckpointTuple]:
    whole: dict[tuple[str, str, str, str], Any] = {}
    shared: dict[tuple[str, str, str, str], Any] = {}
    for r in records:
        thread_id, checkpoint_ns, checkpoint_id = r.thread_id, r.checkpoint_ns, r.checkpoint_id
        # A copy: the record, alive until its page is done, must not keep the values alive.
        checkpoint = dict(r.checkpoint)
        checkpoint["channel_values"] = _values(r, blobs, whole, shared)
        parent = r.parent_checkpoint_id
        yield CheckpointTuple(
            config=config_for(thread_id, checkpoint_ns, checkpoint_id),
            checkpoint=checkpoint,  # type: ignore[arg-type]
            metadata=r.metadata,  # type: ignore[arg-type]
            parent_config=config_for(thread_id, checkpoint_ns, parent) if parent else None,
            pending_writes=writes.get((thread_id, checkpoint_ns, checkpoint_id), []),
        )


def get_tuple(d: Dialect, config: Mapping[str, Any], encryption: Optional[Encryption] = None) -> Op:
    thread_id, checkpoint_ns, checkpoint_id = location(config)
    if checkpoint_id:
        conditions, params = ["thread_id = ?", "checkpoint_ns = ?", "checkpoint_id = ?"], [thread_id, checkpoint_ns, checkpoint_id]
    else:
        conditions, params = ["thread_id = ?", "checkpoint_ns = ?"], [thread_id, checkpoint_ns]
    records, blobs, writes = yield from _read_page(d, conditions, params, 1, False, encryption)
    if not records:
        return None
    return next((yield from _tuples(d, records, blobs, writes, encryption)))


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
        page = PAGE if (in_python or remaining is None) else min(PAGE, remaining)
        page_conditions = conditions + (["(checkpoint_id, thread_id, checkpoint_ns) < (?, ?, ?)"] if after else [])
        records, blobs, writes = yield from _read_page(d, page_conditions, params + (after or []), page, True, encryption)
        fetched = len(records)
        last_record = records[-1] if records else None
        if in_python:
            records = [r for r in records if all(r.metadata.get(k) == v for k, v in in_python.items())]
        if remaining is not None:
            records = records[:remaining]
            remaining -= len(records)
        if records:
            yield Emit((yield from _tuples(d, records, blobs, writes, encryption)))
        if fetched < page or remaining == 0 or last_record is None:
            return
        after = [last_record.checkpoint_id, last_record.thread_id, last_record.checkpoint_ns]
