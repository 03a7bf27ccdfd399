"""`ferrograph prune` with a retention policy (--keep-last, --older-than, --thread, --filter,
--keep-forks, --dry-run) and --vacuum, on SQLite and Postgres."""

from __future__ import annotations

import datetime
import json

from cli_helpers import THREADS, normalized, run

from ferrograph.checkpointers import open_saver
from ferrograph.checkpointers.base import empty_checkpoint


def put_thread(url, thread_id, steps, *, days_ago, user):
    """A thread of `steps` checkpoints made `days_ago` days ago, each with a 2 KB value."""
    with open_saver(url) as saver:
        parent = {"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}
        for step in range(steps):
            c = empty_checkpoint()
            c["ts"] = (datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=days_ago)).isoformat()
            c["channel_values"] = {"text": f"{step}" * 2000}
            c["channel_versions"] = {"text": f"{step + 1:032}.0"}
            parent = saver.put(parent, c, {"source": "loop", "step": step, "parents": {}, "user": user}, {"text": c["channel_versions"]["text"]})


def counts(url):
    with open_saver(url, create=False) as saver:
        return {t: len(normalized(saver, t)) for t in ("old", "new", "bob")}


def test_dry_run_then_prune_by_age_and_filter(url, capsys):
    put_thread(url, "old", 4, days_ago=40, user="ann")
    put_thread(url, "new", 4, days_ago=0, user="ann")
    put_thread(url, "bob", 3, days_ago=40, user="bob")

    code, out, err = run(capsys, "prune", url, "--older-than", "30d", "--dry-run", "--json")
    assert code == 0, err
    dry = json.loads(out)
    assert (dry["dry_run"], dry["threads"], dry["checkpoints"], sorted(dry["thread_ids"])) == (True, 2, 7, ["bob", "old"])
    assert dry["bytes"] > 7 * 2000
    assert counts(url) == {"old": 4, "new": 4, "bob": 3}

    code, out, err = run(capsys, "prune", url, "--older-than", "30d", "--filter", "user=bob")
    assert code == 0, err
    assert out.startswith("deleted 3 checkpoints, 0 pending writes and ") and "1 thread were left empty" in out
    assert counts(url) == {"old": 4, "new": 4, "bob": 0}

    code, out, err = run(capsys, "prune", url, "--keep-last", "2", "--thread", "old", "--thread", "new", "--json")
    assert code == 0, err
    assert json.loads(out)["checkpoints"] == 4
    assert counts(url) == {"old": 2, "new": 2, "bob": 0}


def test_keep_latest_is_keep_last_one(filled, capsys):
    url, _ = filled
    with open_saver(url, create=False) as saver:
        before = {t: normalized(saver, t) for t in THREADS}
    code, out, err = run(capsys, "prune", url, "--keep-last", "1", "--thread", "agent-1", "--dry-run", "--json")
    assert code == 0, err
    as_keep_last = json.loads(out)
    code, out, err = run(capsys, "prune", url, "--keep-latest", "--thread", "agent-1", "--json")
    assert code == 0, err
    as_keep_latest = json.loads(out)
    assert {**as_keep_last, "dry_run": False} == as_keep_latest
    with open_saver(url, create=False) as saver:
        assert normalized(saver, "agent-1") == before["agent-1"][:1]


def test_vacuum_gives_the_space_back(url, capsys):
    for i in range(6):
        put_thread(url, f"t{i}", 20, days_ago=40, user="ann")
    code, out, err = run(capsys, "prune", url, "--older-than", "30d", "--vacuum", "full", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["threads"] == 6 and result["checkpoints"] == 120
    assert result["vacuum"]["full"] is True
    assert result["vacuum"]["bytes_after"] < result["vacuum"]["bytes_before"]

    code, out, err = run(capsys, "prune", url, "--keep-last", "1", "--vacuum")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("deleted 0 checkpoints")
    assert lines[1].startswith("vacuum: ") and " before, " in lines[1] and lines[1].endswith("bytes) after")


def test_bad_options_are_refused(url, capsys):
    put_thread(url, "old", 1, days_ago=1, user="ann")
    for argv, message in [
        (["--keep-last", "-1"], "--keep-last must be an int >= 0"),
        (["--older-than", "a month"], "--older-than must be a timedelta or text like '30d'"),
        (["--keep-last", "1", "--filter", "user"], "--filter takes KEY=VALUE, got 'user'"),
        (["--keep-latest", "--keep-last", "3"], "--keep-latest is --keep-last 1"),
    ]:
        code, _, err = run(capsys, "prune", url, *argv)
        assert code == 1 and message in err, (argv, err)
    code, _, err = run(capsys, "prune", "memory://", "--keep-last", "1", "--vacuum")
    assert code == 1 and "--vacuum needs a SQLite or Postgres database" in err
