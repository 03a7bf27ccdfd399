"""`ferrograph stats URL [--thread T] [--largest N] [--json]` on SQLite and Postgres."""

from __future__ import annotations

import json

from cli_helpers import THREADS, normalized, run

from ferrograph.checkpointers import open_saver


def test_stats(filled, capsys):
    url, _ = filled
    with open_saver(url, create=False) as saver:
        rows = {t: normalized(saver, t) for t in THREADS}
    code, out, err = run(capsys, "stats", url, "--json", "--largest", "2")
    assert code == 0, err
    stats = json.loads(out)
    assert stats["threads"] == 5 and stats["checkpoints"] == sum(len(r) for r in rows.values())
    assert stats["writes"] == sum(len(c["pending_writes"]) for r in rows.values() for c in r)
    assert len(stats["largest_threads"]) == 2 and stats["largest_threads"][0]["thread_id"] == "agent-1"
    assert stats["database_bytes"] > stats["bytes"] > 0
    code, out, err = run(capsys, "stats", url, "--thread", "raw", "--json")
    assert code == 0, err
    raw = json.loads(out)
    assert (raw["threads"], raw["checkpoints"], raw["writes"]) == (1, 3, 6)
    assert {c["channel"] for c in raw["channels"]} == {"when", "tags", "pair", "blob", "amount", "id"}

    code, out, err = run(capsys, "stats", url)
    assert code == 0, err
    assert "storage of all threads" in out and "bytes per channel" in out and "largest threads (5)" in out
    code, _, err = run(capsys, "stats", url, "--thread", "nope")
    assert code == 1 and "thread 'nope' has no checkpoints" in err
