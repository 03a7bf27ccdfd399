"""What the `ferrograph` inspection commands and the `ferrograph ui` page compute (threads,
history trees, states, diffs between checkpoints) and how the commands draw it with rich.
Everything here reads through the saver protocol, so it works on any saver (listing threads
takes the SQL savers' `thread_summaries` shortcut where there is one); `ferrograph.demo` reuses
the history tree.
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
from typing import TYPE_CHECKING, Any, Callable, Iterable, Literal, Mapping, Optional

from ferrograph.checkpointers.base import (
    ERROR,
    INTERRUPT,
    BaseCheckpointSaver,
    CheckpointTuple,
    get_checkpoint_id,
)
from ferrograph.errors import CorruptCheckpointError, FerrographError

if TYPE_CHECKING:
    from ferrograph.checkpointers.stats import StorageStats

__all__ = [
    "Change",
    "ChannelDiff",
    "CheckpointDiff",
    "ThreadSummary",
    "HistoryRow",
    "checkpoint_view",
    "console",
    "diff",
    "history_rows",
    "jsonable",
    "render_diff",
    "render_history",
    "render_stats",
    "scan_threads",
    "state_record",
    "storage_stats",
    "get_checkpoint",
    "thread_history",
    "thread_page",
    "typed",
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
    saver: BaseCheckpointSaver,
    thread_id: Optional[str] = None,
    on_item: Optional[Callable[[], None]] = None,
    metadata: Optional[Mapping[str, Any]] = None,
) -> list[ThreadSummary]:
    """Every thread (or just `thread_id`; with `metadata`, only the threads that have a
    checkpoint whose metadata holds every key of it with that value) with its checkpoint count
    and last activity, most recently active first. A saver with `thread_summaries` (the SQL
    savers) computes them with aggregate queries without reading any checkpoint, so `on_item`
    is not called. Any other saver is read checkpoint by checkpoint through `saver.list`
    (values included, page by page: linear in the size of the database), calling `on_item`
    after each."""
    summarize = getattr(saver, "thread_summaries", None)
    if callable(summarize):
        return [ThreadSummary(*row) for row in summarize(thread_id, dict(metadata) if metadata else None)]
    if metadata:
        matching = {str(t.config["configurable"]["thread_id"]) for t in saver.list(None, filter=dict(metadata))}
        return [t for t in scan_threads(saver, thread_id, on_item) if t.thread_id in matching]
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
    #: The nodes whose step wrote this checkpoint (none for an input, an update or a fork).
    ran: list[str] = field(default_factory=list)
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
            "ran": self.ran,
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


def _ran(t: CheckpointTuple, parent: Optional[CheckpointTuple]) -> list[str]:
    """The nodes that ran in the step that wrote `t`: those whose `versions_seen` moved since
    the parent (a node records the versions it consumed; the engine's interrupt bookkeeping
    does too, and is left out), plus, for a step of the loop, the nodes of the `Send`s the
    parent held (a pushed task consumes no channel version)."""
    from ferrograph.types import Send

    seen = t.checkpoint.get("versions_seen") or {}
    before = (parent.checkpoint.get("versions_seen") or {}) if parent is not None else {}
    ran = {str(node) for node, versions in seen.items() if node != INTERRUPT and versions and versions != before.get(node)}
    if parent is not None and (t.metadata or {}).get("source") == "loop":
        for value in (parent.checkpoint.get("channel_values") or {}).values():
            if isinstance(value, (list, tuple)):
                ran.update(item.node for item in value if isinstance(item, Send))
    return sorted(ran)


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
            ran=_ran(t, parent),
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


def thread_history(saver: BaseCheckpointSaver, thread_id: str) -> tuple[list[HistoryRow], list[HistoryRow]]:
    """`history_rows` of every checkpoint of `thread_id` (all namespaces); a `FerrographError`
    when it has none."""
    tuples = list(saver.list({"configurable": {"thread_id": thread_id}}))
    if not tuples:
        raise FerrographError(f"thread {thread_id!r} has no checkpoints")
    return history_rows(tuples)


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
    """`value` as JSON-native data, for display: `typed` without the type marks (datetimes and
    dates in ISO form, UUIDs and decimals as strings, tuples and sets as lists, bytes as text
    or base64, enums by value, exceptions by repr), except that objects (dataclasses, pydantic
    models, LangChain messages, `Send`s) keep their class name as `__type__` beside their
    fields."""
    return _plain(typed(value))


def _plain(data: Any) -> Any:
    if isinstance(data, list):
        return [_plain(v) for v in data]
    if not isinstance(data, dict):
        return data
    name = data.get(TYPE_KEY)
    if name is None:
        return {k: _plain(v) for k, v in data.items()}
    inner = data["value"]
    if name == "dict":
        return {k if isinstance(k, str) else json.dumps(_plain(k)): _plain(v) for k, v in inner}
    if name in _VALUE_TAGS or "." in name or not isinstance(inner, dict):
        return _plain(inner)
    return {"__type__": name, **{k: _plain(v) for k, v in inner.items()}}


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


# ---- the web page's views (`ferrograph ui`): typed values, thread pages, diffs

#: The key that marks a value JSON has no type for in `typed`'s output.
TYPE_KEY = "$type"


def typed(value: Any) -> Any:
    """`value` as JSON that still says what JSON cannot: lists, dicts with string keys, strings,
    finite numbers, booleans and None stay as they are; any other value becomes
    `{"$type": NAME, "value": ...}` (tuple, set, datetime, date, time, timedelta, UUID, Decimal,
    bytes, float for nan/inf, enums, dataclasses, pydantic models and LangChain messages by their
    class name, exceptions), and a dict that cannot stay a plain object (keys that are not
    strings, or one named `$type`) becomes `{"$type": "dict", "value": [[key, value], ...]}`.
    The web page draws each typed value with its type; `diff` compares these forms, so a tuple
    that became a list is a change."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else _tag("float", repr(value))
    if isinstance(value, dict):
        if all(isinstance(k, str) for k in value) and TYPE_KEY not in value:
            return {k: typed(v) for k, v in value.items()}
        return _tag("dict", [[typed(k), typed(v)] for k, v in value.items()])
    if isinstance(value, list):
        return [typed(v) for v in value]
    if isinstance(value, tuple) and not hasattr(value, "_fields"):
        return _tag("tuple", [typed(v) for v in value])
    if isinstance(value, (set, frozenset)):
        try:
            members = sorted(value)
        except TypeError:
            members = sorted(value, key=repr)
        return _tag(type(value).__name__, [typed(v) for v in members])
    if isinstance(value, datetime.datetime):
        return _tag("datetime", value.isoformat())
    if isinstance(value, (datetime.date, datetime.time)):
        return _tag(type(value).__name__, value.isoformat())
    if isinstance(value, datetime.timedelta):
        return _tag("timedelta", value.total_seconds())
    if isinstance(value, uuid.UUID):
        return _tag("UUID", str(value))
    if isinstance(value, decimal.Decimal):
        return _tag("Decimal", str(value))
    if isinstance(value, (bytes, bytearray, memoryview)):
        data = bytes(value)
        try:
            return _tag("bytes", data.decode("utf-8"))
        except UnicodeDecodeError:
            return _tag("bytes", "base64:" + base64.b64encode(data).decode())
    if isinstance(value, enum.Enum):
        return _tag(f"{type(value).__name__}.{value.name}", typed(value.value))
    if isinstance(value, BaseException):
        return _tag(type(value).__name__, repr(value))
    name = type(value).__name__
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _tag(name, {f.name: typed(getattr(value, f.name)) for f in dataclasses.fields(value)})
    if hasattr(value, "_fields"):  # a NamedTuple
        return _tag(name, {f: typed(getattr(value, f)) for f in value._fields})
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        try:
            return _tag(name, typed(dump()))
        except Exception:
            pass
    slots = getattr(type(value), "__slots__", None)
    if slots and not isinstance(value, type):
        names = [slots] if isinstance(slots, str) else list(slots)
        if all(hasattr(value, n) for n in names):
            return _tag(name, {n: typed(getattr(value, n)) for n in names})
    return _tag(name, repr(value))


#: The type marks `typed` gives values of Python's own types (the others name a class).
_VALUE_TAGS = frozenset(
    ["float", "dict", "tuple", "set", "frozenset", "datetime", "date", "time", "timedelta", "UUID", "Decimal", "bytes"]
)


def _tag(name: str, value: Any) -> dict:
    return {TYPE_KEY: name, "value": value}


def _config_of(t: CheckpointTuple) -> dict:
    c = t.config["configurable"]
    return {"thread_id": c["thread_id"], "checkpoint_ns": c.get("checkpoint_ns", "") or "", "checkpoint_id": c["checkpoint_id"]}


def _state_values(t: CheckpointTuple) -> dict:
    channels = t.checkpoint.get("channel_values") or {}
    return {k: v for k, v in channels.items() if not is_internal(str(k))}


def thread_status(t: Optional[CheckpointTuple]) -> Optional[str]:
    """"failed" when the checkpoint's step has a task that failed (an `__error__` write),
    "interrupted" when one called `interrupt()` (an `__interrupt__` write), else None."""
    channels = {channel for _, channel, _ in (t.pending_writes or [])} if t is not None else set()
    if ERROR in channels:
        return "failed"
    if INTERRUPT in channels:
        return "interrupted"
    return None


def thread_page(
    saver: BaseCheckpointSaver,
    *,
    search: str = "",
    metadata: Optional[Mapping[str, Any]] = None,
    offset: int = 0,
    limit: int = 50,
) -> dict:
    """One page of the threads table: the threads whose id contains `search` (ignoring case)
    and, with `metadata`, that have a checkpoint with that metadata, most recently active
    first; `total` counts them all. The summaries come from `scan_threads` (one aggregate
    query on the SQL savers, no values read); only the threads on the page have their latest
    checkpoint read, for their status (see `thread_status`; "unreadable" when it cannot be
    decoded)."""
    if offset < 0 or limit < 1:
        raise FerrographError(f"a page needs offset >= 0 and limit >= 1, got offset={offset}, limit={limit}")
    threads = scan_threads(saver, metadata=metadata)
    if search:
        needle = search.casefold()
        threads = [t for t in threads if needle in t.thread_id.casefold()]
    page = []
    for summary in threads[offset : offset + limit]:
        try:
            status = thread_status(saver.get_tuple({"configurable": {"thread_id": summary.thread_id, "checkpoint_ns": ""}}))
        except CorruptCheckpointError:  # the table still lists it; opening the checkpoint says why
            status = "unreadable"
        page.append({**summary.as_json(), "status": status})
    return {"total": len(threads), "offset": offset, "limit": limit, "threads": page}


def get_checkpoint(saver: BaseCheckpointSaver, config: Mapping[str, Any]) -> CheckpointTuple:
    """The checkpoint `config` names (the thread's latest without a checkpoint_id), or a
    `FerrographError` saying which is missing."""
    configurable = dict(config.get("configurable") or {})
    if configurable.get("thread_id") is None:
        raise FerrographError("the config names no thread_id")
    configurable.setdefault("checkpoint_ns", "")
    found = saver.get_tuple({"configurable": configurable})
    if found is None:
        cid = configurable.get("checkpoint_id")
        what = f"checkpoint {cid!r} of thread" if cid else "thread"
        ns = f" in namespace {configurable['checkpoint_ns']!r}" if configurable["checkpoint_ns"] else ""
        raise FerrographError(f"{what} {configurable['thread_id']!r}{ns} not found")
    return found


def checkpoint_view(t: CheckpointTuple) -> dict:
    """A checkpoint for the web page: its ids, parent, time, `typed` state values, engine
    channels and metadata, pending writes grouped by task (in stored order), and the values of
    its interrupts and errors."""
    by_task: dict[str, list[dict]] = {}
    interrupts: list[Any] = []
    errors: list[dict] = []
    for task_id, channel, value in t.pending_writes or []:
        by_task.setdefault(task_id, []).append({"channel": channel, "value": typed(value)})
        if channel == INTERRUPT:
            interrupts.extend(typed(v) for v in (value if isinstance(value, (list, tuple)) else [value]))
        elif channel == ERROR:
            errors.append({"task_id": task_id, "error": typed(value)})
    channels = t.checkpoint.get("channel_values") or {}
    return {
        **_config_of(t),
        "parent_checkpoint_id": get_checkpoint_id(t.parent_config) if t.parent_config else None,
        "ts": t.checkpoint.get("ts"),
        "metadata": typed(dict(t.metadata or {})),
        "values": typed(_state_values(t)),
        "internal": typed({k: v for k, v in channels.items() if is_internal(str(k))}),
        "pending_writes": [{"task_id": task, "writes": writes} for task, writes in by_task.items()],
        "interrupts": interrupts,
        "errors": errors,
        "status": thread_status(t),
    }


@dataclass
class Change:
    """One difference between two states: at `path` (keys and list indexes from the state's
    root) a value was added, removed or changed; `before` and `after` are `typed` forms."""

    path: list
    kind: Literal["added", "removed", "changed"]
    before: Any = None
    after: Any = None

    def as_json(self) -> dict:
        return {"path": self.path, "kind": self.kind, "before": self.before, "after": self.after}


@dataclass
class ChannelDiff:
    """How one state channel differs from checkpoint a to checkpoint b: "added", "removed",
    "changed", or "appended" (a list that kept its items and grew: `appended` holds the new
    ones). `before` and `after` are `jsonable` forms."""

    channel: str
    kind: Literal["added", "removed", "changed", "appended"]
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
    """What changed in the state from checkpoint `a` to checkpoint `b` (each a config with
    thread_id, checkpoint_ns and checkpoint_id): `changes` path by path (`typed` forms, what the
    web page draws), `channels` channel by channel (`jsonable` forms, what `ferrograph diff`
    prints), and `pending_writes`, the writes stored between them: those of `a` and of each
    checkpoint after it on `b`'s line before `b` (the tasks whose results made the steps),
    oldest first."""

    a: dict
    b: dict
    changes: list[Change]
    channels: list[ChannelDiff] = field(default_factory=list)
    pending_writes: list[dict] = field(default_factory=list)

    def as_json(self) -> dict:
        return {
            "a": self.a,
            "b": self.b,
            "changes": [c.as_json() for c in self.changes],
            "channels": [c.as_json() for c in self.channels],
            "pending_writes": self.pending_writes,
        }


def diff(saver: BaseCheckpointSaver, config_a: Mapping[str, Any], config_b: Mapping[str, Any]) -> CheckpointDiff:
    """The state's changes from the checkpoint `config_a` names to the one `config_b` names
    (either the thread's latest when it has no checkpoint_id; they may be in different threads).
    Values are compared in their `typed` forms, dicts key by key, lists and tuples item by item;
    a set, or a value whose type changed, is one change."""
    a = get_checkpoint(saver, config_a)
    b = get_checkpoint(saver, config_b)
    changes: list[Change] = []
    _compare(typed(_state_values(a)), typed(_state_values(b)), [], changes)
    return CheckpointDiff(_config_of(a), _config_of(b), changes, _channel_diffs(a, b), _writes_between(saver, a, b))


def _channel_diffs(a: CheckpointTuple, b: CheckpointTuple) -> list[ChannelDiff]:
    """Per state channel of `a` and `b`, what happened to it, compared in `jsonable` forms."""
    before = {str(k): jsonable(v) for k, v in _state_values(a).items()}
    after = {str(k): jsonable(v) for k, v in _state_values(b).items()}
    channels = []
    for channel in sorted(set(before) | set(after)):
        if channel not in after:
            channels.append(ChannelDiff(channel, "removed", before=before[channel]))
        elif channel not in before:
            channels.append(ChannelDiff(channel, "added", after=after[channel]))
        elif before[channel] != after[channel]:
            grown = _appended(before[channel], after[channel])
            kind: Literal["changed", "appended"] = "appended" if grown is not None else "changed"
            channels.append(ChannelDiff(channel, kind, before=before[channel], after=after[channel], appended=grown))
    return channels


def _appended(before: Any, after: Any) -> Optional[list]:
    if isinstance(before, list) and isinstance(after, list) and len(after) > len(before) and after[: len(before)] == before:
        return after[len(before) :]
    return None


def _compare(before: Any, after: Any, path: list, out: list[Change]) -> None:
    if before == after and type(before) is type(after):
        return
    if isinstance(before, dict) and isinstance(after, dict):
        before_type, after_type = before.get(TYPE_KEY), after.get(TYPE_KEY)
        if before_type is None and after_type is None:
            for key in list(before) + [k for k in after if k not in before]:
                if key not in after:
                    out.append(Change(path + [key], "removed", before=before[key]))
                elif key not in before:
                    out.append(Change(path + [key], "added", after=after[key]))
                else:
                    _compare(before[key], after[key], path + [key], out)
            return
        # A tuple, dataclass, model or message of the same type: compare what it holds.
        if before_type == after_type and before_type not in ("set", "frozenset", "dict") and isinstance(before["value"], (dict, list)):
            _compare(before["value"], after["value"], path, out)
            return
    if isinstance(before, list) and isinstance(after, list):
        for i in range(max(len(before), len(after))):
            if i >= len(after):
                out.append(Change(path + [i], "removed", before=before[i]))
            elif i >= len(before):
                out.append(Change(path + [i], "added", after=after[i]))
            else:
                _compare(before[i], after[i], path + [i], out)
        return
    out.append(Change(path, "changed", before=before, after=after))


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
