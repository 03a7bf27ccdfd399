"""Broken rows in a SQL saver's tables: reading the broken checkpoint raises
CorruptCheckpointError naming the thread and the checkpoint; the rest of the thread stays
readable. Rows are corrupted with raw SQL on SQLite and Postgres.

Decisions (LangGraph-compatible):
- `list` raises CorruptCheckpointError when it reaches a broken checkpoint (as LangGraph's savers
  raise when a row fails to deserialize) rather than skipping it silently: the error names the
  checkpoint, and `list(config, before={...that id...})` goes on past it.
- A channel version whose blob row is simply absent reads as an absent channel, as in
  LangGraph's savers (a writer may name versions it never stored). A value stored as an append
  delta whose base rows are gone is corrupt and raises.

Also here: metadata filter keys carrying SQL are refused with ValueError naming the key, on
every SQL saver, sync and async (LangGraph advisory: SQL injection via metadata filter keys in
the SQLite saver).
"""

from __future__ import annotations

import json
from typing import Annotated, Any, TypedDict
import operator

import pytest

from reliability_processes import conn_string
from ferrograph.errors import CorruptCheckpointError
from ferrograph.graph import END, START, StateGraph
from ferrograph.testing import open_async_saver, open_saver

STEPS = 6
TARGET = 3  # the step of the checkpoint that gets broken


class State(TypedDict):
    n: int
    value: dict
    items: Annotated[list, operator.add]


def build():
    def step(state: State) -> dict:
        n = state["n"] + 1
        # `value` and `items` are too big to be held in the checkpoint row: they have blob rows.
        return {"n": n, "value": {"step": n, "pad": "v" * 300}, "items": [f"item {n} " + "x" * 300]}

    g = StateGraph(State)
    g.add_node("step", step)
    g.add_edge(START, "step")
    g.add_conditional_edges("step", lambda s: "step" if s["n"] < STEPS else END)
    return g.compile


class Raw:
    """Raw SQL on the saver's own connection, in the saver's dialect."""

    def __init__(self, saver, kind: str) -> None:
        self.saver, self.pg = saver, kind == "postgres"

    def run(self, sql: str, params: tuple = ()) -> list:
        if self.pg:
            cur = self.saver.conn.execute(sql.replace("?", "%s"), params)
            return cur.fetchall() if cur.description else []
        cur = self.saver.conn.execute(sql, params)
        return cur.fetchall()

    def set_json(self, column: str, path: str, value: Any, where: str, params: tuple) -> None:
        if self.pg:
            # The checkpoint column is text since migration 0009 (metadata stays JSONB).
            self.run(f"UPDATE ferrograph_checkpoints SET {column} = jsonb_set({column}::jsonb, ?::text[], ?::jsonb) WHERE {where}",
                     ("{" + path + "}", json.dumps(value), *params))
        else:
            self.run(f"UPDATE ferrograph_checkpoints SET {column} = json_set({column}, ?, json(?)) WHERE {where}",
                     ("$." + path, json.dumps(value), *params))

    def truncate(self, table: str, where: str, params: tuple) -> None:
        half = "substring(blob from 1 for length(blob) / 2)" if self.pg else "substr(blob, 1, length(blob) / 2)"
        self.run(f"UPDATE {table} SET blob = {half} WHERE {where}", params)

    def set_blob(self, table: str, data: bytes, where: str, params: tuple) -> None:
        self.run(f"UPDATE {table} SET blob = ? WHERE {where}", (data, *params))


def corrupt(raw: Raw, case: str, thread: str, target: dict) -> None:
    cid = target.config["configurable"]["checkpoint_id"]
    versions = target.checkpoint["channel_versions"]
    blob_row = "thread_id = ? AND channel = ? AND version = ?"
    if case == "truncated value":
        raw.truncate("ferrograph_checkpoint_blobs", blob_row, (thread, "value", versions["value"]))
    elif case == "unknown tag in value":
        raw.set_blob("ferrograph_checkpoint_blobs", b'{"__fg__": "no-such-tag", "v": 1}', blob_row,
                     (thread, "value", versions["value"]))
    elif case == "class not allowlisted in value":
        raw.set_blob("ferrograph_checkpoint_blobs", b'{"__fg__": "object", "cls": "os:system", "v": {}}', blob_row,
                     (thread, "value", versions["value"]))
    elif case == "unknown tag in checkpoint":
        raw.set_json("checkpoint", "versions_seen", {"__fg__": "no-such-tag", "v": 1}, "thread_id = ? AND checkpoint_id = ?", (thread, cid))
    elif case == "unknown tag in metadata":
        raw.set_json("metadata", "extra", {"__fg__": "no-such-tag", "v": 1}, "thread_id = ? AND checkpoint_id = ?", (thread, cid))
    elif case == "truncated pending write":
        raw.truncate("ferrograph_checkpoint_writes", "thread_id = ? AND checkpoint_id = ?", (thread, cid))
    elif case == "truncated small values":
        half = "substring(channel_values from 1 for 5)" if raw.pg else "substr(channel_values, 1, 5)"
        raw.run(f"UPDATE ferrograph_checkpoints SET channel_values = {half} WHERE thread_id = ? AND checkpoint_id = ?",
                (thread, cid))
    elif case == "missing delta base":
        # The list channel is stored as append deltas: drop the rows its value is built from.
        rows = raw.run("SELECT chain FROM ferrograph_checkpoint_blobs WHERE thread_id = ? AND channel = 'items' AND version = ?",
                       (thread, versions["items"]))
        chain = rows[0][0]
        chain = json.loads(chain) if isinstance(chain, str) else chain
        assert chain, "the list channel should be stored as a delta"
        raw.run("DELETE FROM ferrograph_checkpoint_blobs WHERE thread_id = ? AND channel = 'items' AND version = ?",
                (thread, chain[-1]))
    else:
        raise AssertionError(case)


CASES = [
    "truncated value",
    "unknown tag in value",
    "class not allowlisted in value",
    "unknown tag in checkpoint",
    "unknown tag in metadata",
    "truncated pending write",
    "truncated small values",
    "missing delta base",
]


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_a_corrupt_row_names_thread_and_checkpoint_and_the_rest_stays_readable(kind, request, tmp_path):
    conn = conn_string(request, kind, tmp_path)
    with open_saver(kind, conn) as saver:
        raw = Raw(saver, kind)
        if kind == "sqlite":
            CASES_HERE = CASES + ["truncated checkpoint", "truncated metadata"]
        else:
            CASES_HERE = CASES + ["truncated checkpoint"]  # a JSONB column (metadata) cannot hold truncated JSON
        for case in CASES_HERE:
            thread = f"t {case}"
            config = {"configurable": {"thread_id": thread}}
            graph = build()(checkpointer=saver)
            graph.invoke({"n": 0, "value": {}, "items": []}, config)
            history = list(saver.list(config))[::-1]  # oldest first: steps -1 .. STEPS
            target = next(t for t in history if t.metadata["step"] == TARGET)
            cid = target.config["configurable"]["checkpoint_id"]
            if case == "truncated checkpoint":
                raw.run("UPDATE ferrograph_checkpoints SET checkpoint = substr(checkpoint, 1, 40) WHERE checkpoint_id = ?", (cid,))
            elif case == "truncated metadata":
                raw.run("UPDATE ferrograph_checkpoints SET metadata = substr(metadata, 1, 10) WHERE checkpoint_id = ?", (cid,))
            else:
                corrupt(raw, case, thread, target)

            with pytest.raises(CorruptCheckpointError) as info:
                saver.get_tuple(target.config)
            assert thread in str(info.value) and cid in str(info.value), (case, str(info.value))

            # Older checkpoints read as before (with a missing delta base, the checkpoint whose
            # own value that row was reads the channel as absent, as LangGraph's savers do).
            intact_below = TARGET - 1 if case == "missing delta base" else TARGET
            for t in history:
                if t.metadata["step"] < intact_below:
                    assert saver.get_tuple(t.config).checkpoint == t.checkpoint, case
            # A corruption confined to its row leaves newer checkpoints, and the thread's state, readable.
            if case != "missing delta base":
                for t in history:
                    if t.metadata["step"] > TARGET:
                        assert saver.get_tuple(t.config).checkpoint == t.checkpoint, case
                assert graph.get_state(config).values["n"] == STEPS
            # `list` raises at the broken checkpoint, naming it; `before` goes on past it.
            with pytest.raises(CorruptCheckpointError, match=cid if case != "missing delta base" else "is missing"):
                list(saver.list(config))
            older = list(saver.list(config, before=target.config))
            assert [t.metadata["step"] for t in older] == list(range(TARGET - 1, -2, -1)), case
            if case != "missing delta base":
                newer = list(saver.list(config, limit=STEPS - TARGET))
                assert [t.metadata["step"] for t in newer] == list(range(STEPS, TARGET, -1)), case


BAD_KEYS = [
    "x') OR '1'='1",  # the payload of GHSA-9rwj-6rc7-p77c (CVE-2025-67644)
    "source') OR 1=1 --",
    "x\"; DROP TABLE ferrograph_checkpoints; --",
    "step' UNION SELECT",
    "a b",
    "$.x",
    "",
    "k" * 200,
]


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
@pytest.mark.parametrize("key", BAD_KEYS)
def test_metadata_filter_keys_with_sql_are_refused(kind, key, request, tmp_path):
    conn = conn_string(request, kind, tmp_path)
    with open_saver(kind, conn) as saver:
        build()(checkpointer=saver).invoke({"n": 0, "value": {}, "items": []}, {"configurable": {"thread_id": "f"}})
        with pytest.raises(ValueError, match="metadata filter key") as info:
            list(saver.list({"configurable": {"thread_id": "f"}}, filter={key: "x"}))
        assert repr(key) in str(info.value)
        with pytest.raises(ValueError, match="metadata filter key"):
            list(saver.list(None, filter={key: 1}))
        # The table is intact and ordinary filters work.
        assert len(list(saver.list({"configurable": {"thread_id": "f"}}, filter={"source": "loop"}))) == STEPS + 1


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
async def test_async_savers_refuse_metadata_filter_keys_with_sql(kind, request, tmp_path):
    conn = conn_string(request, kind, tmp_path)
    async with open_async_saver(kind, conn) as saver:
        for key in BAD_KEYS:
            with pytest.raises(ValueError, match="metadata filter key"):
                [t async for t in saver.alist({"configurable": {"thread_id": "f"}}, filter={key: "x"})]
