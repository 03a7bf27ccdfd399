"""Append deltas: how a list that grows a little each step is stored without storing it whole
at every version, and rebuilt on read.

A list that grows by a few items a step (a chat's messages) would otherwise be stored whole at
every version, so a thread's storage would grow with the square of its length. When a channel's
new value extends the value stored at the channel's previous version (its encoding is that
value's encoding with more items before the closing ']'), the blob row holds only the appended
items, as a JSON array, and its `chain` names the versions the value is built from: a full
snapshot first, then the earlier deltas. Every `SNAPSHOT_EVERY` deltas a full value is stored
again, so a value never needs more than `SNAPSHOT_EVERY + 1` rows, and since each row names its
whole chain, one statement fetches the rows of every value a page of checkpoints needs. The value
is rebuilt byte for byte ('[' + each row's items joined with ',' + ']', by `_core.RowPage`, which
reads a page of rows) and decoded once, so it is exactly what a whole-value row would have given:
deltas compare encodings, never Python values (where 1 == True).

Knowing the previous value at put time: `put` receives only the new checkpoint, so each saver
keeps a `DeltaCache`, per (thread, namespace, channel), of the last value it stored: its version,
its encoding, and how its row was stored. This costs no query and no decoding, and memory bounded
by `DeltaCache.max_bytes`. Reading the parent's blob back instead would cost a round trip and a
chain's worth of bytes on every put. The cache may be stale (another process pruned or deleted
the thread, a transaction rolled back): a delta is therefore inserted only if the row it extends
still exists with the chain and length this process wrote, in the same statement, and otherwise
the whole value is stored. So a cache miss, a cold start or a second writer costs a full value,
never a wrong one. What the check cannot see is a version reused for a different value after a
deletion, which the blob table already rules out (a version names one value of its channel).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from types import MappingProxyType
from typing import Callable, Mapping, Optional, Sequence

from ferrograph import _core
from ferrograph.checkpointers.sql.runner import Op

__all__ = ["SNAPSHOT_EVERY", "DeltaCache", "Learning", "Line", "StagedDeltas", "Stored", "delta"]

#: A channel value is stored whole at least once every this many append deltas.
SNAPSHOT_EVERY = 16

#: What an entry of `DeltaCache` costs besides its encoding (its version, tuple and key, about
#: this many bytes in CPython), counted so that entries without an encoding (a consumed
#: trigger, a big value that is not a list) still count towards `max_bytes` and are evicted.
ENTRY_BYTES = 256

#: The last value a saver stored for one channel of a thread: its version, its encoding (empty
#: for a big value that is not a list: it is never extended, nor stored again), and where it
#: went: in the checkpoint rows (`inline`, see writes.INLINE_MAX), or a blob row as written (the
#: `chain`, None for a whole value, and the blob's `row_length`); or that the channel has no value
#: at that version (`absent`: a consumed trigger keeps its version, and a checkpoint carrying it
#: on needs no look at its parent to know it holds nothing). `Stored(version, encoded, chain,
#: row_length, inline=False, absent=False)`, a Rust class: a put plans its channels against a
#: line of them in one call (`_core.plan_put`).
Stored = _core.Stored


#: What a saver remembers of one line (thread and namespace): channel -> `Stored`.
Line = Mapping[str, Stored]

_EMPTY: Line = MappingProxyType({})


class DeltaCache:
    """What each saver remembers of the values it stored last, per line (thread, namespace)
    and channel, to write the next version of a growing list as a delta. A put reads its line
    once (`line`) and records what it stored once (`update`); lines are replaced, never changed
    in place, so a line being read stays as it was. Least recently used lines go first once
    their encodings (and `ENTRY_BYTES` per entry) pass `max_bytes`. Thread-safe."""

    def __init__(self, max_bytes: int = 64 << 20) -> None:
        self.max_bytes = max_bytes
        self._lines: "OrderedDict[tuple[str, str], dict[str, Stored]]" = OrderedDict()
        self._line_bytes: dict[tuple[str, str], int] = {}
        self._bytes = 0
        self._lock = threading.Lock()

    def line(self, thread_id: str, checkpoint_ns: str) -> Line:
        """What this saver stored last for each channel of the line (empty when nothing)."""
        key = (thread_id, checkpoint_ns)
        with self._lock:
            entries = self._lines.get(key)
            if entries is None:
                return _EMPTY
            self._lines.move_to_end(key)
            return entries

    def update(self, thread_id: str, checkpoint_ns: str, changes: Mapping[str, Optional[Stored]]) -> None:
        """Records what a put stored per channel (None: forget the channel)."""
        key = (thread_id, checkpoint_ns)
        with self._lock:
            entries = dict(self._lines.pop(key, _EMPTY))
            size = self._line_bytes.pop(key, 0)
            self._bytes -= size
            for channel, entry in changes.items():
                old = entries.pop(channel, None) if entry is None else entries.get(channel)
                if old is not None:
                    size -= len(old.encoded) + ENTRY_BYTES
                if entry is not None:
                    entries[channel] = entry
                    size += len(entry.encoded) + ENTRY_BYTES
            if not entries or size > self.max_bytes:
                return
            self._lines[key] = entries
            self._line_bytes[key] = size
            self._bytes += size
            while self._bytes > self.max_bytes:
                evicted, _ = self._lines.popitem(last=False)
                self._bytes -= self._line_bytes.pop(evicted)

    def staged(self) -> "StagedDeltas":
        """A view of this cache for one write operation: what the operation learns is kept
        apart, and goes into this cache only by `StagedDeltas.commit`, once the write is
        stored. A runner may send a write after its operation has returned (Postgres sends the
        statements it does not read at the next sync), and a failed write must leave the cache
        as it was."""
        return StagedDeltas(self)

    def forget_threads(self, thread_ids: Optional[Sequence[str]] = None) -> None:
        """Drops the lines of `thread_ids`, or every line."""
        with self._lock:
            if thread_ids is None:
                self._lines.clear()
                self._line_bytes.clear()
                self._bytes = 0
                return
            threads = {str(t) for t in thread_ids}
            for key in [k for k in self._lines if k[0] in threads]:
                del self._lines[key]
                self._bytes -= self._line_bytes.pop(key)


class StagedDeltas(DeltaCache):
    """What one write operation learns, over what its cache knows (see `DeltaCache.staged`)."""

    def __init__(self, cache: DeltaCache) -> None:
        super().__init__(cache.max_bytes)
        self.cache = cache
        self.changes: dict[tuple[str, str], dict[str, Optional[Stored]]] = {}
        #: The lines the operation changed and read again, as it sees them: the cache's line
        #: with the changes, made at the first such read and then kept up to date by `update`.
        #: They belong to this one operation, whose puts read them one after another, so they
        #: change in place (a batch of a run's steps would otherwise merge its line again at
        #: every put).
        self.merged: dict[tuple[str, str], dict[str, Stored]] = {}

    def line(self, thread_id: str, checkpoint_ns: str) -> Line:
        key = (thread_id, checkpoint_ns)
        merged = self.merged.get(key)
        if merged is not None:
            return merged
        base = self.cache.line(thread_id, checkpoint_ns)
        changes = self.changes.get(key)
        if not changes:
            return base
        merged = self.merged[key] = dict(base)
        _apply(merged, changes)
        return merged

    def update(self, thread_id: str, checkpoint_ns: str, changes: Mapping[str, Optional[Stored]]) -> None:
        key = (thread_id, checkpoint_ns)
        self.changes.setdefault(key, {}).update(changes)
        merged = self.merged.get(key)
        if merged is not None:
            _apply(merged, changes)

    def forget_threads(self, thread_ids: Optional[Sequence[str]] = None) -> None:
        """Drops what the operation learnt of `thread_ids` (or of every thread)."""
        threads = None if thread_ids is None else {str(t) for t in thread_ids}
        for key in [k for k in self.changes if threads is None or k[0] in threads]:
            del self.changes[key]
            self.merged.pop(key, None)

    def commit(self) -> None:
        """Records what the operation learnt in the cache."""
        for (thread_id, checkpoint_ns), changes in self.changes.items():
            self.cache.update(thread_id, checkpoint_ns, changes)


class Learning:
    """A write operation that learns values for a delta cache, for a runner to run: each call
    makes it (`make(view)`) on a fresh staged view of `cache` (a runner that retries makes it
    again), and `commit`, once the runner has stored the write, puts what the last one learnt
    into the cache. Without a cache, `make(None)`."""

    def __init__(self, cache: Optional[DeltaCache], make: Callable[[Optional[DeltaCache]], Op]) -> None:
        self.cache = cache
        self.make = make
        self.staged: Optional[StagedDeltas] = None

    def __call__(self) -> Op:
        self.staged = None if self.cache is None else self.cache.staged()
        return self.make(self.staged)

    def commit(self) -> None:
        if self.staged is not None:
            self.staged.commit()


def _apply(line: dict[str, Stored], changes: Mapping[str, Optional[Stored]]) -> None:
    """Records `changes` in `line` (None: forget the channel)."""
    for channel, entry in changes.items():
        if entry is None:
            line.pop(channel, None)
        else:
            line[channel] = entry


def _appended(previous: bytes, new: bytes) -> Optional[bytes]:
    """The encodings of the items `new` appends to `previous`, joined with ',' (empty when the
    two are equal), when both encode JSON arrays and `new` extends `previous`; otherwise None.

    Byte equality of the prefix is item equality: JSON values are self-delimiting, and the ','
    right after the old last item shows that item ended in `new` where it ended in `previous`.
    """
    if not (new[:1] == b"[" and new[-1:] == b"]" and previous[:1] == b"[" and previous[-1:] == b"]"):
        return None
    if previous == b"[]":
        return new[1:-1]
    if new == previous:
        return b""
    head = len(previous) - 1
    if len(new) > head + 2 and new[head] == 0x2C and new.startswith(previous[:head]):
        return new[head + 1 : -1]
    return None


def delta(stored: Optional[Stored], version: str, encoded: bytes) -> Optional[tuple[bytes, list[str]]]:
    """The blob and chain of `encoded` stored as a delta over `stored`, when that is possible
    and smaller than the whole value.

    A delta that appends nothing ('[]', a list written again unchanged) adds nothing to the
    value, so it is left out of the chains built on it: a list rewritten unchanged at every
    step keeps a chain of one member, read with one more row, instead of growing to a
    snapshot's worth of rows that each hold '[]'."""
    if stored is None or stored.version == version or stored.inline:
        return None
    empty = stored.chain is not None and stored.row_length == 2
    chain = (stored.chain or []) + ([] if empty else [stored.version])
    if len(chain) > SNAPSHOT_EVERY:
        return None
    items = _appended(stored.encoded, encoded)
    if items is None:
        return None
    blob = b"[" + items + b"]"
    if len(blob) + sum(len(v) + 3 for v in chain) >= len(encoded):
        return None
    return blob, chain
