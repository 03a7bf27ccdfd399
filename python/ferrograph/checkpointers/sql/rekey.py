"""Re-encryption (`saver.rekey()`, `ferrograph rekey URL`): every stored channel value and
pending write not yet encrypted with the saver's newest key is decrypted (with whichever of its
keys it names) and encrypted again with the newest one; plain values written before encryption
was turned on are encrypted too, and the small ones an unencrypted saver kept in the checkpoint
row (migration 0005) move to encrypted blob rows, as an encrypting saver stores them. So is each
checkpoint's metadata that is encrypted, and, when the encryption covers metadata
(`Encryption(metadata=True)`), plain metadata.

It walks each table in primary-key order, `REKEY_BATCH` rows per transaction, so a big database
is never locked for long and an interrupted rekey loses at most one batch: run it again and it
skips the rows already under the newest key. A row is rewritten only if it still holds the
bytes that were read, so a concurrent writer or deletion is never overwritten."""

from __future__ import annotations

import json
from typing import Any, Optional, Sequence

from ferrograph.checkpointers.encryption import Encryption, RekeyResult, open_metadata, open_value, seal, seal_metadata, sealed_metadata
from ferrograph.checkpointers.sql.dialect import BLOBS, CHECKPOINTS, WRITES, Dialect
from ferrograph.checkpointers.sql.rows import text
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


def _checkpoint_batch(d: Dialect, after: Optional[list[Any]], encryption: Encryption, size: int) -> Op:
    """One batch of checkpoint rows after key `after`. Small values an unencrypted saver kept
    in the row (`channel_values`, migration 0005) move to blob rows at their channel's version,
    as an encrypting saver stores them, still plain: the blob pass that follows encrypts (and
    counts) them with the rest. Metadata encrypted with another key (or plain, while the
    encryption covers metadata) is encrypted with the newest. Returns as `_batch` does (the
    values: the metadata encrypted, or to be)."""
    key = ("thread_id", "checkpoint_ns", "checkpoint_id")
    columns = ", ".join(f"c.{k}" for k in key)
    where = f" WHERE ({columns}) > (?, ?, ?)" if after else ""
    rows = yield Query(d.q(f"SELECT {columns}, {d.metadata_text}, c.channel_values, c.blob_channels, {d.checkpoint_text}"
                           f" FROM {CHECKPOINTS} AS c{where} ORDER BY {columns} LIMIT ?"), [*(after or []), size])
    metadata_updates = []
    moved_rows = []
    value_updates = []
    values = 0
    for thread_id, checkpoint_ns, checkpoint_id, metadata, inline, blob_channels, checkpoint in rows:
        row_key = [thread_id, checkpoint_ns, checkpoint_id]
        stored = text(metadata)
        stored = stored.decode() if isinstance(stored, bytes) else stored
        sealed = sealed_metadata(stored)
        if sealed is not None or encryption.encrypts_metadata:
            values += 1
            if sealed is None or not encryption.is_current(sealed):
                plain = open_metadata(encryption, stored)
                plain = plain.decode() if isinstance(plain, bytes) else plain
                metadata_updates.append([seal_metadata(encryption, plain, always=True), *row_key, stored])
        inline = bytes(inline) if inline is not None else None
        if not inline or inline == b"{}":
            continue
        held = json.loads(inline)
        versions = json.loads(text(checkpoint)).get("channel_versions") or {}
        if not isinstance(held, dict) or any(channel not in versions for channel in held):
            continue  # not as this version writes it: left as it is
        for channel, value in held.items():
            encoded = json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
            moved_rows.append([thread_id, checkpoint_ns, channel, str(versions[channel]), encoded])
        names = [*(d.chain_value(blob_channels) or []), *held]
        value_updates.append([b"{}", d.chain_param(names), *row_key, inline])
    if moved_rows:
        yield Query(d.q(f"INSERT INTO {BLOBS} (thread_id, checkpoint_ns, channel, version, blob) VALUES (?, ?, ?, ?, ?)"
                        " ON CONFLICT (thread_id, checkpoint_ns, channel, version) DO NOTHING"), moved_rows, many=True, rows=False)
    same_row = "c.thread_id = ? AND c.checkpoint_ns = ? AND c.checkpoint_id = ?"
    if value_updates:
        yield Query(d.q(f"UPDATE {CHECKPOINTS} AS c SET channel_values = ?, blob_channels = ? WHERE {same_row}"
                        " AND c.channel_values = ?"), value_updates, many=True, rows=False)
    if metadata_updates:
        yield Query(d.q(f"UPDATE {CHECKPOINTS} AS c SET metadata = ? WHERE {same_row} AND {d.metadata_text} = ?"),
                    metadata_updates, many=True, rows=False)
    return len(rows), values, len(metadata_updates), (list(rows[-1][:3]) if rows else None)


def rekey(d: Dialect, encryption: Encryption, batch_size: int = REKEY_BATCH) -> Transactions:
    """Re-encrypts every stored value with `encryption`'s newest key, a batch per transaction."""
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    result = RekeyResult(encryption.key_id)
    # Checkpoint rows first: the values they move to blob rows join those the blob pass encrypts.
    for table, key, column in ((CHECKPOINTS, (), ""), *_TABLES):
        after: Optional[list[Any]] = None
        result.by_table[table] = 0
        while True:
            start = after
            if table == CHECKPOINTS:
                batch = lambda: _checkpoint_batch(d, start, encryption, batch_size)  # noqa: E731
            else:
                batch = lambda: _batch(d, table, key, column, start, encryption, batch_size)  # noqa: E731
            read, values, rewritten, after = yield batch, True
            result.examined += values
            result.reencrypted += rewritten
            result.by_table[table] += rewritten
            result.batches += 1
            if read < batch_size:
                break
    return result
