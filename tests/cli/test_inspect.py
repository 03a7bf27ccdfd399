"""`ferrograph threads|history|show|prune|delete-thread URL ...` on SQLite and Postgres, with
tables and with --json."""

from __future__ import annotations

import json
import sqlite3

import pytest
from cli_helpers import THREADS, normalized, run

from ferrograph.checkpointers import open_saver


def test_threads(filled, capsys):
    url, _ = filled
    code, out, err = run(capsys, "threads", url, "--json")
    assert code == 0, err
    threads = {t["thread_id"]: t for t in json.loads(out)}
    assert set(threads) == THREADS
    with open_saver(url, create=False) as saver:
        for thread_id, t in threads.items():
            tuples = list(saver.list({"configurable": {"thread_id": thread_id}}))
            assert t["checkpoints"] == len(tuples)
            newest = max(tuples, key=lambda x: x.config["configurable"]["checkpoint_id"])
            assert t["last_checkpoint_id"] == newest.config["configurable"]["checkpoint_id"]
            assert t["last_activity"] == newest.checkpoint["ts"]
    assert threads["agent-1"]["checkpoints"] == 14  # 8 steps, then a fork of 6
    assert threads["raw"]["namespaces"] == ["", "child:1"]
    # Most recently active first.
    assert [t["thread_id"] for t in json.loads(out)][0] == "raw"

    code, out, _ = run(capsys, "threads", url)
    assert code == 0
    assert "5 threads" in out
    for thread_id in THREADS:
        assert thread_id in out
    assert "last activity" in out


def test_threads_come_from_one_query_with_what_reading_every_checkpoint_gives(filled, capsys, monkeypatch):
    """`threads` asks the SQL saver for its summaries and never lists a checkpoint; they are
    what the path for other savers (every checkpoint through `list`) makes of the same data."""
    from ferrograph._inspect import scan_threads

    url, _ = filled

    class ListingOnly:
        def __init__(self, saver):
            self.list = saver.list

    with open_saver(url, create=False) as saver:
        expected = [t.as_json() for t in scan_threads(ListingOnly(saver))]
        expected_raw = [t.as_json() for t in scan_threads(ListingOnly(saver), "raw")]

    def no_listing(*args, **kwargs):
        raise AssertionError("threads listed the checkpoints")

    for saver_class in ("sqlite.SqliteSaver", "postgres.PostgresSaver"):
        monkeypatch.setattr(f"ferrograph.checkpointers.{saver_class}.list", no_listing)
    code, out, err = run(capsys, "threads", url, "--json")
    assert code == 0, err
    assert json.loads(out) == expected
    assert [t["thread_id"] for t in expected] == ["raw", "paused", "failed", "agent-2", "agent-1"]
    code, out, err = run(capsys, "prune", url, "--keep-latest", "--thread", "raw", "--json")
    assert code == 0, err
    # "raw" has two checkpoints in the root namespace and one in another: the older root one goes.
    assert json.loads(out)["checkpoints"] == expected_raw[0]["checkpoints"] - 2 == 1


def test_history_tree_shows_the_fork_as_a_branch(filled, capsys):
    url, facts = filled
    code, out, err = run(capsys, "history", url, "agent-1", "--json")
    assert code == 0, err
    rows = json.loads(out)
    assert len(rows) == 14
    assert [r["checkpoint_id"] for r in rows] == sorted(r["checkpoint_id"] for r in rows)  # oldest first
    by_id = {r["checkpoint_id"]: r for r in rows}
    forks = [r for r in rows if r["fork"]]
    assert [r["checkpoint_id"] for r in forks] == [facts["fork"]]
    assert forks[0]["parent_checkpoint_id"] == facts["fork_parent"]
    assert forks[0]["source"] == "update" and forks[0]["writes"] == ["__pregel_tasks", "questions"]
    assert len(by_id[facts["fork_parent"]]["children"]) == 2
    first = rows[0]
    assert (first["step"], first["source"], first["parent_checkpoint_id"]) == (-1, "input", None)
    assert all(r["parent_checkpoint_id"] in by_id for r in rows[1:])
    assert rows[1]["writes"] == ["branch:to:plan", "topic"] and rows[1]["pending_writes"] > 0

    code, out, _ = run(capsys, "history", url, "agent-1")
    assert code == 0
    lines = out.splitlines()
    branch = next(i for i, line in enumerate(lines) if f"branch from {facts['fork_parent']}" in line)
    assert facts["fork_parent"] in lines[branch - 1]  # opened under the checkpoint it forks from
    assert facts["fork"] in lines[branch + 1] and "update" in lines[branch + 1]
    assert lines[branch + 1].index(facts["fork"]) > lines[branch - 1].index(facts["fork_parent"])  # nested
    assert "14 checkpoints, 1 fork" in out


def test_history_namespaces_and_missing_thread(filled, capsys):
    url, _ = filled
    code, out, _ = run(capsys, "history", url, "raw")
    assert code == 0
    assert "namespace child:1" in out
    code, out, _ = run(capsys, "history", url, "raw", "--json")
    assert [r["checkpoint_ns"] for r in json.loads(out)] == ["", "", "child:1"]
    code, _, err = run(capsys, "history", url, "nope")
    assert code == 1 and "thread 'nope' has no checkpoints" in err


def test_show(filled, capsys):
    url, facts = filled
    code, out, err = run(capsys, "show", url, "agent-1", "--json")
    assert code == 0, err
    latest = json.loads(out)
    assert latest["values"]["questions"] == ["What is rust?"]
    assert latest["values"]["report"].startswith("# Report:")
    assert latest["metadata"]["source"] == "loop"
    assert latest["parent_checkpoint_id"]

    code, out, _ = run(capsys, "show", url, "agent-1", facts["fork"], "--json")
    fork = json.loads(out)
    assert fork["checkpoint_id"] == facts["fork"] and fork["parent_checkpoint_id"] == facts["fork_parent"]
    assert fork["metadata"]["source"] == "update"
    assert len(fork["values"]["questions"]) == 1
    assert fork["pending_writes"] and all(set(w) == {"task_id", "channel", "value"} for w in fork["pending_writes"])
    # The engine's Send tasks are shown readably.
    assert any(isinstance(v, dict) and v.get("__type__") == "Send" for v in fork["internal"].get("__pregel_tasks", []))

    # Values that are not JSON-native: readable fallbacks.
    code, out, _ = run(capsys, "show", url, "raw", "--json")
    raw = json.loads(out)["values"]
    assert raw == {
        "when": "2024-05-01T12:00:01",
        "tags": ["a", "b"],
        "pair": [1, "x"],
        "blob": "base64:AP8=",
        "amount": "1.50",
        "id": "00000000-0000-0000-0000-000000000001",
    }
    code, out, _ = run(capsys, "show", url, "raw", "--ns", "child:1", "--json")
    assert json.loads(out)["checkpoint_ns"] == "child:1"

    code, out, _ = run(capsys, "show", url, "paused", "--json")
    writes = {w["channel"]: w["value"] for w in json.loads(out)["pending_writes"]}
    assert writes["__interrupt__"][0]["value"] == "what now?"
    code, out, _ = run(capsys, "show", url, "failed", "--json")
    writes = {w["channel"]: w["value"] for w in json.loads(out)["pending_writes"]}
    assert writes == {"log": ["ok"], "__error__": "RuntimeError('boom')"}

    code, out, _ = run(capsys, "show", url, "agent-1")  # rich JSON: still JSON
    assert code == 0 and json.loads(out)["values"]["questions"] == ["What is rust?"]

    code, _, err = run(capsys, "show", url, "agent-1", "1f000000-0000-6000-8000-000000000000")
    assert code == 1 and "not found" in err
    code, _, err = run(capsys, "show", url, "nope")
    assert code == 1 and "thread 'nope' not found" in err


def test_prune_one_thread_then_all(filled, capsys):
    url, _ = filled
    with open_saver(url, create=False) as saver:
        before = {t: normalized(saver, t) for t in THREADS}
    code, out, err = run(capsys, "prune", url, "--keep-latest", "--thread", "agent-1", "--json")
    assert code == 0, err
    pruned = json.loads(out)
    assert (pruned["threads"], pruned["checkpoints"], pruned["dry_run"], pruned["thread_ids"]) == (0, 13, False, [])
    assert pruned["writes"] > 0 and pruned["bytes"] > 0
    with open_saver(url, create=False) as saver:
        after = normalized(saver, "agent-1")
        assert after == before["agent-1"][:1]  # the latest, values intact
        for t in THREADS - {"agent-1"}:
            assert normalized(saver, t) == before[t]

    code, out, _ = run(capsys, "prune", url, "--keep-latest")
    assert code == 0
    assert out.startswith("deleted ") and "0 threads were left empty" in out
    with open_saver(url, create=False) as saver:
        for t in THREADS:
            kept = normalized(saver, t)
            namespaces = {r["checkpoint_ns"] for r in before[t]}
            assert len(kept) == len(namespaces)
            for row in kept:
                assert row == next(r for r in before[t] if r["checkpoint_ns"] == row["checkpoint_ns"])
    code, out, _ = run(capsys, "prune", url, "--keep-latest", "--json")
    assert json.loads(out)["checkpoints"] == 0


def test_prune_requires_what_to_keep(url, capsys):
    code, _, err = run(capsys, "prune", url)
    assert code == 1 and "prune needs what to keep: --keep-last N (or --keep-latest), --older-than AGE" in err


def test_delete_thread(filled, capsys):
    url, _ = filled
    code, out, err = run(capsys, "delete-thread", url, "agent-2", "--json")
    assert code == 0, err
    assert json.loads(out) == {"thread_id": "agent-2", "checkpoints_deleted": 8}
    code, out, _ = run(capsys, "threads", url, "--json")
    assert {t["thread_id"] for t in json.loads(out)} == THREADS - {"agent-2"}
    code, out, _ = run(capsys, "delete-thread", url, "raw")
    assert code == 0 and "deleted thread raw (3 checkpoints)" in out
    code, _, err = run(capsys, "delete-thread", url, "raw")
    assert code == 1 and "has no checkpoints" in err


def test_reading_does_not_create_or_migrate(tmp_path, url, capsys):
    missing = str(tmp_path / "missing.db")
    code, _, err = run(capsys, "threads", missing)
    assert code == 1 and "no such SQLite database" in err
    assert not (tmp_path / "missing.db").exists()
    # An existing database without ferrograph tables.
    if not url.startswith("postgresql"):
        sqlite3.connect(url).execute("CREATE TABLE other (x)").connection.close()
    code, _, err = run(capsys, "threads", url)
    assert code == 1 and "no ferrograph checkpoint tables" in err and "ferrograph db upgrade" in err
    # One at an older revision.
    assert run(capsys, "db", "upgrade", url, "0001")[0] == 0
    code, _, err = run(capsys, "history", url, "t")
    assert code == 1 and "older than this version" in err
    assert run(capsys, "db", "upgrade", url)[0] == 0
    code, out, _ = run(capsys, "threads", url, "--json")
    assert (code, json.loads(out)) == (0, [])


def test_db_current_and_history_json(url, capsys):
    from ferrograph.migrations import head_revision

    code, out, _ = run(capsys, "db", "current", url, "--json")
    assert (code, json.loads(out)) == (0, {"revision": None, "head": head_revision(), "is_head": False})
    assert run(capsys, "db", "upgrade", url)[0] == 0
    code, out, _ = run(capsys, "db", "current", url, "--json")
    assert json.loads(out)["is_head"] is True
    code, out, _ = run(capsys, "db", "history", url, "--json")
    revisions = json.loads(out)
    assert [r["revision"] for r in revisions if r["is_current"]] == [head_revision()]
    assert revisions[-1]["down_revision"] is None
