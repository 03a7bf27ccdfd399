"""The checkpoint saver protocol, with LangGraph's method names, arguments and return shapes,
so that any ferrograph saver also works as LangGraph's checkpointer and any object written to
this protocol works as a ferrograph checkpointer.

A saver subclasses `BaseCheckpointSaver` and implements the sync methods, the async twins
(`a`-prefixed), or both. The async defaults run the sync method on a worker thread, so a
sync-only saver still serves `ainvoke`; an async-only saver must override the sync methods
(or be used with async calls only).
"""

from __future__ import annotations

import asyncio
import builtins
from typing import Any, AsyncIterator, Iterator, Literal, Mapping, NamedTuple, Optional, Sequence, TypedDict

from ferrograph import _core

__all__ = [
    "BaseCheckpointSaver",
    "Checkpoint",
    "CheckpointMetadata",
    "CheckpointTuple",
    "PendingWrite",
    "ERROR",
    "EXPECT_LATEST",
    "SCHEDULED",
    "INTERRUPT",
    "RESUME",
    "WRITES_IDX_MAP",
    "checkpoint_metadata",
    "empty_checkpoint",
    "get_checkpoint_id",
]

# The saver protocol's vocabulary is defined once, in Rust (ferrograph_checkpoint), and shared
# by the run, the savers and the Rust codec through `_core`; Python never re-spells it.

#: Special channels whose writes replace earlier ones, with their (negative) write index.
WRITES_IDX_MAP: dict[str, int] = dict(_core.WRITES_IDX_MAP)
ERROR, SCHEDULED, INTERRUPT, RESUME = WRITES_IDX_MAP
#: The `configurable` key by which a run marks a put whose parent must still be the latest
#: checkpoint of its thread and namespace (forks and updates are not marked).
EXPECT_LATEST: str = _core.EXPECT_LATEST
#: `checkpoint_metadata(config, metadata, drop_writes=False)`: the metadata a saver stores with a
#: checkpoint, as LangGraph's `get_checkpoint_metadata` makes it (the config's scalar metadata
#: and configurable keys added, NULs dropped from strings); with `drop_writes`, also without the
#: legacy "writes" key, as its `get_serializable_checkpoint_metadata` (its Postgres saver's).
checkpoint_metadata = _core.checkpoint_metadata

PendingWrite = tuple[str, str, Any]


class CheckpointMetadata(TypedDict, total=False):
    source: Literal["input", "loop", "update", "fork"]
    step: int
    parents: dict[str, str]
    run_id: str


class Checkpoint(TypedDict):
    v: int
    id: str
    ts: str
    channel_values: dict[str, Any]
    channel_versions: dict[str, Any]
    versions_seen: dict[str, dict[str, Any]]
    updated_channels: Optional[list[str]]


class CheckpointTuple(NamedTuple):
    config: dict
    checkpoint: Checkpoint
    metadata: CheckpointMetadata
    parent_config: Optional[dict] = None
    pending_writes: Optional[list[PendingWrite]] = None


def get_checkpoint_id(config: Mapping[str, Any]) -> Optional[str]:
    """The checkpoint id a config points at, if any."""
    return (config.get("configurable") or {}).get("checkpoint_id")


def empty_checkpoint() -> Checkpoint:
    """A checkpoint with nothing in it and a fresh time-ordered id."""
    checkpoint_id, ts = _core.new_checkpoint_id()
    return Checkpoint(
        v=4, id=checkpoint_id, ts=ts, channel_values={}, channel_versions={}, versions_seen={}, updated_channels=None
    )


class BaseCheckpointSaver:
    """The saver protocol. Subclasses implement storage; this class documents the contract.

    Besides LangGraph's methods, a saver has `run_batch`/`arun_batch`, with which a graph run
    writes what it queued meanwhile in one go (the SQL savers: in one transaction); and
    `in_process`, True for a saver that keeps checkpoints in this process, whose calls a run
    makes inline instead of on a background writer.
    """

    #: Checkpoints live in this process and a call takes microseconds (see above).
    in_process: bool = False
    #: True on ferrograph's own savers only: a graph run hands their `put` (and `run_batch`'s
    #: puts) a `_core.EncodedCheckpoint` (the step's new values, already encoded) instead of
    #: LangGraph's checkpoint dict. A subclass that reads the dict in `put` sets it to False.
    takes_encoded_checkpoints: bool = False

    def get(self, config: dict) -> Optional[Checkpoint]:
        """The checkpoint `config` points at (the thread's latest without checkpoint_id)."""
        found = self.get_tuple(config)
        return found.checkpoint if found else None

    def get_tuple(self, config: dict) -> Optional[CheckpointTuple]:
        """The checkpoint with its metadata, parent and pending writes, or None."""
        raise NotImplementedError(f"{type(self).__name__} does not implement get_tuple")

    def list(
        self,
        config: Optional[dict],
        *,
        filter: Optional[dict[str, Any]] = None,
        before: Optional[dict] = None,
        limit: Optional[int] = None,
    ) -> Iterator[CheckpointTuple]:
        """Checkpoints newest first; `filter` matches metadata keys exactly, `before` keeps ids
        smaller than its checkpoint_id, `config=None` lists every thread."""
        raise NotImplementedError(f"{type(self).__name__} does not implement list")

    def put(self, config: dict, checkpoint: Checkpoint, metadata: CheckpointMetadata, new_versions: dict) -> dict:
        """Store `checkpoint` as a child of `config`'s checkpoint_id; only channels in
        `new_versions` have new values. Returns the config of the stored checkpoint."""
        raise NotImplementedError(f"{type(self).__name__} does not implement put")

    def put_writes(self, config: dict, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str = "") -> None:
        """Store a task's writes against `config`'s checkpoint (idempotent per task and index)."""
        raise NotImplementedError(f"{type(self).__name__} does not implement put_writes")

    def run_batch(self, calls: Sequence[tuple[str, tuple]]) -> builtins.list[Any]:
        """Runs `calls`, pairs of a method name (`put`, `put_writes`) and its positional
        arguments, in order, and returns their results. This default calls them one by one, so
        a failure leaves the earlier ones stored; a saver with transactions overrides it to
        store all of them or none."""
        return [getattr(self, method)(*args) for method, args in calls]

    def delete_thread(self, thread_id: str) -> None:
        raise NotImplementedError(f"{type(self).__name__} does not implement delete_thread")

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        raise NotImplementedError(f"{type(self).__name__} does not implement delete_for_runs")

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        raise NotImplementedError(f"{type(self).__name__} does not implement copy_thread")

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        raise NotImplementedError(f"{type(self).__name__} does not implement prune")

    def get_next_version(self, current: Any, channel: Any = None) -> str:
        """A version greater than `current`: a zero-padded counter and a random fraction, so
        versions compare correctly as strings (LangGraph's format)."""
        return _core.next_version(current)

    async def aget(self, config: dict) -> Optional[Checkpoint]:
        found = await self.aget_tuple(config)
        return found.checkpoint if found else None

    async def aget_tuple(self, config: dict) -> Optional[CheckpointTuple]:
        return await asyncio.to_thread(self.get_tuple, config)

    async def alist(
        self,
        config: Optional[dict],
        *,
        filter: Optional[dict[str, Any]] = None,
        before: Optional[dict] = None,
        limit: Optional[int] = None,
    ) -> AsyncIterator[CheckpointTuple]:
        items = await asyncio.to_thread(lambda: list(self.list(config, filter=filter, before=before, limit=limit)))
        for item in items:
            yield item

    async def aput(self, config: dict, checkpoint: Checkpoint, metadata: CheckpointMetadata, new_versions: dict) -> dict:
        return await asyncio.to_thread(self.put, config, checkpoint, metadata, new_versions)

    async def aput_writes(
        self, config: dict, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str = ""
    ) -> None:
        await asyncio.to_thread(self.put_writes, config, writes, task_id, task_path)

    async def arun_batch(self, calls: Sequence[tuple[str, tuple]]) -> builtins.list[Any]:
        """The async twin of `run_batch`: the `a`-prefixed methods, one by one."""
        return [await getattr(self, "a" + method)(*args) for method, args in calls]

    async def adelete_thread(self, thread_id: str) -> None:
        await asyncio.to_thread(self.delete_thread, thread_id)

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        await asyncio.to_thread(self.delete_for_runs, run_ids)

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        await asyncio.to_thread(self.copy_thread, source_thread_id, target_thread_id)

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        await asyncio.to_thread(self.prune, thread_ids, strategy=strategy)
