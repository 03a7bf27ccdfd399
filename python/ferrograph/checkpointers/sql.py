"""Everything the SQL savers share: the SQL text for SQLite and Postgres, and every conversion
between rows and the saver protocol. The saver classes (sqlite.py, postgres.py, aio.py) only do
I/O.

Each protocol method is an *operation*: a generator that yields `Query` steps, receives each
step's rows (None for statements without a result), and returns the method's result. `list`
operations also yield `Emit` steps carrying finished tuples, so a caller can stream them page by
page. `drive` and `drive_iter` run an operation against a synchronous `execute(query)`; aio.py
has the asynchronous twins.

Storage (see migrations/versions): a channel value is stored once per (thread, namespace,
channel, version) in `ferrograph_checkpoint_blobs`; a checkpoint row holds the checkpoint
without its values, and its `channel_versions` say which blobs it needs. Checkpoint and metadata
are JSON (JSONB on Postgres), so metadata filters run in the database. Values, checkpoints and
metadata are encoded with ferrograph's Rust codec.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Callable, Generator, Iterator, Mapping, Optional, Sequence, TypeVar, Union

from ferrograph import _core
from ferrograph.checkpointers.base import WRITES_IDX_MAP, CheckpointTuple
from ferrograph.errors import CorruptCheckpointError

__all__ = [
    "MIGRATION_LOCK_KEY",
    "POSTGRES",
    "SQLITE",
    "Dialect",
    "Emit",
    "Query",
    "drive",
    "drive_iter",
    "sqlite_path",
]

#: Key of the Postgres advisory lock that serializes schema upgrades ("ferrog" in ASCII).
MIGRATION_LOCK_KEY = 0x666572726F67

CHECKPOINTS = "ferrograph_checkpoints"
BLOBS = "ferrograph_checkpoint_blobs"
WRITES = "ferrograph_checkpoint_writes"

#: Metadata filter keys must look like identifiers; anything else is refused before any SQL.
FILTER_KEY = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:\-]{0,127}$")
#: Rows fetched per round trip when listing, and keys per batched lookup.
PAGE = 100
BATCH = 500
#: Metadata keys LangGraph never copies from the config into a checkpoint's metadata.
EXCLUDED_METADATA_KEYS = frozenset(
    {
        "thread_id",
        "checkpoint_id",
        "checkpoint_ns",
        "checkpoint_map",
        "langgraph_step",
        "langgraph_node",
        "langgraph_triggers",
        "langgraph_path",
        "langgraph_checkpoint_ns",
    }
)


@dataclass(frozen=True)
class Query:
    """One statement. `params` is a sequence, a sequence of sequences when `many`, or None for a
    statement run without parameter parsing (migration DDL)."""

    sql: str
    params: Optional[Sequence[Any]] = ()
    many: bool = False


@dataclass(frozen=True)
class Emit:
    """Finished results of a streaming operation."""

    items: list


Step = Union[Query, Emit]
Op = Generator[Step, Any, Any]
T = TypeVar("T")


def drive(op: Op, execute: Callable[[Query], Any]) -> Any:
    """Runs an operation to its result with a synchronous `execute`."""
    try:
        step = next(op)
        while True:
            if isinstance(step, Emit):
                raise TypeError("a streaming operation must be run with drive_iter")
            step = op.send(execute(step))
    except StopIteration as stop:
        return stop.value


def drive_iter(op: Op, execute: Callable[[Query], Any]) -> Iterator[Any]:
    """Runs a streaming operation, yielding the items it emits."""
    try:
        step = next(op)
        while True:
            if isinstance(step, Emit):
                yield from step.items
                step = op.send(None)
            else:
                step = op.send(execute(step))
    except StopIteration:
        return


def sqlite_path(conn_string: str) -> str:
    """The file behind what users pass to `SqliteSaver.from_conn_string`: a path, `:memory:`,
    or a `sqlite:///path` URL."""
    if conn_string.startswith("sqlite:///"):
        rest = conn_string[len("sqlite:///") :]
        return rest or ":memory:"
    if conn_string in ("sqlite://", "sqlite:"):
        return ":memory:"
    return conn_string


def _placeholders(sql: str, style: str) -> str:
    # Statements are written with '?'; psycopg wants '%s'. No statement uses a literal '?' or '%'.
    assert "%" not in sql, sql
    return sql.replace("?", style)


class Dialect:
    """The SQL text of one database family. Only `name` differs in behaviour; everything else is
    strings and parameter shapes."""

    def __init__(self, name: str) -> None:
        assert name in ("sqlite", "postgresql")
        self.name = name
        pg = name == "postgresql"
        q = (lambda s: _placeholders(s, "%s")) if pg else (lambda s: s)
        json_in = "?::jsonb" if pg else "?"
        cp_out = "checkpoint::text" if pg else "checkpoint"
        md_out = "metadata::text" if pg else "metadata"

        self.select_checkpoint_columns = (
            f"SELECT thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, {cp_out}, {md_out} FROM {CHECKPOINTS}"
        )
        self.order_newest_first = " ORDER BY checkpoint_id DESC, thread_id DESC, checkpoint_ns DESC"
        self.upsert_checkpoint = q(
            f"INSERT INTO {CHECKPOINTS} (thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, checkpoint,"
            f" metadata, run_id) VALUES (?, ?, ?, ?, {json_in}, {json_in}, ?)"
            " ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id) DO UPDATE SET"
            " parent_checkpoint_id = excluded.parent_checkpoint_id, checkpoint = excluded.checkpoint,"
            " metadata = excluded.metadata, run_id = excluded.run_id"
        )
        self.insert_blob = q(
            f"INSERT INTO {BLOBS} (thread_id, checkpoint_ns, channel, version, blob) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (thread_id, checkpoint_ns, channel, version) DO NOTHING"
        )
        write_columns = (
            f"INSERT INTO {WRITES} (thread_id, checkpoint_ns, checkpoint_id, task_id, task_path, idx, channel, blob)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id, task_id, idx)"
        )
        self.insert_write = q(write_columns + " DO NOTHING")
        self.upsert_write = q(
            write_columns
            + " DO UPDATE SET channel = excluded.channel, blob = excluded.blob, task_path = excluded.task_path"
        )
        # Batched lookups join a bound list of keys: a JSON array on SQLite, parallel arrays on
        # Postgres. The statement text never depends on how many keys there are.
        if pg:
            blob_keys = "unnest(?::text[], ?::text[], ?::text[], ?::text[]) AS k(thread_id, checkpoint_ns, channel, version)"
            write_keys = "unnest(?::text[], ?::text[], ?::text[]) AS k(thread_id, checkpoint_ns, checkpoint_id)"
        else:
            blob_keys = (
                "(SELECT json_extract(value, '$[0]') AS thread_id, json_extract(value, '$[1]') AS checkpoint_ns,"
                " json_extract(value, '$[2]') AS channel, json_extract(value, '$[3]') AS version"
                " FROM json_each(?)) AS k"
            )
            write_keys = (
                "(SELECT json_extract(value, '$[0]') AS thread_id, json_extract(value, '$[1]') AS checkpoint_ns,"
                " json_extract(value, '$[2]') AS checkpoint_id FROM json_each(?)) AS k"
            )
        self.select_blobs = q(
            f"SELECT b.thread_id, b.checkpoint_ns, b.channel, b.version, b.blob FROM {blob_keys}"
            f" JOIN {BLOBS} AS b ON b.thread_id = k.thread_id AND b.checkpoint_ns = k.checkpoint_ns"
            " AND b.channel = k.channel AND b.version = k.version"
        )
        self.select_writes = q(
            f"SELECT w.thread_id, w.checkpoint_ns, w.checkpoint_id, w.task_id, w.channel, w.blob FROM {write_keys}"
            f" JOIN {WRITES} AS w ON w.thread_id = k.thread_id AND w.checkpoint_ns = k.checkpoint_ns"
            " AND w.checkpoint_id = k.checkpoint_id ORDER BY w.task_path, w.task_id, w.idx"
        )

        self.delete_thread = tuple(
            q(f"DELETE FROM {table} WHERE thread_id = ?") for table in (WRITES, BLOBS, CHECKPOINTS)
        )
        self.copy_thread = (
            q(
                f"INSERT INTO {CHECKPOINTS} (thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id,"
                " checkpoint, metadata, run_id) SELECT ?, checkpoint_ns, checkpoint_id, parent_checkpoint_id,"
                f" checkpoint, metadata, run_id FROM {CHECKPOINTS} WHERE thread_id = ?"
                " ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id) DO NOTHING"
            ),
            q(
                f"INSERT INTO {BLOBS} (thread_id, checkpoint_ns, channel, version, blob)"
                f" SELECT ?, checkpoint_ns, channel, version, blob FROM {BLOBS} WHERE thread_id = ?"
                " ON CONFLICT (thread_id, checkpoint_ns, channel, version) DO NOTHING"
            ),
            q(
                f"INSERT INTO {WRITES} (thread_id, checkpoint_ns, checkpoint_id, task_id, task_path, idx, channel,"
                " blob) SELECT ?, checkpoint_ns, checkpoint_id, task_id, task_path, idx, channel, blob"
                f" FROM {WRITES} WHERE thread_id = ?"
                " ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id, task_id, idx) DO NOTHING"
            ),
        )

        in_list = "= ANY(?::text[])" if pg else "IN (SELECT value FROM json_each(?))"
        self.threads_of_runs = q(f"SELECT DISTINCT thread_id FROM {CHECKPOINTS} WHERE run_id {in_list}")
        self.delete_runs = (
            q(
                f"DELETE FROM {WRITES} AS w WHERE EXISTS (SELECT 1 FROM {CHECKPOINTS} AS c"
                " WHERE c.thread_id = w.thread_id AND c.checkpoint_ns = w.checkpoint_ns"
                f" AND c.checkpoint_id = w.checkpoint_id AND c.run_id {in_list})"
            ),
            q(f"DELETE FROM {CHECKPOINTS} WHERE run_id {in_list}"),
        )
        self.prune_keep_latest = (
            q(
                f"DELETE FROM {CHECKPOINTS} AS c WHERE c.thread_id {in_list} AND c.checkpoint_id <"
                f" (SELECT MAX(l.checkpoint_id) FROM {CHECKPOINTS} AS l"
                " WHERE l.thread_id = c.thread_id AND l.checkpoint_ns = c.checkpoint_ns)"
            ),
            q(
                f"DELETE FROM {WRITES} AS w WHERE w.thread_id {in_list} AND NOT EXISTS (SELECT 1 FROM {CHECKPOINTS}"
                " AS c WHERE c.thread_id = w.thread_id AND c.checkpoint_ns = w.checkpoint_ns"
                " AND c.checkpoint_id = w.checkpoint_id)"
            ),
        )
        self.prune_delete = tuple(
            q(f"DELETE FROM {table} WHERE thread_id {in_list}") for table in (WRITES, BLOBS, CHECKPOINTS)
        )
        # A blob is garbage once no checkpoint of its thread and namespace names its version.
        versions = (
            "jsonb_each_text(c.checkpoint -> 'channel_versions') AS v"
            if pg
            else "json_each(c.checkpoint, '$.channel_versions') AS v"
        )
        version_text = "v.value" if pg else "CAST(v.value AS TEXT)"
        self.collect_blobs = q(
            f"DELETE FROM {BLOBS} WHERE thread_id {in_list} AND (thread_id, checkpoint_ns, channel, version) NOT IN"
            f" (SELECT c.thread_id, c.checkpoint_ns, v.key, {version_text} FROM {CHECKPOINTS} AS c, {versions}"
            f" WHERE c.thread_id {in_list})"
        )

        if pg:
            self.lock_migrations: Optional[str] = f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY})"
            self.version_table_exists = q("SELECT to_regclass(?) IS NOT NULL")
        else:
            # SQLite serializes upgrades with the write lock its runner takes (BEGIN IMMEDIATE).
            self.lock_migrations = None
            self.version_table_exists = q("SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = ?")
        self._q = q
        self._pg = pg

    def text_list(self, values: Sequence[str]) -> Any:
        """The parameter for an `IN` list of strings."""
        return [str(v) for v in values] if self._pg else json.dumps([str(v) for v in values])

    def keys_param(self, keys: Sequence[tuple[str, ...]], width: int) -> list[Any]:
        """The parameters for a batched key lookup (`select_blobs`, `select_writes`)."""
        if self._pg:
            return [[k[i] for k in keys] for i in range(width)]
        return [json.dumps(keys)]

    def metadata_condition(self, key: str, value: Any) -> tuple[str, list[Any], bool]:
        """SQL matching metadata[key] == value, its parameters, and whether the rows it keeps
        still need checking in Python (SQLite cannot compare JSON objects and arrays as values)."""
        if not isinstance(key, str) or not FILTER_KEY.match(key):
            raise ValueError(
                f"invalid metadata filter key {key!r}: keys are letters, digits, '_', '-', '.', ':' (at most 128)"
            )
        if self._pg:
            encoded = _core.dumps(value, context=f"metadata filter {key!r}").decode()
            return "COALESCE(metadata -> ?, 'null'::jsonb) = ?::jsonb", [key, encoded], False
        path = f'$."{key}"'
        if value is None or isinstance(value, (str, int, float)):
            return "json_extract(metadata, ?) IS ?", [path, int(value) if isinstance(value, bool) else value], False
        return "json_type(metadata, ?) IN ('object', 'array')", [path], True

    def select_checkpoints(self, conditions: Sequence[str], limit: Optional[int]) -> str:
        """A checkpoint query, newest first; `conditions` are written with '?' placeholders."""
        sql = self.select_checkpoint_columns
        if conditions:
            sql += " WHERE " + " AND ".join(conditions)
        sql += self.order_newest_first
        if limit is not None:
            sql += " LIMIT ?"
        return self._q(sql)


SQLITE = Dialect("sqlite")
POSTGRES = Dialect("postgresql")


@dataclass
class _Record:
    thread_id: str
    checkpoint_ns: str
    checkpoint_id: str
    parent_checkpoint_id: Optional[str]
    checkpoint: dict
    metadata: dict


def _where(config: Optional[Mapping[str, Any]]) -> tuple[str, str, Optional[str]]:
    configurable = (config or {}).get("configurable") or {}
    thread_id = configurable.get("thread_id")
    if thread_id is None:
        raise ValueError("config['configurable'] must name a thread_id")
    return str(thread_id), configurable.get("checkpoint_ns", "") or "", configurable.get("checkpoint_id")


def _config(thread_id: str, checkpoint_ns: str, checkpoint_id: str) -> dict:
    return {"configurable": {"thread_id": thread_id, "checkpoint_ns": checkpoint_ns, "checkpoint_id": checkpoint_id}}


def _text(data: Any) -> Union[str, bytes]:
    return bytes(data) if isinstance(data, memoryview) else data


def _decode(data: Any, what: str, thread_id: str, checkpoint_ns: str, checkpoint_id: str) -> Any:
    try:
        return _core.loads(_text(data))
    except Exception as e:  # the codec's own errors and anything a corrupt row provokes
        ns = f", namespace {checkpoint_ns!r}" if checkpoint_ns else ""
        raise CorruptCheckpointError(
            f"cannot read {what} of checkpoint {checkpoint_id!r} (thread {thread_id!r}{ns}): {e}"
        ) from e


def _record(row: Sequence[Any]) -> _Record:
    thread_id, checkpoint_ns, checkpoint_id, parent, checkpoint, metadata = row
    decoded = _decode(checkpoint, "the checkpoint", thread_id, checkpoint_ns, checkpoint_id)
    if not isinstance(decoded, dict):
        raise CorruptCheckpointError(
            f"checkpoint {checkpoint_id!r} (thread {thread_id!r}) is not a JSON object"
        )
    return _Record(
        thread_id,
        checkpoint_ns,
        checkpoint_id,
        parent,
        decoded,
        _decode(metadata, "the metadata", thread_id, checkpoint_ns, checkpoint_id),
    )


def _chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _load_tuples(d: Dialect, records: Sequence[_Record]) -> Generator[Step, Any, list[CheckpointTuple]]:
    """Fetches the channel values and pending writes of `records` in batches (a value shared by
    many checkpoints is read once) and builds their tuples."""
    needed = sorted(
        {
            (r.thread_id, r.checkpoint_ns, str(channel), str(version))
            for r in records
            for channel, version in (r.checkpoint.get("channel_versions") or {}).items()
        }
    )
    blobs: dict[tuple[str, str, str, str], Any] = {}
    for chunk in _chunks(needed, BATCH):
        for thread_id, checkpoint_ns, channel, version, blob in (yield Query(d.select_blobs, d.keys_param(chunk, 4))):
            blobs[(thread_id, checkpoint_ns, channel, version)] = blob

    writes: dict[tuple[str, str, str], list] = defaultdict(list)
    keys = [(r.thread_id, r.checkpoint_ns, r.checkpoint_id) for r in records]
    for chunk in _chunks(keys, BATCH):
        for thread_id, checkpoint_ns, checkpoint_id, task_id, channel, blob in (
            yield Query(d.select_writes, d.keys_param(chunk, 3))
        ):
            value = _decode(blob, f"the pending write to {channel!r}", thread_id, checkpoint_ns, checkpoint_id)
            writes[(thread_id, checkpoint_ns, checkpoint_id)].append((task_id, channel, value))

    tuples = []
    for r in records:
        values = {}
        for channel, version in (r.checkpoint.get("channel_versions") or {}).items():
            blob = blobs.get((r.thread_id, r.checkpoint_ns, str(channel), str(version)))
            if blob is not None:
                values[channel] = _decode(
                    blob, f"channel {channel!r}", r.thread_id, r.checkpoint_ns, r.checkpoint_id
                )
        checkpoint = dict(r.checkpoint)
        checkpoint["channel_values"] = values
        tuples.append(
            CheckpointTuple(
                config=_config(r.thread_id, r.checkpoint_ns, r.checkpoint_id),
                checkpoint=checkpoint,  # type: ignore[arg-type]
                metadata=r.metadata,  # type: ignore[arg-type]
                parent_config=(
                    _config(r.thread_id, r.checkpoint_ns, r.parent_checkpoint_id) if r.parent_checkpoint_id else None
                ),
                pending_writes=writes.get((r.thread_id, r.checkpoint_ns, r.checkpoint_id), []),
            )
        )
    return tuples


def get_tuple(d: Dialect, config: Mapping[str, Any]) -> Op:
    thread_id, checkpoint_ns, checkpoint_id = _where(config)
    if checkpoint_id:
        sql = d.select_checkpoints(["thread_id = ?", "checkpoint_ns = ?", "checkpoint_id = ?"], None)
        rows = yield Query(sql, [thread_id, checkpoint_ns, checkpoint_id])
    else:
        sql = d.select_checkpoints(["thread_id = ?", "checkpoint_ns = ?"], 1)
        rows = yield Query(sql, [thread_id, checkpoint_ns, 1])
    if not rows:
        return None
    return (yield from _load_tuples(d, [_record(rows[0])]))[0]


def list_checkpoints(
    d: Dialect,
    config: Optional[Mapping[str, Any]],
    *,
    filter: Optional[Mapping[str, Any]] = None,
    before: Optional[Mapping[str, Any]] = None,
    limit: Optional[int] = None,
) -> Op:
    """Newest first, a page at a time; emits tuples."""
    conditions: list[str] = []
    params: list[Any] = []
    configurable = (config or {}).get("configurable") or {}
    if configurable.get("thread_id") is not None:
        conditions.append("thread_id = ?")
        params.append(str(configurable["thread_id"]))
    if configurable.get("checkpoint_ns") is not None:
        conditions.append("checkpoint_ns = ?")
        params.append(configurable["checkpoint_ns"])
    if configurable.get("checkpoint_id"):
        conditions.append("checkpoint_id = ?")
        params.append(configurable["checkpoint_id"])
    before_id = ((before or {}).get("configurable") or {}).get("checkpoint_id")
    if before_id:
        conditions.append("checkpoint_id < ?")
        params.append(before_id)
    in_python: dict[str, Any] = {}
    for key, value in (filter or {}).items():
        condition, condition_params, check_in_python = d.metadata_condition(key, value)
        conditions.append(condition)
        params.extend(condition_params)
        if check_in_python:
            in_python[key] = value
    if limit is not None and limit <= 0:
        return

    remaining = limit
    after: Optional[list[Any]] = None
    while True:
        page = PAGE if (in_python or remaining is None) else min(PAGE, remaining)
        page_conditions = conditions + (["(checkpoint_id, thread_id, checkpoint_ns) < (?, ?, ?)"] if after else [])
        rows = yield Query(d.select_checkpoints(page_conditions, page), params + (after or []) + [page])
        records = [_record(row) for row in rows]
        if in_python:
            records = [r for r in records if all(r.metadata.get(k) == v for k, v in in_python.items())]
        if remaining is not None:
            records = records[:remaining]
            remaining -= len(records)
        if records:
            yield Emit((yield from _load_tuples(d, records)))
        if len(rows) < page or remaining == 0:
            return
        last = rows[-1]
        after = [last[2], last[0], last[1]]


def checkpoint_metadata(config: Mapping[str, Any], metadata: Mapping[str, Any]) -> dict:
    """The metadata stored with a checkpoint: the given metadata plus the caller's
    `config["metadata"]` and its scalar `configurable` keys, as LangGraph's savers store it."""
    merged = {k: v.replace("\x00", "") if isinstance(v, str) else v for k, v in metadata.items()}
    merged.pop("writes", None)
    for source in (config.get("metadata"), config.get("configurable")):
        for key, value in (source or {}).items():
            if key in merged or key in EXCLUDED_METADATA_KEYS or key.startswith("__"):
                continue
            if isinstance(value, str):
                merged[key] = value.replace("\x00", "")
            elif isinstance(value, (int, float, bool)):
                merged[key] = value
    return merged


def put(d: Dialect, config: Mapping[str, Any], checkpoint: Mapping[str, Any], metadata: Mapping[str, Any],
        new_versions: Mapping[str, Any]) -> Op:
    thread_id, checkpoint_ns, parent_id = _where(config)
    stored = dict(checkpoint)
    values = stored.pop("channel_values", None) or {}
    checkpoint_id = stored["id"]
    blobs = [
        (
            thread_id,
            checkpoint_ns,
            channel,
            str(version),
            _core.dumps(values[channel], context=channel) if channel in values else None,
        )
        for channel, version in new_versions.items()
    ]
    merged = checkpoint_metadata(config, metadata)
    run_id = merged.get("run_id")
    row = (
        thread_id,
        checkpoint_ns,
        checkpoint_id,
        parent_id,
        _core.dumps(stored, context="checkpoint").decode(),
        _core.dumps(merged, context="metadata").decode(),
        str(run_id) if run_id is not None else None,
    )
    if blobs:
        yield Query(d.insert_blob, blobs, many=True)
    yield Query(d.upsert_checkpoint, row)
    return _config(thread_id, checkpoint_ns, checkpoint_id)


def put_writes(d: Dialect, config: Mapping[str, Any], writes: Sequence[tuple[str, Any]], task_id: str,
               task_path: str = "") -> Op:
    thread_id, checkpoint_ns, checkpoint_id = _where(config)
    if not checkpoint_id:
        raise ValueError("put_writes needs config['configurable']['checkpoint_id']")
    special, regular = [], []
    for index, (channel, value) in enumerate(writes):
        row = (
            thread_id,
            checkpoint_ns,
            checkpoint_id,
            task_id,
            task_path,
            WRITES_IDX_MAP.get(channel, index),
            channel,
            _core.dumps(value, context=channel),
        )
        (special if channel in WRITES_IDX_MAP else regular).append(row)
    if regular:
        yield Query(d.insert_write, regular, many=True)
    if special:
        yield Query(d.upsert_write, special, many=True)


def delete_thread(d: Dialect, thread_id: str) -> Op:
    for sql in d.delete_thread:
        yield Query(sql, [str(thread_id)])


def copy_thread(d: Dialect, source_thread_id: str, target_thread_id: str) -> Op:
    for sql in d.copy_thread:
        yield Query(sql, [str(target_thread_id), str(source_thread_id)])


def delete_for_runs(d: Dialect, run_ids: Sequence[str]) -> Op:
    if not run_ids:
        return
    runs = d.text_list(run_ids)
    threads = [row[0] for row in (yield Query(d.threads_of_runs, [runs]))]
    if not threads:
        return
    for sql in d.delete_runs:
        yield Query(sql, [runs])
    listed = d.text_list(threads)
    yield Query(d.collect_blobs, [listed, listed])


def prune(d: Dialect, thread_ids: Sequence[str], strategy: str = "keep_latest") -> Op:
    if strategy not in ("keep_latest", "delete"):
        raise ValueError(f"unknown prune strategy {strategy!r}: use 'keep_latest' or 'delete'")
    if not thread_ids:
        return
    listed = d.text_list(thread_ids)
    if strategy == "delete":
        for sql in d.prune_delete:
            yield Query(sql, [listed])
        return
    for sql in d.prune_keep_latest:
        yield Query(sql, [listed])
    yield Query(d.collect_blobs, [listed, listed])


def setup(d: Dialect, script_location: Optional[str] = None) -> Op:
    """Brings the schema to the latest revision; runs inside the runner's write transaction,
    which (with the advisory lock on Postgres) keeps two processes from upgrading at once."""
    from ferrograph.migrations import VERSION_TABLE, upgrade_statements

    if d.lock_migrations:
        yield Query(d.lock_migrations)
    current = None
    if (yield Query(d.version_table_exists, [VERSION_TABLE]))[0][0]:
        rows = yield Query(f"SELECT version_num FROM {VERSION_TABLE}")
        current = rows[0][0] if rows else None
    for statement in upgrade_statements(d.name, current, script_location):
        yield Query(statement, None)

