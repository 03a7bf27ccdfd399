"""`DictSaver`: a small pure-Python saver used as a test double. It implements the protocol on
plain dicts, storing every value as typed JSON through `ferrograph._core.dumps`, so it behaves
like a real out-of-process saver (values are copies) and exercises the Python-saver paths."""

from __future__ import annotations

import threading
from typing import Any, Iterator, Optional, Sequence

from ferrograph import _core
from ferrograph.checkpointers.base import WRITES_IDX_MAP, BaseCheckpointSaver, Checkpoint, CheckpointTuple, checkpoint_metadata
from ferrograph.errors import CheckpointNotFoundError, InvalidConfigError


def _configurable(config: Any) -> dict:
    if not isinstance(config, dict) or not isinstance(config.get("configurable"), dict):
        raise InvalidConfigError("config needs a 'configurable' dict with a 'thread_id'")
    c = config["configurable"]
    if c.get("thread_id") is None:
        raise InvalidConfigError("config['configurable'] needs a 'thread_id'")
    return c


def _address(config: Any) -> tuple[str, str, Optional[str]]:
    c = _configurable(config)
    return str(c["thread_id"]), c.get("checkpoint_ns") or "", c.get("checkpoint_id") or None


def _config(thread_id: str, ns: str, checkpoint_id: str) -> dict:
    return {"configurable": {"thread_id": thread_id, "checkpoint_ns": ns, "checkpoint_id": checkpoint_id}}


class DictSaver(BaseCheckpointSaver):
    def __init__(self) -> None:
        self._lock = threading.RLock()
        # thread -> ns -> checkpoint id -> (checkpoint bytes, metadata bytes, parent id)
        self.checkpoints: dict[str, dict[str, dict[str, tuple[bytes, bytes, Optional[str]]]]] = {}
        # (thread, ns, channel, version) -> value bytes, or None for a cleared channel
        self.blobs: dict[tuple[str, str, str, str], Optional[bytes]] = {}
        # (thread, ns, checkpoint id) -> (task id, index) -> (channel, value bytes, task path)
        self.writes: dict[tuple[str, str, str], dict[tuple[str, int], tuple[str, bytes, str]]] = {}

    def _tuple(self, thread_id: str, ns: str, checkpoint_id: str) -> CheckpointTuple:
        data, md, parent = self.checkpoints[thread_id][ns][checkpoint_id]
        checkpoint = _core.loads(data)
        values = {}
        for channel, version in checkpoint["channel_versions"].items():
            blob = self.blobs.get((thread_id, ns, channel, str(version)))
            if blob is not None:
                values[channel] = _core.loads(blob)
        checkpoint["channel_values"] = values
        stored = self.writes.get((thread_id, ns, checkpoint_id), {})
        ordered = sorted(stored.items(), key=lambda kv: (kv[1][2], kv[0][0], kv[0][1]))
        writes = [(task_id, channel, _core.loads(value)) for (task_id, _), (channel, value, _) in ordered]
        return CheckpointTuple(
            config=_config(thread_id, ns, checkpoint_id),
            checkpoint=checkpoint,
            metadata=_core.loads(md),
            parent_config=_config(thread_id, ns, parent) if parent else None,
            pending_writes=writes,
        )

    def get_tuple(self, config: dict) -> Optional[CheckpointTuple]:
        thread_id, ns, checkpoint_id = _address(config)
        with self._lock:
            saved = self.checkpoints.get(thread_id, {}).get(ns, {})
            if checkpoint_id is None:
                if not saved:
                    return None
                checkpoint_id = max(saved)
            elif checkpoint_id not in saved:
                return None
            return self._tuple(thread_id, ns, checkpoint_id)

    def list(
        self,
        config: Optional[dict],
        *,
        filter: Optional[dict[str, Any]] = None,
        before: Optional[dict] = None,
        limit: Optional[int] = None,
    ) -> Iterator[CheckpointTuple]:
        with self._lock:
            keys = []
            if config:
                c = _configurable(config)
                threads = [str(c["thread_id"])]
                want_ns = c.get("checkpoint_ns")
                want_id = c.get("checkpoint_id") or None
            else:
                threads, want_ns, want_id = sorted(self.checkpoints), None, None
            before_id = (before or {}).get("configurable", {}).get("checkpoint_id") if before else None
            for t in threads:
                for ns, saved in sorted(self.checkpoints.get(t, {}).items()):
                    if want_ns is not None and ns != want_ns:
                        continue
                    for cid in saved:
                        if want_id is not None and cid != want_id:
                            continue
                        if before_id and cid >= before_id:
                            continue
                        keys.append((cid, t, ns))
            keys.sort(key=lambda k: k[0], reverse=True)
            out = []
            for cid, t, ns in keys:
                if limit is not None and len(out) >= limit:
                    break
                metadata = _core.loads(self.checkpoints[t][ns][cid][1])
                if filter and not all(metadata.get(k) == v for k, v in filter.items()):
                    continue
                out.append(self._tuple(t, ns, cid))
        return iter(out)

    def put(self, config: dict, checkpoint: Checkpoint, metadata: dict, new_versions: dict) -> dict:
        thread_id, ns, parent = _address(config)
        values = checkpoint.get("channel_values") or {}
        # Everything is encoded before anything is stored, so a failure stores nothing.
        blobs = {
            (thread_id, ns, channel, str(version)): (
                _core.dumps(values[channel], context=f"channel_values['{channel}']") if channel in values else None
            )
            for channel, version in new_versions.items()
        }
        metadata = checkpoint_metadata(config, metadata)
        rest = {k: v for k, v in checkpoint.items() if k != "channel_values"}
        data = _core.dumps(rest, context="checkpoint")
        md = _core.dumps(metadata, context="metadata")
        with self._lock:
            self.blobs.update(blobs)
            self.checkpoints.setdefault(thread_id, {}).setdefault(ns, {})[checkpoint["id"]] = (data, md, parent)
        return _config(thread_id, ns, checkpoint["id"])

    def put_writes(self, config: dict, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str = "") -> None:
        thread_id, ns, checkpoint_id = _address(config)
        if checkpoint_id is None:
            raise InvalidConfigError("put_writes needs config['configurable']['checkpoint_id']")
        encoded = [
            (WRITES_IDX_MAP.get(channel, i), channel, _core.dumps(value, context=f"writes['{channel}']"))
            for i, (channel, value) in enumerate(writes)
        ]
        with self._lock:
            stored = self.writes.setdefault((thread_id, ns, checkpoint_id), {})
            for idx, channel, value in encoded:
                if idx >= 0 and (task_id, idx) in stored:
                    continue
                stored[(task_id, idx)] = (channel, value, task_path)

    def delete_thread(self, thread_id: str) -> None:
        thread_id = str(thread_id)
        with self._lock:
            self.checkpoints.pop(thread_id, None)
            self.blobs = {k: v for k, v in self.blobs.items() if k[0] != thread_id}
            self.writes = {k: v for k, v in self.writes.items() if k[0] != thread_id}

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        with self._lock:
            if source_thread_id not in self.checkpoints:
                raise CheckpointNotFoundError(f"thread {source_thread_id!r} has no checkpoints to copy")
            for ns, saved in self.checkpoints[source_thread_id].items():
                self.checkpoints.setdefault(target_thread_id, {}).setdefault(ns, {}).update(saved)
            for (t, ns, ch, v), blob in list(self.blobs.items()):
                if t == source_thread_id:
                    self.blobs[(target_thread_id, ns, ch, v)] = blob
            for (t, ns, cid), stored in list(self.writes.items()):
                if t == source_thread_id:
                    self.writes.setdefault((target_thread_id, ns, cid), {}).update(stored)

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        if strategy not in ("keep_latest", "delete"):
            raise ValueError(f"unknown prune strategy {strategy!r}: expected 'keep_latest' or 'delete'")
        with self._lock:
            for thread_id in thread_ids:
                if strategy == "delete":
                    self.delete_thread(thread_id)
                    continue
                for ns, saved in self.checkpoints.get(thread_id, {}).items():
                    if not saved:
                        continue
                    latest = max(saved)
                    for cid in [c for c in saved if c != latest]:
                        del saved[cid]
                        self.writes.pop((thread_id, ns, cid), None)

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        runs = set(run_ids)
        with self._lock:
            for thread_id, namespaces in self.checkpoints.items():
                for ns, saved in namespaces.items():
                    for cid in list(saved):
                        if _core.loads(saved[cid][1]).get("run_id") in runs:
                            del saved[cid]
                            self.writes.pop((thread_id, ns, cid), None)
