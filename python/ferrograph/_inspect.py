"""What the `ferrograph` inspection commands compute (threads, history trees, states) and how
they draw it with rich. Everything here reads through the saver protocol, so it works on any
saver (listing threads takes the SQL savers' `thread_summaries` shortcut where there is one);
`ferrograph.demo` reuses the history tree.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime
import decimal
import enum
import json
import sys
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterable, Optional

from ferrograph.checkpointers.base import BaseCheckpointSaver, CheckpointTuple, get_checkpoint_id

if TYPE_CHECKING:
    from ferrograph.checkpointers.stats import StorageStats

__all__ = [
    "ThreadSummary",
    "HistoryRow",
    "console",
    "history_rows",
    "jsonable",
    "render_history",
    "scan_threads",
    "state_record",
]


def console(stderr: bool = False) -> Any:
    """A rich console on stdout (or stderr); wide when the output is not a terminal, so that
    tables piped to a file or captured in tests are not cut."""
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    is_tty = hasattr(stream, "isatty") and stream.isatty()
    return Console(stderr=stderr, width=None if is_tty else 160, highlight=is_tty, soft_wrap=False)


def short_time(ts: Optional[str]) -> str:
    """An ISO timestamp as `YYYY-MM-DD HH:MM:SS` (UTC as stored)."""
    if not ts:
        return ""
    return ts.replace("T", " ")[:19]


# ---- threads


@dataclass
class ThreadSummary:
    thread_id: str
    checkpoints: int = 0
    namespaces: set = field(default_factory=set)
    last_checkpoint_id: str = ""
    last_ts: str = ""
    last_step: Optional[int] = None
    last_source: Optional[str] = None

    def as_json(self) -> dict:
        return {
            "thread_id": self.thread_id,
            "checkpoints": self.checkpoints,
            "namespaces": sorted(self.namespaces),
            "last_checkpoint_id": self.last_checkpoint_id,
            "last_activity": self.last_ts,
            "last_step": self.last_step,
            "last_source": self.last_source,
        }


def scan_threads(
    saver: BaseCheckpointSaver, thread_id: Optional[str] = None, on_item: Optional[Callable[[], None]] = None
) -> list[ThreadSummary]:
    """Every thread (or just `thread_id`) with its checkpoint count and last activity, most
    recently active first. A saver with `thread_summaries` (the SQL savers) computes them in
    one query without reading any checkpoint, so `on_item` is not called. Any other saver is
    read checkpoint by checkpoint through `saver.list` (values included, page by page: linear
    in the size of the database), calling `on_item` after each."""
    summarize = getattr(saver, "thread_summaries", None)
    if callable(summarize):
        return [ThreadSummary(*row) for row in summarize(thread_id)]
    config = {"configurable": {"thread_id": thread_id}} if thread_id is not None else None
    threads: dict[str, ThreadSummary] = {}
    for t in saver.list(config):
        configurable = t.config["configurable"]
        tid = str(configurable["thread_id"])
        summary = threads.get(tid)
        if summary is None:
            summary = threads[tid] = ThreadSummary(tid)
        summary.checkpoints += 1
        summary.namespaces.add(configurable.get("checkpoint_ns", "") or "")
        cid = configurable["checkpoint_id"]
        if cid > summary.last_checkpoint_id:
            summary.last_checkpoint_id = cid
            summary.last_ts = t.checkpoint.get("ts", "") or ""
            summary.last_step = (t.metadata or {}).get("step")
            summary.last_source = (t.metadata or {}).get("source")
        if on_item is not None:
            on_item()
    return sorted(threads.values(), key=lambda s: (s.last_checkpoint_id, s.thread_id), reverse=True)


def render_threads(threads: list[ThreadSummary]) -> Any:
    from rich.table import Table

    table = Table(title=f"{len(threads)} thread{'s' if len(threads) != 1 else ''}", title_justify="left")
    table.add_column("thread")
    table.add_column("checkpoints", justify="right")
    table.add_column("last step", justify="right")
    table.add_column("last source")
    table.add_column("last activity (UTC)")
    table.add_column("latest checkpoint")
    for s in threads:
        table.add_row(
            s.thread_id,
            str(s.checkpoints),
            "" if s.last_step is None else str(s.last_step),
            s.last_source or "",
            short_time(s.last_ts),
            s.last_checkpoint_id,
        )
    return table


# ---- history


@dataclass
class HistoryRow:
    """One checkpoint of a thread, as `ferrograph history` shows it."""

    checkpoint_ns: str
    checkpoint_id: str
    parent_checkpoint_id: Optional[str]
    step: Optional[int]
    source: Optional[str]
    writes: list[str]
    ts: str
    pending_writes: int
    children: list["HistoryRow"] = field(default_factory=list, repr=False)
    #: True for a checkpoint that starts a branch: its parent has an older child.
    fork: bool = False

    def as_json(self) -> dict:
        return {
            "checkpoint_ns": self.checkpoint_ns,
            "checkpoint_id": self.checkpoint_id,
            "parent_checkpoint_id": self.parent_checkpoint_id,
            "step": self.step,
            "source": self.source,
            "writes": self.writes,
            "ts": self.ts,
            "pending_writes": self.pending_writes,
            "children": [c.checkpoint_id for c in self.children],
            "fork": self.fork,
        }


def _written(t: CheckpointTuple, parent: Optional[CheckpointTuple]) -> list[str]:
    """The channels the step behind checkpoint `t` wrote: its `updated_channels`, or else the
    channels whose version moved since its parent."""
    updated = t.checkpoint.get("updated_channels")
    if updated is not None:
        return sorted(str(c) for c in updated)
    versions = t.checkpoint.get("channel_versions") or {}
    before = (parent.checkpoint.get("channel_versions") or {}) if parent is not None else {}
    return sorted(str(c) for c, v in versions.items() if before.get(c) != v)


def history_rows(tuples: Iterable[CheckpointTuple]) -> tuple[list[HistoryRow], list[HistoryRow]]:
    """The rows of a thread's checkpoints, oldest first, and the roots of their tree (one per
    namespace, plus any checkpoint whose parent is gone, e.g. after pruning). Children are
    oldest first: the oldest continues its parent's line, each younger one starts a branch."""
    ordered = sorted(
        tuples, key=lambda t: (t.config["configurable"].get("checkpoint_ns", "") or "", t.config["configurable"]["checkpoint_id"])
    )
    by_key: dict[tuple[str, str], CheckpointTuple] = {}
    for t in ordered:
        c = t.config["configurable"]
        by_key[(c.get("checkpoint_ns", "") or "", c["checkpoint_id"])] = t
    rows: list[HistoryRow] = []
    row_of: dict[tuple[str, str], HistoryRow] = {}
    roots: list[HistoryRow] = []
    for t in ordered:
        c = t.config["configurable"]
        ns = c.get("checkpoint_ns", "") or ""
        parent_id = get_checkpoint_id(t.parent_config) if t.parent_config else None
        parent = by_key.get((ns, parent_id)) if parent_id else None
        metadata = t.metadata or {}
        row = HistoryRow(
            checkpoint_ns=ns,
            checkpoint_id=c["checkpoint_id"],
            parent_checkpoint_id=parent_id,
            step=metadata.get("step"),
            source=metadata.get("source"),
            writes=_written(t, parent),
            ts=t.checkpoint.get("ts", "") or "",
            pending_writes=len(t.pending_writes or []),
        )
        rows.append(row)
        row_of[(ns, row.checkpoint_id)] = row
        parent_row = row_of.get((ns, parent_id)) if parent_id else None
        if parent_row is None:
            roots.append(row)
        else:
            row.fork = bool(parent_row.children)
            parent_row.children.append(row)
    return rows, roots


def _label(row: HistoryRow) -> Any:
    from rich.text import Text

    step = "" if row.step is None else str(row.step)
    text = Text()
    text.append(f"{step:>4} ", style="bold")
    text.append(f"{(row.source or '?'):<6} ", style="cyan" if row.source != "update" else "magenta")
    text.append(f"{short_time(row.ts)} ", style="dim")
    text.append(row.checkpoint_id, style="dim")
    text.append("  writes: ", style="dim")
    if not row.writes:
        text.append("-", style="dim")
    for i, channel in enumerate(row.writes):
        text.append(", " if i else "", style="dim")
        text.append(channel, style="dim" if is_internal(channel) else "green")
    if row.pending_writes:
        text.append(f"  (+{row.pending_writes} pending)", style="yellow")
    return text


def render_history(thread_id: str, roots: list[HistoryRow]) -> Any:
    """A rich Tree: each line of checkpoints runs down one level; a fork opens a nested branch
    under the checkpoint it forks from."""
    from rich.tree import Tree

    tree = Tree(f"[bold]thread {thread_id}[/bold]  (step, source, time UTC, checkpoint id, channels written)")

    def line(start: HistoryRow, parent: Any) -> None:
        row: Optional[HistoryRow] = start
        while row is not None:
            node = parent.add(_label(row))
            for branch in row.children[1:]:
                sub = node.add(f"[magenta]branch[/magenta] from {row.checkpoint_id}")
                line(branch, sub)
            row = row.children[0] if row.children else None

    for root in roots:
        if root.checkpoint_ns:
            holder = tree.add(f"namespace [bold]{root.checkpoint_ns}[/bold]")
        elif root.parent_checkpoint_id:
            holder = tree.add(f"[dim](parent {root.parent_checkpoint_id} not stored)[/dim]")
        else:
            holder = tree
        line(root, holder)
    return tree


# ---- state


def jsonable(value: Any) -> Any:
    """`value` as JSON-native data, for display: datetimes and dates in ISO form, UUIDs and
    decimals as strings, sets as lists, bytes as text (or base64), enums by value, dataclasses
    and pydantic models (LangChain messages too) as their fields; anything else as its repr."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else repr(value)
    if isinstance(value, dict):
        return {k if isinstance(k, str) else str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (set, frozenset)):
        items = [jsonable(v) for v in value]
        try:
            return sorted(items)
        except TypeError:
            return items
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    if isinstance(value, (uuid.UUID, decimal.Decimal)):
        return str(value)
    if isinstance(value, enum.Enum):
        return jsonable(value.value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        data = bytes(value)
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            return "base64:" + base64.b64encode(data).decode()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        try:
            return jsonable(dump())
        except Exception:
            pass
    if isinstance(value, BaseException):
        return repr(value)
    slots = getattr(type(value), "__slots__", None)
    if slots and not isinstance(value, type):
        names = [slots] if isinstance(slots, str) else list(slots)
        if all(hasattr(value, n) for n in names):
            return {"__type__": type(value).__name__, **{n: jsonable(getattr(value, n)) for n in names}}
    return repr(value)


def is_internal(channel: str) -> bool:
    """The engine's own channels (`__start__`, `__pregel_tasks`, `branch:to:node`, ...), as
    opposed to the state's keys."""
    return channel.startswith("__") or ":" in channel


def state_record(t: CheckpointTuple) -> dict:
    """A checkpoint's state and bookkeeping as JSON-native data (`ferrograph show`): `values`
    holds the state's keys, `internal` the engine's own channels."""
    c = t.config["configurable"]
    channels = dict(t.checkpoint.get("channel_values") or {})
    return {
        "thread_id": c["thread_id"],
        "checkpoint_ns": c.get("checkpoint_ns", "") or "",
        "checkpoint_id": c["checkpoint_id"],
        "parent_checkpoint_id": get_checkpoint_id(t.parent_config) if t.parent_config else None,
        "ts": t.checkpoint.get("ts"),
        "metadata": jsonable(dict(t.metadata or {})),
        "values": jsonable({k: v for k, v in channels.items() if not is_internal(str(k))}),
        "internal": jsonable({k: v for k, v in channels.items() if is_internal(str(k))}),
        "channel_versions": jsonable(dict(t.checkpoint.get("channel_versions") or {})),
        "updated_channels": jsonable(t.checkpoint.get("updated_channels")),
        "pending_writes": [
            {"task_id": task_id, "channel": channel, "value": jsonable(value)}
            for task_id, channel, value in (t.pending_writes or [])
        ],
    }


def dumps(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False)


# ---- storage (`ferrograph stats`)


def storage_stats(saver: BaseCheckpointSaver, thread_id: Optional[str] = None, largest: int = 10) -> "StorageStats":
    """What `saver` (or one thread) holds, without reading any value: the saver's own
    `storage_stats` (one aggregate query on the SQL savers)."""
    from ferrograph.errors import FerrographError

    compute = getattr(saver, "storage_stats", None)
    if not callable(compute):
        raise FerrographError(f"{type(saver).__name__} cannot report its storage (it has no storage_stats)")
    return compute(thread_id, largest=largest)


def human_bytes(n: int) -> str:
    """`n` bytes as "45.3 KB", "2.6 GB" (powers of 1000, as disks are sold)."""
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if abs(size) < 1000:
            return f"{int(size)} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} TB"


def render_stats(stats: "StorageStats") -> Any:
    """Rich tables: the totals, bytes per channel, the largest threads, the delta chains."""
    from rich.console import Group
    from rich.table import Table

    scope = f"thread {stats.thread_id}" if stats.thread_id is not None else "all threads"
    totals = Table(title=f"storage of {scope}", title_justify="left", show_header=False)
    totals.add_column("what")
    totals.add_column("value", justify="right")
    rows = [
        ("threads", str(stats.threads)),
        ("checkpoints", str(stats.checkpoints)),
        ("pending writes", str(stats.writes)),
        ("bytes stored", human_bytes(stats.bytes)),
        ("  checkpoints and metadata", human_bytes(stats.checkpoint_bytes)),
        ("  channel values", human_bytes(stats.value_bytes)),
        ("  pending writes", human_bytes(stats.write_bytes)),
    ]
    if stats.database_bytes is not None:
        rows.append(("database on disk", human_bytes(stats.database_bytes)))
    rows += [
        ("oldest activity (UTC)", short_time(stats.oldest_activity)),
        ("newest activity (UTC)", short_time(stats.newest_activity)),
    ]
    for what, value in rows:
        totals.add_row(what, value)
    channels = Table(title="bytes per channel", title_justify="left")
    for name, justify in [("channel", "left"), ("values", "right"), ("value bytes", "right"), ("writes", "right"), ("write bytes", "right")]:
        channels.add_column(name, justify=justify)  # type: ignore[arg-type]
    for c in stats.channels:
        channels.add_row(c.channel, str(c.values), human_bytes(c.value_bytes), str(c.writes), human_bytes(c.write_bytes))
    threads = Table(title=f"largest threads ({len(stats.largest_threads)})", title_justify="left")
    for name, justify in [("thread", "left"), ("checkpoints", "right"), ("writes", "right"), ("bytes", "right"), ("last activity (UTC)", "left")]:
        threads.add_column(name, justify=justify)  # type: ignore[arg-type]
    for t in stats.largest_threads:
        threads.add_row(t.thread_id, str(t.checkpoints), str(t.writes), human_bytes(t.bytes), short_time(t.last_activity))
    parts = [totals, channels, threads]
    if stats.chains:
        chains = Table(title="delta chains", title_justify="left")
        chains.add_column("chain length", justify="right")
        chains.add_column("values", justify="right")
        for length, count in sorted(stats.chains.items()):
            chains.add_row(str(length), str(count))
        parts.append(chains)
    return Group(*parts)


# ---- diffs between two checkpoints (`ferrograph diff`, `ferrograph.inspect.diff`)


@dataclass
class ChannelDiff:
    """How one state channel differs from checkpoint a to checkpoint b: "added", "removed",
    "changed", or "appended" (a list that kept its items and grew: `appended` holds the new
    ones). `before` and `after` are `jsonable` forms."""

    channel: str
    kind: str
    before: Any = None
    after: Any = None
    appended: Optional[list] = None

    def as_json(self) -> dict:
        data = {"channel": self.channel, "kind": self.kind, "before": self.before, "after": self.after}
        if self.appended is not None:
            data["appended"] = self.appended
        return data


@dataclass
class CheckpointDiff:
    """What changed in a thread's state from checkpoint `a` to checkpoint `b` (configs with
    thread_id, checkpoint_ns, checkpoint_id), channel by channel, and the pending writes stored
    between them: those of `a` and of each checkpoint after it on `b`'s line up to `b` (the
    tasks whose results made the steps), oldest first."""

    a: dict
    b: dict
    channels: list[ChannelDiff]
    pending_writes: list[dict]

    def as_json(self) -> dict:
        return {
            "a": self.a,
            "b": self.b,
            "channels": [c.as_json() for c in self.channels],
            "pending_writes": self.pending_writes,
        }


def _checkpoint_config(t: CheckpointTuple) -> dict:
    c = t.config["configurable"]
    return {"thread_id": c["thread_id"], "checkpoint_ns": c.get("checkpoint_ns", "") or "", "checkpoint_id": c["checkpoint_id"]}


def _found(saver: BaseCheckpointSaver, config: Any) -> CheckpointTuple:
    from ferrograph.errors import FerrographError

    configurable = dict((config or {}).get("configurable") or {})
    if configurable.get("thread_id") is None:
        raise FerrographError("a config to diff must name a thread_id")
    configurable.setdefault("checkpoint_ns", "")
    found = saver.get_tuple({"configurable": configurable})
    if found is None:
        cid = configurable.get("checkpoint_id")
        what = f"checkpoint {cid!r} of thread" if cid else "thread"
        raise FerrographError(f"{what} {configurable['thread_id']!r} not found")
    return found


def _appended(before: Any, after: Any) -> Optional[list]:
    if isinstance(before, list) and isinstance(after, list) and len(after) > len(before) and after[: len(before)] == before:
        return after[len(before) :]
    return None


def diff(saver: BaseCheckpointSaver, config_a: Any, config_b: Any) -> CheckpointDiff:
    """What changed from the checkpoint `config_a` names to the one `config_b` names (a config
    without checkpoint_id names the thread's latest): per state channel added, removed, changed,
    or appended to (lists), compared in their `jsonable` forms; and the pending writes between
    them. Reads through the saver protocol, so it works on any saver."""
    a, b = _found(saver, config_a), _found(saver, config_b)
    before = {k: jsonable(v) for k, v in (a.checkpoint.get("channel_values") or {}).items() if not is_internal(str(k))}
    after = {k: jsonable(v) for k, v in (b.checkpoint.get("channel_values") or {}).items() if not is_internal(str(k))}
    channels = []
    for channel in sorted(set(before) | set(after), key=str):
        if channel not in after:
            channels.append(ChannelDiff(str(channel), "removed", before=before[channel]))
        elif channel not in before:
            channels.append(ChannelDiff(str(channel), "added", after=after[channel]))
        elif before[channel] != after[channel]:
            grown = _appended(before[channel], after[channel])
            kind = "appended" if grown is not None else "changed"
            channels.append(ChannelDiff(str(channel), kind, before=before[channel], after=after[channel], appended=grown))
    return CheckpointDiff(_checkpoint_config(a), _checkpoint_config(b), channels, _writes_between(saver, a, b))


def _writes_between(saver: BaseCheckpointSaver, a: CheckpointTuple, b: CheckpointTuple) -> list[dict]:
    """The pending writes of `a` and of the checkpoints after it on `b`'s line before `b`,
    oldest first; just `a`'s when `a` is not an ancestor of `b`."""
    a_id = a.config["configurable"]["checkpoint_id"]
    line = [a]
    current = b
    ancestors: list[CheckpointTuple] = []
    while current.parent_config is not None:
        parent_id = get_checkpoint_id(current.parent_config)
        if parent_id == a_id:
            line = [a] + list(reversed(ancestors))
            break
        parent = saver.get_tuple(current.parent_config)
        if parent is None:
            break
        ancestors.append(parent)
        current = parent
    return [
        {"checkpoint_id": t.config["configurable"]["checkpoint_id"], "task_id": task_id, "channel": channel, "value": jsonable(value)}
        for t in line
        for task_id, channel, value in (t.pending_writes or [])
    ]


def render_diff(d: CheckpointDiff) -> Any:
    """A rich table of the channels that changed, then the pending writes between."""
    from rich.console import Group
    from rich.table import Table

    def shown(value: Any) -> str:
        text = json.dumps(value, ensure_ascii=False)
        return text if len(text) <= 120 else text[:117] + "..."

    table = Table(title=f"thread {d.b['thread_id']}: {d.a['checkpoint_id']} -> {d.b['checkpoint_id']}", title_justify="left")
    table.add_column("channel")
    table.add_column("change")
    table.add_column("before")
    table.add_column("after")
    styles = {"added": "green", "removed": "red", "changed": "yellow", "appended": "cyan"}
    for c in d.channels:
        after = "+ " + shown(c.appended) if c.appended is not None else shown(c.after) if c.kind != "removed" else ""
        table.add_row(c.channel, f"[{styles[c.kind]}]{c.kind}[/]", shown(c.before) if c.kind != "added" else "", after)
    if not d.channels:
        table.add_row("[dim](no state channel changed)[/dim]", "", "", "")
    writes = Table(title=f"pending writes between ({len(d.pending_writes)})", title_justify="left")
    writes.add_column("checkpoint")
    writes.add_column("task")
    writes.add_column("channel")
    writes.add_column("value")
    for w in d.pending_writes:
        writes.add_row(w["checkpoint_id"], w["task_id"], w["channel"], shown(w["value"]))
    return Group(table, writes)
