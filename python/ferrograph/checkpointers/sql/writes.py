"""Writes: `put`, `put_writes` and a batch of them, as operations (see runner.py). A put stores
the checkpoint without its values and each new channel version's value once (as an append delta
when it extends the value stored last; see deltas.py); on Postgres in one statement, on SQLite
statement by statement in the runner's transaction. A marked put (`EXPECT_LATEST`) is refused
when another writer has advanced its thread."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Generator, Mapping, Optional, Sequence, Union

from ferrograph import _core
from ferrograph.checkpointers.base import EXPECT_LATEST
from ferrograph.checkpointers.encryption import Encryption, open_value, seal, seal_metadata
from ferrograph.checkpointers.limits import SizeLimits
from ferrograph.checkpointers.sql.deltas import DeltaCache, Line, Stored, delta
from ferrograph.checkpointers.sql.dialect import Dialect
from ferrograph.checkpointers.sql.postgres import PUT_REFUSED, PostgresDialect
from ferrograph.checkpointers.sql.rows import config_for, location, text
from ferrograph.checkpointers.sql.runner import Op, Query, Step
from ferrograph.checkpointers.sql.sqlite import SqliteDialect
from ferrograph.errors import ConcurrentUpdateError, InvalidConfigError

__all__ = ["EXPECT_LATEST", "INLINE_MAX", "batch", "put", "put_writes", "refused_put"]

#: A channel value whose encoding is at most this many bytes is stored in the row of each
#: checkpoint that holds it (migration 0005), where a read finds it without looking up a row of
#: its own; a bigger one is stored once per version, in a blob row. Small values repeat from
#: row to row, which costs little; big ones (a chat's messages) would not.
INLINE_MAX = 256


@dataclass
class _Planned:
    """One value of a put that goes to a blob row: its encoding and, when it can be stored as an
    append delta, the delta and what it extends. `again`: a value the checkpoint carries at an
    earlier version, written (if its row is missing) but not remembered. `row`: the bytes a
    whole row stores (the encoding, encrypted with the saver's encryption; deltas compare
    encodings, so they are found before encryption and their row bytes encrypted after)."""

    channel: str
    version: str
    encoded: bytes
    delta: Optional[tuple[bytes, list[str]]] = None
    previous: Optional[Stored] = None
    again: bool = False
    row: bytes = b""

    def remembered(self, as_delta: bool) -> Stored:
        """What the delta cache keeps of this value once stored (as a delta or whole)."""
        if as_delta:
            assert self.delta is not None
            return Stored(self.version, self.encoded, self.delta[1], len(self.delta[0]))
        # Only a list may be extended by a later version: other encodings are not kept.
        return Stored(self.version, self.encoded if self.encoded[:1] == b"[" else b"", None, len(self.row))


def put(d: Dialect, config: Mapping[str, Any], checkpoint: Union[Mapping[str, Any], _core.EncodedCheckpoint], metadata: Mapping[str, Any],
        new_versions: Mapping[str, Any], deltas: Optional[DeltaCache] = None, limits: Optional[SizeLimits] = None,
        encryption: Optional[Encryption] = None, held: Optional[list[list]] = None,
        latest: Optional[set[tuple[str, str, Optional[str]]]] = None) -> Op:
    """Stores the checkpoint: its small values in its row, each new big value in a blob row;
    with `deltas`, a list that extends the value this saver stored last for the channel is
    stored as a delta (see deltas.py), and the encodings of the values it stored last are not
    made again for the checkpoints that carry them on. The checkpoint, its new values and its
    metadata are encoded, and each channel's place decided (the row, a blob row, nowhere), in
    one call (`_core.plan_put`); only a big value's append delta is worked out here.

    On Postgres this is at most two statements, neither read before the last: the line's lock
    (a marked put only) and `PostgresDialect.put_statement`. A runner may therefore send them
    together and commit them with one round trip (`PostgresSaver` does on an autocommit
    connection). Only a stale delta cache makes it run them once more. With `encryption`, every
    value goes to a blob row (the checkpoint row's value column is text on Postgres), each row
    (whole or delta) stored encrypted; only values an unencrypted saver stored in the parent's row
    are carried on in clear.

    `held` (in a batch): the checkpoint rows of the batch's earlier puts, not stored yet; this
    put's row is added to them rather than stored when the row is all it stores (on SQLite also
    after its values), and they are stored before this put reads the checkpoint table.
    `latest` (in a batch): the checkpoints the batch's earlier puts stored, to which this put
    adds its own; a marked put whose parent is one of them is not checked (see `batch`)."""
    thread_id, checkpoint_ns, parent_id = location(config)
    line = deltas.line(thread_id, checkpoint_ns) if deltas is not None else _NOTHING
    checkpoint_id, stored, metadata_json, run_id, inline, blob_channels, blobs, learnt, carried = _core.plan_put(
        config, checkpoint, metadata, new_versions, d.drops_metadata_writes, line,
        INLINE_MAX if encryption is None else -1, limits or None, thread_id, checkpoint_ns, bool(parent_id),
    )
    check = bool((config.get("configurable") or {}).get(EXPECT_LATEST))
    if latest is not None:
        check = check and (thread_id, checkpoint_ns, parent_id) not in latest
        latest.add((thread_id, checkpoint_ns, checkpoint_id))
    planned: list[_Planned] = []
    for channel, version, encoded, remembered, again in blobs:
        as_delta = None if again else delta(remembered, version, encoded)
        if as_delta is not None and encryption is not None:
            as_delta = (seal(encryption, as_delta[0]), as_delta[1])
        planned.append(_Planned(channel, version, encoded, as_delta, remembered if as_delta is not None else None, again,
                                seal(encryption, encoded)))
    # The held rows go out before this put reads the checkpoint table, and on Postgres before a
    # put whose own statement stores its row (the rows keep their order).
    if held and (carried or check or (planned and d.puts_in_one_statement)):
        yield d.upsert_checkpoints(held)
        held.clear()
    if carried:
        assert parent_id  # a channel is carried from a parent only
        inline = yield from _carry(d, thread_id, checkpoint_ns, parent_id, carried, inline, blob_channels, learnt, encryption)
    if encryption is not None:
        metadata_json = seal_metadata(encryption, metadata_json)
    row = [
        thread_id,
        checkpoint_ns,
        checkpoint_id,
        parent_id,
        stored,
        metadata_json,
        run_id,
        inline,
        d.chain_param(blob_channels),
    ]
    as_deltas: set[str] = set()
    if held is not None and not planned and not check:
        held.append(row)  # the row is all this put stores: it goes with the batch's others
    elif isinstance(d, PostgresDialect):
        as_deltas = yield from _put_one_statement(d, planned, row, check)
    else:
        assert isinstance(d, SqliteDialect)
        as_deltas = yield from _put_statements(d, planned, row, check, first=not carried, held=held)
    if deltas is not None:
        for p in planned:
            if not p.again:
                learnt[p.channel] = p.remembered(p.channel in as_deltas)
        if learnt:
            deltas.update(thread_id, checkpoint_ns, learnt)
    return config_for(thread_id, checkpoint_ns, checkpoint_id)


_NOTHING: Line = {}


def _carry(d: Dialect, thread_id: str, checkpoint_ns: str, parent_id: str, channels: Sequence[tuple[str, str]],
           inline: bytes, blob_channels: list, learnt: dict, encryption: Optional[Encryption] = None) -> Generator[Step, Any, bytes]:
    """Channels the checkpoint carries on from its parent without their values (a caller that
    hands over only the new versions' values), which this saver did not store last: a small
    value is copied from the parent's row; any other is in a blob row at its version (or the
    channel has none). Returns `inline` (the row's small values) with the copied ones."""
    rows = yield Query(d.select_channel_values, [thread_id, checkpoint_ns, parent_id])
    held = _core.loads(open_value(encryption, text(rows[0][0]))) if rows and rows[0][0] is not None else {}
    copied = []
    for channel, version in channels:
        if channel in held:
            encoded = _core.dumps(held[channel], context=channel)
            copied.append(json.dumps(channel).encode() + b":" + encoded)
            learnt[channel] = Stored(version, encoded, None, 0, True)
        else:
            blob_channels.append(channel)
    if not copied:
        return inline
    return inline[:-1] + (b"," if len(inline) > 2 else b"") + b",".join(copied) + b"}"


def _put_one_statement(d: PostgresDialect, planned: Sequence[_Planned], row: list, check: bool) -> Generator[Step, Any, set]:
    """`put` on Postgres; returns the channels stored as deltas. Nothing is read back: a
    refused put raises (see `PostgresDialect.put_statement` and `refused_put`). In a batch,
    `put` has stored the held rows before."""
    thread_id, checkpoint_ns, checkpoint_id, parent_id = row[:4]
    if check:
        yield Query(d.lock_line, [thread_id, checkpoint_ns], rows=False)
    with_delta = [p for p in planned if p.delta is not None]
    whole = [p for p in planned if p.delta is None]
    params: list[Any] = []
    if check:
        params += [thread_id, checkpoint_ns, parent_id or None, checkpoint_id]
    if with_delta:
        params += [thread_id, checkpoint_ns]
        for p in with_delta:
            assert p.delta is not None and p.previous is not None
            blob, chain = p.delta
            previous = p.previous
            params += [p.channel, p.version, blob, d.chain_param(chain), previous.version,
                       None if previous.chain is None else d.chain_param(previous.chain), previous.row_length]
        params += [thread_id, checkpoint_ns]
    if whole:
        params += [thread_id, checkpoint_ns]
        for p in whole:
            params += [p.channel, p.version, p.row]
    params += row
    params += [thread_id, checkpoint_ns, parent_id] * (check + bool(with_delta))
    yield Query(d.put_statement(check, len(with_delta), len(whole)), params, rows=False, depends=check or bool(with_delta))
    return {p.channel for p in with_delta}


def refused_put(error: BaseException) -> Optional[Union[ConcurrentUpdateError, bool]]:
    """What a Postgres error says of a refused put (see `PostgresDialect.put_statement`): the
    ConcurrentUpdateError of a failed concurrent-writer check, True for a delta that could not
    be written (the saver's delta cache is stale: forget it and run the operation again), or
    None for any other error."""
    message = str(error)
    if PUT_REFUSED + ": " not in message:
        return None
    what, thread_id, checkpoint_ns, parent_id, latest = json.loads(message.split(PUT_REFUSED + ": ", 1)[1].splitlines()[0])
    if what == "stale delta":
        return True
    return _concurrent_update(thread_id, checkpoint_ns, parent_id, latest)


def _put_statements(d: SqliteDialect, planned: Sequence[_Planned], row: list, check: bool, first: bool,
                    held: Optional[list[list]] = None) -> Generator[Step, Any, set]:
    """`put` on SQLite, in the runner's transaction; returns the channels stored as deltas.
    A put whose values all go in its row (`first`: nothing was read before) is one statement,
    which an autocommit connection runs without a transaction around it. With `held`, the row
    is added to it instead (see `put`)."""
    thread_id, checkpoint_ns, checkpoint_id, parent_id = row[:4]
    if check:
        yield from _check_latest(d, thread_id, checkpoint_ns, parent_id, checkpoint_id)
    as_deltas = set()
    blobs = []
    for p in planned:
        if p.delta is not None:
            assert p.previous is not None
            blob, chain = p.delta
            previous = p.previous
            inserted = yield Query(
                d.insert_delta,
                [
                    thread_id, checkpoint_ns, p.channel, p.version, blob, d.chain_param(chain),
                    thread_id, checkpoint_ns, p.channel, previous.version,
                    None if previous.chain is None else d.chain_param(previous.chain), previous.row_length,
                ],
            )
            if inserted:
                as_deltas.add(p.channel)
                continue
        blobs.append((thread_id, checkpoint_ns, p.channel, p.version, p.row))
    if len(blobs) == 1:
        yield Query(d.insert_blob, blobs[0], rows=False)
    elif blobs:
        yield Query(d.insert_blob, blobs, many=True, rows=False)
    if held is not None:
        held.append(row)
    else:
        yield Query(d.upsert_checkpoint, row, rows=False, alone=first and not check and not planned)
    return as_deltas


def _check_latest(d: SqliteDialect, thread_id: str, checkpoint_ns: str, parent_id: Optional[str], checkpoint_id: str) -> Op:
    """Refuses (ConcurrentUpdateError) a marked put whose parent is no longer the latest
    checkpoint of its line, before anything is written; runs in the put's write transaction,
    whose lock keeps two writers from both passing it. Storing the same checkpoint again (a
    retried put) passes."""
    rows = yield Query(d.latest_checkpoint_id, [thread_id, checkpoint_ns])
    latest = rows[0][0] if rows else None
    if latest is not None and latest == checkpoint_id:
        return
    if latest != (parent_id or None):
        raise _concurrent_update(thread_id, checkpoint_ns, parent_id, latest)


def _concurrent_update(thread_id: str, checkpoint_ns: str, parent_id: Optional[str], latest: Optional[str]) -> ConcurrentUpdateError:
    ns = f", namespace {json.dumps(checkpoint_ns)}" if checkpoint_ns else ""
    parent = f"checkpoint {json.dumps(parent_id)}" if parent_id else "no checkpoint"
    return ConcurrentUpdateError(
        f"concurrent update of thread {json.dumps(thread_id)}{ns}: this run continues from {parent}, but another"
        f" writer has advanced the thread since (its latest checkpoint is {json.dumps(latest) if latest else 'none'});"
        " reload the thread's state and run again"
    )


def put_writes(d: Dialect, config: Mapping[str, Any], writes: Sequence[tuple[str, Any]], task_id: str,
               task_path: str = "", limits: Optional[SizeLimits] = None, encryption: Optional[Encryption] = None) -> Op:
    rows = _write_rows(config, writes, task_id, task_path, limits, encryption)
    if rows:
        yield d.put_writes(rows)


def _write_rows(config: Mapping[str, Any], writes: Sequence[tuple[str, Any]], task_id: str, task_path: str,
                limits: Optional[SizeLimits], encryption: Optional[Encryption]) -> list[tuple]:
    """The rows `put_writes` stores (see `Dialect.put_writes`, `_core.write_rows`)."""
    thread_id, checkpoint_ns, checkpoint_id = location(config)
    if not checkpoint_id:
        raise InvalidConfigError("put_writes needs config['configurable']['checkpoint_id']")
    rows = _core.write_rows(writes, thread_id, checkpoint_ns, checkpoint_id, task_id, task_path, limits or None)
    if encryption is None:
        return rows
    return [(*row[:7], seal(encryption, row[7])) for row in rows]


def batch(d: Dialect, calls: Sequence[tuple[str, tuple]], deltas: Optional[DeltaCache] = None,
          limits: Optional[SizeLimits] = None, encryption: Optional[Encryption] = None) -> Op:
    """Runs saver calls (`("put", args)` or `("put_writes", args)`, the protocol methods'
    positional arguments) one after another, for the runner to put in one transaction; returns
    their results. If one fails, the runner rolls them all back: what the delta cache learnt
    from the earlier puts is forgotten, since those rows will not exist.

    A put marked to continue the latest checkpoint (`EXPECT_LATEST`) whose parent an earlier
    put of the batch stored is not checked again: that put passed the check and holds the
    line's lock until the transaction ends, so its checkpoint is the latest. This saves a
    round trip per checkpoint.

    The pending writes of a batch's tasks are stored together by its last statement, and the
    checkpoint rows of its puts together before them (and before a put reads the checkpoint
    table; on Postgres, the rows of the puts that store nothing else): nothing else a put runs
    (its values, its deltas) reads them, and every statement costs as much again in the driver
    as in the database. Rows are stored in their
    order, so a refusal (a parent or a checkpoint deleted meanwhile, migration 0004) fails the
    batch as it would have failed in its place, and `_writer.write` then writes the calls one
    by one, in order."""
    results: list[Any] = []
    latest: set[tuple[str, str, Optional[str]]] = set()
    began = len(calls) == 1
    held: Optional[list[list]] = None if began else []
    deferred: Optional[list[tuple]] = None if began else []
    try:
        for method, args in calls:
            if method == "put":
                config, checkpoint, metadata, new_versions = args
                op = put(d, config, checkpoint, metadata, new_versions, deltas, limits, encryption, held, latest)
            elif method == "put_writes":
                config, writes, task_id, *task_path = args
                path = task_path[0] if task_path else ""
                if deferred is not None:
                    deferred += _write_rows(config, writes, task_id, path, limits, encryption)
                    results.append(None)
                    continue
                op = put_writes(d, config, writes, task_id, path, limits, encryption)
            else:
                raise ValueError(f"a batch runs put and put_writes, not {method!r}")
            # Only the batch's first statement can be taken for the whole operation (see
            # `Query.alone`); a single call's statements are the batch's.
            if began:
                result = yield from op
            else:
                result, began = yield from _first_not_alone(op)
            results.append(result)
        if held:
            yield d.upsert_checkpoints(held)
        if deferred:
            # Alone only when no call had a statement: then it is the batch's one statement.
            yield d.put_batch_writes(deferred)
    except BaseException:
        if deltas is not None:
            deltas.forget_threads([location(args[0])[0] for _method, args in calls])
        raise
    return results


def _first_not_alone(op: Op) -> Generator[Step, Any, tuple[Any, bool]]:
    """An operation's steps, its first statement not alone (see `Query.alone`): it is part of a
    batch's transaction. Returns its result and whether it had a statement."""
    try:
        step = next(op)
    except StopIteration as stop:
        return stop.value, False
    if isinstance(step, Query) and step.alone:
        step = step._replace(alone=False)
    try:
        while True:
            step = op.send((yield step))
    except StopIteration as stop:
        return stop.value, True
