"""Conversions between rows and the saver protocol that reads, writes and admin share: the
key a config names, the config of a key, and decoding the JSON columns, each failure reported as
a CorruptCheckpointError naming the checkpoint. `_core.RowPage` (reads.py) decodes rows itself
and calls `opened`, `decode`, `decode_metadata`, `load` and `corrupt` for what it cannot: an
encrypted value, a column to report, a typed value whose keys Postgres's JSONB reordered."""

from __future__ import annotations

import json
from typing import Any, Mapping, Optional, Union

from ferrograph import _core
from ferrograph.checkpointers.encryption import Encryption, open_metadata, open_value
from ferrograph.errors import CorruptCheckpointError, EncryptionError, InvalidConfigError, SchemaVersionError, ThreadDeletedError

__all__ = [
    "CODEC_TAG",
    "THREAD_DELETED",
    "config_for",
    "corrupt",
    "decode",
    "decode_metadata",
    "load",
    "location",
    "missing_tables",
    "opened",
    "text",
    "thread_deleted",
]

#: The key by which the codec marks a typed value's JSON object.
CODEC_TAG = "__fg__"

#: What the database error of a refused late write starts with (migration 0004's triggers).
THREAD_DELETED = "ferrograph_thread_deleted: "


def thread_deleted(error: BaseException) -> Optional[ThreadDeletedError]:
    """The ThreadDeletedError a database error stands for, if it is a refused late write."""
    message = str(error)
    if THREAD_DELETED not in message:
        return None
    return ThreadDeletedError(message.split(THREAD_DELETED, 1)[1].splitlines()[0])


#: Postgres's SQLSTATEs for a table and a function that do not exist (psycopg's UndefinedTable,
#: UndefinedFunction): a database never set up, or set up by an older ferrograph.
UNDEFINED = ("42P01", "42883")


def missing_tables(error: BaseException) -> Optional[SchemaVersionError]:
    """The SchemaVersionError a database error stands for when it says that one of ferrograph's
    tables or functions does not exist: the Postgres savers need `setup()` first, as LangGraph's
    do, and again after an upgrade of ferrograph."""
    if getattr(error, "sqlstate", None) not in UNDEFINED or "ferrograph_" not in str(error):
        return None
    first_line = str(error).splitlines()[0]
    return SchemaVersionError(
        f"ferrograph's tables are missing from this database or older than this version ({first_line}):"
        " call saver.setup() once"
        " (await saver.setup() on an async saver), or run `ferrograph db upgrade URL`, before using it"
    )


def location(config: Optional[Mapping[str, Any]]) -> tuple[str, str, Optional[str]]:
    """The (thread_id, checkpoint_ns, checkpoint_id) a config names."""
    configurable = (config or {}).get("configurable") or {}
    thread_id = configurable.get("thread_id")
    if thread_id is None:
        raise InvalidConfigError("config['configurable'] must name a thread_id")
    return str(thread_id), configurable.get("checkpoint_ns", "") or "", configurable.get("checkpoint_id")


def config_for(thread_id: str, checkpoint_ns: str, checkpoint_id: str) -> dict:
    return {"configurable": {"thread_id": thread_id, "checkpoint_ns": checkpoint_ns, "checkpoint_id": checkpoint_id}}


def text(data: Any) -> Union[str, bytes]:
    """A column as str or bytes (psycopg hands bytea columns over as memoryview)."""
    return bytes(data) if type(data) is memoryview else data


def _tags_first(data: Union[str, bytes]) -> Union[str, bytes]:
    """Postgres JSONB keeps object keys sorted by length, not as written, so a typed value's
    tag key (which the codec reads first) may come after its body. Put it back in front; JSON
    without a tag (the usual checkpoint and metadata document) is returned untouched."""
    quoted = f'"{CODEC_TAG}"'
    if (quoted.encode() not in data) if isinstance(data, bytes) else (quoted not in data):
        return data

    def tag_first(pairs: list[tuple[str, Any]]) -> dict:
        return dict(sorted(pairs, key=lambda kv: kv[0] != CODEC_TAG))

    try:
        return json.dumps(json.loads(data, object_pairs_hook=tag_first))
    except ValueError:
        return data  # not JSON at all: the codec reports it


def corrupt(what: str, thread_id: str, checkpoint_ns: str, checkpoint_id: str, problem: Any) -> CorruptCheckpointError:
    ns = f", namespace {checkpoint_ns!r}" if checkpoint_ns else ""
    return CorruptCheckpointError(f"cannot read {what} of checkpoint {checkpoint_id!r} (thread {thread_id!r}{ns}): {problem}")


def decode(data: Any, what: str, thread_id: str, checkpoint_ns: str, checkpoint_id: str) -> Any:
    """A checkpoint's or its metadata's JSON column, decoded."""
    try:
        return _core.loads(_tags_first(text(data)))
    except Exception as e:  # the codec's own errors and anything a corrupt row provokes
        raise corrupt(what, thread_id, checkpoint_ns, checkpoint_id, e) from e


def load(data: Any, channel: str, what: str, thread_id: str, checkpoint_ns: str, checkpoint_id: str) -> Any:
    """A value or pending write, decoded (a text read before is copied from its first decoding,
    see `_core.loads_cached`). Its description (`what` with the channel's repr) is written only
    when it is reported: reads decode thousands of values."""
    try:
        return _core.loads_cached(bytes(data) if type(data) is memoryview else data)
    except Exception as e:  # the codec's own errors and anything a corrupt row provokes
        raise corrupt(what.format(repr(channel)), thread_id, checkpoint_ns, checkpoint_id, e) from e


def decode_metadata(data: Any, encryption: Optional[Encryption], thread_id: str, checkpoint_ns: str, checkpoint_id: str) -> Any:
    """A checkpoint's metadata column, decoded; decrypted first when it is encrypted (a JSON
    string, see encryption.seal_metadata). An error says where it was read."""
    meta = decode(data, "the metadata", thread_id, checkpoint_ns, checkpoint_id)
    if type(meta) is not str:
        return meta
    try:
        opened = open_metadata(encryption, text(data))
    except EncryptionError as e:
        ns = f", namespace {checkpoint_ns!r}" if checkpoint_ns else ""
        raise type(e)(f"cannot read the metadata (checkpoint {checkpoint_id!r} of thread {thread_id!r}{ns}): {e}") from None
    return decode(opened, "the metadata", thread_id, checkpoint_ns, checkpoint_id)


def opened(encryption: Optional[Encryption], blob: Any, what: str, channel: Any, thread_id: str, checkpoint_ns: str,
           checkpoint_id: Optional[str] = None) -> Any:
    """A stored value's encoding: decrypted when encrypted. An error says where it was read:
    `what`, with the channel's repr in place of `{}` (written only when it is reported)."""
    try:
        return open_value(encryption, blob)
    except EncryptionError as e:
        at = f"checkpoint {checkpoint_id!r} of " if checkpoint_id else ""
        ns = f", namespace {checkpoint_ns!r}" if checkpoint_ns else ""
        raise type(e)(f"cannot read {what.format(repr(channel))} ({at}thread {thread_id!r}{ns}): {e}") from None
