"""`ferrograph diff URL THREAD [FROM] [TO] [--json]` on SQLite and Postgres."""

from __future__ import annotations

import json

from cli_helpers import run

from ferrograph.checkpointers import open_saver
from ferrograph.checkpointers.base import empty_checkpoint


def put(saver, thread_id, parent, values, versions):
    c = empty_checkpoint()
    c["channel_values"] = values
    c["channel_versions"] = versions
    config = {"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}
    if parent:
        config["configurable"]["checkpoint_id"] = parent["configurable"]["checkpoint_id"]
    return saver.put(config, c, {"source": "loop", "step": 0, "parents": {}}, {k: versions[k] for k in values})


def test_diff_command(url, capsys):
    with open_saver(url) as saver:
        a = put(saver, "t", None, {"log": ["one"], "x": 1}, {"log": "1", "x": "1"})
        b = put(saver, "t", a, {"log": ["one", "two"], "y": True}, {"log": "2", "x": "1", "y": "1"})
        saver.put_writes(a, [("log", ["two"])], "task-a")
    h_ids = {"a": a["configurable"]["checkpoint_id"], "b": b["configurable"]["checkpoint_id"]}
    code, out, err = run(capsys, "diff", url, "t", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["a"]["checkpoint_id"] == h_ids["a"] and result["b"]["checkpoint_id"] == h_ids["b"]
    assert result["channels"] == [
        {"channel": "log", "kind": "appended", "before": ["one"], "after": ["one", "two"], "appended": ["two"]},
        {"channel": "y", "kind": "added", "before": None, "after": True},
    ]
    code, out, err = run(capsys, "diff", url, "t", h_ids["b"], h_ids["a"])
    assert code == 0, err
    assert "log" in out and "changed" in out and "removed" in out and "pending writes between (0)" in out
    code, out, err = run(capsys, "diff", url, "t", "--json")
    assert json.loads(out)["pending_writes"] == [{"checkpoint_id": h_ids["a"], "task_id": "task-a", "channel": "log", "value": ["two"]}]
    code, _, err = run(capsys, "diff", url, "t", h_ids["a"], "missing")
    assert code == 1 and "checkpoint 'missing' of thread 't' not found" in err
    code, _, err = run(capsys, "diff", url, "nobody")
    assert code == 1 and "thread 'nobody' has no checkpoints" in err
