"""`_core.RowPage`, the reader of a SQL saver's page of rows (reads.py), on rows made by hand in
the shapes `Dialect.select_tuples` returns: how it orders, rebuilds and decodes them, and how it
reports rows it cannot read. The savers' own tests read it through real databases."""

from __future__ import annotations

import json
from typing import Any, Optional

import pytest

from ferrograph import _core
from ferrograph.errors import CorruptCheckpointError

THREAD, NS = "thread-1", ""


def checkpoint_row(cid: str, versions: dict[str, Any], inline: Optional[dict] = None, *, parent: Optional[str] = None,
                   rank: Optional[int] = None, step: int = 0, thread: str = THREAD) -> tuple:
    checkpoint = json.dumps({"v": 4, "id": cid, "ts": "2025-01-01T00:00:00+00:00", "channel_versions": versions,
                             "versions_seen": {}, "updated_channels": None})
    metadata = json.dumps({"source": "loop", "step": step, "parents": {}})
    values = None if inline is None else _core.dumps(inline)
    return (0, rank, thread, NS, cid, parent, checkpoint, metadata, values, None)


def blob_row(channel: str, version: str, blob: Any, chain: Any = None, thread: str = THREAD) -> tuple:
    return (1, None, thread, NS, channel, version, None, None, blob, chain)


def write_row(cid: str, task_id: str, channel: str, value: Any, idx: int, task_path: str = "", rank: Optional[int] = None) -> tuple:
    return (2, rank, THREAD, NS, cid, task_id, channel, task_path, _core.dumps(value), idx)


def read(rows: list, ranks_rows: bool = False) -> list:
    return list(_core.RowPage(rows, ranks_rows, None).tuples())


def test_checkpoints_come_newest_first_with_their_values_writes_and_configs():
    rows = [
        checkpoint_row("1", {"n": "v1"}, {"n": 1}, step=0),
        write_row("2", "task-b", "n", 30, 0),
        checkpoint_row("2", {"n": "v2", "big": "b1"}, {"n": 2}, parent="1", step=1),
        blob_row("big", "b1", _core.dumps({"text": "x" * 300})),
        write_row("2", "task-a", "n", 10, 1),
        write_row("2", "task-a", "n", 20, 0),
    ]
    newest, oldest = read(rows)
    assert newest.config == {"configurable": {"thread_id": THREAD, "checkpoint_ns": NS, "checkpoint_id": "2"}}
    assert newest.parent_config == {"configurable": {"thread_id": THREAD, "checkpoint_ns": NS, "checkpoint_id": "1"}}
    assert newest.checkpoint["channel_values"] == {"n": 2, "big": {"text": "x" * 300}}
    assert newest.metadata == {"source": "loop", "step": 1, "parents": {}}
    # Unranked writes are ordered by (task_path, task_id, idx).
    assert newest.pending_writes == [("task-a", "n", 20), ("task-a", "n", 10), ("task-b", "n", 30)]
    assert oldest.parent_config is None and oldest.pending_writes == []
    assert oldest.checkpoint["channel_values"] == {"n": 1}


def test_ranked_rows_keep_the_database_order():
    rows = [
        checkpoint_row("1", {}, {}, rank=1),
        checkpoint_row("2", {}, {}, rank=0),
        write_row("1", "b", "x", 2, 0, rank=3),
        write_row("1", "a", "x", 1, 0, rank=4),
    ]
    first, second = read(rows, ranks_rows=True)
    assert [first.config["configurable"]["checkpoint_id"], second.config["configurable"]["checkpoint_id"]] == ["2", "1"]
    assert second.pending_writes == [("b", "x", 2), ("a", "x", 1)]


def test_a_list_stored_as_deltas_is_rebuilt_and_each_tuple_gets_values_of_its_own():
    snapshot, delta = _core.dumps(["a", "b"]), _core.dumps(["c"])
    rows = [
        checkpoint_row("2", {"items": "v2"}, {}),
        checkpoint_row("1", {"items": "v2"}, {}),
        blob_row("items", "v1", snapshot),
        blob_row("items", "v2", delta, json.dumps(["v1"])),
    ]
    first, second = read(rows)
    assert first.checkpoint["channel_values"]["items"] == ["a", "b", "c"]
    first.checkpoint["channel_values"]["items"].append("mutated")
    assert second.checkpoint["channel_values"]["items"] == ["a", "b", "c"]
    # Postgres hands a chain over as a list, and bytea as bytes or memoryview.
    rows[3] = blob_row("items", "v2", memoryview(delta), ["v1"])
    assert read(rows)[0].checkpoint["channel_values"]["items"] == ["a", "b", "c"]


@pytest.mark.parametrize(
    ("rows", "problem"),
    [
        ([blob_row("items", "v2", b'["c"]', '["v1"]')], "version 'v1', on which its stored value is built, is missing"),
        ([blob_row("items", "v1", b'["a"]', '["v0"]'), blob_row("items", "v2", b'["c"]', '["v1"]')],
         "version 'v1', on which its stored value is built, is not a list snapshot or delta"),
        ([blob_row("items", "v1", b'{"a": 1}'), blob_row("items", "v2", b'["c"]', '["v1"]')],
         "the stored part at version 'v1' is not a JSON array"),
        ([blob_row("items", "v2", b'["c"]', "not json")], "its stored chain is not a list of versions"),
    ],
)
def test_a_broken_chain_names_the_checkpoint_and_the_version(rows, problem):
    with pytest.raises(CorruptCheckpointError) as info:
        read([checkpoint_row("cid-7", {"items": "v2"}, {})] + rows)
    message = str(info.value)
    assert problem in message and "channel 'items'" in message and f"thread {THREAD!r}" in message
    assert "checkpoint 'cid-7'" in message or "chain" in message  # a chain is read before its checkpoint


def test_a_tuple_is_decoded_only_when_iterated():
    rows = [
        checkpoint_row("2", {"x": "v2"}, {}),
        checkpoint_row("1", {"x": "v1"}, {}),
        blob_row("x", "v2", _core.dumps("fine")),
        blob_row("x", "v1", b'{"__fg__": "no-such-tag", "v": 1}'),
    ]
    tuples = _core.RowPage(rows, False, None).tuples()
    assert next(tuples).checkpoint["channel_values"] == {"x": "fine"}
    with pytest.raises(CorruptCheckpointError, match="'1'.*no-such-tag|no-such-tag.*'1'"):
        next(tuples)


def test_a_checkpoint_that_is_not_a_json_object_is_named():
    row = list(checkpoint_row("cid-9", {}, {}))
    row[6] = "[1, 2]"
    with pytest.raises(CorruptCheckpointError, match="checkpoint 'cid-9' \\(thread 'thread-1'\\) is not a JSON object"):
        _core.RowPage([tuple(row)], False, None)


def test_missing_lists_the_versions_the_statement_cannot_have_matched():
    rows = [
        # Since 0005: only a version the database may print otherwise than Python (a float).
        checkpoint_row("2", {"a": "v", "b": 3, "c": 2.5}, {}),
        # Before 0005 (no small values in the row): every version without a row.
        checkpoint_row("1", {"a": "v", "b": 3}, None),
        blob_row("a", "v", _core.dumps(1)),
    ]
    page = _core.RowPage(rows, False, None)
    assert page.missing() == [(THREAD, NS, "b", "3"), (THREAD, NS, "c", "2.5")]
    assert page.missing([1]) == [(THREAD, NS, "b", "3")]
    page.add_blobs([(THREAD, NS, "b", "3", _core.dumps("found"), None)])
    assert page.missing() == [(THREAD, NS, "c", "2.5")]
    assert list(page.tuples([1]))[0].checkpoint["channel_values"] == {"a": 1, "b": "found"}


def test_paging_position_and_metadata_by_index():
    page = _core.RowPage([checkpoint_row("5", {}, {}, step=4), checkpoint_row("3", {}, {}, step=2)], False, None)
    assert len(page) == 2
    assert page.last_position() == ("3", THREAD, NS)
    assert page.metadata(0)["step"] == 4
    assert _core.RowPage([], False, None).last_position() is None
    with pytest.raises(IndexError):
        page.tuples([2])
