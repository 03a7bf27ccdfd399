"""`MemorySaver`: the native in-memory checkpoint saver. Checkpoints live in Rust; values are
stored as typed JSON (so a stored value is a copy, never the live object). Values read with
get/get_tuple are also kept decoded (bounded), so reading them again copies their dicts and
lists instead of parsing; every read still returns objects of its own. The sync protocol
methods are the Rust ones; the async twins call them directly, since nothing here blocks."""

from __future__ import annotations

from typing import Any, AsyncIterator, Optional, Sequence

from ferrograph import _core
from ferrograph.checkpointers.base import BaseCheckpointSaver, Checkpoint, CheckpointMetadata, CheckpointTuple

__all__ = ["MemorySaver", "InMemorySaver"]


class MemorySaver(_core.NativeMemorySaver, BaseCheckpointSaver):
    """Checkpoints in process memory, with LangGraph's saver protocol.

    `MemorySaver(serializer=ferrograph.serde.Serializer(allowed=[MyModel]))` gives the saver
    classes of its own; by default it uses the process-wide allowed set (`ferrograph.serde`).
    A graph's calls add the classes its schemas name.
    """

    in_process = True

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
