"""Re-encryption (`saver.rekey()`, `ferrograph rekey URL`): every stored channel value and
pending write not yet encrypted with the saver's newest key is decrypted (with whichever of its
keys it names) and encrypted again with the newest one; plain values written before encryption
was turned on are encrypted too.

It walks each table in primary-key order, `REKEY_BATCH` rows per transaction, so a big database
is never locked for long and an interrupted rekey loses at most one batch: run it again and it
skips the rows already under the newest key. A row is rewritten only if it still holds the
bytes that were read, so a concurrent writer or deletion is never overwritten."""

from __future__ import annotations

from typing import Any, Optional, Sequence

from ferrograph.checkpointers.encryption import Encryption, RekeyResult, open_value, seal
from ferrograph.checkpointers.sql.dialect import BLOBS, WRITES, Dialect
from ferrograph.checkpointers.sql.runner import Op, Query, Transactions

__all__ = ["REKEY_BATCH", "RekeyResult", "rekey"]

#: Rows read (and rewritten) per transaction.
REKEY_BATCH = 500

#: Each table holding stored values: its name, primary key and value column.
_TABLES: Sequence[tuple[str, Sequence[str], str]] = (
    (BLOBS, ("thread_id", "checkpoint_ns", "channel", "version"), "blob"),
    (WRITES, ("thread_id", "checkpoint_ns", "checkpoint_id", "task_id", "idx"), "blob"),
)


def _batch(d: Dialect, table: str, key: Sequence[str], column: str, after: Optional[list[Any]],
           encryption: Encryption, size: int) -> Op:
    """One batch of `table` after key `after`: re-encrypts its rows not under the newest key;
    returns (rows read, values among them, rows rewritten, the last key read)."""
    columns = ", ".join(key)
    where = f" WHERE ({columns}) > ({', '.join('?' for _ in key)})" if after else ""
    rows = yield Query(d.q(f"SELECT {columns}, {column} FROM {table}{where} ORDER BY {columns} LIMIT ?"),
                       [*(after or []), size])
    updates = []
    values = 0
    for row in rows:
        blob = row[-1]
        if blob is None:
            continue  # a channel emptied at this version: nothing stored
        values += 1
        if encryption.is_current(blob):
            continue
        stored = bytes(blob)
        updates.append([seal(encryption, open_value(encryption, stored)), *row[:-1], stored])
    if updates:
        match = " AND ".join(f"{c} = ?" for c in key)
        yield Query(d.q(f"UPDATE {table} SET {column} = ? WHERE {match} AND {column} = ?"), updates, many=True, rows=False)
    return len(rows), values, len(updates), (list(rows[-1][:-1]) if rows else None)


def rekey(d: Dialect, encryption: Encryption, batch_size: int = REKEY_BATCH) -> Transactions:
    """Re-encrypts every stored value with `encryption`'s newest key, a batch per transaction."""
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    result = RekeyResult(encryption.key_id)
    for table, key, column in _TABLES:
        after: Optional[list[Any]] = None
        result.by_table[table] = 0
        while True:
            start = after
            read, values, rewritten, after = yield (lambda: _batch(d, table, key, column, start, encryption, batch_size)), True
            result.examined += values
            result.reencrypted += rewritten
            result.by_table[table] += rewritten
            result.batches += 1
            if read < batch_size:
                break
    return result
