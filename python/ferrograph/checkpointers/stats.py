"""What a saver's storage holds, without reading any value: threads, checkpoints, pending writes,
bytes in all, per channel and per thread, the oldest and newest activity, and how long the
append-delta chains are. The SQL savers compute it in one aggregate statement
(`sql.admin.storage_stats`), the memory saver from its own counts (`MemorySaver.storage_stats`);
`ferrograph stats` shows it (`ferrograph._inspect`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

__all__ = ["ChannelUsage", "StorageStats", "ThreadUsage"]


@dataclass
class ThreadUsage:
    thread_id: str
    checkpoints: int
    writes: int
    #: Bytes of its checkpoints (with metadata), values and pending writes.
    bytes: int
    first_activity: Optional[str]
    last_activity: Optional[str]

    def as_json(self) -> dict:
        return {
            "thread_id": self.thread_id,
            "checkpoints": self.checkpoints,
            "writes": self.writes,
            "bytes": self.bytes,
            "first_activity": self.first_activity,
            "last_activity": self.last_activity,
        }


@dataclass
class ChannelUsage:
    channel: str
    #: Stored values and their bytes: one per version, but a small value held in checkpoint rows
    #: (see checkpointers/sql/writes.py, INLINE_MAX) once per row that holds it.
    values: int = 0
    value_bytes: int = 0
    #: Pending writes to the channel and their bytes.
    writes: int = 0
    write_bytes: int = 0

    def as_json(self) -> dict:
        return {
            "channel": self.channel,
            "values": self.values,
            "value_bytes": self.value_bytes,
            "writes": self.writes,
            "write_bytes": self.write_bytes,
        }


@dataclass
class StorageStats:
    """A saver's storage (or one thread's, `thread_id`). `bytes` adds up the checkpoints (with
    their metadata), the values and the pending writes; `database_bytes` is what the database
    takes on disk with its indexes and free space (None for the memory saver). `chains` maps an
    append-delta chain length to how many values are stored as deltas with that many rows
    before them (see checkpointers/sql/deltas.py)."""

    threads: int = 0
    checkpoints: int = 0
    writes: int = 0
    bytes: int = 0
    checkpoint_bytes: int = 0
    value_bytes: int = 0
    write_bytes: int = 0
    oldest_activity: Optional[str] = None
    newest_activity: Optional[str] = None
    database_bytes: Optional[int] = None
    thread_id: Optional[str] = None
    channels: list[ChannelUsage] = field(default_factory=list)
    largest_threads: list[ThreadUsage] = field(default_factory=list)
    chains: dict[int, int] = field(default_factory=dict)

    def as_json(self) -> dict:
        return {
            "thread_id": self.thread_id,
            "threads": self.threads,
            "checkpoints": self.checkpoints,
            "writes": self.writes,
            "bytes": self.bytes,
            "checkpoint_bytes": self.checkpoint_bytes,
            "value_bytes": self.value_bytes,
            "write_bytes": self.write_bytes,
            "database_bytes": self.database_bytes,
            "oldest_activity": self.oldest_activity,
            "newest_activity": self.newest_activity,
            "channels": [c.as_json() for c in self.channels],
            "largest_threads": [t.as_json() for t in self.largest_threads],
            "delta_chains": {str(length): count for length, count in sorted(self.chains.items())},
        }
