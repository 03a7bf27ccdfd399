"""`MemorySaver`: the native in-memory checkpoint saver. Checkpoints live in Rust; values are
stored as typed JSON (so a stored value is a copy, never the live object). Values read with
get/get_tuple are also kept decoded (bounded), so reading them again copies their dicts and
lists instead of parsing; every read still returns objects of its own. The sync protocol
methods are the Rust ones; the async twins call them directly, since nothing here blocks.

With `encryption=`, values and pending writes are held AES-256-GCM encrypted (in Rust, as the
SQL savers store them) and none is kept decoded."""

from __future__ import annotations

import datetime
from typing import Any, AsyncIterator, Optional, Sequence, Union

from ferrograph import _core
from ferrograph.checkpointers.base import BaseCheckpointSaver, Checkpoint, CheckpointMetadata, CheckpointTuple
from ferrograph.checkpointers.encryption import Encryption, RekeyResult, check, encryption_of
from ferrograph.checkpointers.retention import (
    CheckpointHead,
    Retention,
    RetentionResult,
    Sweeping,
    metadata_matches,
    now_utc,
    plan,
    policy_of,
)
from ferrograph.checkpointers.limits import SizeLimits
from ferrograph.checkpointers.stats import ChannelUsage, StorageStats, ThreadUsage
from ferrograph.serde import Serializer

__all__ = ["MemorySaver", "InMemorySaver"]


class MemorySaver(_core.NativeMemorySaver, Sweeping, BaseCheckpointSaver):
    """Checkpoints in process memory, with LangGraph's saver protocol.

    `MemorySaver(serializer=ferrograph.serde.Serializer(allowed=[MyModel]))` gives the saver
    classes of its own; by default it uses the process-wide allowed set (`ferrograph.serde`).
    A graph's calls add the classes its schemas name. `retention` and `sweep_every` as
    `SqliteSaver`'s (the sweeper is a thread, stopped by `stop_sweeping()`).

    `encryption` (`ferrograph.checkpointers.Encryption`): channel values and pending writes are
    held encrypted, as the SQL savers store them, for a process whose memory may be dumped or
    swapped; such a saver keeps no value decoded between reads (reads parse every time).
    Assigning `saver.encryption` rotates keys in place: values are read with any of its keys
    and written with the first, and `rekey()` re-encrypts what is held with the newest (plain
    values held before encryption was given too). Set to None, new values are held plain and
    encrypted ones are refused, naming their key id. With `Encryption(metadata=True)` metadata
    is held encrypted too, and `list(filter=)`, retention filters and `delete_for_runs` decrypt
    each checkpoint's in scope to match it (a scan, as the memory saver's filters are anyway).
    """

    takes_encoded_checkpoints = True

    in_process = True

    def __new__(
        cls,
        *,
        serializer: Optional[Serializer] = None,
        retention: Optional[Retention] = None,
        sweep_every: Optional[Union[str, datetime.timedelta]] = None,
        max_value_bytes: Optional[int] = None,
        warn_value_bytes: Optional[int] = None,
        encryption: Optional[Encryption] = None,
    ) -> "MemorySaver":
        limits = SizeLimits(max_value_bytes, warn_value_bytes)
        encryption = check(encryption)
        keyring = encryption._ring if encryption is not None else None
        seal_metadata = encryption is not None and encryption.encrypts_metadata
        return super().__new__(
            cls, serializer=serializer, value_limits=limits if limits else None, keyring=keyring, seal_metadata=seal_metadata
        )

    def __init__(
        self,
        *,
        serializer: Optional[Serializer] = None,
        retention: Optional[Retention] = None,
        sweep_every: Optional[Union[str, datetime.timedelta]] = None,
        max_value_bytes: Optional[int] = None,
        warn_value_bytes: Optional[int] = None,
        encryption: Optional[Encryption] = None,
    ) -> None:
        self._init_health(retention, sweep_every, max_value_bytes, warn_value_bytes, encryption)
        self._start_sweeping()

    @property
    def encryption(self) -> Optional[Encryption]:
        return self._encryption

    @encryption.setter
    def encryption(self, encryption: Optional[Encryption]) -> None:
        self._encryption = check(encryption)
        if self._encryption is None:
            self._set_keyring(None)
        else:
            self._set_keyring(self._encryption._ring, self._encryption.encrypts_metadata)

    def rekey(self, *, batch_size: Optional[int] = None) -> RekeyResult:
        """Re-encrypts every value and pending write held with the newest key of `encryption`
        (plain ones too), in one atomic step: `batch_size` is taken for the SQL savers'
        signature and does not split it (the result counts one batch)."""
        encryption = encryption_of(self)
        examined, reencrypted = self._reseal()
        return RekeyResult(encryption.key_id, examined, reencrypted, 1)

    def apply_retention(self, policy: Optional[Retention] = None, *, dry_run: bool = False) -> RetentionResult:
        """Deletes what `policy` (the saver's `retention` by default) does not keep, at once, and
        returns what was deleted; with `dry_run`, deletes nothing and returns what would be (see
        ferrograph.checkpointers.retention)."""
        policy = policy_of(self, policy)
        rows = self.checkpoint_heads(list(policy.threads) if policy.threads is not None else None)
        if policy.filter:
            scope = {row[0] for row in rows if metadata_matches(row[5], policy.filter)}
            rows = [row for row in rows if row[0] in scope]
        heads = [
            CheckpointHead(thread_id, ns, checkpoint_id, parent, ts, dict(metadata.get("parents") or {}))
            for thread_id, ns, checkpoint_id, parent, ts, metadata, _, _ in rows
        ]
        removed = self.remove_checkpoints(plan(heads, policy, now_utc()), dry_run=dry_run)
        return RetentionResult(
            threads=len(removed["threads"]),
            checkpoints=removed["checkpoints"],
            writes=removed["writes"],
            bytes=removed["bytes"],
            dry_run=dry_run,
            thread_ids=sorted(removed["threads"]),
        )

    def storage_stats(self, thread_id: Optional[str] = None, *, largest: int = 10) -> StorageStats:
        """What the saver (or one thread) holds, from its own counts, reading no value: as the
        SQL savers' `storage_stats`; no delta chains (lists are stored whole) and no
        `database_bytes`."""
        stats = StorageStats(thread_id=thread_id)
        channels: dict[str, ChannelUsage] = {}
        threads = []
        for u in self.usage(thread_id):
            value_bytes = sum(size for _, size in u["channels"].values())
            threads.append(
                ThreadUsage(
                    u["thread_id"], u["checkpoints"], u["writes"], u["metadata_bytes"] + value_bytes + u["write_bytes"],
                    u["first_ts"] or None, u["last_ts"] or None,
                )
            )
            stats.checkpoints += u["checkpoints"]
            stats.writes += u["writes"]
            stats.checkpoint_bytes += u["metadata_bytes"]
            stats.value_bytes += value_bytes
            stats.write_bytes += u["write_bytes"]
            for channel, (values, size) in u["channels"].items():
                usage = channels.setdefault(channel, ChannelUsage(channel))
                usage.values += values
                usage.value_bytes += size
            for channel, (writes, size) in u["write_channels"].items():
                usage = channels.setdefault(channel, ChannelUsage(channel))
                usage.writes += writes
                usage.write_bytes += size
        stats.threads = len(threads)
        stats.bytes = stats.checkpoint_bytes + stats.value_bytes + stats.write_bytes
        firsts = [t.first_activity for t in threads if t.first_activity]
        lasts = [t.last_activity for t in threads if t.last_activity]
        stats.oldest_activity = min(firsts) if firsts else None
        stats.newest_activity = max(lasts) if lasts else None
        stats.largest_threads = sorted(threads, key=lambda t: (-t.bytes, t.thread_id))[:largest]
        stats.channels = sorted(channels.values(), key=lambda c: (-(c.value_bytes + c.write_bytes), c.channel))
        return stats

    async def arekey(self, *, batch_size: Optional[int] = None) -> RekeyResult:
        return self.rekey(batch_size=batch_size)

    async def aapply_retention(self, policy: Optional[Retention] = None, *, dry_run: bool = False) -> RetentionResult:
        return self.apply_retention(policy, dry_run=dry_run)

    async def aget(self, config: dict) -> Optional[Checkpoint]:
        return self.get(config)

    async def aget_tuple(self, config: dict) -> Optional[CheckpointTuple]:
        return self.get_tuple(config)

    async def alist(
        self,
        config: Optional[dict],
        *,
        filter: Optional[dict[str, Any]] = None,
        before: Optional[dict] = None,
        limit: Optional[int] = None,
    ) -> AsyncIterator[CheckpointTuple]:
        for item in self.list(config, filter=filter, before=before, limit=limit):
            yield item

    async def aput(self, config: dict, checkpoint: Checkpoint, metadata: CheckpointMetadata, new_versions: dict) -> dict:
        return self.put(config, checkpoint, metadata, new_versions)

    async def aput_writes(
        self, config: dict, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str = ""
    ) -> None:
        self.put_writes(config, writes, task_id, task_path)

    async def adelete_thread(self, thread_id: str) -> None:
        self.delete_thread(thread_id)

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        self.delete_for_runs(run_ids)

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        self.copy_thread(source_thread_id, target_thread_id)

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        self.prune(thread_ids, strategy=strategy)

    # LangGraph's InMemorySaver is also a (no-op) context manager.
    def __enter__(self) -> "MemorySaver":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        return None

    async def __aenter__(self) -> "MemorySaver":
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        return None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.stats()})"


#: LangGraph's name for the in-memory saver.
InMemorySaver = MemorySaver
