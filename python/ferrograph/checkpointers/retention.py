"""Retention: which checkpoints a policy deletes, what deleting them freed, and the background
sweeper that applies a policy on a schedule. Every saver plans with `plan` and deletes what it
returns in its own way (`apply_retention`), so the rules below hold on all of them.

The rules, per line of checkpoints (a thread and a namespace):

- `keep_last=N` keeps the line's latest checkpoint and its N-1 nearest ancestors (its last N
  steps of history, following parent links); with `keep_forks=True` every other branch's tip
  keeps its last N steps as well, otherwise older branches are deleted. `keep_last=0` keeps
  nothing by count.
- `older_than` keeps every checkpoint made since that long ago.
- A checkpoint either rule keeps is kept; one neither keeps is deleted. A policy needs at least
  one of the two.
- A subgraph's checkpoints (a namespace below another) go with the parent graph's checkpoint
  they ran from (their metadata's `parents`): when that one is deleted, so are they.

What a kept checkpoint needs stays: its values (a value stored as an append delta keeps every
row its chain is built from) and its pending writes. So a kept checkpoint reads, forks and
resumes exactly as before. A checkpoint whose parent was deleted starts its line (its
`parent_config` still names the deleted one, as after LangGraph's `prune`).
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import re
import threading
import weakref
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Optional, Sequence, Union

__all__ = [
    "CheckpointHead",
    "Retention",
    "RetentionResult",
    "Sweeper",
    "AsyncSweeper",
    "metadata_matches",
    "parse_duration",
    "plan",
]

logger = logging.getLogger("ferrograph.retention")

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(value: Union[str, datetime.timedelta], what: str = "a duration") -> datetime.timedelta:
    """A `timedelta`, or text such as "30d", "12h", "10m", "45s", "2w" (one number and one unit:
    s, m, h, d, w)."""
    if isinstance(value, datetime.timedelta):
        duration = value
    elif isinstance(value, str):
        match = _DURATION.match(value)
        if match is None:
            raise ValueError(f"{what} must be a timedelta or text like '30d', '12h', '10m' (units s, m, h, d, w), got {value!r}")
        duration = datetime.timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])
    else:
        raise TypeError(f"{what} must be a timedelta or text like '30d', got {type(value).__name__}")
    if duration <= datetime.timedelta(0):
        raise ValueError(f"{what} must be positive, got {value!r}")
    return duration


@dataclass(frozen=True)
class Retention:
    """What to keep (see the module's doc for the rules).

    - `keep_last`: per thread and namespace, keep the latest checkpoint and its ancestors, this
      many in all (0: none by count);
    - `older_than`: delete checkpoints older than this (`timedelta` or "30d");
    - `threads`: apply only to these thread ids (default: every thread);
    - `filter`: apply only to threads with a checkpoint whose metadata has these values;
    - `keep_forks`: also keep the last `keep_last` steps of every other branch.
    """

    keep_last: Optional[int] = None
    older_than: Optional[Union[datetime.timedelta, str]] = None
    threads: Optional[Sequence[str]] = None
    filter: Optional[Mapping[str, Any]] = None
    keep_forks: bool = False

    def __post_init__(self) -> None:
        if self.keep_last is None and self.older_than is None:
            raise ValueError("a Retention needs keep_last, older_than or both (it would keep everything)")
        if self.keep_last is not None and (
            isinstance(self.keep_last, bool) or not isinstance(self.keep_last, int) or self.keep_last < 0
        ):
            raise ValueError(f"keep_last must be an int >= 0, got {self.keep_last!r}")
        if self.older_than is not None:
            object.__setattr__(self, "older_than", parse_duration(self.older_than, "older_than"))
        if self.threads is not None:
            if isinstance(self.threads, str):
                raise TypeError("threads must be a list of thread ids, not a single str")
            object.__setattr__(self, "threads", tuple(str(t) for t in self.threads))
        if self.filter is not None:
            if not isinstance(self.filter, Mapping):
                raise TypeError(f"filter must be a mapping of metadata keys to values, got {type(self.filter).__name__}")
            object.__setattr__(self, "filter", dict(self.filter))
        if not isinstance(self.keep_forks, bool):
            raise TypeError(f"keep_forks must be a bool, got {self.keep_forks!r}")

    def cutoff(self, now: datetime.datetime) -> Optional[datetime.datetime]:
        """The time before which `older_than` deletes, or None."""
        if self.older_than is None:
            return None
        assert isinstance(self.older_than, datetime.timedelta)
        return now - self.older_than


@dataclass(frozen=True)
class CheckpointHead:
    """A checkpoint as retention sees it: its key, parent, time and metadata's `parents`."""

    thread_id: str
    checkpoint_ns: str
    checkpoint_id: str
    parent_checkpoint_id: Optional[str]
    ts: Optional[str]
    parents: Mapping[str, str] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.thread_id, self.checkpoint_ns, self.checkpoint_id)


@dataclass
class RetentionResult:
    """What `apply_retention` deleted (or, with `dry_run`, would delete): whole threads (their
    ids in `thread_ids`), checkpoints, pending writes, and the bytes of the rows they took
    (checkpoints with their metadata, values no kept checkpoint reads, writes)."""

    threads: int = 0
    checkpoints: int = 0
    writes: int = 0
    bytes: int = 0
    dry_run: bool = False
    thread_ids: list[str] = field(default_factory=list)

    def add(self, other: "RetentionResult") -> None:
        self.threads += other.threads
        self.checkpoints += other.checkpoints
        self.writes += other.writes
        self.bytes += other.bytes
        self.thread_ids.extend(other.thread_ids)

    def as_json(self) -> dict:
        return {
            "dry_run": self.dry_run,
            "threads": self.threads,
            "checkpoints": self.checkpoints,
            "writes": self.writes,
            "bytes": self.bytes,
            "thread_ids": self.thread_ids,
        }


def _time(ts: Optional[str]) -> Optional[datetime.datetime]:
    if not ts:
        return None
    try:
        parsed = datetime.datetime.fromisoformat(ts.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=datetime.timezone.utc)


def _parent_namespace(ns: str) -> str:
    return ns.rsplit("|", 1)[0] if "|" in ns else ""


def metadata_matches(metadata: Mapping[str, Any], filter: Optional[Mapping[str, Any]]) -> bool:
    """Whether a checkpoint's metadata holds every key of `filter` (a policy's or the threads
    table's) with that value, as the memory saver (and LangGraph's) matches them; each SQL
    dialect matches as its database does (`Dialect.metadata_matches`)."""
    return all(metadata.get(k) == v for k, v in (filter or {}).items())


def plan(heads: Iterable[CheckpointHead], policy: Retention, now: datetime.datetime) -> list[tuple[str, str, str]]:
    """The keys (thread_id, checkpoint_ns, checkpoint_id) of the checkpoints `policy` deletes
    among `heads` (every checkpoint of the threads it applies to), oldest first per line."""
    cutoff = policy.cutoff(now)
    lines: dict[tuple[str, str], dict[str, CheckpointHead]] = {}
    for head in heads:
        lines.setdefault((head.thread_id, head.checkpoint_ns), {})[head.checkpoint_id] = head
    doomed: set[tuple[str, str, str]] = set()
    # Parents' namespaces first, so a subgraph's checkpoints see whether theirs are deleted.
    for (thread_id, ns), members in sorted(lines.items(), key=lambda item: (item[0][0], item[0][1].count("|"), item[0][1])):
        kept: set[str] = set()
        if policy.keep_last:
            has_child = {h.parent_checkpoint_id for h in members.values() if h.parent_checkpoint_id in members}
            tips = [max(members)]
            if policy.keep_forks:
                tips += [cid for cid in members if cid not in has_child and cid != tips[0]]
            for tip in tips:
                current: Optional[str] = tip
                for _ in range(policy.keep_last):
                    if current is None or current not in members:
                        break
                    kept.add(current)
                    current = members[current].parent_checkpoint_id
        if cutoff is not None:
            for cid, head in members.items():
                made = _time(head.ts)
                if made is None or made >= cutoff:  # a checkpoint without a readable time is kept
                    kept.add(cid)
        parent_ns = _parent_namespace(ns) if ns else None
        for cid in sorted(members):
            head = members[cid]
            parent_of_graph = head.parents.get(parent_ns) if parent_ns is not None else None
            if cid not in kept or (
                parent_of_graph is not None and (thread_id, parent_ns, parent_of_graph) in doomed
            ):
                doomed.add(head.key)
    return sorted(doomed, key=lambda k: (k[0], k[1], k[2]))


def emptied_threads(heads: Iterable[CheckpointHead], doomed: Iterable[tuple[str, str, str]]) -> list[str]:
    """The threads all of whose checkpoints are in `doomed`, sorted."""
    remaining: dict[str, int] = {}
    for head in heads:
        remaining[head.thread_id] = remaining.get(head.thread_id, 0) + 1
    for thread_id, _, _ in doomed:
        remaining[thread_id] -= 1
    return sorted(t for t, left in remaining.items() if left == 0)


def now_utc() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


class Sweeper:
    """Applies a saver's retention policy every `every`, on a daemon thread, until `stop()` (or
    until the saver is garbage collected). A failed sweep is logged and the next one runs on
    schedule."""

    def __init__(self, saver: Any, every: datetime.timedelta) -> None:
        self._saver = weakref.ref(saver)
        self.every = every
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ferrograph-retention", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stopped.wait(self.every.total_seconds()):
            saver = self._saver()
            if saver is None:
                return
            try:
                result = saver.apply_retention()
                logger.info("retention sweep deleted %s", result.as_json())
            except Exception:  # the sweeper must outlive a failed sweep (a lost connection)
                logger.exception("retention sweep failed")
            del saver

    def stop(self) -> None:
        self._stopped.set()
        if self._thread is not threading.current_thread():
            self._thread.join()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()


class AsyncSweeper:
    """The async twin of `Sweeper`: an asyncio task on the saver's event loop."""

    def __init__(self, saver: Any, every: datetime.timedelta) -> None:
        self._saver = weakref.ref(saver)
        self.every = every
        self._task = asyncio.get_running_loop().create_task(self._run(), name="ferrograph-retention")

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.every.total_seconds())
            saver = self._saver()
            if saver is None:
                return
            try:
                result = await saver.aapply_retention()
                logger.info("retention sweep deleted %s", result.as_json())
            except Exception:  # the sweeper must outlive a failed sweep (a lost connection)
                logger.exception("retention sweep failed")
            del saver

    async def stop(self) -> None:
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass

    @property
    def running(self) -> bool:
        return not self._task.done()


def sweep_options(
    retention: Optional[Retention], sweep_every: Optional[Union[str, datetime.timedelta]]
) -> Optional[datetime.timedelta]:
    """Checks a saver's `retention` and `sweep_every` arguments; the sweep interval, or None."""
    if retention is not None and not isinstance(retention, Retention):
        raise TypeError(f"retention must be a ferrograph.checkpointers.Retention, got {type(retention).__name__}")
    if sweep_every is None:
        return None
    if retention is None:
        raise ValueError("sweep_every needs a retention policy (retention=Retention(...)) to apply")
    return parse_duration(sweep_every, "sweep_every")


def policy_of(saver: Any, policy: Optional[Retention]) -> Retention:
    """The policy an `apply_retention` call applies: the one given, else the saver's own."""
    chosen = policy if policy is not None else getattr(saver, "retention", None)
    if chosen is None:
        raise ValueError(f"{type(saver).__name__}.apply_retention needs a policy: pass Retention(...) or give the saver retention=")
    if not isinstance(chosen, Retention):
        raise TypeError(f"apply_retention takes a ferrograph.checkpointers.Retention, got {type(chosen).__name__}")
    return chosen



class Sweeping:
    """What every saver shares of keeping its database healthy: its default retention policy
    (`retention`, used by `apply_retention()` without a policy), the background sweeper
    `sweep_every` starts, its size limits (`max_value_bytes`, `warn_value_bytes`) and its
    encryption at rest (`encryption`, see checkpointers/encryption.py).
    Sync savers sweep on a thread (started at once); async savers on a task of their event loop
    (started when the saver is first used on it)."""

    retention: Optional[Retention] = None
    limits: Any = None
    encryption: Any = None
    _sweep_every: Optional[datetime.timedelta] = None
    _sweeper: Optional[Union[Sweeper, AsyncSweeper]] = None

    def _init_health(
        self,
        retention: Optional[Retention],
        sweep_every: Optional[Union[str, datetime.timedelta]],
        max_value_bytes: Optional[int],
        warn_value_bytes: Optional[int],
        encryption: Any = None,
    ) -> None:
        """Takes a saver's health options: its retention policy and sweeping, its size limits
        (`self.limits`, see checkpointers/limits.py) and its encryption."""
        from ferrograph.checkpointers.encryption import check
        from ferrograph.checkpointers.limits import SizeLimits

        self._sweep_every = sweep_options(retention, sweep_every)
        self.retention = retention
        self._sweeper = None
        self.limits = SizeLimits(max_value_bytes, warn_value_bytes)
        self.encryption = check(encryption)

    def _start_sweeping(self) -> None:
        """Starts the sweeper on a thread (sync savers)."""
        if self._sweep_every is not None and self._sweeper is None:
            self._sweeper = Sweeper(self, self._sweep_every)

    def _start_async_sweeping(self) -> None:
        """Starts the sweeper on the running event loop (async savers)."""
        if self._sweep_every is not None and self._sweeper is None:
            self._sweeper = AsyncSweeper(self, self._sweep_every)

    @property
    def sweeping(self) -> bool:
        """Whether a background sweeper is running."""
        return self._sweeper is not None and self._sweeper.running

    def stop_sweeping(self) -> None:
        """Stops the background sweeper (a sync saver's; from_conn_string does it on exit)."""
        sweeper, self._sweeper = self._sweeper, None
        if isinstance(sweeper, AsyncSweeper):
            raise RuntimeError("an async saver's sweeper is stopped with `await saver.astop_sweeping()`")
        if sweeper is not None:
            sweeper.stop()

    async def astop_sweeping(self) -> None:
        """Stops the background sweeper (from_conn_string does it on exit)."""
        sweeper, self._sweeper = self._sweeper, None
        if isinstance(sweeper, AsyncSweeper):
            await sweeper.stop()
        elif sweeper is not None:
            await asyncio.to_thread(sweeper.stop)
